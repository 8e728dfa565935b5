"""HTTP: STOW-RS (PS3.18 10.5) for DICOMweb senders, and the operations endpoints `/healthz`,
`/readyz` and `/metrics`, as a Starlette app served by uvicorn."""

from __future__ import annotations

import asyncio
import hmac
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import multipart
from .config import BodyLimits
from .intake import STATUS, Intake, Outcome
from .metrics import CONTENT_TYPE

DICOM_JSON = "application/dicom+json"


def _ui(uid: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [uid]}


def stow_response(outcomes: list[Outcome]) -> tuple[int, dict[str, Any]]:
    """The Store Instances Response Module (PS3.18 Table 10.5.3-3) and its HTTP status
    (Table 10.5.3-1): 200 all stored, 202 some, 409 none."""
    stored, failed = [], []
    for o in outcomes:
        item: dict[str, Any] = {}
        if o.identity is not None:
            item["00081150"] = _ui(o.identity.sop_class_uid)  # Referenced SOP Class UID
            item["00081155"] = _ui(o.identity.sop_instance_uid)  # Referenced SOP Instance UID
        if o.refused is None:
            stored.append(item)
        else:
            item["00081197"] = {"vr": "US", "Value": [STATUS[o.refused]]}  # Failure Reason
            failed.append(item)
    body: dict[str, Any] = {}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": stored}  # Referenced SOP Sequence
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}  # Failed SOP Sequence
    return (200 if not failed else 202 if stored else 409), body


class BodyRefused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


async def spool(request: Request, dest: Path, limits: BodyLimits, room: Callable[[int], bool]) -> int:
    """Stream the body to `dest`, never holding it in memory; raises BodyRefused when it is too
    large (413), too slow (408), or the disk would pass its watermark (503). Returns its size."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limits.max_bytes):
        raise BodyRefused(413, f"the body may have at most {limits.max_bytes >> 20} MiB (--max-stow-mb)")
    if declared is not None and not room(int(declared)):
        raise BodyRefused(503, "the gateway's disk is past its watermark; try again later", {"Retry-After": "60"})
    size, deadline = 0, time.monotonic() + limits.total
    chunks = request.stream().__aiter__()
    with open(dest, "wb") as fh:
        while True:
            wait = min(limits.idle, deadline - time.monotonic())
            try:
                chunk = await asyncio.wait_for(chunks.__anext__(), timeout=max(wait, 0.0))
            except StopAsyncIteration:
                return size
            except asyncio.TimeoutError:
                raise BodyRefused(408, "the body did not arrive in time (--stow-timeout)") from None
            except ClientDisconnect:
                raise BodyRefused(400, "the client went away before the body ended") from None
            size += len(chunk)
            if size > limits.max_bytes:
                raise BodyRefused(413, f"the body may have at most {limits.max_bytes >> 20} MiB (--max-stow-mb)")
            if not room(size):  # a chunked body declares no size: checked as it comes
                raise BodyRefused(503, "the gateway's disk is past its watermark; try again later", {"Retry-After": "60"})
            fh.write(chunk)


PUBLIC_READY = ("ready", "disk", "queue", "delivery")
"""What `/readyz` tells a caller without the token: no reason text, which may name a URL or a path."""


def app(intake: Intake, *, token: str | None, ready: Callable[[], dict[str, Any]], limits: BodyLimits = BodyLimits(),
        protect_operations: bool = False) -> Starlette:
    """`token`: the bearer token STOW-RS requires (none: open, for loopback use);
    `protect_operations`: `/metrics` and `/readyz` require it too (`/healthz` stays open)."""

    def authorised(request: Request, open_without_token: bool = True) -> bool:
        if token is None:
            return open_without_token
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # The scheme is case-insensitive (RFC 9110 11.1); the token is compared in constant time.
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())

    async def stow(request: Request) -> Response:
        if not authorised(request):
            intake.metrics.refused.labels("stow", "unauthorised").inc()
            return JSONResponse({"error": "a bearer token is required"}, 401, headers={"WWW-Authenticate": 'Bearer realm="sr2fhir"'})
        ctype = request.headers.get("content-type", "")
        mtype, params = multipart.media_type(ctype)
        if mtype != "multipart/related" or params.get("type", "application/dicom").lower() != "application/dicom":
            return JSONResponse({"error": 'expected multipart/related; type="application/dicom"'}, 415)
        try:
            fd, name = tempfile.mkstemp(dir=intake.queue.incoming, prefix=".stow-", suffix=".part")
        except OSError:  # the state disk is full (or gone): the sender keeps the objects
            intake.metrics.refused.labels("stow", "out-of-resources").inc()
            return JSONResponse({"error": "the gateway cannot store the body now; try again later"}, 503, headers={"Retry-After": "60"})
        os.close(fd)
        body = Path(name)
        try:
            try:
                await spool(request, body, limits, intake.room)
            except BodyRefused as exc:
                reason = {413: "too-large", 408: "too-slow", 503: "out-of-resources"}.get(exc.status, "broken-body")
                intake.metrics.refused.labels("stow", reason).inc()
                return JSONResponse({"error": str(exc)}, exc.status, headers=exc.headers)
            return await run_in_threadpool(_store, body, ctype, request.client.host if request.client else None)
        finally:
            body.unlink(missing_ok=True)

    def _store(body: Path, ctype: str, peer: str | None) -> Response:
        """Take in the parts of a spooled body, one part in memory at a time."""
        with open(body, "rb") as fh:
            data = multipart.FileBuffer(fh)
            try:
                parts = multipart.spans(data, ctype)
            except multipart.MultipartError as exc:
                return JSONResponse({"error": f"the body is not multipart/related: {exc}"}, 400)
            outcomes = []
            for i, part in enumerate(parts, 1):
                name = f"STOW-RS part {i}"
                if part.content_type != "application/dicom":
                    outcomes.append(Outcome(f"part-{i}", None, "sop-class-not-supported", f"{name}: {part.content_type} is not application/dicom"))
                    continue
                outcomes.append(intake.accept(data[part.start : part.end], name, "stow", peer=peer))
        status, response = stow_response(outcomes)
        return JSONResponse(response, status, media_type=DICOM_JSON)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def refused(request: Request) -> Response | None:
        if protect_operations and not authorised(request):
            intake.metrics.refused.labels("http", "unauthorised").inc()
            return JSONResponse({"error": "a bearer token is required"}, 401, headers={"WWW-Authenticate": 'Bearer realm="sr2fhir"'})
        return None

    async def readyz(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        state = await run_in_threadpool(ready)
        if not authorised(request, open_without_token=False):
            state = {k: v for k, v in state.items() if k in PUBLIC_READY}
        return JSONResponse(state, 200 if state.get("ready") else 503)

    async def metrics(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        return Response(await run_in_threadpool(intake.metrics.text), media_type=CONTENT_TYPE)

    return Starlette(routes=[
        Route("/studies", stow, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ])
