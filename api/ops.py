"""Operational endpoints: liveness, readiness, metrics."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api.context import services

blp = Blueprint("ops", __name__)


@blp.get("/healthz")
def healthz():
    return jsonify({"status": "success", "message": "ok"})


@blp.get("/readyz")
def readyz():
    svc = services()
    checks: dict[str, str] = {}
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
    try:
        svc.redis.ping()
        checks["redis"] = "ok"
    except Exception:
        checks["redis"] = "unreachable"
    try:
        svc.enqueuer.ping()
        checks["broker"] = "ok"
    except Exception:
        checks["broker"] = "unreachable"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "success" if ready else "error", "message": "ready" if ready else "not ready", "data": checks}
    if not ready:
        body["code"] = "ServiceUnavailable"
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response


@blp.get("/metrics")
def metrics():
    from api.metrics import render_metrics

    return Response(render_metrics(services()), mimetype="text/plain; version=0.0.4")
