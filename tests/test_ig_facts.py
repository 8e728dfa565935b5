"""ig_facts.py is generated from the IG (scripts/make_ig_facts.py), and sr2fhir's tables come from it."""

from __future__ import annotations

import importlib.util

from sr2fhir import codes, ig_facts
from sr2fhir.mapping.context import profile_label, profile_url
from sr2fhir.mapping.imaging_selections import SELECTION_KINDS, SOURCE_IMAGE
from tests.helpers import ROOT, SHARED


def test_the_module_is_the_generator_output() -> None:
    spec = importlib.util.spec_from_file_location("make_ig_facts", ROOT / "scripts" / "make_ig_facts.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "src" / "sr2fhir" / "ig_facts.py").read_text() == mod.render(SHARED / "ig-package")


def test_tables_read_the_ig() -> None:
    assert len(ig_facts.PROFILES) == 22
    assert profile_url("imaging-measurement") == "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/imaging-measurement"
    assert profile_label("imaging-measurement") == "Imaging Measurement" and profile_label("image-region-2d") == "2D Image Region"
    # Every ImagingSelection profile (but the abstract base) has one row, and its code is the IG's pattern.
    kinds = {k.profile for k in SELECTION_KINDS.values()} | {SOURCE_IMAGE.profile, "source-sr-content-item"}
    selections = {p for p, (_, title) in ig_facts.PROFILES.items() if title.startswith("Imaging Selection") and p != "observation-imaging-selection"}
    assert kinds == selections
    assert SELECTION_KINDS[(("DCM", "121200"), "IMAGE")].code == {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "121200", "display": "Illustration of ROI"}
    assert codes.FIXED["measurement-group"] == {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "125007", "display": "Measurement Group"}
