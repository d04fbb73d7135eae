"""Liveness, readiness and Prometheus metrics (no token: probes and scrapers)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


# A probe's answer, not an error: a 503 here has the same shape as the 200.
@router.get(
    "/readyz",
    responses={503: {"description": "Not ready: the failing checks are false"}},
)
def readyz(request: Request, response: Response) -> dict[str, object]:
    ingest = request.app.state.ingest
    store_full = ingest.store_full.is_set()
    checks = {
        "broker": ingest.subscribed.is_set(),
        "store": ingest.writer_alive.is_set() and not store_full,
    }
    ready = all(checks.values())
    answer: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks}
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        reasons = []
        if not checks["broker"]:
            reasons.append("broker not subscribed")
        if store_full:
            reasons.append("store disk full")
        elif not checks["store"]:
            reasons.append("store writer not running")
        answer["reason"] = "; ".join(reasons)
    return answer


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
