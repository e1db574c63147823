"""Engine and session factory for the platform database."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str, **kwargs) -> Engine:
    return create_engine(
        database_url,
        pool_pre_ping=True,
        pool_size=kwargs.pop("pool_size", 10),
        max_overflow=kwargs.pop("max_overflow", 20),
        connect_args={"connect_timeout": 10, "application_name": "analytics-api"},
        json_serializer=_json_dumps,
        **kwargs,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def libpq_params(database_url: str) -> dict[str, object]:
    """psycopg2 connect() keywords for a SQLAlchemy URL (used by the internal connector)."""
    url = make_url(database_url)
    params: dict[str, object] = {
        "host": url.host or "localhost",
        "port": url.port or 5432,
        "dbname": url.database,
        "user": url.username,
    }
    if url.password:
        params["password"] = url.password
    params.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return params


def _json_dumps(value: object) -> str:
    import simplejson

    return simplejson.dumps(value, use_decimal=True)
