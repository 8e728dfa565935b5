"""DICOM DA/TM/DT to FHIR instant."""

import pytest

from sr2fhir.datetimes import combine, instant, offset


@pytest.mark.parametrize(("dt", "zone", "expected"), [
    ("20190323082428", "+00:00", "2019-03-23T08:24:28+00:00"),
    ("20190323082428.123+0100", "+00:00", "2019-03-23T08:24:28.123+01:00"),
    ("201903230824", "-05:00", "2019-03-23T08:24:00-05:00"),
    ("20190323", "+00:00", "2019-03-23T00:00:00+00:00"),
    ("2019", "+00:00", None),
    ("20191323", "+00:00", None),
    ("20230824160163", "+00:00", None),  # found by the property tests: second 63
    ("20161231235960", "+00:00", "2016-12-31T23:59:60+00:00"),
    ("garbage", "+00:00", None),
])
def test_instant(dt: str, zone: str, expected: str | None) -> None:
    assert instant(dt, zone) == expected


def test_combine_and_offset() -> None:
    assert combine("20240101", "10:15:30.5") == "20240101101530.5"
    assert combine("20240101", None) == "20240101"
    assert offset("+0530") == "+05:30" and offset("+2500") is None and offset(None) is None
