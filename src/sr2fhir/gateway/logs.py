"""The gateway's log: one JSON object a line, on stderr. What a line may hold is listed here
(`FIELDS`): UIDs, sources, peers' addresses, counts, reasons; never a patient's name, ID or birth
date. The libraries' own records (pynetdicom, uvicorn, pydicom, Python warnings) become lines of
the same form, their quoted values withheld: pydicom quotes the element values it complains of."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback

FIELDS = ("sop_uid", "source", "peer", "outcome", "reason", "entries", "new", "latency_s", "delay_s", "address")

_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                                   "level": record.levelname.lower()}
        if record.name == "sr2fhir.gateway" or record.name.startswith("sr2fhir.gateway."):
            line["event"] = record.getMessage()
            line.update({k: getattr(record, k) for k in FIELDS if getattr(record, k, None) is not None})
        else:
            line["event"] = "library"
            line["logger"] = record.name
            line["reason"] = _QUOTED.sub("'…'", record.getMessage().splitlines()[0] if record.getMessage() else "")
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            frames = traceback.extract_tb(record.exc_info[2])
            if frames:  # where, never the exception's text (it may quote a value)
                line["where"] = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}"
        return json.dumps(line, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    """The gateway's events at `level`; every other logger's warnings and errors, and Python
    warnings, through the same formatter; nothing else writes to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    log = logging.getLogger("sr2fhir.gateway")
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("pynetdicom", "pydicom", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "py.warnings"):
        library = logging.getLogger(name)
        library.handlers[:] = []
        library.setLevel(logging.WARNING)
        library.propagate = True
    logging.captureWarnings(True)
