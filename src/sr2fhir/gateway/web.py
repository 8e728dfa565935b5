"""HTTP: STOW-RS (PS3.18 10.5) for DICOMweb senders, and the operations endpoints `/healthz`,
`/readyz` and `/metrics`, as a Starlette app served by uvicorn."""

from __future__ import annotations

import hmac
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import multipart
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


def app(intake: Intake, *, token: str | None, ready: Callable[[], dict[str, Any]]) -> Starlette:
    """`token`: the bearer token STOW-RS requires (none: open, for loopback use)."""

    def authorised(request: Request) -> bool:
        if token is None:
            return True
        given = request.headers.get("authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode())

    async def stow(request: Request) -> Response:
        if not authorised(request):
            intake.metrics.refused.labels("stow", "unauthorised").inc()
            return JSONResponse({"error": "a bearer token is required"}, 401, headers={"WWW-Authenticate": 'Bearer realm="sr2fhir"'})
        ctype = request.headers.get("content-type", "")
        mtype, params = multipart.media_type(ctype)
        if mtype != "multipart/related" or params.get("type", "application/dicom").lower() != "application/dicom":
            return JSONResponse({"error": 'expected multipart/related; type="application/dicom"'}, 415)
        length = int(request.headers.get("content-length") or 0)
        if not intake.room(length):
            intake.metrics.refused.labels("stow", "out-of-resources").inc()
            return JSONResponse({"error": "the gateway's disk is past its watermark; try again later"}, 503, headers={"Retry-After": "60"})
        body = await request.body()
        try:
            parts = multipart.parse(body, ctype)
        except multipart.MultipartError as exc:
            return JSONResponse({"error": f"the body is not multipart/related: {exc}"}, 400)
        outcomes = []
        for i, part in enumerate(parts, 1):
            name = f"STOW-RS part {i}"
            if part.content_type != "application/dicom":
                outcomes.append(Outcome(f"part-{i}", None, "sop-class-not-supported", f"{name}: {part.content_type} is not application/dicom"))
                continue
            outcomes.append(await run_in_threadpool(intake.accept, part.data, name, "stow"))
        status, response = stow_response(outcomes)
        return JSONResponse(response, status, media_type=DICOM_JSON)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        state = await run_in_threadpool(ready)
        return JSONResponse(state, 200 if state.get("ready") else 503)

    async def metrics(request: Request) -> Response:
        return Response(await run_in_threadpool(intake.metrics.text), media_type=CONTENT_TYPE)

    return Starlette(routes=[
        Route("/studies", stow, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ])
