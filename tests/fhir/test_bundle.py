"""Bundles: conditional create on identities, unique entries, and Bundle-level R5 validity."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

from collections import Counter
from pathlib import Path

import json
import math
import struct

import pytest

from sr2fhir.fhir.bundle import collection, dumps, stdlib_dumps, transaction
from sr2fhir.fhir.ids import NAMESPACE, resource_id
from tests.helpers import FIXTURES, compact_pieces, converted, validate_r5


def test_transaction_entries(tid1500_file: Path) -> None:
    c = converted(tid1500_file)
    b = transaction(c.conversion.resources, "key")
    validate_r5(b)
    conditions = [e["request"]["ifNoneExist"] for e in b["entry"]]
    # Every resource has an identity for conditional create, and no two entries share one
    # (a server would have to create them once each, and would reject duplicates).
    assert len(conditions) == len(b["entry"]) and not [k for k, n in Counter(conditions).items() if n > 1]
    for e in b["entry"]:
        # The resource itself satisfies its own condition: identifier=, and _tag= for Devices (D-35).
        params = dict(p.split("=", 1) for p in e["request"]["ifNoneExist"].split("&"))
        assert set(params) <= {"identifier", "_tag"} and "identifier" in params
        for name, field in (("identifier", "identifier"), ("_tag", "tag")):
            if name in params:
                system, value = params[name].split("|", 1)
                values = e["resource"]["identifier"] if field == "identifier" else e["resource"]["meta"]["tag"]
                key = "value" if field == "identifier" else "code"
                assert any(i.get("system") == system and i.get(key) == value for i in values)


def test_collection_is_valid(tid1500_file: Path) -> None:
    validate_r5(collection(converted(tid1500_file).conversion.resources, "key"))


def test_ids_are_uuid5_and_stable() -> None:
    assert resource_id("a", "b") == resource_id("a", "b") != resource_id("a", "c")
    assert resource_id("a", "b")[14] == "5"
    rng = random.Random(16)
    for _ in range(2000):  # the library is the oracle of our own UUIDv5
        parts = ["".join(rng.choice("0123456789.|aéß直 ") for _ in range(rng.randrange(0, 40))) for _ in range(rng.randrange(1, 4))]
        assert resource_id(*parts) == str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def test_compact_pieces_are_the_bundle_text(tid1500_file: Path) -> None:
    """Entry by entry, and list item by list item for long lists, the text is dumps(bundle)'s."""
    b = transaction(converted(tid1500_file).conversion.resources, "key")
    assert "".join(compact_pieces(b)) == dumps(b)
    many = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "ImagingSelection", "instance": [{"uid": f"1.{i}", "v": Decimal("1.50")} for i in range(200)], "x": {}, "y": []}}]}
    assert "".join(compact_pieces(many)) == dumps(many) and len(compact_pieces(many)) > 400
    narrative = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Observation", "text": {"status": "generated", "div": '<div>"é\u0001\\</div>' * 1000}}}]}
    plain = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Observation", "valueInteger": 5, "valueBoolean": True}}]}  # no text, no list
    assert "".join(compact_pieces(plain)) == dumps(plain)
    assert "".join(compact_pieces(narrative)) == dumps(narrative) == stdlib_dumps(narrative) and len(compact_pieces(narrative)) > 5


@pytest.mark.parametrize("pretty", [False, True])
def test_dumps_is_the_json_modules_text(tid1500_file: Path, pretty: bool) -> None:
    """orjson writes what the json module writes (the oracle), pretty and compact (issue 16)."""
    b = transaction(converted(tid1500_file).conversion.resources, "key")
    assert dumps(b, pretty=pretty) == stdlib_dumps(b, pretty=pretty)


def test_dumps_matches_the_json_module_on_arbitrary_values() -> None:
    """Text with every control character and non-ASCII, decimals with their digits, integers and
    floats: the same text as the json module, except floats between 1e-10 and 1e-4, which both
    write as the same number (D-41)."""
    rng = random.Random(41)
    alphabet = [chr(i) for i in range(0x20)] + list('"\\/ aZ09é€直\u2028\U0001F600')
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        number = Decimal(rng.choice(["1.50", "-0.000", "12345678901234567890.123", "1E+3", "7"]))
        floats = [x for x in struct.unpack("<4d", rng.randbytes(32)) if math.isfinite(x)]
        value = {"t": text, text: [number, rng.randrange(-2**63, 2**63), True, {}, [], floats]}
        for pretty in (False, True):
            ours, reference = dumps(value, pretty=pretty), stdlib_dumps(value, pretty=pretty)
            if any(1e-10 <= abs(x) < 1e-4 for x in floats):
                assert json.loads(ours) == json.loads(reference)
            else:
                assert ours == reference


def test_dumps_refuses_what_json_cannot_hold() -> None:
    """NaN and Infinity never become null; integers beyond 64 bits and lone surrogates are the
    json module's to write, or to refuse, as before."""
    for bad in (math.nan, math.inf, Decimal("NaN"), Decimal("-Infinity")):
        with pytest.raises((ValueError, TypeError)):
            dumps({"value": [bad]})
    assert dumps({"n": 2**70}) == '{"n":1180591620717411303424}'
    assert dumps({"s": "\ud800"}) == stdlib_dumps({"s": "\ud800"})


def test_bundle_types_and_collection_full_urls() -> None:
    """Bundle.type (FHIR R5 Bundle: a required binding that the models do not check) and a
    collection entry's fullUrl, the urn:uuid of its resource's id (D-1)."""
    c = converted(FIXTURES / "tid1410_planar_regions.dcm")
    t, col = transaction(c.conversion.resources, "key"), collection(c.conversion.resources, "key")
    assert (t["type"], col["type"]) == ("transaction", "collection")
    assert [e["fullUrl"] for e in col["entry"]] == [f"urn:uuid:{e['resource']['id']}" for e in col["entry"]]
    assert all("request" not in e for e in col["entry"]) and all(e["request"]["method"] == "POST" for e in t["entry"])


def test_orjson_writes_it_without_falling_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """D-41: orjson writes the text, Decimals included (`_decimal_fragment`); the json module is
    only the fallback for what orjson cannot write (null, integers beyond 64 bits)."""
    from sr2fhir.fhir import bundle as fhir_bundle

    def no_fallback(obj: object, *, pretty: bool = False) -> str:
        raise AssertionError("fell back to the json module")

    value = {"valueQuantity": {"value": Decimal("1.50E+3"), "unit": "mm"}, "n": [Decimal("-0.000"), 7]}
    expected = stdlib_dumps(value)
    monkeypatch.setattr(fhir_bundle, "stdlib_dumps", no_fallback)
    assert dumps(value) == expected == '{"valueQuantity":{"value":1.50E+3,"unit":"mm"},"n":[-0.000,7]}'


@pytest.mark.parametrize("value", [{"n": 2**70, "a": [1]}, {"x": None, "a": [1]}], ids=["beyond-64-bits", "null"])
def test_the_fallback_keeps_the_form_asked_for(value: dict) -> None:  # type: ignore[type-arg]
    pretty = dumps(value, pretty=True)
    assert pretty == stdlib_dumps(value, pretty=True) and "\n" in pretty
    assert dumps(value) == stdlib_dumps(value) and "\n" not in dumps(value)


def test_what_json_cannot_hold_is_named() -> None:
    with pytest.raises(TypeError, match=r"^object <object object at 0x[0-9a-f]+> is not JSON serializable$"):
        dumps({"value": object()})


def test_a_resource_set_keeps_each_id_once_and_finds_it() -> None:
    from sr2fhir.fhir.bundle import ResourceSet

    rs = ResourceSet()
    first, again = {"resourceType": "Patient", "id": "p"}, {"resourceType": "Patient", "id": "p", "active": True}
    assert rs.add(first) == rs.add(again) == {"reference": "urn:uuid:p", "type": "Patient"}
    assert rs.get("p") is first and rs.get("q") is None and "p" in rs and len(rs) == 1
