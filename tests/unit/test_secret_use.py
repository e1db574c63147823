"""Where a secret may land in a rendered query (shared.templating, "secret use"), and what the
Redactor removes from results and messages (shared.results).

The sandbox keeps a template from transforming a secret; these tests are about the database
doing it: md5('{{ secret.pg.password }}'), substr(...), '...' LIKE 'a%', current_query().
A secret may only be returned whole as a result column or compared whole for equality.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
from decimal import Decimal

import pytest

from shared import results, templating
from shared.dialects import Dialect
from shared.errors import QueryValidationError
from shared.results import REDACTED, Redactor
from shared.templating import SecretNamespace, render, render_preview

PASSWORD = "Kx7vQ2rTz9Lm4pW8"
TOKEN = "tok-Hq5Zr8Wn3Jc6"
SECRETS = {
    "pg": {"host": "db.internal", "password": PASSWORD, "port": 5432, "connect_timeout": 5},
    "generic": {"token": TOKEN, "pin": "0042", "short": "ab", "flag": True, "negative": -7777},
    "plain": "plain-string-secret",
}
PROFILE = {"id": 7, "username": "ada", "email": "ada@example.com", "first_name": "Ada", "last_name": "L",
           "is_staff": False, "is_superuser": False}
S = "{{ secret.pg.password }}"
G = "{{ secret.generic.token }}"


def _render(template: str, dialect: Dialect = Dialect.POSTGRES):
    return render(template, dialect=dialect, params={}, secrets=SecretNamespace(SECRETS, PROFILE))


def _refused(template: str, dialect: Dialect = Dialect.POSTGRES) -> QueryValidationError:
    with pytest.raises(QueryValidationError) as caught:
        _render(template, dialect)
    error = caught.value
    for secret in (PASSWORD, TOKEN):
        assert secret not in error.message and secret not in json.dumps(error.details)
    return error


# --------------------------------------------------------------------------- allowed uses

ALLOWED = [
    # returned whole as a result column (the Redactor replaces it)
    (Dialect.POSTGRES, f"SELECT '{S}' AS p"),
    (Dialect.POSTGRES, f"SELECT '{S}' AS p, '{G}' AS t"),
    (Dialect.POSTGRES, f"SELECT ('{S}') AS p FROM orders ORDER BY 1"),
    (Dialect.POSTGRES, f"SELECT E'{S}' AS p"),
    (Dialect.POSTGRES, f"SELECT 'Bearer {S}' AS header"),
    (Dialect.POSTGRES, f"(SELECT '{S}' AS p)"),
    (Dialect.POSTGRES, f"WITH c AS (SELECT 1 AS one) SELECT '{S}' AS p FROM c"),
    (Dialect.POSTGRES, "SELECT {{ secret.pg.port }} AS port"),
    (Dialect.POSTGRES, "SELECT {{ secret.generic.negative }} AS n"),
    (Dialect.POSTGRES, "SELECT '{{ secret.plain }}' AS p"),
    # a cast that keeps the value (PostgreSQL family)
    (Dialect.POSTGRES, f"SELECT '{S}'::int AS p"),
    (Dialect.POSTGRES, f"SELECT CAST('{S}' AS text) AS p"),
    (Dialect.REDSHIFT, f"SELECT '{S}'::bigint AS p"),
    # compared whole
    (Dialect.POSTGRES, f"SELECT count(*) FROM orders WHERE customer = '{S}'"),
    (Dialect.POSTGRES, f"SELECT count(*) FROM orders WHERE customer <> '{S}' AND status != '{G}'"),
    (Dialect.POSTGRES, f"SELECT count(*) FROM orders WHERE customer IN ('{S}', '{G}')"),
    (Dialect.POSTGRES, f"SELECT count(*) FROM orders WHERE '{S}' NOT IN (SELECT customer FROM orders)"),
    (Dialect.POSTGRES, f"SELECT count(*) FROM orders WHERE customer IS DISTINCT FROM '{S}'"),
    (Dialect.POSTGRES, f"SELECT count(*) FROM orders o JOIN orders p ON o.customer = '{S}'"),
    (Dialect.POSTGRES, f"SELECT CASE WHEN customer = '{S}' THEN 1 ELSE 0 END AS m FROM orders"),
    (Dialect.POSTGRES, f"SELECT customer = '{S}' AS same FROM orders"),
    (Dialect.POSTGRES, f"SELECT count(*) FROM orders WHERE customer = '{S}'::text"),
    (Dialect.POSTGRES, "SELECT count(*) FROM orders WHERE id = {{ secret.generic.negative }}"),
    (Dialect.POSTGRES, "SELECT count(*) FROM orders WHERE customer = '{{ secret.generic.short }}'"),
    (Dialect.POSTGRES, "SELECT count(*) FROM orders WHERE paid = {{ secret.generic.flag }}"),
    (Dialect.MYSQL, f"SELECT '{S}' AS p"),
    (Dialect.MYSQL, f"SELECT COUNT(*) FROM orders WHERE customer <=> '{S}'"),
    (Dialect.CLICKHOUSE, f"SELECT '{S}' AS p"),
    (Dialect.CLICKHOUSE, f"SELECT count() FROM orders WHERE customer = '{S}'"),
    (Dialect.REDSHIFT, f"SELECT count(*) FROM orders WHERE customer IN ('{S}')"),
    (Dialect.ELASTICSEARCH, '{"query": {"term": {"customer": "%s"}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"term": {"customer": {"value": "%s"}}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"terms": {"customer": ["%s", "x"]}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"bool": {"filter": [{"term": {"customer": "%s"}}]}}}' % S),
    (Dialect.ELASTICSEARCH, '{"aggs": {"mine": {"filter": {"term": {"customer": "%s"}}}}}' % S),
]


@pytest.mark.parametrize(("dialect", "template"), ALLOWED)
def test_whole_values_and_equality_are_allowed(dialect, template):
    rendered = _render(template, dialect)
    assert rendered.secret_values or "flag" in template  # reported for redaction (not booleans)
    render_preview(template, dialect=dialect)  # and accepted when the query is saved


def test_the_real_query_holds_the_secret_and_only_the_probe_holds_sentinels():
    rendered = _render(f"SELECT '{S}' AS p WHERE 1 = {{{{ secret.pg.port }}}}")
    assert rendered.text == f"SELECT '{PASSWORD}' AS p WHERE 1 = 5432"


# --------------------------------------------------------------------------- refused uses

TRANSFORMS = [
    # functions that hash, encode, cut, reorder or measure the secret
    (Dialect.POSTGRES, f"SELECT md5('{S}') AS h"),
    (Dialect.POSTGRES, f"SELECT sha256(convert_to('{S}', 'UTF8')) AS h"),
    (Dialect.POSTGRES, f"SELECT substr('{S}', 1, 1) AS c"),
    (Dialect.POSTGRES, f"SELECT substring('{S}' FROM 2 FOR 3) AS c"),
    (Dialect.POSTGRES, f"SELECT left('{S}', 4) AS c"),
    (Dialect.POSTGRES, f"SELECT encode(convert_to('{S}', 'UTF8'), 'base64') AS b"),
    (Dialect.POSTGRES, f"SELECT encode('{S}'::bytea, 'hex') AS b"),
    (Dialect.POSTGRES, f"SELECT reverse('{S}') AS r"),
    (Dialect.POSTGRES, f"SELECT upper('{S}') AS u"),
    (Dialect.POSTGRES, f"SELECT initcap('{S}') AS u"),
    (Dialect.POSTGRES, f"SELECT translate('{S}', 'abc', 'xyz') AS t"),
    (Dialect.POSTGRES, f"SELECT replace('{S}', 'K', 'k') AS t"),
    (Dialect.POSTGRES, f"SELECT length('{S}') AS n"),
    (Dialect.POSTGRES, f"SELECT ascii('{S}') AS n"),
    (Dialect.POSTGRES, f"SELECT regexp_split_to_array('{S}', '') AS a"),
    (Dialect.POSTGRES, f"SELECT string_to_array('{S}', NULL) AS a"),
    (Dialect.POSTGRES, f"SELECT quote_literal('{S}') AS q"),
    (Dialect.POSTGRES, f"SELECT to_json('{S}'::text) AS j"),
    (Dialect.POSTGRES, f"SELECT json_build_object('p', '{S}') AS j"),
    (Dialect.POSTGRES, f"SELECT concat('{S}', '') AS c"),
    (Dialect.POSTGRES, f"SELECT '{S}' || 'x' AS c"),
    (Dialect.POSTGRES, f"SELECT coalesce('{S}', 'x') AS c"),
    (Dialect.POSTGRES, f"SELECT greatest('{S}', 'm') AS g"),
    (Dialect.POSTGRES, f"SELECT '{S}' COLLATE \"C\" AS c"),
    # casts that change the value
    (Dialect.POSTGRES, f"SELECT '{S}'::varchar(3) AS c"),
    (Dialect.POSTGRES, f"SELECT '{S}'::\"char\" AS c"),
    (Dialect.POSTGRES, f"SELECT '{S}'::name AS c"),
    (Dialect.POSTGRES, f"SELECT '{S}'::bytea AS c"),
    (Dialect.POSTGRES, f"SELECT '{S}'::tsvector AS c"),
    (Dialect.POSTGRES, f"SELECT '{S}'::numeric(5, 1) AS c"),
    (Dialect.POSTGRES, f"SELECT DATE '{S}' AS c"),
    (Dialect.REDSHIFT, f"SELECT '{S}'::text AS c"),
    # oracles: one bit per query
    (Dialect.POSTGRES, f"SELECT 1 AS x WHERE '{S}' LIKE 'K%'"),
    (Dialect.POSTGRES, f"SELECT 1 AS x WHERE '{S}' ILIKE 'k%'"),
    (Dialect.POSTGRES, f"SELECT 1 AS x WHERE '{S}' SIMILAR TO 'K%'"),
    (Dialect.POSTGRES, f"SELECT 1 AS x WHERE '{S}' ~ '^K'"),
    (Dialect.POSTGRES, f"SELECT 1 AS x WHERE '{S}' > 'm'"),
    (Dialect.POSTGRES, f"SELECT 1 AS x WHERE '{S}' <= 'm'"),
    (Dialect.POSTGRES, f"SELECT 1 AS x WHERE '{S}' BETWEEN 'a' AND 'm'"),
    (Dialect.POSTGRES, f"SELECT 1 AS x WHERE position('K' IN '{S}') = 1"),
    (Dialect.POSTGRES, f"SELECT 1 AS x WHERE starts_with('{S}', 'K')"),
    (Dialect.POSTGRES, f"SELECT CASE '{S}' WHEN 'a' THEN 1 END AS x"),
    (Dialect.POSTGRES, f"SELECT 1 AS x WHERE 'K' = ANY(string_to_array('{S}', NULL))"),
    # data flow: the secret feeds other expressions
    (Dialect.POSTGRES, f"SELECT md5(p) FROM (SELECT '{S}' AS p) t"),
    (Dialect.POSTGRES, f"WITH s AS (SELECT '{S}' AS p) SELECT reverse(p) FROM s"),
    (Dialect.POSTGRES, f"SELECT upper(x) FROM (VALUES ('{S}')) v(x)"),
    (Dialect.POSTGRES, f"SELECT (SELECT '{S}') AS p"),
    (Dialect.POSTGRES, f"SELECT ARRAY['{S}'] AS a"),
    (Dialect.POSTGRES, f"SELECT ('{S}', 1) AS t"),
    # a result column whose type another branch decides (bytea: base64; "char": one letter)
    (Dialect.POSTGRES, f"SELECT '{S}' AS p UNION ALL SELECT NULL::bytea"),
    (Dialect.POSTGRES, f"SELECT '{S}' AS p UNION SELECT 'x'::\"char\""),
    (Dialect.POSTGRES, f"SELECT note FROM accept_canary UNION ALL SELECT '{S}'"),
    (Dialect.MYSQL, f"SELECT '{S}' AS p UNION ALL SELECT CAST(NULL AS BINARY)"),
    # places that are not values
    (Dialect.POSTGRES, "SELECT 1 LIMIT {{ secret.pg.port }}"),
    (Dialect.POSTGRES, "SELECT 1 OFFSET {{ secret.pg.port }}"),
    (Dialect.POSTGRES, "SELECT -{{ secret.pg.port }} AS p"),
    (Dialect.POSTGRES, "SELECT {{ secret.pg.port }} + 1 AS p"),
    (Dialect.POSTGRES, "SELECT 1 WHERE {{ secret.generic.flag }}"),
    (Dialect.POSTGRES, f"EXPLAIN SELECT md5('{S}')"),
    (Dialect.POSTGRES, f"EXPLAIN SELECT '{S}'"),
    # output that the Redactor could not recognise: booleans and short values
    (Dialect.POSTGRES, "SELECT {{ secret.generic.flag }} AS f"),
    (Dialect.POSTGRES, "SELECT '{{ secret.generic.short }}' AS s"),
    (Dialect.POSTGRES, "SELECT 'x{{ secret.generic.short }}' AS s"),
    (Dialect.POSTGRES, "SELECT '{{ secret.pg.connect_timeout }}' AS s"),
    # reading the query text back (it holds the secret)
    (Dialect.POSTGRES, f"SELECT substr(current_query(), 8, 4) AS q WHERE 'x' <> '{S}'"),
    (Dialect.POSTGRES, f"SELECT query FROM pg_stat_activity WHERE 'x' <> '{S}'"),
    (Dialect.POSTGRES, f"SELECT query FROM pg_catalog.pg_stat_activity WHERE 'x' <> '{S}'"),
    (Dialect.POSTGRES, f"SELECT pg_stat_get_backend_activity(1) AS q WHERE 'x' <> '{S}'"),
    (Dialect.MYSQL, f"SELECT INFO FROM information_schema.PROCESSLIST WHERE 'x' <> '{S}'"),
    (Dialect.MYSQL, f"SELECT SQL_TEXT FROM performance_schema.events_statements_current WHERE 'x' <> '{S}'"),
    (Dialect.MYSQL, f"SELECT * FROM sys.session WHERE 'x' <> '{S}'"),
    (Dialect.CLICKHOUSE, f"SELECT query FROM system.processes WHERE 'x' <> '{S}'"),
    (Dialect.CLICKHOUSE, f"SELECT query FROM system.query_log WHERE 'x' <> '{S}'"),
    (Dialect.REDSHIFT, f"SELECT text FROM stv_inflight WHERE 'x' <> '{S}'"),
    (Dialect.REDSHIFT, f"SELECT querytxt FROM stl_query WHERE 'x' <> '{S}'"),
    # an output read back through its alias (MySQL HAVING/ORDER BY, ClickHouse and Redshift
    # anywhere), or aliased inside an expression (ClickHouse)
    (Dialect.MYSQL, f"SELECT '{S}' AS p FROM dual HAVING p LIKE 'K%'"),
    (Dialect.MYSQL, f"SELECT '{S}' AS p FROM dual ORDER BY p > 'm'"),
    (Dialect.CLICKHOUSE, f"SELECT '{S}' AS p, reverse(p) AS r"),
    (Dialect.CLICKHOUSE, f"SELECT 1 AS x WHERE customer = ('{S}' AS p) AND startsWith(p, 'K')"),
    (Dialect.CLICKHOUSE, f"WITH '{S}' AS p SELECT reverse(p) AS r"),
    (Dialect.REDSHIFT, f"SELECT '{S}' AS p, upper(p) AS u"),
    (Dialect.POSTGRES, f"SELECT '{S}' AS customer FROM orders WHERE customer LIKE 'K%'"),
    (Dialect.MYSQL, f"SELECT @v := '{S}' AS p"),
    # MySQL and ClickHouse
    (Dialect.MYSQL, f"SELECT MD5('{S}') AS h"),
    (Dialect.MYSQL, f"SELECT HEX('{S}') AS h"),
    (Dialect.MYSQL, f"SELECT TO_BASE64('{S}') AS h"),
    (Dialect.MYSQL, f"SELECT SUBSTRING('{S}', 1, 1) AS c"),
    (Dialect.MYSQL, f"SELECT CAST('{S}' AS SIGNED) AS n"),
    (Dialect.MYSQL, f"SELECT '{S}' 'suffix' AS c"),
    (Dialect.MYSQL, f"SELECT 1 AS x WHERE '{S}' RLIKE '^K'"),
    (Dialect.MYSQL, f"SELECT 1 AS x WHERE '{S}' LIKE 'K%'"),
    (Dialect.MYSQL, f"SELECT 1 AS x WHERE STRCMP('{S}', 'm') > 0"),
    (Dialect.CLICKHOUSE, f"SELECT reverse('{S}') AS r"),
    (Dialect.CLICKHOUSE, f"SELECT hex('{S}') AS r"),
    (Dialect.CLICKHOUSE, f"SELECT substring('{S}', 1, 1) AS r"),
    (Dialect.CLICKHOUSE, f"SELECT 1 AS x WHERE startsWith('{S}', 'K')"),
    (Dialect.CLICKHOUSE, f"SELECT CAST('{S}' AS FixedString(2)) AS r"),
    # Elasticsearch: prefix, pattern, range and full-text queries; names; numbers
    (Dialect.ELASTICSEARCH, '{"query": {"prefix": {"customer": "%s"}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"wildcard": {"customer": "%s*"}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"regexp": {"customer": "%s.*"}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"fuzzy": {"customer": "%s"}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"range": {"customer": {"gte": "%s"}}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"match": {"customer": "%s"}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"query_string": {"query": "%s"}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"prefix": {"term": {"value": "%s"}}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"term": {"%s": "x"}}}' % S),
    (Dialect.ELASTICSEARCH, '{"size": {{ secret.pg.port }}}'),
    (Dialect.ELASTICSEARCH, '{"aggs": {"a": {"terms": {"field": "%s"}}}}' % S),
    (Dialect.ELASTICSEARCH, '{"query": {"term": {"c": "%s"}}, "query": {"match_all": {}}}' % S),
]


@pytest.mark.parametrize(("dialect", "template"), TRANSFORMS)
def test_transforms_oracles_and_query_text_reads_are_refused(dialect, template):
    error = _refused(template, dialect)
    assert error.details == {"reason": "secret_use"}


@pytest.mark.parametrize(("dialect", "template"), [case for case in TRANSFORMS if "short" not in case[1]
                                                    and "flag }} AS" not in case[1] and "timeout" not in case[1]])
def test_refused_already_when_the_query_is_saved(dialect, template):
    with pytest.raises(QueryValidationError):
        render_preview(template, dialect=dialect)


def test_unreadable_queries_with_secrets_are_refused():
    _refused(f"SELECT '{S}' AS p; SELECT 1")
    _refused(f"SELECT '{S}' AS p FROM (")
    _refused('{"query": {"term": {"c": "%s"}}' % S, Dialect.ELASTICSEARCH)


def test_queries_without_secrets_may_transform_parameters():
    assert render("SELECT md5('{{ v }}')", dialect=Dialect.POSTGRES, params={"v": "x"}).text == "SELECT md5('x')"


QUERY_TEXT_READS = [
    (Dialect.POSTGRES, "SELECT query FROM pg_stat_activity"),
    (Dialect.POSTGRES, "SELECT substr(query, 1, 10) AS q FROM pg_catalog.pg_stat_activity WHERE state = '{{ s }}'"),
    (Dialect.POSTGRES, "SELECT current_query() AS q"),
    (Dialect.POSTGRES, "SELECT statement FROM pg_cursors"),
    (Dialect.POSTGRES, "SELECT * FROM pg_stat_get_activity(NULL) AS a"),
    (Dialect.POSTGRES, "SELECT query FROM public.pg_stat_statements"),
    (Dialect.POSTGRES, 'SELECT query FROM "pg_stat_activity"'),
    (Dialect.POSTGRES, 'SELECT query FROM U&"pg\\005fstat\\005factivity"'),
    (Dialect.POSTGRES, "SELECT query FROM U&\"pg!005fstat!005factivity\" UESCAPE '!'"),
    (Dialect.POSTGRES, 'SELECT query FROM u&"pg\\+00005fstat_activity"'),
    (Dialect.REDSHIFT, 'SELECT query FROM U&"stl\\005fquery"'),
    (Dialect.INTERNAL, "SELECT query FROM pg_stat_activity"),
    (Dialect.MYSQL, "SELECT INFO FROM information_schema.PROCESSLIST"),
    (Dialect.MYSQL, "SELECT SQL_TEXT FROM performance_schema.events_statements_history"),
    (Dialect.MYSQL, "SELECT SQL_TEXT FROM events_statements_history_long"),
    (Dialect.MYSQL, "SELECT * FROM sys.processlist"),
    (Dialect.MYSQL, "SELECT argument FROM mysql.general_log"),
    (Dialect.CLICKHOUSE, "SELECT query FROM system.query_log"),
    (Dialect.CLICKHOUSE, "SELECT query FROM system.processes"),
    (Dialect.REDSHIFT, "SELECT querytxt FROM stl_query"),
    (Dialect.REDSHIFT, "SELECT text FROM svl_statementtext"),
    (Dialect.REDSHIFT, "SELECT text FROM stv_inflight"),
]


@pytest.mark.parametrize(("dialect", "template"), QUERY_TEXT_READS)
def test_no_query_reads_query_texts(dialect, template):
    # Other executions' texts hold their parameters and secrets (a concurrent query with a
    # secret, the query log of a past one): refused with or without a secret in this query.
    for run in (
        lambda: render(template, dialect=dialect, params={"s": "active"}),
        lambda: render_preview(template, dialect=dialect),
    ):
        with pytest.raises(QueryValidationError) as caught:
            run()
        assert caught.value.details == {"reason": "query_text"}


@pytest.mark.parametrize(
    ("dialect", "template"),
    [
        (Dialect.POSTGRES, "SELECT * FROM stl_sales"),  # only the Redshift log tables are refused
        (Dialect.POSTGRES, "SELECT activity FROM pg_stat_user_tables"),
        (Dialect.MYSQL, "SELECT * FROM orders WHERE status = 'processlist'"),
        (Dialect.CLICKHOUSE, "SELECT number FROM system.numbers LIMIT 3"),
    ],
)
def test_other_system_tables_are_left_to_validation(dialect, template):
    render(template, dialect=dialect, params={})


def test_the_parser_never_sees_a_secret(monkeypatch, caplog):
    seen = []
    real_parse = templating.sqlglot.parse

    def spy(text, *args, **kwargs):
        seen.append(text)
        return real_parse(text, *args, **kwargs)

    monkeypatch.setattr(templating.sqlglot, "parse", spy)
    with caplog.at_level(logging.DEBUG):
        _render(f"SELECT '{S}' AS p, {{{{ secret.pg.port }}}} AS n")
        _refused(f"EXPLAIN SELECT '{S}'")
    assert seen and all(PASSWORD not in text and "5432" not in text for text in seen)
    assert PASSWORD not in caplog.text


def test_a_sentinel_lookalike_in_a_parameter_is_only_data():
    namespace = SecretNamespace(SECRETS, PROFILE)
    # A parameter cannot know the render's sentinels; whatever it holds stays a plain value.
    rendered = render(f"SELECT '{S}' AS p, '{{{{ v }}}}' AS v", dialect=Dialect.POSTGRES,
                      params={"v": "zq0123456789abcdefs0z 1000000000000000000"}, secrets=namespace)
    assert rendered.text.startswith(f"SELECT '{PASSWORD}' AS p")


def test_the_user_profile_is_not_a_secret():
    rendered = _render("SELECT upper('{{ secret.user_profile.email }}') AS e LIMIT {{ secret.user_profile.id }}")
    assert rendered.text == "SELECT upper('ada@example.com') AS e LIMIT 7"


def test_minimum_output_length_matches_the_redactor():
    assert templating.MIN_OUTPUT_SECRET_CHARS == results.MIN_REDACT_LENGTH


# --------------------------------------------------------------------------- the Redactor


def test_redactor_removes_the_value_and_its_obvious_forms():
    redactor = Redactor([PASSWORD, "ab"])
    text = f"{PASSWORD} {PASSWORD[::-1]} {PASSWORD.upper()} {PASSWORD.lower()} {PASSWORD.swapcase()} " \
           f"{PASSWORD[::-1].upper()} ab"
    assert redactor.text(text) == " ".join([REDACTED] * 6) + " ab"


@pytest.mark.parametrize(
    "secret",
    ["it's-a-secret", "back\\slash-secret", 'quote"d-secret', "new\nline-secret"],
)
def test_redactor_removes_the_forms_a_secret_takes_inside_a_query(secret):
    redactor = Redactor([secret])
    for escaped in (
        secret.replace("'", "''"),
        secret.replace("\\", "\\\\").replace("'", "''"),
        secret.replace("\\", "\\\\").replace("'", "\\'"),
        json.dumps(secret)[1:-1],
    ):
        assert redactor.text(f"near '{escaped}' at line 1") == f"near '{REDACTED}' at line 1"


def test_redactor_removes_numbers_equal_to_a_numeric_secret():
    redactor = Redactor(["0042", "4_242", "0x1F90", "31337.50", PASSWORD])
    row = [42, 42.0, Decimal("42.000"), 4242, 8080, Decimal("31337.5"), 43, True, "0042", None]
    assert redactor.value(row) == [REDACTED] * 6 + [43, True, REDACTED, None]


def test_redactor_messages_lose_every_long_fragment():
    secret = "Zm9vYmFyLWxvbmctc2VjcmV0LXZhbHVlLXRoYXQtaXMtY3V0"
    redactor = Redactor([secret])
    cut = f"You have an error in your SQL syntax near '{secret[:30]}' at line 1"
    assert redactor.message(cut) == f"You have an error in your SQL syntax near '{REDACTED}' at line 1"
    assert redactor.message(f"x {secret[10:18]} y") == f"x {REDACTED} y"
    assert redactor.message(f"x {secret[10:17]} y") == f"x {secret[10:17]} y"  # too short a piece
    assert redactor.message("relation does not exist") == "relation does not exist"
    # Pieces of short values (an sslmode, a host) are words: only whole values are removed.
    assert Redactor(["disable", "db.internal"]).message("SSL is disabled on internal") == "SSL is [REDACTED]d on internal"
    # Rows keep data: only whole values and their forms are replaced there.
    assert redactor.value(secret[:30]) == secret[:30]
    assert redactor.messages({"detail": [secret[5:20]]}) == {"detail": [REDACTED]}


def test_redactor_leaves_short_secrets_and_hashes_alone():
    # Hashes and encodings are refused before the query runs (secret use); the Redactor is the
    # last layer and cannot recognise them, which is why the query check exists.
    redactor = Redactor([PASSWORD, "abc"])
    digest = hashlib.md5(PASSWORD.encode()).hexdigest()
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    assert redactor.text(f"{digest} {encoded} abc") == f"{digest} {encoded} abc"
