"""Saved queries of an app (CONTRACT section 6)."""
from __future__ import annotations

from flask.views import MethodView

from api.auth import app_of_caller, authenticate_request, caller, db
from api.blueprint import Blueprint
from api.context import services
from api.envelope import envelope, ok, ok_list
from api.queries.schemas import QueryCreateSchema, QueryListArgsSchema, QuerySchema, QueryWriteSchema
from shared.services import queries as service

blp = Blueprint("queries", __name__, url_prefix="/api/apps/<app_slug>/analytics/queries", description="Saved queries")
blp.before_request(authenticate_request)

@blp.route("/")
class Queries(MethodView):
    @blp.arguments(QueryListArgsSchema, location="query")
    @blp.response(200, envelope(QuerySchema, many=True))
    def get(self, args, app_slug):
        """List saved queries (filters: tag, search)"""
        rows, total = service.list_queries(
            db(),
            app_of_caller(app_slug),
            tag=args.get("tag"),
            search=args.get("search"),
            page=args["page"],
            page_size=args["page_size"],
        )
        return ok_list(rows, total)

    @blp.arguments(QueryCreateSchema)
    @blp.response(201, envelope(QuerySchema))
    def post(self, body, app_slug):
        """Save a query; its template is checked and validated now"""
        session = db()
        query = service.create_query(
            session, app_of_caller(app_slug), caller().tenant, body, max_timeout=services().settings.query_timeout
        )
        session.commit()
        return ok(query, "Query created successfully")


@blp.route("/<slug>/")
class QueryItem(MethodView):
    @blp.response(200, envelope(QuerySchema))
    def get(self, app_slug, slug):
        """Get one saved query"""
        return ok(service.get_query(db(), app_of_caller(app_slug), slug), "Data retrieved successfully")

    @blp.arguments(QueryWriteSchema)
    @blp.response(200, envelope(QuerySchema))
    def put(self, body, app_slug, slug):
        """Update a query (partial: only the given fields change)"""
        return _update(body, app_slug, slug)

    @blp.arguments(QueryWriteSchema)
    @blp.response(200, envelope(QuerySchema))
    def patch(self, body, app_slug, slug):
        """Same as PUT"""
        return _update(body, app_slug, slug)

    @blp.response(200)
    def delete(self, app_slug, slug):
        """Delete a saved query"""
        session = db()
        service.delete_query(session, app_of_caller(app_slug), slug)
        session.commit()
        return ok(None, "Query deleted successfully")


def _update(body, app_slug, slug):
    session = db()
    query = service.update_query(
        session, app_of_caller(app_slug), caller().tenant, slug, body, max_timeout=services().settings.query_timeout
    )
    session.commit()
    return ok(query, "Query updated successfully")
