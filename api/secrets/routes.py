"""Secrets of an app (CONTRACT section 5)."""
from __future__ import annotations

from flask.views import MethodView

from api.auth import app_of_caller, authenticate_request, caller, db
from api.blueprint import Blueprint
from api.context import services
from api.envelope import PageArgsSchema, envelope, ok, ok_list, paginate
from api.secrets.schemas import SecretCreateSchema, SecretSchema, SecretTypeSchema, SecretUpdateSchema
from shared.services import secrets as service

blp = Blueprint("secrets", __name__, url_prefix="/api/apps/<app_slug>/secrets", description="Encrypted secrets")
blp.before_request(authenticate_request)

@blp.route("/types/")
class SecretTypes(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, envelope(SecretTypeSchema, many=True))
    def get(self, args, app_slug):
        """List the tenant's secret types and the JSON schema of their values"""
        app_of_caller(app_slug)
        types = service.list_types(db(), caller().tenant.id)
        # Every list takes ?page= and ?page_size= (CONTRACT section 4), this short one too.
        return ok_list(paginate(types, args["page"], args["page_size"]), len(types))


@blp.route("/")
class Secrets(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, envelope(SecretSchema, many=True))
    def get(self, args, app_slug):
        """List the app's secrets (field names only)"""
        app = app_of_caller(app_slug)
        rows, total = service.list_secrets(db(), app, page=args["page"], page_size=args["page_size"])
        return ok_list(rows, total)

    @blp.arguments(SecretCreateSchema)
    @blp.response(201, envelope(SecretSchema))
    def post(self, body, app_slug):
        """Create a secret; the value is checked against its type and encrypted"""
        app = app_of_caller(app_slug)
        session = db()
        secret = service.create_secret(session, services().box, app, **body)
        session.commit()
        return ok(secret, "Secret created successfully")


@blp.route("/<key>/")
class SecretItem(MethodView):
    @blp.response(200, envelope(SecretSchema))
    def get(self, app_slug, key):
        """Get one secret (field names only)"""
        return ok(service.get_secret(db(), app_of_caller(app_slug), key), "Data retrieved successfully")

    @blp.arguments(SecretUpdateSchema)
    @blp.response(200, envelope(SecretSchema))
    def put(self, body, app_slug, key):
        """Replace the value and/or description of a secret"""
        return _update(body, app_slug, key)

    @blp.arguments(SecretUpdateSchema)
    @blp.response(200, envelope(SecretSchema))
    def patch(self, body, app_slug, key):
        """Same as PUT: only the given fields change"""
        return _update(body, app_slug, key)

    @blp.response(200)
    def delete(self, app_slug, key):
        """Delete a secret"""
        session = db()
        service.delete_secret(session, app_of_caller(app_slug), key)
        session.commit()
        return ok(None, "Secret deleted successfully")


@blp.route("/<key>/test/")
class SecretTest(MethodView):
    @blp.response(200)
    def post(self, app_slug, key):
        """Open a connection with the secret and run a trivial read"""
        from shared.execution_store import ExecutionStore
        from shared.services.executions import test_secret

        svc = services()
        store = ExecutionStore(svc.redis, result_ttl=svc.settings.result_ttl)
        return test_secret(db(), store, svc.enqueuer, app=app_of_caller(app_slug), secret_key=key)


def _update(body, app_slug, key):
    app = app_of_caller(app_slug)
    session = db()
    secret = service.update_secret(
        session,
        services().box,
        app,
        key,
        value=body.get("value"),
        has_value="value" in body,
        description=body.get("description"),
        type_slug=body.get("type_slug"),
    )
    session.commit()
    return ok(secret, "Secret updated successfully")
