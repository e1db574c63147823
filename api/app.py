"""Flask app factory."""
from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, g, request
from flask_smorest import Api

from api.context import Services
from api.errors import register_error_handlers
from api.json import DecimalJSONProvider
from shared.config import Settings
from shared.crypto import SecretBox
from shared.db import make_engine, make_session_factory
from shared.errors import ValidationError
from shared.jobs import Enqueuer


def create_app(settings: Settings | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    app = Flask(__name__)
    app.json = DecimalJSONProvider(app)
    app.config.update(
        API_TITLE="Analytics API",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{"bearerAuth": []}],
        },
    )
    if test_config:
        app.config.update(test_config)

    engine = make_engine(settings.database_url)
    app.extensions["analytics"] = Services(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        redis=redis.Redis.from_url(settings.redis_url, socket_timeout=settings.max_wait + 10, health_check_interval=30),
        box=SecretBox(settings.secret_keys),
        enqueuer=Enqueuer(settings.broker_url),
    )

    # `/secrets` answers like `/secrets/` instead of a 308 whose body is an HTML page (Flask
    # returns routing redirects as they are, past every error handler), and `//` is a plain
    # 404: no route ever redirects, so every answer is the JSON envelope.
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False
    api = Api(app)
    register_error_handlers(app)

    from api import ops
    from api.executions.routes import blp as executions_blp
    from api.queries.routes import blp as queries_blp
    from api.secrets.routes import blp as secrets_blp

    app.register_blueprint(ops.blp)
    for blp in (secrets_blp, queries_blp, executions_blp):
        api.register_blueprint(blp)

    @app.before_request
    def refuse_nul_in_url() -> None:
        # PostgreSQL text cannot hold NUL: a key, slug or filter with one is a bad request, not a 500.
        if "\x00" in request.path or any("\x00" in k + v for k, v in request.args.items(multi=True)):
            raise ValidationError("The URL must not contain NUL characters")

    @app.teardown_request
    def close_session(exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            if exc is not None:
                session.rollback()
            session.close()

    return app
