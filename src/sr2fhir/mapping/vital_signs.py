"""Measurements coded with a LOINC vital-sign code (FHIR R5 observation-vitalsigns, D-52).

FHIR R5 requires an Observation coded 8867-4 (heart rate), 29463-7 (body weight) ... to meet
that vital sign's profile, whatever else it is. An imaging measurement can, mostly: it gets the
vital-signs category beside the IG's, and a UCUM unit the profile allows. What it cannot meet
(a unit the profile does not allow, an image region in derivedFrom, a systolic pressure outside
its panel) is kept as the SR and the IG say, and reported as a warning: a server that validates
may refuse the report."""

from __future__ import annotations

import re
from typing import Any

from ..codes import UCUM
from ..dicom.content import ContentItem
from ..fhir.vital_signs import BY_LOINC, CATEGORY, COMPONENT_OF, DERIVED_FROM_TARGETS
from .context import ReportContext

LOINC = "http://loinc.org"
_ANNOTATION = re.compile(r"\{[^}]*\}\.?")


def apply(ctx: ReportContext, obs: dict[str, Any], item: ContentItem) -> None:
    """Meet the vital sign's profile where the measurement can; say where it cannot."""
    code = next((c.get("code") for c in obs["code"].get("coding", []) if c.get("system") == LOINC and (c.get("code") in BY_LOINC or c.get("code") in COMPONENT_OF)), None)
    if code is None:
        return
    if code in COMPONENT_OF:
        _cannot(ctx, item, code, f"R5 records LOINC {code} only as a component of a {COMPONENT_OF[code]} ({BY_LOINC[COMPONENT_OF[code]].profile}) panel; the panel is not invented")
        return
    sign = BY_LOINC[code]
    obs.setdefault("category", []).append({"coding": [dict(CATEGORY)]})
    q = obs.get("valueQuantity")
    if not sign.units:
        if q is not None:
            _cannot(ctx, item, code, f"{sign.profile} is a panel, without a value of its own")
    elif q is not None and q.get("code") not in sign.units:
        plain = _ANNOTATION.sub("", q.get("code", "")) if q.get("system") == UCUM else None
        if plain in sign.units:
            ctx.diags.info("vital-sign-unit", f"UCUM unit {q['code']!r} is {plain!r} with an annotation, which {sign.profile} does not allow",
                           path=item.path, concept=item.concept, action=f"Quantity.code {plain!r} (an annotation is 1: the same unit); Quantity.unit keeps the SR's text")
            q["code"] = plain
        else:
            _cannot(ctx, item, code, f"its unit {q.get('code')!r} is not one {sign.profile} allows ({', '.join(sign.units)}); a value is never converted")
    if any(ref.get("type") == "ImagingSelection" for ref in obs.get("derivedFrom", [])):
        _cannot(ctx, item, code, f"the IG's image references (derivedFrom ImagingSelection) are not among the targets vitalsigns allows ({', '.join(DERIVED_FROM_TARGETS)}); they are kept")


def _cannot(ctx: ReportContext, item: ContentItem, code: str, why: str) -> None:
    ctx.diags.warn("vital-sign-not-conformant", f"FHIR R5 requires an Observation coded LOINC {code} to meet its vital-signs profile, and this one cannot: {why}",
                   path=item.path, concept=item.concept, action="emitted as an imaging measurement; a server that validates vital signs may refuse it")
