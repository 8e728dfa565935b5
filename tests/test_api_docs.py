"""The public API is documented (issue 26, item 9): numpydoc docstrings on every public name of
`sr2fhir` and on the gateway's and export's entry points, rendered to HTML by pdoc as
`scripts/api_docs.sh` does."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import sr2fhir

ENTRY_POINTS = [
    ("sr2fhir.gateway.service", "serve"), ("sr2fhir.gateway.service", "Settings"), ("sr2fhir.gateway.service", "Gateway"),
    ("sr2fhir.export.local", "run"), ("sr2fhir.export.spark", "run"),
]


def public() -> list[tuple[str, object]]:
    names = [(f"sr2fhir.{n}", getattr(sr2fhir, n)) for n in sr2fhir.__all__ if n != "__version__"]
    return names + [(f"{m}.{a}", getattr(importlib.import_module(m), a)) for m, a in ENTRY_POINTS]


def test_every_public_name_has_a_numpydoc_docstring() -> None:
    for name, obj in public():
        doc = inspect.getdoc(obj) or ""
        assert len(doc.split()) >= 8, f"{name}: no docstring worth the name"
        if inspect.isfunction(obj):
            params = [p for p in inspect.signature(obj).parameters if p not in ("self",)]
            assert "Parameters\n----------" in doc or not params, f"{name}: no Parameters section"
            for p in params:
                assert p in doc.split("Returns")[0], f"{name}: parameter {p} undocumented"
            if inspect.signature(obj).return_annotation not in (None, "None"):
                assert "Returns\n-------" in doc, f"{name}: no Returns section"


def test_pdoc_renders_the_api(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run(["bash", str(Path(__file__).parents[1] / "scripts" / "api_docs.sh"), str(tmp_path)], capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "PYTHON": sys.executable})
    assert r.returncode == 0 and "does not resolve" not in r.stderr, r.stderr[-2000:]
    page = (tmp_path / "sr2fhir.html").read_text()
    for n in sr2fhir.__all__:
        if n != "__version__":
            assert f'id="{n}"' in page, n
    for phrase in ("Convert one SR document", "Read SR documents", "The Bundle of one conversion"):
        assert phrase in page, phrase
    assert "Parameters" in page and (tmp_path / "sr2fhir" / "gateway" / "service.html").exists()
