"""The gateway's log: one JSON object a line, on stderr. What a line may hold is listed here
(`FIELDS`): UIDs, sources, counts, reasons; never a patient's name, ID or birth date."""

from __future__ import annotations

import json
import logging
import sys
import time

FIELDS = ("sop_uid", "source", "peer", "outcome", "reason", "entries", "new", "latency_s", "delay_s", "address")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(), "event": record.getMessage()}
        line.update({k: getattr(record, k) for k in FIELDS if getattr(record, k, None) is not None})
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
        return json.dumps(line, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    log = logging.getLogger("sr2fhir.gateway")
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
