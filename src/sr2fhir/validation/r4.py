"""`sr2fhir validate --fhir-version R4`: what can be checked of R4 output without an R4 validator.

Three checks beside the Bundle integrity that R5 output gets too (docs/r4.md, "What validate
checks"): the structure against fhir.resources' R4B models (R4B and R4 are the same for every
resource and element sr2fhir emits); each cross-version extension against the down-conversion's
table (`fhir/r4.py` ROWS: known URL, extension or modifierExtension, the value type); and each
reference's target type against R4's element definitions.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..fhir import extensions, r4

_PARTICIPANTS = frozenset({"Practitioner", "PractitionerRole", "Organization", "CareTeam", "Patient", "RelatedPerson"})
_SUBJECTS = frozenset({"Patient", "Group", "Device", "Location"})
_ORDERS = frozenset({"CarePlan", "DeviceRequest", "ImmunizationRecommendation", "MedicationRequest", "NutritionOrder", "ServiceRequest"})

TARGETS: dict[str, frozenset[str]] = {
    "Observation.basedOn": _ORDERS,
    "Observation.partOf": frozenset({"MedicationAdministration", "MedicationDispense", "MedicationStatement", "Procedure", "Immunization", "ImagingStudy"}),
    "Observation.subject": _SUBJECTS,
    "Observation.performer": _PARTICIPANTS,
    "Observation.hasMember": frozenset({"Observation", "QuestionnaireResponse", "MolecularSequence"}),
    "Observation.derivedFrom": frozenset({"DocumentReference", "ImagingStudy", "Media", "QuestionnaireResponse", "Observation", "MolecularSequence"}),
    "Observation.device": frozenset({"Device", "DeviceMetric"}),
    "DiagnosticReport.basedOn": _ORDERS - {"DeviceRequest"},
    "DiagnosticReport.subject": _SUBJECTS,
    "DiagnosticReport.performer": _PARTICIPANTS - {"Patient", "RelatedPerson"},
    "DiagnosticReport.result": frozenset({"Observation"}),
    "DiagnosticReport.imagingStudy": frozenset({"ImagingStudy"}),
    "BodyStructure.patient": frozenset({"Patient"}),
    "Device.parent": frozenset({"Device"}),
}
"""R4 (4.0.1) reference targets of the elements sr2fhir's R4 output fills."""

EXTENSION_TARGETS: dict[str, frozenset[str]] = {
    r4.XVER + "extension-Observation.bodyStructure": frozenset({"BodyStructure"}),
    r4.XVER + "extension-Observation.derivedFrom": frozenset({"Basic"}),
    r4.XVER + "extension-ImagingSelection.basedOn": _ORDERS | {"Appointment", "AppointmentResponse", "Task"},
    r4.XVER + "extension-ImagingSelection.derivedFrom": frozenset({"ImagingStudy", "DocumentReference"}),
    r4.XVER + "extension-ImagingSelection.focus": frozenset({"Basic"}),
    r4.XVER + "extension-ImagingSelection.bodySite": frozenset({"BodyStructure"}),
}
"""Targets of the cross-version extensions' references: R5's, with ImagingSelection now Basic."""


def _extension_table() -> dict[str, tuple[bool, str]]:
    """URL -> (is a modifier extension, the value's JSON name or 'extension' for a complex one)."""
    out: dict[str, tuple[bool, str]] = {
        r4.XVER + "extension-Observation.bodyStructure": (False, "valueReference"),
        r4.XVER + "extension-Observation.derivedFrom": (False, "valueReference"),
        r4.XVER + "extension-BodyStructure.includedStructure": (False, "extension"),
    }
    for row in r4.ROWS:
        if row.how in ("extension", "modifierExtension") and row.r4.startswith("http"):
            kind = row.value or row.r5.rsplit(".", 1)[-1].removeprefix("value")
            out[row.r4] = (row.how == "modifierExtension", "value*" if kind == "CodeableReference" else "value" + kind)
        elif row.how == "complex" and row.r4.startswith("http"):
            out[row.r4] = (False, "extension")
    out.update({e.url: (False, "extension") for e in extensions.EXTENSIONS})  # checked by validation/extensions.py
    return out


EXTENSIONS = _extension_table()


def _extensions(node: Any, path: str) -> Iterator[tuple[str, bool, dict[str, Any]]]:
    """(location, in modifierExtension, extension) for every top-level extension in the resource."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("extension", "modifierExtension") and isinstance(value, list):
                for i, ext in enumerate(value):
                    if isinstance(ext, dict):
                        yield f"{path}.{key}[{i}]", key == "modifierExtension", ext
            else:
                yield from _extensions(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, x in enumerate(node):
            yield from _extensions(x, f"{path}[{i}]")


def check(resource: dict[str, Any], resolve: Any) -> list[tuple[str, str, str]]:
    """(rule, location, message) for each R4-specific error in one resource."""
    found: list[tuple[str, str, str]] = []
    rtype = resource.get("resourceType", "")
    for where, modifier, ext in _extensions(resource, rtype):
        url = str(ext.get("url", ""))
        if not url.startswith(r4.XVER):
            continue
        known = EXTENSIONS.get(url)
        if known is None:
            found.append(("r4-extension", where, f"{url} is not a cross-version extension sr2fhir writes (docs/r4.md)"))
            continue
        if known[0] != modifier:
            found.append(("r4-extension", where, f"{url} belongs in {'modifierExtension' if known[0] else 'extension'}"))
        value_keys = [k for k in ext if k.startswith("value")]
        if known[1] == "extension" and (value_keys or not ext.get("extension")):
            found.append(("r4-extension", where, f"{url} is a complex extension: sub-extensions, no value"))
        elif known[1] != "extension" and (len(value_keys) != 1 or (known[1] != "value*" and value_keys[0] != known[1])):
            found.append(("r4-extension", where, f"{url} needs one {known[1]}, has {value_keys or 'none'}"))
        targets = EXTENSION_TARGETS.get(url)
        ref = ext.get("valueReference")
        if targets and isinstance(ref, dict):
            found += _target(ref, targets, where, resolve)
    if rtype == "Basic":
        if r4.SELECTION_PROFILE in resource.get("meta", {}).get("profile", []) and r4.status_of(resource) is None:
            found.append(("r4-basic", rtype, "a Basic standing for an ImagingSelection needs its status modifier extension"))
    for element, targets in TARGETS.items():
        head, name = element.split(".")
        if head != rtype:
            continue
        value = resource.get(name)
        for i, ref in enumerate(value if isinstance(value, list) else [value] if value else []):
            if isinstance(ref, dict):
                found += _target(ref, targets, f"{element}[{i}]", resolve)
    return found


def _target(ref: dict[str, Any], allowed: frozenset[str], where: str, resolve: Any) -> list[tuple[str, str, str]]:
    target = resolve(ref)
    kinds = {k for k in (ref.get("type"), target.get("resourceType") if target else None) if k}
    bad = sorted(kinds - allowed)
    return [("r4-reference-target", where, f"reference to {', '.join(bad)}: R4 allows {', '.join(sorted(allowed))}")] if bad else []
