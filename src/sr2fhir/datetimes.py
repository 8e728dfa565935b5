"""DICOM DA / TM / DT values (PS3.5 Table 6.2-1) to FHIR `instant` and `dateTime`."""

from __future__ import annotations

import datetime as _dt
import re

_DT = re.compile(
    r"^(?P<Y>\d{4})(?P<M>\d{2})?(?P<D>\d{2})?(?P<h>\d{2})?(?P<m>\d{2})?(?P<s>\d{2})?(?:\.(?P<f>\d{1,6}))?(?P<z>[+-]\d{4})?$"
)
_TM = re.compile(r"^(?P<h>\d{2}):?(?P<m>\d{2})?:?(?P<s>\d{2})?(?:\.(?P<f>\d{1,6}))?$")


def offset(zzxx: str | None) -> str | None:
    """'+0100' -> '+01:00' (Timezone Offset From UTC (0008,0201) or a DT suffix)."""
    if not zzxx:
        return None
    z = zzxx.strip()
    if re.fullmatch(r"[+-]\d{4}", z) and int(z[1:3]) <= 14 and int(z[3:]) < 60:
        return f"{z[:3]}:{z[3:]}"
    return None


def instant(dt: str | None, default_zone: str) -> str | None:
    """A DICOM DT as a FHIR instant; None unless it has at least year..day.

    Missing time parts become zero, a missing zone becomes `default_zone` (D-5).
    """
    if not dt:
        return None
    m = _DT.match(dt.strip())
    if not m or not m["D"]:
        return None
    g = m.groupdict()
    if not (1 <= int(g["M"]) <= 12 and 1 <= int(g["D"]) <= 31):
        return None
    h, mi, s = g["h"] or "00", g["m"] or "00", g["s"] or "00"
    if int(s) > 60:  # 60 is a leap second, which FHIR allows
        return None
    try:
        _dt.datetime(int(g["Y"]), int(g["M"]), int(g["D"]), int(h), int(mi), min(int(s), 59))
    except ValueError:
        return None
    frac = f".{g['f']}" if g["f"] else ""
    zone = offset(g["z"]) or default_zone
    return f"{g['Y']}-{g['M']}-{g['D']}T{h}:{mi}:{s}{frac}{zone}"


def combine(da: str | None, tm: str | None) -> str | None:
    """DA + TM -> a DT string (what Content Date/Time mean together)."""
    if not da:
        return None
    da = da.strip()
    if not re.fullmatch(r"\d{8}", da):
        return None
    if not tm:
        return da
    m = _TM.match(tm.strip())
    if not m:
        return da
    g = m.groupdict()
    t = g["h"] + (g["m"] or "") + (g["s"] or "")
    if g["f"]:
        t += "." + g["f"]
    return da + t
