"""`sr2fhir explain` (issue 17): what the page holds, read back from its HTML and embedded data,
and what it does in a real browser (Debian's chromium, headless, `--dump-dom`).

Expected values come from the SR (its content tree, with pydicom for the counts), from the
Bundle the same conversion makes, and from how make_fixtures.py drew the planar regions.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pydicom
import pytest
from typer.testing import CliRunner

from sr2fhir.batch import convert_path
from sr2fhir.cli import app
from tests.helpers import FIXTURES, IG_EXAMPLE, shared_files

runner = CliRunner()
INPUTS = [IG_EXAMPLE, *sorted(FIXTURES.glob("*.dcm")), *shared_files("tid1500")]


def page(path: Path, out: Path, *args: str) -> str:
    result = runner.invoke(app, ["explain", str(path), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return out.read_text()


def data(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert m
    return dict(json.loads(m.group(1).replace("<\\/", "</")))


def count_items(path: Path) -> int:
    """Content items in the SR, counted with pydicom (the root container is one)."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    n, stack = 1, list(ds.get("ContentSequence", []))
    while stack:
        item = stack.pop()
        n += 1
        stack.extend(item.get("ContentSequence", []))
    return n


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_the_page_holds_both_sides_and_links_them(path: Path, tmp_path: Path) -> None:
    html = page(path, tmp_path / "p.html")
    # Self-contained: no asset from anywhere else.
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)=', html)
    d = data(html)
    if path.suffix == ".dcm":
        assert len(d["items"]) == count_items(path)
    conv = convert_path(str(path)).conversions[0]
    resources = conv.resources.resources()
    assert sorted(c["id"] for c in d["cards"]) == sorted(r["id"] for r in resources)
    # Observations first (groups, then measurements and evaluations), each kind in creation order.
    rank = {"Observation": 0, "ImagingSelection": 1, "BodyStructure": 2, "Device": 3, "Practitioner": 3}
    order = [r["id"] for r in sorted(resources, key=lambda r: (rank[r["resourceType"]], "imaging-measurement-group" not in str(r.get("meta")) if rank[r["resourceType"]] == 0 else 0))]
    assert [c["id"] for c in d["cards"]] == order
    items = {i["p"]: i for i in d["items"]}
    for r in resources:
        if r["resourceType"] == "Observation" and not r.get("category"):  # a measurement: its NUM item
            [src] = next(c["src"] for c in d["cards"] if c["id"] == r["id"])
            assert r["id"] in d["madeFrom"][src]
            # The concept name as the SR says it (SNOMED-RT codes are translated in FHIR; the meaning stays).
            meaning = r["code"]["coding"][0]["display"]
            assert f'"{meaning}")' in items[src]["c"] and items[src]["t"] == "NUM"
    # Every diagnostic with a content item is on that item, with its rule.
    for diag in conv.diagnostics.items:
        if diag.path:
            assert diag.rule in [n["rule"] for n in d["notes"][diag.path]]
    assert f"{len(d['items'])} content items" in html


def test_unmapped_items_carry_their_diagnostic(tmp_path: Path) -> None:
    path = FIXTURES / "tid1501_containers.dcm"
    d = data(page(path, tmp_path / "p.html"))
    conv = convert_path(str(path)).conversions[0]
    unmapped = [x for x in conv.diagnostics.items if x.rule == "not-mapped"]
    assert unmapped
    for x in unmapped:
        assert x.path not in d["madeFrom"]  # nothing was made from it: the page marks it
        assert any(n["rule"] == "not-mapped" and n["text"] == x.message for n in d["notes"][x.path])


def test_regions_are_drawn_as_the_fixture_drew_them(tmp_path: Path, manifest: dict[str, Any]) -> None:
    d = data(page(FIXTURES / "tid1410_planar_regions.dcm", tmp_path / "p.html"))
    svgs = "".join(c["regions"] for c in d["cards"])
    for g in manifest["fixtures"]["tid1410_planar_regions"]["groups"]:
        kind, pts = g["graphic_type"].lower(), g["points"]
        assert f'data-shape="{kind}"' in svgs and g["image"] in svgs
        if kind == "polyline":
            assert 'points="' + " ".join(f"{x},{y}" for x, y in pts) + '"' in svgs
        elif kind == "point":
            assert f'cx="{pts[0][0]}" cy="{pts[0][1]}"' in svgs
        elif kind == "circle":
            assert f'cx="{pts[0][0]}" cy="{pts[0][1]}" r="{math.dist(pts[0], pts[1]):.3f}"' in svgs
        elif kind == "ellipse":
            (a1, a2, b1, b2) = pts
            assert f'rx="{math.dist(a1, a2) / 2:.3f}" ry="{math.dist(b1, b2) / 2:.3f}"' in svgs


def test_a_3d_region_is_shown_with_its_points(tmp_path: Path, manifest: dict[str, Any]) -> None:
    d = data(page(FIXTURES / "tid1410_region3d_segframe.dcm", tmp_path / "p.html"))
    built = manifest["fixtures"]["tid1410_region3d_segframe"]["region_3d"]
    xyz = built["graphic_data"]
    points = ", ".join(f"({xyz[i]}, {xyz[i + 1]}, {xyz[i + 2]})" for i in range(0, len(xyz), 3))
    rows = [row for c in d["cards"] for row in c["rows"] if row[0] == "3D region"]
    assert rows == [["3D region", f"{built['graphic_type'].lower()}, {len(xyz) // 3} point(s) in mm: {points}"]]


def test_cards_name_devices_and_never_repeat_their_type(tmp_path: Path) -> None:
    """Issue 27, item 5: "Device Device" and 8-hex-digit ids. A Device card and a measurement's device
    row give its manufacturer and name (the model); no card title repeats its type."""
    d = data(page(FIXTURES / "tid1410_planar_regions.dcm", tmp_path / "p.html"))
    ds = pydicom.dcmread(FIXTURES / "tid1410_planar_regions.dcm")
    equipment = f"{ds.Manufacturer} {ds.ManufacturerModelName}"
    devices = [c for c in d["cards"] if c["type"] == "Device"]
    assert devices and all(c["title"] and not re.fullmatch(r"(device )?[0-9a-f]{8}", c["title"]) for c in devices)
    assert equipment in [c["title"] for c in devices]
    assert all(c["title"] != c["type"] for c in d["cards"])
    rows = {row[1] for c in d["cards"] for row in c["rows"] if row[0] == "device"}
    assert rows and all(not re.fullmatch(r"[0-9a-f]{8}", v) for v in rows)


def test_graph_and_validation(tmp_path: Path) -> None:
    html = page(IG_EXAMPLE, tmp_path / "p.html", "--validate")
    d = data(html)
    conv = convert_path(str(IG_EXAMPLE)).conversions[0]
    nodes = set(re.findall(r'<g class="node" data-id="([^"]+)"', html))
    assert {r["id"] for r in conv.resources.resources()} <= nodes and {"Patient", "ImagingStudy"} <= nodes
    assert "validation:" in html and all(isinstance(c["findings"], list) for c in d["cards"])


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("the explain page's browser tests need Debian's chromium (scripts/setup-services.sh installs it)")
    return exe


def dom(html_file: Path, fragment: str) -> str:
    r = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", "--virtual-time-budget=5000",
                        "--dump-dom", f"file://{html_file}#{fragment}"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and 'data-ready="1"' in r.stdout, r.stderr[-2000:]
    return r.stdout


@pytest.mark.chromium
def test_in_a_browser_selection_links_both_ways(tmp_path: Path) -> None:
    out = tmp_path / "p.html"
    d = data(page(FIXTURES / "tid1410_planar_regions.dcm", out))
    measurement = next(c for c in d["cards"] if c["type"] == "Observation" and not c["json"].get("category"))
    [src] = measurement["src"]
    shown = dom(out, f"item={src}")
    assert re.search(rf'class="item hl"[^>]*data-path="{re.escape(src)}"|data-path="{re.escape(src)}"[^>]*class="item hl"', shown) or f'class="item hl" data-path="{src}"' in shown
    for rid in d["madeFrom"][src]:
        assert re.search(rf'<div class="card hl" data-id="{rid}"', shown), rid
    back = dom(out, f"resource={measurement['id']}")
    assert f'<div class="card hl" data-id="{measurement["id"]}"' in back
    assert re.search(rf'<div class="item hl" data-path="{re.escape(src)}"', back)
    # The region shapes are real SVG in the page once it has run.
    assert "<polyline" in back and "<ellipse" in back


def test_a_bad_input_gets_a_message_and_no_page(tmp_path: Path) -> None:
    from tests.helpers import SHARED

    dose = sorted((SHARED / "data" / "non-tid1500").glob("openrem__CT*.dcm"))[0]
    result = runner.invoke(app, ["explain", str(dose), "-o", str(tmp_path / "p.html")])
    assert result.exit_code == 14 and "not a TID 1500 Measurement Report" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p.html").exists()


LAYOUT_CHECK = """<script>
(function () {
  const box = e => e.getBoundingClientRect();
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const out = {};
  const header = box(document.querySelector("header")), tree = box(document.getElementById("tree")), cards = box(document.getElementById("cards"));
  out.panesOverlap = overlap(header, tree) || overlap(header, cards) || overlap(tree, cards);
  out.panesFit = tree.bottom <= innerHeight + 1 && cards.bottom <= innerHeight + 1 && tree.height > innerHeight / 3;
  out.firstCard = document.querySelector("#cards .card h3 .k").textContent.trim();
  out.folded = [...document.querySelectorAll("#cards details.more summary")].map(s => s.textContent);
  document.getElementById("show-graph").click();
  out.graphShown = getComputedStyle(document.querySelector("main")).display === "none" && box(document.getElementById("graphbox")).height > innerHeight / 2;
  const heads = [...document.querySelectorAll(".graph > text")].map(box);
  out.headingsOverlap = heads.some((a, i) => heads.some((b, j) => i < j && overlap(a, b)));
  out.headingsFit = heads.every((h, i) => i + 1 >= heads.length || h.right <= heads[i + 1].left);
  const nodes = [...document.querySelectorAll(".graph .node")];
  out.nodes = nodes.length;
  out.labelsOutside = nodes.filter(g => { const t = box(g.querySelector("text")), r = box(g.querySelector("rect"));
    return t.left < r.left || t.right > r.right || t.top < r.top - 1.5 || t.bottom > r.bottom + 1.5; }).map(g => g.querySelector("text").textContent);
  const rects = nodes.map(g => box(g.querySelector("rect")));
  out.nodesOverlap = rects.some((a, i) => rects.some((b, j) => i < j && overlap(a, b)));
  out.graphWidth = document.querySelector(".graph").getBoundingClientRect().width;
  document.body.dataset.layout = JSON.stringify(out);
})();
</script></body>"""


@pytest.mark.chromium
@pytest.mark.parametrize("size", ["1280,800", "1920,1080"])
def test_the_layout_holds_in_a_browser(tmp_path: Path, size: str) -> None:
    """Issue 27, item 5: the graph sat below two full-height panes, its headings overlapped and its
    labels overflowed their nodes, and 190 instance UIDs came before the first measurement. Measured
    in headless Chromium at two window sizes, on the pyradiomics report (1,562 Observations) and the
    IG's example (every column of the graph)."""
    import html as html_lib

    pyradiomics = next(p for p in shared_files("tid1500") if "pyradiomics" in p.name)
    for path in (pyradiomics, IG_EXAMPLE):
        out = tmp_path / "p.html"
        page(path, out)
        checked = tmp_path / "checked.html"
        checked.write_text(out.read_text().replace("</body>", LAYOUT_CHECK))
        r = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={size}", "--virtual-time-budget=10000",
                            "--dump-dom", f"file://{checked}"], capture_output=True, text=True, timeout=300)
        m = re.search(r'data-layout="([^"]*)"', r.stdout)
        assert m, r.stderr[-2000:]
        got = json.loads(html_lib.unescape(m.group(1)))
        assert not got["panesOverlap"] and got["panesFit"] and got["graphShown"], (path.name, got)
        assert not got["headingsOverlap"] and got["headingsFit"] and not got["nodesOverlap"] and got["nodes"] >= 6, (path.name, got)
        assert got["labelsOutside"] == [], (path.name, got)
        assert got["graphWidth"] <= int(size.split(",")[0]), (path.name, got)  # six columns fit the window
        assert got["firstCard"] == "Observation", (path.name, got)  # measurements first
        if "pyradiomics" in path.name:
            assert any(re.fullmatch(r"\d{3} more instance rows", s) for s in got["folded"]), got["folded"]
