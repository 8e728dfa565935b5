"""Devices: General Equipment, Participant device, Algorithm Identification (TID 4019).

Profiles dicom-general-equipment, dicom-participant-device, algorithm-identification.
Observation.device precedence (IG device_inheritance diagram, D-7): the item's own TID 4019 >
the enclosing group's > the enclosing container's > participant device > general equipment.
"""

from __future__ import annotations

import re
from typing import Any

from ..dicom import concepts
from ..codes import FIXED
from ..dicom.content import Code, ContentItem
from ..dicom.header import Equipment
from ..fhir.bundle import dumps
from ..fhir.ids import NAMESPACE, resource_id
from . import identity
from .context import ReportContext, profile_url

GS1 = "http://hl7.org/fhir/NamingSystem/gs1"
_GS1_DI = re.compile(r"^[({]01[)}](\d{14})")


STATE_TAG_SYSTEM = f"urn:uuid:{NAMESPACE}"
"""meta.tag system of a Device's state fingerprint (D-35): sr2fhir's UUIDv5 namespace as a URI."""


def _device(rid: str, profile: str, attrs: dict[str, Any]) -> dict[str, Any]:
    dev: dict[str, Any] = {"resourceType": "Device", "id": rid, "meta": {"profile": [profile_url(profile)]}}
    dev.update(attrs)
    return dev


def _state_id(kind: str, dev: dict[str, Any]) -> str:
    """A UUIDv5 over everything a Device states (identifier, names, versions, UDI, parent ...)."""
    return resource_id(kind, dumps({k: v for k, v in dev.items() if k not in ("resourceType", "id", "meta", "text")}))


def _add(ctx: ReportContext, kind: str, profile: str, uid: str | None, attrs: dict[str, Any], type_code: str | None = None) -> dict[str, Any]:
    """Add a Device whose identity covers everything it states (D-35); return its reference.

    The id is a UUIDv5 over all stated attributes, so two reports whose equipment differs in
    anything (Software Versions, serial number ...) get two Devices. With a Device UID (0018,1002)
    the one identifier the profiles allow (0..1) is the UID (D-11); the conditional create then
    matches on the UID *and* a meta.tag holding the state id, so a server never hands one report
    a Device that states what another report said. Without a UID the identifier is the id's urn:uuid.
    """
    if uid:
        ident, cond = identity.by_uid(uid, type_code)
        rid = _state_id(kind, {"identifier": [ident], **attrs})
        dev = _device(rid, profile, {"identifier": [ident], **attrs})
        dev["meta"]["tag"] = [{"system": STATE_TAG_SYSTEM, "code": rid, "display": "sr2fhir device state"}]
        return ctx.resources.add(dev, f"{cond}&_tag={STATE_TAG_SYSTEM}|{rid}")
    rid = _state_id(kind, attrs)
    ident, cond = identity.by_id(rid)
    return ctx.resources.add(_device(rid, profile, {"identifier": [ident], **attrs}), cond)



def _equipment_attrs(src: Equipment) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if src.manufacturer:
        out["manufacturer"] = src.manufacturer
    if src.serial_number:
        out["serialNumber"] = src.serial_number
    if src.model:
        out["displayName"] = src.model
    return out


def general_equipment(ctx: ReportContext) -> dict[str, Any]:
    """The GeneralEquipmentDevice of the SR's General Equipment Module (PS3.3 C.7.5.1); one per SR."""
    eq = ctx.doc.header.equipment
    uid = eq.device_uid
    attrs: dict[str, Any] = {}
    udi = _udi_carriers(ctx, eq.udis)
    if udi:
        attrs["udiCarrier"] = udi
    attrs.update(_equipment_attrs(eq))
    if eq.software_versions:
        attrs["version"] = [{"value": v} for v in eq.software_versions]
    if not uid and not attrs:
        # Nothing identifies the equipment: a Device of this report alone, never shared.
        return _add(ctx, ctx.id("equipment"), "dicom-general-equipment", None, attrs)
    return _add(ctx, "equipment", "dicom-general-equipment", uid, attrs)


def _udi_carriers(ctx: ReportContext, udis: tuple[str, ...]) -> list[dict[str, Any]]:
    """udiCarrier <- UDI Sequence (0018,100A) > Unique Device Identifier (0018,1009), GS1 only."""
    out = []
    for hrf in udis:
        m = _GS1_DI.match(hrf)
        if not m:
            ctx.diags.warn("udi-not-gs1", "UDI (0018,1009) is not in GS1 human-readable form", action="udiCarrier not emitted")
            continue
        out.append({"deviceIdentifier": m.group(1), "issuer": GS1, "carrierHRF": hrf})
    return out


# TID 1004 Device Observer Identifying Attributes -> the Participant Sequence keywords (D-28).
DEVICE_OBSERVER_ROWS: dict[tuple[str, str], str] = {
    concepts.DEVICE_OBSERVER_UID: "DeviceUID",
    concepts.DEVICE_OBSERVER_NAME: "DeviceObserverName",
    concepts.DEVICE_OBSERVER_MANUFACTURER: "Manufacturer",
    concepts.DEVICE_OBSERVER_MODEL_NAME: "ManufacturerModelName",
    concepts.DEVICE_OBSERVER_SERIAL_NUMBER: "DeviceSerialNumber",
}


def _observer_device(root: ContentItem) -> Equipment | None:
    """The root's TID 1004 device observer (HAS OBS CONTEXT items), as the equipment it describes."""
    found: dict[str, Any] = {}
    for ch in root.children:
        kw = DEVICE_OBSERVER_ROWS.get(concepts.key(ch.concept))  # type: ignore[arg-type]
        if kw and ch.relationship == "HAS OBS CONTEXT" and isinstance(ch.value, str) and kw not in found:
            found[kw] = ch.value
    return Equipment.of(found) if found else None


def participant_device(ctx: ReportContext, equipment: dict[str, Any]) -> dict[str, Any] | None:
    """ParticipantDevice (profile dicom-participant-device).

    From a Participant Sequence (0040,A07A) item with Observer Type DEV (ConceptMap 02), else
    from the root's TID 1004 device observer context (D-28). None when there is none, or when it
    is the equipment itself (same Device UID, or same manufacturer and model without UIDs: D-23).
    """
    h = ctx.doc.header
    source = next((p.device for p in h.participants if p.observer_type == "DEV"), None) or _observer_device(ctx.doc.root)
    if source is None:
        return None
    uid, euid = source.device_uid, h.equipment.device_uid
    same = (uid and uid == euid) or (
        not uid and not euid and source.manufacturer == h.equipment.manufacturer and source.model == h.equipment.model
    )
    if same:
        return None
    attrs = _equipment_attrs(source)
    name = source.observer_name
    if name:
        attrs["name"] = [{"value": name, "type": "user-friendly-name"}]
    kind = "participant-device" if uid or attrs else ctx.id("participant-device")
    return _add(ctx, kind, "dicom-participant-device", uid, attrs, "udi" if uid else None)


def algorithm(ctx: ReportContext, item: ContentItem, equipment: dict[str, Any]) -> dict[str, Any] | None:
    """An AlgorithmIdentification Device from the TID 4019 children of `item`, or None.

    TID 4019 rows: Algorithm Name (111001) -> displayName, Version (111003) -> version,
    Parameters (111002, 0..n) -> property (type DCM 111002, D-15), Family (111000) -> type,
    Manufacturer (122405) -> manufacturer; parent = the general equipment (architecture.md).
    One Device per distinct algorithm (D-7).
    """
    name = version = family = manufacturer = None
    params: list[str] = []
    for ch in item.children:
        k = concepts.key(ch.concept)
        if k not in concepts.ALGORITHM_CODES:
            continue
        if k == concepts.ALGORITHM_NAME and isinstance(ch.value, str):
            name = ch.value
        elif k == concepts.ALGORITHM_VERSION and isinstance(ch.value, str):
            version = ch.value
        elif k == concepts.ALGORITHM_PARAMETERS and isinstance(ch.value, str):
            params.append(ch.value)
        elif k == concepts.ALGORITHM_FAMILY and isinstance(ch.value, Code):
            family = ch.value
        elif k == concepts.ALGORITHM_MANUFACTURER and isinstance(ch.value, str):
            manufacturer = ch.value
        elif ch.value is not None:
            expected = "CODE" if k == concepts.ALGORITHM_FAMILY else "TEXT"
            ctx.diags.warn("tid4019-value-type", f"TID 4019 item is {ch.value_type}, not {expected}", path=ch.path, concept=ch.concept, action="not mapped")
    if name is None:
        if version or params or family:
            ctx.diags.warn("algorithm-without-name", "TID 4019 items without an Algorithm Name (111001)", path=item.path, concept=item.concept, action="device inherited instead")
        return None
    dev: dict[str, Any] = {"displayName": name}
    if manufacturer:
        dev["manufacturer"] = manufacturer
    if family is not None:
        dev["type"] = [ctx.schemes.concept(family)]
    if version:
        dev["version"] = [{"value": version}]
    if params:
        dev["property"] = [{"type": {"coding": [dict(FIXED["algorithm-parameters"])]}, "valueString": p} for p in params]
    dev["parent"] = equipment
    return _add(ctx, "algorithm", "algorithm-identification", None, dev)
