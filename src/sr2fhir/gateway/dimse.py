"""DICOM intake: a Storage SCP for the SR Storage SOP Classes, and Verification (C-ECHO), with
pynetdicom (PS3.4 Annex B; PS3.7 9.1.1). The object is taken as the peer encoded it (never decoded
and re-encoded), stored, and only then answered Success."""

from __future__ import annotations

import logging
from typing import Any

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from ..dicom.dictionary import SR_STORAGE, uid_ok
from ..dicom.identify import Identity
from .intake import STATUS, Intake

log = logging.getLogger("sr2fhir.gateway")

TRANSFER_SYNTAXES = ALL_TRANSFER_SYNTAXES[:4]
"""Implicit and Explicit VR Little Endian, Deflated, Explicit VR Big Endian: an SR is never
pixel data, so the compressed syntaxes have nothing to offer it."""


class StorageSCP:
    def __init__(self, intake: Intake, ae_title: str, allowed: list[str]) -> None:
        self.intake = intake
        self.ae = AE(ae_title=ae_title)
        self.ae.maximum_associations = 16
        self.ae.network_timeout = 120
        self.ae.dimse_timeout = 120
        self.ae.require_called_aet = True
        if allowed:
            self.ae.require_calling_aet = allowed
        for uid in SR_STORAGE:
            self.ae.add_supported_context(uid, TRANSFER_SYNTAXES)
        self.ae.add_supported_context(Verification, TRANSFER_SYNTAXES)
        self._server: Any = None

    def start(self, host: str, port: int) -> None:
        handlers: list[Any] = [(evt.EVT_C_STORE, self._store), (evt.EVT_C_ECHO, lambda event: 0x0000), (evt.EVT_REJECTED, self._rejected)]
        self._server = self.ae.start_server((host, port), block=False, evt_handlers=handlers)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _rejected(self, event: Any) -> None:
        self.intake.metrics.refused.labels("dimse", "association-rejected").inc()
        log.warning("association rejected", extra={"source": f"dimse:{event.assoc.requestor.ae_title}"})

    def _store(self, event: Any) -> int:
        req = event.request
        calling = event.assoc.requestor.ae_title
        source = f"dimse:{calling}"
        claimed = Identity(str(req.AffectedSOPClassUID), str(req.AffectedSOPInstanceUID), None, None)
        try:
            data = event.encoded_dataset(include_meta=True)
        except Exception:  # pynetdicom could not encode the file meta from the command
            return STATUS["cannot-understand"]
        # The command's UIDs are not validated by anyone before us: only a valid one is named.
        uid = claimed.sop_instance_uid if uid_ok(claimed.sop_instance_uid) else "(invalid Affected SOP Instance UID)"
        outcome = self.intake.accept(data, f"C-STORE {uid} from {calling}", source, claimed)
        return 0x0000 if outcome.refused is None else STATUS[outcome.refused]
