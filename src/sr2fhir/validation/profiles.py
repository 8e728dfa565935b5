"""Checking resources against the IG's profiles (StructureDefinition snapshots).

Rules: cardinality, fixed and pattern values (displays included), slicing with the
discriminators the IG uses (value, type, profile via `resolve()` inside the Bundle, exists),
closed slicing, reference target profiles, and the profiles' FHIRPath invariants (fhirpathpy,
with a `hasValue()` shim).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .package import ElementDef, Profile

Resolver = Callable[[dict[str, Any]], dict[str, Any] | None]
"""Reference -> the resource it points at inside the Bundle, or None."""

CORE = "http://hl7.org/fhir/StructureDefinition/"
SKIPPED_INVARIANTS = {"ele-1", "ext-1"}

# Required bindings of the coded elements sr2fhir emits (R5 core value sets, which live in the
# core package rather than in the IG's snapshots).
REQUIRED_CODES: dict[str, frozenset[str]] = {
    "Observation.status": frozenset(
        {"registered", "preliminary", "final", "amended", "corrected", "appended", "cancelled", "entered-in-error", "unknown", "cannot-be-obtained"}
    ),
    "ImagingSelection.status": frozenset({"available", "entered-in-error", "unknown"}),
    "ImagingSelection.instance.imageRegion2D.regionType": frozenset({"point", "polyline", "interpolated", "circle", "ellipse"}),
    "ImagingSelection.instance.imageRegion3D.regionType": frozenset({"point", "multipoint", "polyline", "polygon", "ellipse", "ellipsoid"}),
    "Bundle.type": frozenset({"document", "message", "transaction", "transaction-response", "batch", "batch-response", "history", "searchset", "collection", "subscription-notification"}),
}
"""Covered by the base-structure layer (fhir.resources); evaluating them everywhere is slow."""


@dataclass(slots=True)
class Issue:
    severity: str
    rule: str
    location: str
    message: str


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def matches_pattern(value: Any, pattern: Any) -> bool:
    """FHIR pattern matching: every element of the pattern is present in the value."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches_pattern(value[k], pv) for k, pv in pattern.items())
    if isinstance(pattern, list):
        vals = _as_list(value)
        return all(any(matches_pattern(v, p) for v in vals) for p in pattern)
    return value == pattern or str(value) == str(pattern)


def _choice_values(node: dict[str, Any], name: str) -> list[tuple[str, Any]]:
    """(key, value) pairs for an element name; `value[x]` matches valueQuantity, valueString ..."""
    if name.endswith("[x]"):
        prefix = name[:-3]
        return [(k, v) for k, v in node.items() if k.startswith(prefix) and k[len(prefix):][:1].isupper()]
    return [(name, node[name])] if name in node else []


def _values_at(items: list[Any], path: str) -> list[Any]:
    out = items
    for seg in path.split("."):
        if seg == "$this":
            continue
        nxt: list[Any] = []
        for it in out:
            if isinstance(it, dict):
                for _k, v in _choice_values(it, seg):
                    nxt.extend(_as_list(v))
        out = nxt
    return out


def _descendant(e: ElementDef, path: str) -> ElementDef | None:
    node: ElementDef | None = e
    for seg in path.split("."):
        if seg == "$this" or node is None:
            continue
        node = next((c for c in node.children if c.name == seg or c.name == seg + "[x]"), None)
    return node


def _reference_type(ref: dict[str, Any]) -> str | None:
    """The type a `type` discriminator on `reference` can see: the one the URL names.

    As in the HL7 validator, a `urn:uuid:` reference names no type (Reference.reference is a
    string), so it matches every such slice.
    """
    r = str(ref.get("reference", ""))
    head = r.split("?")[0].split("/")[0]
    if head and head[0].isupper() and not r.startswith("urn:"):
        return head
    return None


class ProfileValidator:
    def __init__(self, profiles: dict[str, Profile], resolve: Resolver) -> None:
        self.profiles = profiles
        self.resolve = resolve
        self.issues: list[Issue] = []

    def error(self, rule: str, location: str, message: str, severity: str = "error") -> None:
        self.issues.append(Issue(severity, rule, location, message))

    # -- entry point ---------------------------------------------------------------------------

    def validate(self, resource: dict[str, Any], location: str) -> list[Issue]:
        self.issues = []
        for url in resource.get("meta", {}).get("profile", []):
            profile = self.profiles.get(url.split("|")[0])
            if profile is None:
                self.error("unknown-profile", location, f"profile {url} is not in the IG package", "warning")
                continue
            if profile.type != resource["resourceType"]:
                self.error("profile-type", location, f"profile {profile.name} is for {profile.type}, not {resource['resourceType']}")
                continue
            self._element(profile.root, [resource], f"{location}", resource, profile.name)
        return self.issues

    # -- element rules -------------------------------------------------------------------------

    def _element(self, e: ElementDef, values: list[Any], loc: str, resource: dict[str, Any], prof: str) -> None:
        if len(values) < e.min:
            self.error("cardinality", loc, f"{prof}: {e.id} has {len(values)} value(s), minimum {e.min}")
        if e.max is not None and len(values) > e.max:
            self.error("cardinality", loc, f"{prof}: {e.id} has {len(values)} value(s), maximum {e.max}")
        fixed = e.fixed()
        if fixed is not None:
            kind, expected = fixed
            for v in values:
                ok = (v == expected) if kind.startswith("fixed") else matches_pattern(v, expected)
                if not ok:
                    self.error("fixed-value" if kind.startswith("fixed") else "pattern", loc, f"{prof}: {e.id} must {'be' if kind.startswith('fixed') else 'match'} {expected!r}")
        allowed = REQUIRED_CODES.get(e.path)
        if allowed is not None:
            for v in values:
                if v not in allowed:
                    self.error("required-binding", loc, f"{prof}: {e.id} = {v!r} is not in its required value set")
        self._references(e, values, loc, prof)
        self._invariants(e, values, loc, resource, prof)
        if e.slices:
            self._slices(e, values, loc, resource, prof)
        for child in e.children:
            for i, v in enumerate(values):
                if not isinstance(v, dict):
                    continue
                pairs = _choice_values(v, child.name)
                child_values = [x for _k, val in pairs for x in _as_list(val)]
                key = pairs[0][0] if pairs else child.name
                self._element(child, child_values, f"{loc}.{key}" if len(values) == 1 else f"{loc}[{i}].{key}", resource, prof)

    def _references(self, e: ElementDef, values: list[Any], loc: str, prof: str) -> None:
        targets = [tp for t in e.raw.get("type", []) if t.get("code") == "Reference" for tp in t.get("targetProfile", [])]
        if not targets:
            return
        for v in values:
            if not isinstance(v, dict) or "reference" not in v:
                continue
            target = self.resolve(v)
            if target is None:
                continue  # logical / conditional references to pre-existing resources: bundle layer
            claimed = set(target.get("meta", {}).get("profile", []))
            ok = any(t in claimed or t == CORE + target["resourceType"] for t in targets)
            if not ok:
                names = ", ".join(t.rsplit("/", 1)[-1] for t in targets)
                self.error("reference-target", loc, f"{prof}: {e.id} must reference {names}; {v['reference']} claims {sorted(claimed) or 'no profile'}")

    def _invariants(self, e: ElementDef, values: list[Any], loc: str, resource: dict[str, Any], prof: str) -> None:
        constraints = [c for c in e.raw.get("constraint", []) if c.get("expression") and c.get("key") not in SKIPPED_INVARIANTS]
        if not constraints or not values:
            return
        from .fhirpath import evaluate

        for c in constraints:
            for v in values:
                if not isinstance(v, dict):
                    continue
                result = evaluate(v, c["expression"], resource)
                if result is False:
                    sev = "error" if c.get("severity") == "error" else "warning"
                    self.error(f"invariant {c['key']}", loc, f"{prof}: {e.id}: {c.get('human', c['expression'])}", sev)

    # -- slicing -------------------------------------------------------------------------------

    def _slices(self, e: ElementDef, values: list[Any], loc: str, resource: dict[str, Any], prof: str) -> None:
        slicing = e.raw.get("slicing", {})
        discriminators = slicing.get("discriminator", [])
        assigned: dict[str, list[Any]] = {s.id: [] for s in e.slices}
        key = loc.rsplit(".", 1)[-1]
        for v in values:
            matched = [s for s in e.slices if all(self._discriminates(s, d, v) for d in discriminators)]
            if any(d["type"] == "type" and d["path"] == "$this" for d in discriminators):
                matched = [s for s in matched if s.slice_name == key]  # value[x]:valueQuantity <- valueQuantity
            if len(matched) > 1:
                names = ", ".join(m.slice_name or "?" for m in matched)
                self.error("ambiguous-slice", loc, f"{prof}: {e.id} value matches more than one slice: {names}")
                matched = matched[:1]
            if matched:
                assigned[matched[0].id].append(v)
            elif slicing.get("rules") == "closed":
                self.error("closed-slicing", loc, f"{prof}: {e.id} value matches no slice and slicing is closed")
        for s in e.slices:
            self._element(s, assigned[s.id], f"{loc}:{s.slice_name}", resource, prof)

    def _discriminates(self, s: ElementDef, d: dict[str, str], value: Any) -> bool:
        kind, path = d["type"], d["path"]
        if kind in ("value", "pattern"):
            target = _descendant(s, path) if path != "$this" else s
            fixed = target.fixed() if target else None
            if fixed is None:
                return True
            return any(matches_pattern(v, fixed[1]) for v in _values_at([value], path)) if path != "$this" else matches_pattern(value, fixed[1])
        if kind == "exists":
            target = _descendant(s, path)
            must = bool(target and target.min > 0)
            return bool(_values_at([value], path)) == must
        if kind == "type":
            types = [t["code"] for t in s.raw.get("type", [])]
            if path == "$this":
                return True  # choice slices: see _slices, which matches them by the element's key
            if isinstance(value, dict) and path == "reference":
                rtype = _reference_type(value)
                allowed = {tp.rsplit("/", 1)[-1] for t in s.raw.get("type", []) for tp in t.get("targetProfile", [])}
                return rtype is None or any(self._profile_base(a) == rtype for a in allowed) or not allowed and bool(types)
            return True
        if kind == "profile":
            if not isinstance(value, dict):
                return False
            resolved = self.resolve(value) if path == "resolve()" else None
            if resolved is None:
                return False
            wanted = [tp for t in s.raw.get("type", []) for tp in t.get("targetProfile", [])]
            claimed = set(resolved.get("meta", {}).get("profile", []))
            return any(w in claimed for w in wanted)
        return True

    def _profile_base(self, name: str) -> str:
        """A target profile's resource type (core name or IG profile id)."""
        for p in self.profiles.values():
            if p.url.rsplit("/", 1)[-1] == name:
                return p.type
        return name
