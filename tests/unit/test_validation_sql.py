"""Validation of PostgreSQL, Redshift, MySQL and internal (tenant) queries.

Table-driven: the shared corpora (``../shared/corpus``) first, then our own cases of the same
kinds (bypass attempts and false-positive guards).
"""
from __future__ import annotations

import pytest

from shared.dialects import Dialect
from shared.errors import QueryValidationError
from shared.validation import validate_query
from tests.support.corpus import DEFAULT_PLACEHOLDERS, corpus_params

OWN = "tenant_own"
PLATFORM_TABLES = ("platform.secrets", "platform.users", "platform.tokens", "platform.apps")


def refused(sql: str, dialect: Dialect, **kwargs) -> QueryValidationError:
    with pytest.raises(QueryValidationError) as caught:
        validate_query(sql, dialect, **kwargs)
    error = caught.value
    assert error.code == "QueryValidationError"
    assert error.message and len(error.message) < 160
    assert "reason" in error.details
    return error


def accepted(sql: str, dialect: Dialect, **kwargs) -> None:
    validate_query(sql, dialect, **kwargs)


# --------------------------------------------------------------------------------------------
# Corpora
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sql, entry", corpus_params("public_blocked_postgres"))
@pytest.mark.parametrize("dialect", [Dialect.POSTGRES, Dialect.REDSHIFT])
def test_corpus_blocked_postgres(sql, entry, dialect):
    refused(sql, dialect)


@pytest.mark.parametrize("sql, entry", corpus_params("public_blocked_postgres"))
def test_corpus_blocked_postgres_internal(sql, entry):
    refused(sql, Dialect.INTERNAL, tenant_schema=OWN)


@pytest.mark.parametrize("sql, entry", corpus_params("public_allowed_postgres"))
def test_corpus_allowed_postgres(sql, entry):
    accepted(sql, Dialect.POSTGRES)
    accepted(sql, Dialect.INTERNAL, tenant_schema=OWN)


@pytest.mark.parametrize("platform_table", PLATFORM_TABLES)
@pytest.mark.parametrize(
    "sql, entry",
    corpus_params("public_isolation_internal", placeholders={**DEFAULT_PLACEHOLDERS,
                                                             "PLATFORM_TABLE": "{platform}"}),
)
def test_corpus_isolation_internal(sql, entry, platform_table):
    refused(sql.replace("{platform}", platform_table), Dialect.INTERNAL, tenant_schema=OWN)


@pytest.mark.parametrize("sql, entry", corpus_params("public_blocked_mysql"))
def test_corpus_blocked_mysql(sql, entry):
    refused(sql, Dialect.MYSQL)


@pytest.mark.parametrize("sql, entry", corpus_params("public_allowed_mysql"))
def test_corpus_allowed_mysql(sql, entry):
    accepted(sql, Dialect.MYSQL)


# --------------------------------------------------------------------------------------------
# PostgreSQL (also run for internal and, where the syntax exists, Redshift)
# --------------------------------------------------------------------------------------------

POSTGRES_BLOCKED = [
    # data-modifying CTEs and DML hidden in subqueries
    ("WITH x AS (INSERT INTO accept_canary VALUES (9, 'x') RETURNING *) SELECT * FROM x",
     "blocked_statement"),
    ("WITH a AS (SELECT 1), b AS (UPDATE accept_canary SET note = 'x' RETURNING *) "
     "SELECT * FROM a", "blocked_statement"),
    ("WITH a AS (WITH b AS (DELETE FROM accept_canary RETURNING id) SELECT id FROM b) "
     "SELECT * FROM a", "blocked_statement"),
    ("SELECT * FROM (DELETE FROM accept_canary RETURNING *) s", None),
    ("WITH m AS (MERGE INTO accept_canary c USING (SELECT 1 AS id) s ON c.id = s.id "
     "WHEN MATCHED THEN DELETE) SELECT 1", None),
    ("MERGE INTO accept_canary c USING (SELECT 1 AS id) s ON c.id = s.id WHEN MATCHED THEN "
     "DELETE", "blocked_statement"),
    ("TRUNCATE accept_canary", "blocked_statement"),
    ("SELECT 1 UNION ALL SELECT 2 FROM accept_canary FOR UPDATE", "locking_read"),
    # SELECT INTO anywhere, locking reads
    ("SELECT (SELECT 1 INTO accept_evil)", None),
    ("SELECT * FROM accept_canary FOR UPDATE OF accept_canary NOWAIT", "locking_read"),
    ("SELECT * FROM accept_canary FOR KEY SHARE", "locking_read"),
    ("SELECT * FROM accept_canary WHERE id IN (SELECT id FROM accept_canary FOR UPDATE)",
     "locking_read"),
    ("SELECT 1 FROM accept_canary for\nupdate", "locking_read"),
    # functions: case, quoting, schema qualification, unicode escapes, comments in between
    ("SELECT lo_export(16384, '/tmp/sentinel/x')", "blocked_function"),
    ("SELECT lo_unlink(16384)", "blocked_function"),
    ("SELECT lo_put(16384, 0, 'x')", "blocked_function"),
    ('SELECT "pg_read_file"(\'/etc/passwd\')', "blocked_function"),
    ("SELECT pg_catalog.\"pg_read_file\"('/etc/passwd')", "blocked_function"),
    ('SELECT "PG_CATALOG"."PG_SLEEP"(1)', "blocked_function"),
    ("SELECT PG_SLEEP(1)", "blocked_function"),
    ("SELECT Pg_Sleep_For('1 second')", "blocked_function"),
    ("SELECT pg_sleep /* not a comment trick */ (1)", "blocked_function"),
    ("SELECT pg_sleep\n(1)", "blocked_function"),
    ("SELECT U&\"\\0070g_read_file\"('/etc/passwd')", "blocked_function"),
    ("SELECT U&\"!0070g_sleep\" UESCAPE '!' (1)", "blocked_function"),
    ("SELECT u&\"\\+000070g_sleep\"(1)", "blocked_function"),
    ("SELECT 1 --x\r, pg_sleep(1)", "blocked_function"),
    ("SELECT pg_stat_file('/etc/passwd')", "blocked_function"),
    ("SELECT pg_read_file('/etc/passwd', 0, 100)", "blocked_function"),
    ("SELECT dblink_exec('host=127.0.0.1', 'DELETE FROM accept_canary')", "blocked_function"),
    ("SELECT * FROM dblink('host=127.0.0.1', 'SELECT 1') AS t(x int)", "blocked_function"),
    ("SELECT pg_advisory_lock(1)", "blocked_function"),
    ("SELECT pg_try_advisory_xact_lock(1)", "blocked_function"),
    ("SELECT nextval('accept_seq')", "blocked_function"),
    ("SELECT setval('accept_seq', 1000)", "blocked_function"),
    ("SELECT txid_current()", "blocked_function"),
    ("SELECT pg_terminate_backend(1)", "blocked_function"),
    ("SELECT pg_switch_wal()", "blocked_function"),
    ("SELECT pg_logical_emit_message(true, 'x', 'y')", "blocked_function"),
    ("SELECT pg_create_restore_point('x')", "blocked_function"),
    ("SELECT query_to_xmlschema('select 1', true, true, '')", "blocked_function"),
    ("SELECT query_to_xml_and_xmlschema('select 1', true, true, '')", "blocked_function"),
    ("SELECT table_to_xml('accept_canary', true, true, '')", "blocked_function"),
    ("SELECT schema_to_xml('public', true, true, '')", "blocked_function"),
    ("SELECT cursor_to_xml('c', 1, true, true, '')", "blocked_function"),
    ("SELECT ts_stat('SELECT to_tsvector(note) FROM accept_canary')", "blocked_function"),
    ("SELECT * FROM crosstab('SELECT 1, 2, 3') AS t(a int, b int)", "blocked_function"),
    ("SELECT set_config('statement_timeout', '0', false)", "blocked_function"),
    ("VALUES (pg_sleep(1))", "blocked_function"),
    ("SELECT 1 UNION SELECT pg_sleep(1)::text::int", "blocked_function"),
    ("SELECT * FROM pg_sleep(1)", "blocked_function"),
    ("SELECT 1 WHERE EXISTS (SELECT lo_import('/etc/hostname'))", "blocked_function"),
    # EXPLAIN
    ("EXPLAIN (ANALYZE) SELECT 1", "explain_analyze"),
    ("EXPLAIN (analyze off) SELECT 1", "explain_analyze"),
    ("EXPLAIN (VERBOSE, ANALYSE) SELECT 1", "explain_analyze"),
    ("explain analyze select 1", "explain_analyze"),
    ("EXPLAIN DELETE FROM accept_canary", "blocked_statement"),
    ("EXPLAIN EXPLAIN SELECT 1", "blocked_statement"),
    ("EXPLAIN SELECT pg_sleep(1)", "blocked_function"),
    ("EXPLAIN SELECT 1; DELETE FROM accept_canary", "multiple_statements"),
    ("EXPLAIN CREATE TABLE accept_evil AS SELECT 1", "blocked_statement"),
    # statement separators, empty statements, quoting
    ("SELECT 1;;", "multiple_statements"),
    (";SELECT 1", "multiple_statements"),
    ("SELECT 1; SELECT 2", "multiple_statements"),
    ("SELECT $$x$$; DELETE FROM accept_canary", "multiple_statements"),
    ("SELECT $a$ $$ $a$; DELETE FROM accept_canary", "multiple_statements"),
    ("SELECT 'x' /* ' */; DELETE FROM accept_canary", "multiple_statements"),
    ("SELECT 'unterminated", "lex_error"),
    ("SELECT 1 /* unterminated", "lex_error"),
    ("SELECT 1 /* /* nested */ ", "lex_error"),
    ("   ", "empty"),
    ("-- only a comment", "empty"),
    ("SELECT 1\x00", "lex_error"),
    # other statements (most become exp.Command)
    ("PREPARE p AS DELETE FROM accept_canary", "blocked_statement"),
    ("EXECUTE p", "blocked_statement"),
    ("DEALLOCATE ALL", "blocked_statement"),
    ("CALL accept_wipe_canary()", "blocked_statement"),
    ("LISTEN accept_evil", "blocked_statement"),
    ("CLUSTER accept_canary", "blocked_statement"),
    ("LOCK TABLE accept_canary", "blocked_statement"),
    ("SAVEPOINT s", "blocked_statement"),
    ("COMMIT", "blocked_statement"),
    ("SECURITY LABEL ON TABLE accept_canary IS 'x'", "blocked_statement"),
    ("REFRESH MATERIALIZED VIEW accept_mv", "blocked_statement"),
    ("IMPORT FOREIGN SCHEMA x FROM SERVER s INTO public", "blocked_statement"),
    ("DECLARE c CURSOR FOR SELECT 1", "blocked_statement"),
    ("SET search_path TO public", "blocked_statement"),
    ("GRANT SELECT ON accept_canary TO PUBLIC", "blocked_statement"),
    ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", "blocked_statement"),
    ("DROP TABLE accept_canary -- ; SELECT 1", "blocked_statement"),
]


@pytest.mark.parametrize("sql, reason", POSTGRES_BLOCKED)
@pytest.mark.parametrize("dialect", [Dialect.POSTGRES, Dialect.INTERNAL, Dialect.REDSHIFT])
def test_postgres_blocked(sql, reason, dialect):
    error = refused(sql, dialect, tenant_schema=OWN if dialect is Dialect.INTERNAL else None)
    if reason is not None and dialect is not Dialect.REDSHIFT:
        assert error.details["reason"] == reason, error.details


POSTGRES_ALLOWED = [
    "SELECT 1;",
    "SELECT 1; -- trailing comment",
    "SELECT 1 /* trailing */ ;",
    "VALUES (1, 'a'), (2, 'b')",
    "TABLE accept_canary",
    "(SELECT id FROM accept_canary)",
    "SELECT pg_typeof(1), pg_size_pretty(1024::bigint), pg_column_size('x'::text)",
    "SELECT 'pg_sleep(1); DELETE FROM accept_canary' AS s",
    'SELECT "sleep" FROM (SELECT 1 AS sleep) s',
    'SELECT 1 AS "into", 2 AS "for", 3 AS "delete"',
    "WITH roles AS (SELECT 1 AS r) SELECT * FROM roles",
    "WITH pg_like_name AS (SELECT 1 AS x) SELECT x FROM pg_like_name",
    "SELECT x FROM (SELECT 1 AS x) AS \"delete\"",
    "SELECT 1 /* nested /* ; DELETE FROM accept_canary */ still a comment */ AS x",
    "SELECT E'it\\'s' AS s",
    "SELECT 'a' || $tag$b;c$tag$ AS s",
    "SELECT n FROM generate_series(1, 3) AS g(n)",
    "SELECT substring('abc' FROM 1 FOR 2) AS s",
    "SELECT substring(note FOR key) FROM (SELECT 'abc' AS note, 2 AS key) s",
    "SELECT now() AT TIME ZONE 'UTC' AS t",
    "SELECT count(*) FILTER (WHERE id > 1) AS n FROM accept_canary",
    "SELECT '{\"a\": 1}'::jsonb #>> '{a}' AS v",
    "SELECT 1 # 3 AS xor",
    "SELECT status FROM app_orders WHERE status = 'back\\slash'",
    "SELECT status FROM app_orders WHERE status = 'it''s complicated'",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY id) AS p FROM accept_canary",
    "SELECT id FROM accept_canary ORDER BY id LIMIT 2 OFFSET 1",
    "SELECT id FROM accept_canary EXCEPT SELECT 2",
    "SELECT CAST(id AS numeric(10, 2)) AS n, id::varchar(5) AS s FROM accept_canary",
    "EXPLAIN SELECT * FROM accept_canary",
    "EXPLAIN (FORMAT JSON, COSTS OFF) SELECT id FROM accept_canary",
    "EXPLAIN VERBOSE SELECT 1",
    "SELECT U&'d\\0061t\\+000061' AS s",
    "SELECT 'text with a backslash at the end\\' AS s",
    "SELECT 'for update' AS s, 'INTO' AS t",
    "SELECT CASE WHEN random() < 2 THEN 'sleep(1)' END AS s",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) "
    "SELECT n FROM t",
]


@pytest.mark.parametrize("sql", POSTGRES_ALLOWED)
@pytest.mark.parametrize("dialect", [Dialect.POSTGRES, Dialect.INTERNAL])
def test_postgres_allowed(sql, dialect):
    accepted(sql, dialect, tenant_schema=OWN if dialect is Dialect.INTERNAL else None)


def test_show_reads_a_setting():
    accepted("SHOW search_path", Dialect.POSTGRES)
    accepted("SHOW TimeZone", Dialect.INTERNAL, tenant_schema=OWN)
    accepted("SHOW TABLES FROM SCHEMA dev.public LIKE 'acc%' LIMIT 5", Dialect.REDSHIFT)
    refused("SHOW search_path; SET search_path TO public", Dialect.POSTGRES)
    refused("SHOW (SELECT pg_sleep(1))", Dialect.POSTGRES)
    refused("EXPLAIN SHOW search_path", Dialect.POSTGRES)


def test_current_setting_and_currval_are_only_refused_for_internal():
    accepted("SELECT current_setting('timezone') AS tz", Dialect.POSTGRES)
    refused("SELECT current_setting('search_path')", Dialect.INTERNAL, tenant_schema=OWN)
    accepted("SELECT currval('accept_seq')", Dialect.POSTGRES)
    refused("SELECT currval('tenant_other.seq')", Dialect.INTERNAL, tenant_schema=OWN)


@pytest.mark.parametrize("sql", [
    "UNLOAD ('SELECT * FROM accept_canary') TO 's3://bucket/x' IAM_ROLE 'arn'",
    "SELECT '\\'; DELETE FROM accept_canary; --'",
    "SELECT 'a\\' ; DELETE FROM accept_canary; --'",
    "SELECT * FROM accept_canary; COPY accept_canary TO 's3://x'",
])
def test_redshift_blocked(sql):
    refused(sql, Dialect.REDSHIFT)


@pytest.mark.parametrize("sql", [
    "SELECT 'it\\'s' AS s",
    "SELECT id FROM accept_canary WHERE note = 'alpha' LIMIT 1",
    "EXPLAIN SELECT id FROM accept_canary",
    "SELECT listagg(note, ',') WITHIN GROUP (ORDER BY id) AS notes FROM accept_canary",
])
def test_redshift_allowed(sql):
    accepted(sql, Dialect.REDSHIFT)


def test_error_is_short_and_positioned():
    error = refused("SELECT 1\n  , pg_sleep(5)", Dialect.POSTGRES)
    assert error.message == "Function pg_sleep is not allowed"
    assert error.details == {"reason": "blocked_function", "position": {"line": 2, "col": 5}}
    error = refused("DELETE FROM accept_canary", Dialect.POSTGRES)
    assert error.message == "Only read queries are allowed: DELETE is blocked"
    error = refused("SELECT 1; SELECT 2", Dialect.POSTGRES)
    assert error.message == "Exactly one statement is allowed"


# --------------------------------------------------------------------------------------------
# Internal: tenant isolation
# --------------------------------------------------------------------------------------------

INTERNAL_BLOCKED = [
    'SELECT * FROM "TENANT_OTHER".app_orders',
    'SELECT * FROM "TENANT_OWN".app_orders',  # quoted upper case is another schema
    'SELECT * FROM U&"tenant\\005fother".app_orders',
    'SELECT * FROM U&"tenant!005fother" UESCAPE \'!\'.app_orders',
    "SELECT * FROM tenant_other . app_orders",
    "SELECT * FROM appdb.tenant_own.app_orders",
    "SELECT tenant_other.app_orders.customer FROM app_orders",
    "SELECT * FROM ONLY tenant_other.app_orders",
    "TABLE tenant_other.app_orders",
    "SELECT * FROM app_orders JOIN tenant_other.app_orders o USING (id)",
    "SELECT (SELECT count(*) FROM tenant_other.app_orders) AS n",
    "WITH x AS (SELECT * FROM tenant_other.app_orders) SELECT * FROM x",
    "SELECT * FROM pg_temp.accept_evil",
    "SELECT * FROM pg_roles",
    "SELECT * FROM pg_user",
    "SELECT * FROM pg_stat_activity",
    "SELECT * FROM pg_settings",
    "SELECT * FROM PG_CLASS",
    'SELECT * FROM "pg_catalog".pg_class',
    'SELECT * FROM "information_schema"."tables"',
    "SELECT * FROM information_schema.columns WHERE table_schema = 'tenant_other'",
    "SELECT 'app_orders'::regclass",
    "SELECT CAST('app_orders' AS regclass)",
    "SELECT 'app_orders'::pg_catalog.regclass",
    "SELECT 'app_orders'::\"regclass\"::oid",
    "SELECT 'tenant_other'::regnamespace::oid",
    "SELECT 'now'::regproc",
    "SELECT to_regclass('tenant_other.app_orders')",
    "SELECT to_regnamespace('tenant_other')",
    "SELECT has_table_privilege('tenant_other.app_orders', 'select')",
    "SELECT has_schema_privilege('tenant_other', 'usage')",
    "SELECT obj_description(1)",
    "SELECT col_description(1, 1)",
    "SELECT current_schemas(true)",
    "SELECT pg_total_relation_size('tenant_other.app_orders')",
    "SELECT pg_table_size('tenant_other.app_orders')",
    "SELECT pg_get_viewdef('tenant_other.v')",
    "SELECT pg_has_role('analytics', 'member')",
    "SELECT tenant_other.some_function()",
    "SELECT * FROM tenant_other.some_function()",
    "SELECT '(1)'::tenant_other.some_type",
    "SELECT * FROM (WITH pg_class AS (SELECT 1 AS x) SELECT * FROM pg_class) a, pg_class b",
    "WITH a AS (SELECT * FROM pg_class), pg_class AS (SELECT 1 AS x) SELECT * FROM a",
    "EXPLAIN SELECT * FROM tenant_other.app_orders",
    "SELECT * FROM app_orders WHERE id IN (SELECT id FROM platform.secrets)",
]


@pytest.mark.parametrize("sql", INTERNAL_BLOCKED)
def test_internal_isolation_blocked(sql):
    error = refused(sql, Dialect.INTERNAL, tenant_schema=OWN)
    assert error.details["reason"] in {"schema_isolation", "catalog_access", "blocked_function"}


INTERNAL_ALLOWED = [
    "SELECT * FROM app_orders",
    "SELECT * FROM tenant_own.app_orders",
    'SELECT * FROM "tenant_own"."app_orders"',
    "SELECT * FROM TENANT_OWN.app_orders",  # unquoted names fold to lower case
    'SELECT * FROM U&"tenant\\005fown".app_orders',
    "SELECT tenant_own.app_orders.customer FROM tenant_own.app_orders",
    "SELECT customer FROM app_orders WHERE customer = 'tenant_other.app_orders'",
    "SELECT * FROM app_orders AS pg_alias",
    "WITH pg_tables AS (SELECT 1 AS x) SELECT * FROM (SELECT * FROM pg_tables) s",
    "WITH RECURSIVE a AS (SELECT 1 AS x UNION ALL SELECT x + 1 FROM a WHERE x < 3) "
    "SELECT * FROM a",
    "SELECT status, count(*) AS n FROM app_orders GROUP BY status ORDER BY n DESC",
    "EXPLAIN SELECT * FROM app_orders",
]


@pytest.mark.parametrize("sql", INTERNAL_ALLOWED)
def test_internal_isolation_allowed(sql):
    accepted(sql, Dialect.INTERNAL, tenant_schema=OWN)


def test_internal_requires_a_tenant_schema():
    with pytest.raises(ValueError):
        validate_query("SELECT 1", Dialect.INTERNAL)


# --------------------------------------------------------------------------------------------
# MySQL / MariaDB
# --------------------------------------------------------------------------------------------

MYSQL_BLOCKED = [
    ("SELECT * FROM accept_canary INTO OUTFILE '/tmp/sentinel/x'", "outfile"),
    ("SELECT * FROM accept_canary INTO DUMPFILE '/tmp/sentinel/x'", "outfile"),
    ("SELECT id INTO @a FROM accept_canary LIMIT 1", "select_into"),
    ("SELECT id FROM accept_canary LIMIT 1 INTO @a", "select_into"),
    ("SELECT @a := 1", "variable_assignment"),
    ("SELECT 1 FROM DUAL WHERE (@a := 1) = 1", "variable_assignment"),
    ("SELECT 1 --(SELECT SLEEP(5))", "blocked_function"),  # MySQL: 1 - -(SELECT SLEEP(5))
    ("SELECT 1 --x\n; DROP TABLE accept_canary", "multiple_statements"),
    # one string by default, but SLEEP(5) is code under NO_BACKSLASH_ESCAPES
    ("SELECT 'a\\', SLEEP(5) -- '", "blocked_function"),
    ("SELECT BENCHMARK(1000000, MD5('a'))", "blocked_function"),
    ("SELECT sleep(1)", "blocked_function"),
    ("SELECT SLEEP (1)", "blocked_function"),
    ("SELECT `sleep`(1)", "blocked_function"),
    ("SELECT \"sleep\"(1)", "blocked_function"),  # a function call under ANSI_QUOTES
    ("SELECT GET_LOCK('a', 10)", "blocked_function"),
    ("SELECT RELEASE_LOCK('a')", "blocked_function"),
    ("SELECT MASTER_POS_WAIT('log', 4)", "blocked_function"),
    ("SELECT NEXTVAL(accept_seq)", "blocked_function"),
    ("SELECT NEXT VALUE FOR accept_seq", None),
    ("SELECT id FROM accept_canary WHERE id = (SELECT SLEEP(1))", "blocked_function"),
    ("SELECT /*+ SET_VAR(max_execution_time=0) */ 1", "optimizer_hint"),
    ("SELECT /*+ MAX_EXECUTION_TIME(0) */ 1", "optimizer_hint"),
    ("SELECT 1 /*!, SLEEP(1) */", "executable_comment"),
    ("SELECT 1 /*!80000 , SLEEP(1) */", "executable_comment"),
    ("SELECT 1 /*m!100000 , SLEEP(1) */", "executable_comment"),
    ("SELECT '\\\\' /*!, SLEEP(1) */", "executable_comment"),
    # under NO_BACKSLASH_ESCAPES the comment would be code
    ("SELECT 'a\\' /*!, SLEEP(1) */ '", "executable_comment"),
    ("SELECT 'a\\' ; DELETE FROM accept_canary; -- '", "multiple_statements"),
    ("SELECT \"a\\\" ; DELETE FROM accept_canary; -- \"", "multiple_statements"),
    ("SELECT 1 # comment\n; DROP TABLE accept_canary", "multiple_statements"),
    ("SHOW TABLES; DROP TABLE accept_canary", "multiple_statements"),
    ("REPLACE INTO accept_canary VALUES (1, 'x')", "blocked_statement"),
    ("HANDLER accept_canary READ FIRST", "blocked_statement"),
    ("DEALLOCATE PREPARE s", "blocked_statement"),
    ("LOAD XML LOCAL INFILE '/etc/hosts' INTO TABLE accept_canary", "blocked_statement"),
    ("SELECT * FROM accept_canary FOR SHARE", "locking_read"),
    ("SELECT * FROM accept_canary FOR UPDATE NOWAIT", "locking_read"),
    ("DESCRIBE ANALYZE SELECT 1", "explain_analyze"),
    ("DESCRIBE accept_canary; DROP TABLE accept_canary", "multiple_statements"),
    ("DESCRIBE accept_canary INTO @x", "select_into"),
    ("EXPLAIN ANALYZE SELECT 1", "explain_analyze"),
    ("EXPLAIN DELETE FROM accept_canary", "blocked_statement"),
    ("EXPLAIN FORMAT=TREE SELECT SLEEP(1)", "blocked_function"),
    ("SET PASSWORD = 'x'", "blocked_statement"),
    ("CALL accept_wipe_canary()", "blocked_statement"),
    ("FLUSH TABLES", "blocked_statement"),
    ("KILL 1", "blocked_statement"),
    ("XA START 'x'", "blocked_statement"),
    ("LOCK TABLES accept_canary READ", "blocked_statement"),
    ("USE mysql", "blocked_statement"),
    ("TRUNCATE TABLE accept_canary", "blocked_statement"),
    ("UPDATE accept_canary SET note = 'x'", "blocked_statement"),
    ("WITH d AS (SELECT 1) DELETE FROM accept_canary", "blocked_statement"),
    ("CREATE TEMPORARY TABLE accept_evil (id INT)", "blocked_statement"),
    ("GRANT ALL ON *.* TO 'x'@'%'", "blocked_statement"),
    ("SELECT 1 INTO OUTFILE '/tmp/sentinel/x' FIELDS TERMINATED BY ','", "outfile"),
]


@pytest.mark.parametrize("sql, reason", MYSQL_BLOCKED)
def test_mysql_blocked(sql, reason):
    error = refused(sql, Dialect.MYSQL)
    if reason is not None:
        assert error.details["reason"] == reason, error.details


MYSQL_ALLOWED = [
    "SELECT 1 -- comment",
    "SELECT 1 # comment",
    "SELECT 1 --\tcomment after a tab",
    "SELECT 1 --1 AS two",  # MySQL: 1 - (-1)
    "SELECT 1;",
    "SHOW TABLES",
    "SHOW CREATE TABLE accept_canary",
    "SHOW COLUMNS FROM accept_canary",
    "SHOW VARIABLES WHERE Variable_name = 'version'",
    "DESC accept_canary",
    "DESCRIBE accept_canary note",
    "DESCRIBE `test`.`accept_canary` 'n%'",
    "EXPLAIN SELECT * FROM accept_canary",
    "EXPLAIN FORMAT=JSON SELECT id FROM accept_canary",
    "SELECT \"it\\\"s\" AS s",
    "SELECT 'a;b' AS s",
    "SELECT @@version AS v, @@session.time_zone AS tz",
    "SELECT 1 AS sleep",
    "SELECT CONVERT('a' USING utf8mb4) AS s",
    "SELECT * FROM accept_canary WHERE note LIKE 'a%' LIMIT 1 OFFSET 1",
    "TABLE accept_canary",
    "VALUES ROW(1, 2), ROW(3, 4)",
    "SELECT 'sleep(5)' AS s, 'INTO OUTFILE' AS t",
    "SELECT id FROM accept_canary /* for update */",
    "SELECT 1 FROM DUAL",
    "SELECT id, note FROM accept_canary WHERE id BETWEEN 1 AND 2 ORDER BY id DESC",
    "SELECT DATE_FORMAT(NOW(), '%Y-%m-%d') AS d",
    "SELECT status FROM orders WHERE status = 'back\\\\slash'",
    "SELECT status FROM orders WHERE status = 'it\\'s complicated'",
    "SELECT IS_FREE_LOCK('a') AS f",
    "(SELECT 1) UNION (SELECT 2)",
]


@pytest.mark.parametrize("sql", MYSQL_ALLOWED)
def test_mysql_allowed(sql):
    accepted(sql, Dialect.MYSQL)


def test_mysql_messages():
    error = refused("/*!50000 DROP TABLE accept_canary */", Dialect.MYSQL)
    assert error.message == "Executable comments (/*! ... */) are not allowed"
    assert error.details["position"] == {"line": 1, "col": 1}
    error = refused("SELECT LOAD_FILE('/etc/passwd')", Dialect.MYSQL)
    assert error.message == "Function LOAD_FILE is not allowed"


# --------------------------------------------------------------------------------------------
# The corpus loader (tests/support/corpus.py)
# --------------------------------------------------------------------------------------------


def test_corpus_loader_substitutes_placeholders(tmp_path, monkeypatch):
    from tests.support import corpus

    (tmp_path / "sample.txt").write_text(
        "# a comment\n\n"
        '{"sql": "SELECT * FROM <<OTHER_SCHEMA>>.t", "params": {"s": ["<<OWN_SCHEMA>>"]}}\n'
        '{"sql": "SELECT 1", "rows": 1}\n',
        encoding="utf-8",
    )
    monkeypatch.setenv(corpus.CORPUS_DIR_ENV, str(tmp_path))
    entries = corpus.load_corpus("sample", corpus.DEFAULT_PLACEHOLDERS)
    assert [e.line for e in entries] == [3, 4]
    assert entries[0]["sql"] == "SELECT * FROM tenant_other.t"
    assert entries[0]["params"] == {"s": ["tenant_own"]}
    assert entries[1].get("rows") == 1 and entries[1].id == "sample:4"
    assert corpus.load_corpus("sample.txt")[0]["sql"].endswith("<<OTHER_SCHEMA>>.t")
    with pytest.raises(KeyError, match="OTHER_SCHEMA"):
        corpus.load_corpus("sample", {"OWN_SCHEMA": "x"})


def test_corpus_dir_defaults_to_the_shared_folder(monkeypatch):
    from tests.support import corpus

    monkeypatch.delenv(corpus.CORPUS_DIR_ENV, raising=False)
    assert (corpus.corpus_dir() / "public_blocked_postgres.txt").is_file()
    uescape = corpus.DEFAULT_PLACEHOLDERS["OTHER_SCHEMA_UESCAPE"]
    assert uescape == "tenant" + "\\" + "005fother"


def test_validation_never_logs_the_query(caplog):
    caplog.set_level("DEBUG")
    for sql in ("SHOW ENGINE INNODB STATUS", "EXPLAIN FOR CONNECTION 1", "VACUUM secret_table"):
        try:
            validate_query(sql, Dialect.MYSQL)
        except QueryValidationError:
            pass
    assert not [r for r in caplog.records if r.name.startswith("sqlglot")]
