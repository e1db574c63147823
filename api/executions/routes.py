"""Execute a saved query, poll, long-poll and cancel executions (CONTRACT section 7)."""
from __future__ import annotations

from flask import jsonify, url_for
from flask.views import MethodView

from api.auth import app_of_caller, authenticate_request, caller, db
from api.blueprint import Blueprint
from api.context import services
from api.errors import status_of
from api.executions.schemas import ExecuteArgsSchema, ExecuteSchema, ExecutionResultSchema, WaitArgsSchema
from shared.execution_store import ExecutionStore
from shared.services import executions as service
from shared.services.executions import ExecuteRequest, clamp_wait
from shared.services.queries import get_query

blp = Blueprint("executions", __name__, url_prefix="/api/apps/<app_slug>/analytics", description="Run queries")
blp.before_request(authenticate_request)


def store() -> ExecutionStore:
    svc = services()
    return ExecutionStore(svc.redis, result_ttl=svc.settings.result_ttl)


def _poll_url(app_slug: str, key: str) -> str:
    return url_for("executions.ExecutionItem", app_slug=app_slug, execution_key=key)


@blp.route("/queries/<slug>/execute/")
class Execute(MethodView):
    @blp.arguments(ExecuteSchema)
    @blp.arguments(ExecuteArgsSchema, location="query")
    @blp.response(200, ExecutionResultSchema)
    @blp.alt_response(202, schema=ExecutionResultSchema, description="Not finished within `wait`")
    def post(self, body, args, app_slug, slug):
        """Run a saved query; answer within `wait` seconds with the result, or 202 and a key"""
        svc = services()
        app = app_of_caller(app_slug)
        query = get_query(db(), app, slug)
        results = store()
        for name in ("wait", "max_rows"):
            if body.get(name) is None and name in args:
                body[name] = args[name]
        key = service.start_execution(
            db(),
            results,
            svc.enqueuer,
            svc.settings,
            app=app,
            user=caller().user,
            query=query,
            request=ExecuteRequest(params=body["params"], wait=body.get("wait"), max_rows=body.get("max_rows")),
        )
        results.wait(key, clamp_wait(body.get("wait"), svc.settings))
        return _respond(app_slug, key, results.get(key) or {}, results, for_execute=True)


@blp.route("/executions/<execution_key>/")
class ExecutionItem(MethodView):
    @blp.arguments(WaitArgsSchema, location="query")
    @blp.response(200, ExecutionResultSchema)
    def get(self, args, app_slug, execution_key):
        """Read an execution; with `wait`, return as soon as it finishes"""
        app = app_of_caller(app_slug)
        results = store()
        record = service.load(results, execution_key, app)
        record = service.reap_if_lost(results, execution_key, record, db())
        if "wait" in args and record["state"] in ("queued", "running"):
            results.wait(execution_key, clamp_wait(args["wait"], services().settings))
            record = results.get(execution_key) or record
        return _respond(app_slug, execution_key, record, results, for_execute=False)

    @blp.response(200, ExecutionResultSchema)
    def delete(self, app_slug, execution_key):
        """Cancel: a queued execution never runs; a running one is stopped at the database"""
        app = app_of_caller(app_slug)
        service.cancel(db(), store(), execution_key, app)
        return {
            "status": "success",
            "message": "Execution cancelled",
            "execution_key": execution_key,
            "state": "cancelled",
        }


def _respond(app_slug: str, key: str, record: dict, results: ExecutionStore, *, for_execute: bool):
    poll_url = _poll_url(app_slug, key)
    status, body = service.body_of(key, record, results, poll_url=poll_url)
    if not for_execute:
        return jsonify(body)  # a known key is always 200; the body carries the state
    response = jsonify(body)
    if status == 0:
        response.status_code = status_of(body["code"])
    else:
        response.status_code = status
    if status == 202:
        response.headers["Location"] = poll_url
    return response
