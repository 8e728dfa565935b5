"""What qualifies a measurement or an evaluation but has no element in the IG (docs/decisions.md D-33).

TID 300 / TID 1419 let a NUM carry concept modifiers that change what its value means: Derivation
(DCM 121401: Mean, Maximum, Standard Deviation, percentiles ...), any other HAS CONCEPT MOD concept
(pyradiomics' Image transformation, Wavelet sub-band), and parameters given as INFERRED FROM NUMs
(pyradiomics' Kernel size). The IG maps `code` from the concept name alone, so without them
"SUVbw (Mean)" and "SUVbw (Maximum)" would be the same Observation with two values. Each such
child becomes one `Observation.component` (`code` = its concept name, `value[x]` = its value), which
every measurement profile leaves unconstrained, and `code.text` names them ("SUVbw (Mean)").
"""

from __future__ import annotations

from typing import Any, Callable

from .. import datetimes
from ..dicom.content import Code, ContentItem, MeasuredValue
from ..fhir.narrative import display
from .context import ReportContext
from .imaging_observation import absent_reason, quantity

COMPONENT_VALUE_TYPES = ("CODE", "TEXT", "NUM", "UIDREF", "DATETIME", "DATE", "TIME")
"""Value types a component can carry (Observation.component.value[x])."""


def component(ctx: ReportContext, item: ContentItem) -> dict[str, Any] | None:
    """One Observation.component for a modifier content item; None if it cannot be one."""
    if item.concept is None or item.reference is not None or item.value_type not in COMPONENT_VALUE_TYPES:
        return None
    comp: dict[str, Any] = {"code": ctx.schemes.concept(item.concept)}
    v = item.value
    if isinstance(v, Code):
        comp["valueCodeableConcept"] = ctx.schemes.concept(v)
    elif isinstance(v, MeasuredValue):
        q = quantity(ctx, v)
        if q is not None:
            comp["valueQuantity"] = q
        else:
            comp["dataAbsentReason"] = absent_reason(v)
    elif isinstance(v, str) and v.strip():
        if item.value_type == "TIME":
            return None if len(v) < 6 else {**comp, "valueTime": f"{v[0:2]}:{v[2:4]}:{v[4:6]}"}
        if item.value_type in ("DATETIME", "DATE"):
            t = datetimes.instant(v, ctx.default_zone)
            if t is None:
                return None
            comp["valueDateTime"] = t
        else:
            comp["valueString"] = v.strip()
    else:
        return None
    return comp


def components(ctx: ReportContext, owner: ContentItem, consumed: Callable[[ContentItem], bool]) -> list[dict[str, Any]]:
    """Components for every child of `owner` that the mapping does not consume otherwise.

    A child that cannot be a component, and anything nested below a modifier, is reported as a
    warning (clinical content the IG does not map), so that a default run shows it.
    """
    out: list[dict[str, Any]] = []
    for ch in owner.children:
        if consumed(ch):
            continue
        comp = component(ctx, ch)
        if comp is None:
            ctx.diags.warn("not-mapped", f"{ch.value_type or 'by-reference'} item has no element in the IG and no Observation.component form", path=ch.path, concept=ch.concept, action="not mapped")
            continue
        out.append(comp)
        for sub in ch.children:
            ctx.diags.warn("not-mapped", "item nested below a modifier has no element in the IG", path=sub.path, concept=sub.concept, action="not mapped")
    return out


def _label(comp: dict[str, Any]) -> str:
    value = comp.get("valueCodeableConcept")
    if value is not None:
        return display(value)
    name = display(comp["code"])
    if "valueQuantity" in comp:
        q = comp["valueQuantity"]
        return f"{name} {q['value']} {q.get('unit') or q.get('code', '')}".strip()
    for k in ("valueString", "valueDateTime", "valueTime"):
        if k in comp:
            return f"{name} {comp[k]}"
    return f"{name} absent"


def apply(obs: dict[str, Any], comps: list[dict[str, Any]], *, name_in_code: bool = True) -> None:
    """Set `component` and name the modifiers in `code.text` ("SUVbw (Mean)").

    A group's code (its Finding Category) keeps its coding alone: its components are context
    (Time Point, Activity Session), not a change of what the group is.
    """
    if not comps:
        return
    obs["component"] = comps
    if not name_in_code:
        return
    base = display(obs["code"])
    obs["code"] = {**obs["code"], "text": f"{base} ({', '.join(_label(c) for c in comps)})"}
