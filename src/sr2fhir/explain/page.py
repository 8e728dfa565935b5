"""`sr2fhir explain`: one self-contained HTML page with the SR and its FHIR side by side (issue 17).

Left, the SR content tree (paths as `dump` shows them). Right, the resources as cards. Selecting
an item highlights every resource made from it (Conversion.sources), and selecting a resource
highlights its items. Items the IG does not map carry their diagnostic. The page also has a
graph of the Bundle's references and the image regions drawn as their shapes (SVG). No network,
no external assets: the CSS, the script and the data are inline.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from html import escape
from typing import Any

from ..dicom.content import SRDocument
from ..dicom.dump import value_text
from ..fhir import extensions
from ..fhir.narrative import display, quantity
from ..fhir.references import dicts
from ..mapping.report import Conversion

PROFILE_BASE = "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"
GROUP_CAP = 200
"""A graph column with more resources than this is drawn as one node with their count."""


def _items(doc: SRDocument) -> list[dict[str, Any]]:
    out = []
    for item in doc.root.walk():
        out.append({
            "p": item.path, "d": item.path.count("."), "r": item.relationship or "", "t": item.value_type or "BY-REFERENCE",
            "c": str(item.concept) if item.concept else "", "v": value_text(item, show_names=False), "n": len(item.children),
        })
    return out


def _kind(r: dict[str, Any]) -> str:
    p = r.get("meta", {}).get("profile")
    return p[0].removeprefix(PROFILE_BASE) if p else ""


def _card(r: dict[str, Any], by_url: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a card shows: a readable summary of the resource."""
    rows: list[tuple[str, str]] = []
    rt = r["resourceType"]
    if rt == "Observation":
        if r.get("valueQuantity"):
            rows.append(("value", quantity(r["valueQuantity"])))
        elif r.get("valueCodeableConcept"):
            rows.append(("value", display(r["valueCodeableConcept"])))
        elif r.get("dataAbsentReason"):
            rows.append(("value absent", display(r["dataAbsentReason"])))
        for comp in r.get("component", []):
            v = quantity(comp["valueQuantity"]) if comp.get("valueQuantity") else display(comp.get("valueCodeableConcept")) or str(
                comp.get("valueString") or comp.get("valueDateTime") or comp.get("valueTime") or "")
            rows.append((display(comp.get("code")), v))
        if r.get("method"):
            rows.append(("method", display(r["method"])))
        site = by_url.get((r.get("bodyStructure") or {}).get("reference", ""))
        if site:
            for inc in site.get("includedStructure", []):  # every site: a bilateral finding has two
                rows.append(("site", " ".join(x for x in (display(inc.get("laterality")), display(inc.get("structure"))) if x)))
        elif r.get("bodySite"):
            rows.append(("site", display(r["bodySite"])))
        device = by_url.get((r.get("device") or {}).get("reference", ""))
        if device:
            rows.append(("device", device_label(device)))
        rows.append(("status", r.get("status", "")))
    elif rt == "ImagingSelection":
        for inst in r.get("instance", []):
            sub = f" {', '.join(inst['subset'])}" if inst.get("subset") else ""
            rows.append(("instance", f"{inst.get('uid', '')}{sub}"))
        if r.get("frameOfReferenceUid"):
            rows.append(("frame of reference", r["frameOfReferenceUid"]))
        rows += [("3D region", _region_3d(kind or "", xyz)) for kind, xyz in extensions.regions_3d(r)]
    elif rt == "Device":
        rows += [(k, str(r[k])) for k in ("displayName", "manufacturer", "serialNumber") if r.get(k)]
        rows += [("version", v.get("value", "")) for v in r.get("version", [])]
    elif rt == "BodyStructure":
        for inc in r.get("includedStructure", []):
            rows.append(("structure", " ".join(x for x in (display(inc.get("laterality")), display(inc.get("structure"))) if x)))
    elif rt == "Practitioner":
        rows.append(("name", "(a person; see the JSON)"))
    title = device_label(r) if rt == "Device" else display(r.get("code")) if r.get("code") else ""
    return {"title": title, "rows": rows}  # the page shows the type before it: never "Device Device"


def device_label(d: dict[str, Any]) -> str:
    """A Device as a reader knows it: its manufacturer, its user-friendly name (Device Observer
    Name, pyradiomics) and its model (displayName, D-28), and only without any of them its id."""
    model = d.get("displayName") or ""
    friendly = next((n.get("value", "") for n in d.get("name", []) if n.get("value") and n.get("value") != model), "")
    label = " ".join(x for x in (d.get("manufacturer"), friendly, model) if x)
    return label or f"device {d['id'][:8]}"


def _region_3d(kind: str, xyz: list[Any]) -> str:
    """sr2fhir's image-region-3d extension (D-51) as text: its type and first points, in mm."""
    points = [f"({xyz[i]}, {xyz[i + 1]}, {xyz[i + 2]})" for i in range(0, len(xyz) - 2, 3)]
    more = f" and {len(points) - 4} more" if len(points) > 4 else ""
    return f"{kind}, {len(points)} point(s) in mm: {', '.join(points[:4])}{more}"


def _regions(r: dict[str, Any]) -> str:
    """The ImagingSelection's image regions as SVG shapes in image (pixel) coordinates."""
    out = []
    for inst in r.get("instance", []):
        for reg in inst.get("imageRegion2D", []):
            xy = [float(c) for c in reg.get("coordinate", [])]
            pts = list(zip(xy[0::2], xy[1::2]))
            if not pts:
                continue
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            kind = reg.get("regionType", "")
            if kind == "circle" and len(pts) >= 2:
                rad = math.dist(pts[0], pts[1])
                xs += [pts[0][0] - rad, pts[0][0] + rad]
                ys += [pts[0][1] - rad, pts[0][1] + rad]
            span = max(max(xs) - min(xs), max(ys) - min(ys), 1.0)
            pad = span * 0.15 + 2
            box = (min(xs) - pad, min(ys) - pad, max(xs) - min(xs) + 2 * pad, max(ys) - min(ys) + 2 * pad)
            stroke = box[2] / 150
            out.append(f'<figure class="region"><svg viewBox="{box[0]:.3f} {box[1]:.3f} {box[2]:.3f} {box[3]:.3f}" '
                       f'width="160" height="{160 * box[3] / box[2]:.0f}" data-shape="{escape(kind)}">{_shape(kind, pts, stroke)}</svg>'
                       f'<figcaption>{escape(kind)} on {escape(inst.get("uid", ""))}'
                       f'{" frame " + escape(", ".join(inst["subset"])) if inst.get("subset") else ""} (image pixels)</figcaption></figure>')
    return "".join(out)


def _shape(kind: str, pts: list[tuple[float, float]], w: float) -> str:
    style = f'fill="none" stroke="#d33" stroke-width="{w:.3f}"'
    if kind == "point":
        return f'<circle class="shape" cx="{pts[0][0]}" cy="{pts[0][1]}" r="{w * 3:.3f}" fill="#d33"/>'
    if kind == "circle" and len(pts) >= 2:
        return f'<circle class="shape" cx="{pts[0][0]}" cy="{pts[0][1]}" r="{math.dist(pts[0], pts[1]):.3f}" {style}/>'
    if kind == "ellipse" and len(pts) >= 4:
        (a1, a2, b1, b2) = pts[:4]
        cx, cy = (a1[0] + a2[0]) / 2, (a1[1] + a2[1]) / 2
        angle = math.degrees(math.atan2(a2[1] - a1[1], a2[0] - a1[0]))
        return (f'<ellipse class="shape" cx="{cx:.3f}" cy="{cy:.3f}" rx="{math.dist(a1, a2) / 2:.3f}" ry="{math.dist(b1, b2) / 2:.3f}" '
                f'transform="rotate({angle:.3f} {cx:.3f} {cy:.3f})" {style}/>')
    if kind == "multipoint":
        return "".join(f'<circle class="shape" cx="{x}" cy="{y}" r="{w * 3:.3f}" fill="#d33"/>' for x, y in pts)
    return f'<polyline class="shape" points="{" ".join(f"{x},{y}" for x, y in pts)}" {style}/>'


COLUMNS = (
    ("existing", "Patient, study, order"), ("group", "measurement groups"), ("observation", "measurements, evaluations"),
    ("ImagingSelection", "ImagingSelections"), ("BodyStructure", "BodyStructures"), ("Device", "Devices, readers"),
)
"""The graph's columns, left to right, and their headings (each fits its column)."""
CARD_ORDER = ("group", "observation", "ImagingSelection", "BodyStructure", "Device", "existing")
"""Cards in this order: what the report measured first, then where and with what (issue 27.5)."""


def _column(r: dict[str, Any]) -> str:
    if r["resourceType"] == "Observation":
        return "group" if _kind(r) == "imaging-measurement-group" else "observation"
    if r["resourceType"] in ("Device", "Practitioner"):
        return "Device"
    return r["resourceType"] if r["resourceType"] in ("ImagingSelection", "BodyStructure") else "observation"


def _graph(resources: list[dict[str, Any]]) -> str:
    """The Bundle's references as a layered SVG graph; a crowded column is one counted node."""
    nodes: dict[str, tuple[int, int, str]] = {}
    cols: dict[str, list[str]] = {c: [] for c, _ in COLUMNS}
    external: dict[str, str] = {}
    labels: dict[str, str] = {}
    for r in resources:
        key = f"urn:uuid:{r['id']}"
        cols[_column(r)].append(key)
        labels[key] = device_label(r) if r["resourceType"] == "Device" else (display(r.get("code")) if r.get("code") else "") or r["resourceType"]
    edges: set[tuple[str, str]] = set()
    for r in resources:
        src = f"urn:uuid:{r['id']}"
        for ref in dicts({k: v for k, v in r.items() if k != "text"}):
            target = ref.get("reference")
            if target is None and isinstance(ref.get("type"), str) and "identifier" in ref:
                target = ref["type"]  # a logical reference to a resource the IG assumes exists (D-1)
            if not isinstance(target, str):
                continue
            if not target.startswith("urn:uuid:"):
                t = ref.get("type") or target.split("?")[0].split("/")[0]
                external.setdefault(t, t)
                target = t
            edges.add((src, target))
    cols["existing"] = sorted(external)
    labels.update(external)
    width, step, box = 205, 16, 185  # six columns fit a 1280-pixel window
    height = 40
    for i, (c, title) in enumerate(COLUMNS):
        keys = cols[c]
        if len(keys) > GROUP_CAP:
            many = f"{c}:many"
            for k in keys:
                nodes[k] = (i, 0, many)
            nodes[many] = (i, 0, many)
            labels[many] = f"{len(keys)} {title}"
            keys = [many]
        for j, k in enumerate(keys):
            nodes[k] = (i, j, k)
        height = max(height, 40 + step * len(keys))
    drawn: set[tuple[str, str]] = set()
    parts = [f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width * len(COLUMNS)}" height="{height}" font-size="10">']
    for i, (_, title) in enumerate(COLUMNS):
        parts.append(f'<text x="{i * width + 4}" y="12" font-weight="bold">{escape(title)}</text>')
    for a, b in sorted(edges):
        if a not in nodes or b not in nodes:
            continue
        (ia, ja, na), (ib, jb, nb) = nodes[a], nodes[b]
        if (na, nb) in drawn or na == nb:
            continue
        drawn.add((na, nb))
        parts.append(f'<line x1="{ia * width + box + 2}" y1="{30 + ja * step}" x2="{ib * width + 2}" y2="{30 + jb * step}" stroke="#999" stroke-width="0.6"/>')
    for key, (i, j, name) in nodes.items():
        if name != key:
            continue
        rid = key.removeprefix("urn:uuid:")
        label = labels.get(key, rid)
        # The page's script shortens a label that is still wider than its box (fitLabels).
        parts.append(f'<g class="node" data-id="{escape(rid)}"><title>{escape(label)}</title><rect x="{i * width + 2}" y="{22 + j * step}" width="{box}" height="13" rx="3" fill="#eef" stroke="#88a"/>'
                     f'<text x="{i * width + 5}" y="{32 + j * step}">{escape(label[:40])}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def render(conversion: Conversion, source: str, validation: dict[str, list[str]] | None = None) -> str:
    """The page for one converted report. `validation`: resource id -> findings (--validate)."""
    from ..fhir.ids import full_url

    doc = conversion.document
    resources = conversion.resources.resources()
    by_url = {full_url(r["id"]): r for r in resources}
    items = _items(doc)
    made_from: dict[str, list[str]] = {}
    for rid, paths in conversion.sources.items():
        for p in paths:
            made_from.setdefault(p, []).append(rid)
    notes: dict[str, list[dict[str, str]]] = {}
    for d in conversion.diagnostics.items:
        if d.path:
            notes.setdefault(d.path, []).append({"s": d.severity.fhir, "rule": d.rule, "text": d.message, "action": d.action or ""})
    cards = []
    for r in sorted(resources, key=lambda r: CARD_ORDER.index(_column(r))):
        card = _card(r, by_url)
        light = {k: v for k, v in r.items() if k != "text"}
        cards.append({"id": r["id"], "type": r["resourceType"], "profile": _kind(r), "src": conversion.sources.get(r["id"], []),
                      "title": card["title"], "rows": card["rows"], "regions": _regions(r) if r["resourceType"] == "ImagingSelection" else "",
                      "json": light, "findings": (validation or {}).get(r["id"], [])})
    by_type = Counter(r["resourceType"] for r in resources)
    by_severity = Counter(d.severity.fhir for d in conversion.diagnostics.items)
    data = {"items": items, "cards": cards, "madeFrom": made_from, "notes": notes}
    counts = (f"{len(items)} content items; " + ", ".join(f"{n} {t}" for t, n in sorted(by_type.items())) + "; diagnostics: "
              + (", ".join(f"{n} {s}" for s, n in sorted(by_severity.items())) or "none"))
    if validation is not None:
        bad = sum(1 for f in validation.values() if f)
        counts += f"; validation: {len(resources) - bad} of {len(resources)} resources without errors"
    payload = json.dumps(data, separators=(",", ":"), default=str).replace("</", "<\\/")
    title = f"sr2fhir explain: {source}"
    return (_TEMPLATE.replace("%TITLE%", escape(title)).replace("%COUNTS%", escape(counts))
            .replace("%GRAPH%", _graph(resources)).replace("%DATA%", payload))


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%TITLE%</title>
<style>
body{font:13px system-ui,sans-serif;margin:0;color:#222}
header{padding:8px 12px;background:#f4f4f8;border-bottom:1px solid #ccd}
header h1{font-size:15px;margin:0 0 4px}
#views{display:flex;flex-direction:column;height:100vh}
header{flex:none}
main,#graphbox{flex:1;min-height:0}
main{display:flex}
body.graph-view main,body:not(.graph-view) #graphbox{display:none}
nav button{font:inherit;margin:4px 4px 0 0;padding:2px 8px;border:1px solid #aab;border-radius:4px;background:#fff;cursor:pointer}
nav button[aria-pressed="true"]{background:#dde6ff;border-color:#67c}
#tree,#cards{overflow:auto;padding:6px 10px;flex:1}
#tree{border-right:1px solid #ccd;font-family:ui-monospace,monospace;font-size:12px}
.item{white-space:nowrap;cursor:pointer;padding:1px 2px;border-radius:3px}
.item .p{color:#777}.item .r{color:#a50}.item .t{color:#06a;font-weight:bold}
.item.unmapped{background:#fff3cd}.item.hl{background:#c6e5ff}.item.via{background:#e6f3ff}
.note{color:#850;margin-left:2em;white-space:normal;font-family:system-ui,sans-serif}
.fold{display:inline-block;width:1em;color:#888}
.hidden{display:none}
.card{border:1px solid #ccd;border-radius:6px;margin:6px 0;padding:6px 8px;cursor:pointer}
.card.hl{border-color:#2277dd;box-shadow:0 0 0 2px #c6e5ff}
.card h3{margin:0;font-size:13px}.card .k{color:#666}.card .prof{color:#070;font-size:11px}
.card table{border-collapse:collapse;margin-top:3px}.card td{padding:0 8px 0 0;vertical-align:top}
.card .bad{color:#b00}
pre{font-size:11px;background:#f7f7f7;overflow:auto;max-height:300px}
.region{display:inline-block;margin:4px}.region figcaption{font-size:10px;color:#555;max-width:200px}
.region svg{background:#111}
#graphbox{padding:6px 10px;overflow:auto}
#graphbox h2{font-size:13px;margin:0 0 4px}
.card details.more summary{color:#06a}
</style></head><body>
<div id="views"><header><h1>%TITLE%</h1><div id="counts">%COUNTS%</div>
<div>Click an item to see what it became; click a card to see where it came from. Items marked yellow were not mapped:
each carries its diagnostic and rule (explained in docs/diagnostics.md; D-n rules in docs/decisions.md).</div>
<nav><button id="show-side" aria-pressed="true">SR and FHIR side by side</button><button id="show-graph" aria-pressed="false">References graph</button></nav></header>
<main><section id="tree"></section><section id="cards"></section></main>
<section id="graphbox"><h2>References between the resources (click a node for its card)</h2>%GRAPH%</section></div>
<script type="application/json" id="data">%DATA%</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const tree = document.getElementById("tree"), cardsBox = document.getElementById("cards");
const itemEl = {}, cardEl = {};
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
const frag = document.createDocumentFragment();
for (const it of D.items) {
  const row = el("div", "item"); row.dataset.path = it.p; row.style.paddingLeft = (it.d * 14) + "px";
  row.append(el("span", "fold", it.n ? "\\u25be" : ""), el("span", "p", it.p + " "), el("span", "r", it.r + " "), el("span", "t", it.t + " "),
             document.createTextNode(it.c + (it.v ? " = " + it.v : "")));
  const notes = D.notes[it.p];
  if (notes && !(D.madeFrom[it.p] || []).length) row.classList.add("unmapped");
  if (notes) for (const n of notes) row.append(el("div", "note", n.s + ": " + n.text + " [" + n.rule + "] \\u2192 " + n.action));
  itemEl[it.p] = row; frag.append(row);
}
tree.append(frag);
const cfrag = document.createDocumentFragment();
for (const c of D.cards) {
  const card = el("div", "card"); card.dataset.id = c.id; card.id = "r-" + c.id;
  const h = el("h3"); h.append(el("span", "k", c.type + " "), document.createTextNode(c.title)); card.append(h);
  if (c.profile) card.append(el("div", "prof", "profile " + c.profile));
  const t = el("table");
  // A long run of rows of one kind (190 instances of a pyradiomics selection) shows 3, the rest folded.
  let run = [];
  const flush = () => {
    const shown = run.length > 5 ? run.slice(0, 3) : run;
    for (const [k, v] of shown) { const tr = el("tr"); tr.append(el("td", "k", k), el("td", "", v)); t.append(tr); }
    if (run.length > 5) {
      const tr = el("tr"), td = el("td"), more = el("details", "more"); td.colSpan = 2;
      more.append(el("summary", "", (run.length - 3) + " more " + run[0][0] + " rows"));
      for (const [, v] of run.slice(3)) more.append(el("div", "", v));
      td.append(more); tr.append(el("td", "k", ""), td); t.append(tr);
    }
    run = [];
  };
  for (const row of c.rows) { if (run.length && run[0][0] !== row[0]) flush(); run.push(row); }
  flush();
  card.append(t);
  if (c.regions) { const r = el("div"); r.innerHTML = c.regions; card.append(r); }
  for (const f of c.findings) card.append(el("div", "bad", f));
  const det = el("details"), sum = el("summary", "", "JSON"); det.append(sum);
  det.addEventListener("toggle", () => { if (det.open && det.children.length < 2) det.append(el("pre", "", JSON.stringify(c.json, null, 1))); });
  card.append(det); cardEl[c.id] = card; cfrag.append(card);
}
cardsBox.append(cfrag);
function clear() { for (const e of document.querySelectorAll(".hl,.via")) e.classList.remove("hl", "via"); }
function selectItem(path) {
  clear(); const row = itemEl[path]; if (!row) return; row.classList.add("hl");
  let ids = D.madeFrom[path] || [], p = path, via = false;
  while (!ids.length && p.includes(".")) { p = p.slice(0, p.lastIndexOf(".")); ids = D.madeFrom[p] || []; via = true; }
  if (via && itemEl[p]) itemEl[p].classList.add("via");
  for (const id of ids) if (cardEl[id]) cardEl[id].classList.add("hl");
  if (ids.length && cardEl[ids[0]]) cardEl[ids[0]].scrollIntoView({block: "nearest"});
}
function selectCard(id) {
  clear(); const card = cardEl[id]; if (!card) return; card.classList.add("hl");
  const c = D.cards.find(x => x.id === id);
  for (const p of c.src) if (itemEl[p]) itemEl[p].classList.add("hl");
  if (c.src.length && itemEl[c.src[0]]) itemEl[c.src[0]].scrollIntoView({block: "nearest"});
}
tree.addEventListener("click", e => {
  const row = e.target.closest(".item"); if (!row) return;
  if (e.target.classList.contains("fold") && e.target.textContent) {
    const d = row.dataset.path + "."; const hide = e.target.textContent === "\\u25be";
    e.target.textContent = hide ? "\\u25b8" : "\\u25be";
    for (const [p, r] of Object.entries(itemEl)) if (p.startsWith(d)) r.classList.toggle("hidden", hide);
    return;
  }
  location.hash = "item=" + row.dataset.path; });
cardsBox.addEventListener("click", e => { if (e.target.closest("details")) return; const card = e.target.closest(".card"); if (card) location.hash = "resource=" + card.dataset.id; });
function view(graph) {
  document.body.classList.toggle("graph-view", graph);
  document.getElementById("show-graph").setAttribute("aria-pressed", String(graph));
  document.getElementById("show-side").setAttribute("aria-pressed", String(!graph));
  if (graph) fitLabels();
}
document.getElementById("show-graph").addEventListener("click", () => view(true));
document.getElementById("show-side").addEventListener("click", () => view(false));
document.querySelector(".graph")?.addEventListener("click", e => {
  const n = e.target.closest(".node"); if (n && cardEl[n.dataset.id]) { view(false); location.hash = "resource=" + n.dataset.id; } });
let fitted = false;
function fitLabels() {
  // Shorten every node label that is wider than its box (measured: fonts differ between machines).
  if (fitted) return; fitted = true;
  for (const g of document.querySelectorAll(".graph .node")) {
    const box = g.querySelector("rect"), text = g.querySelector("text"), room = box.width.baseVal.value - 6;
    let s = text.textContent;
    while (s.length > 1 && text.getComputedTextLength() > room) { s = s.slice(0, -2); text.textContent = s + "\u2026"; }
  }
}
function route() {
  const h = decodeURIComponent(location.hash.slice(1));
  if (h === "graph") view(true);
  else if (h.startsWith("item=")) selectItem(h.slice(5)); else if (h.startsWith("resource=")) selectCard(h.slice(9));
}
window.addEventListener("hashchange", route); route();
document.body.dataset.ready = "1";
</script></body></html>
"""
