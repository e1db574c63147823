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


# --------------------------------------------------------------------------------------------
# Own red-team cases, round 2: siblings of the corpus lines. Blocked: every spelling and
# nesting of a write, escape or dangerous function; allowed: realistic reporting SQL and the
# lookalikes users hit (keywords in strings, comments and quoted names).
# --------------------------------------------------------------------------------------------

OWN_POSTGRES_BLOCKED = [
    # data-modifying CTEs at any depth, behind any read root
    "SELECT * FROM (WITH a AS (SELECT * FROM (WITH d AS (UPDATE accept_canary SET note = 'x' "
    "RETURNING id) SELECT id FROM d) s) SELECT * FROM a) t",
    "WITH d AS (DELETE FROM accept_canary RETURNING *) TABLE d",
    "WITH d AS (DELETE FROM accept_canary RETURNING id) VALUES (1)",
    "SELECT (WITH i AS (INSERT INTO accept_canary VALUES (5, 'x') RETURNING id) SELECT id "
    "FROM i)",
    "SELECT 1 WHERE EXISTS (WITH d AS (DELETE FROM accept_canary RETURNING 1) SELECT * FROM d)",
    "SELECT * FROM accept_canary c, LATERAL (WITH d AS (DELETE FROM accept_canary RETURNING id) "
    "SELECT id FROM d) x",
    'WITH "x" AS NOT MATERIALIZED (UPDATE accept_canary SET note = note RETURNING id) SELECT 1',
    "SELECT 1 UNION ALL (WITH d AS (DELETE FROM accept_canary RETURNING id) SELECT id FROM d)",
    # SELECT INTO in odd places
    "SELECT * INTO TEMP accept_evil FROM accept_canary",
    "SELECT * INTO TEMPORARY TABLE accept_evil FROM accept_canary",
    "SELECT 1 AS x INTO accept_evil UNION SELECT 2",
    "WITH a AS (SELECT 1 AS x) SELECT x INTO accept_evil FROM a",
    "(SELECT 1 INTO accept_evil)",
    "SELECT * /* c */ INTO /* c */ accept_evil FROM accept_canary",
    "SELECT 1e0into accept_evil",  # before PostgreSQL 15: 1e0 INTO accept_evil
    "SELECT 1.0into accept_evil",
    # locking reads
    "SELECT * FROM accept_canary FOR UPDATE OF accept_canary SKIP LOCKED",
    "SELECT * FROM accept_canary c FOR SHARE OF c NOWAIT",
    "SELECT * FROM accept_canary FOR /* x */ UPDATE",
    "SELECT * FROM (SELECT * FROM accept_canary FOR UPDATE) s",
    "WITH a AS (SELECT * FROM accept_canary FOR UPDATE) SELECT * FROM a",
    "TABLE accept_canary FOR UPDATE",
    "SELECT * FROM accept_canary WHERE id=1for update",  # before 15: 1 FOR UPDATE
    # statements that are not reads
    "COPY accept_canary FROM PROGRAM 'id'",
    "copy (select 1) to program 'touch /tmp/x'",
    "CALL public.accept_wipe_canary()",
    "DO LANGUAGE plpgsql $$ BEGIN DELETE FROM accept_canary; END $$",
    "DO 'BEGIN DELETE FROM accept_canary; END'",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    "set transaction_read_only = off",
    "SET default_transaction_read_only = off",
    "RESET statement_timeout",
    "COMMIT AND CHAIN",
    "ABORT",
    "PREPARE TRANSACTION 'x'",
    "BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE",
    "CHECKPOINT",
    "FETCH ALL FROM c",
    "CREATE MATERIALIZED VIEW accept_mv2 AS SELECT 1",
    "CREATE EXTENSION dblink",
    "CREATE TABLE IF NOT EXISTS x AS TABLE accept_canary",
    "CREATE RULE r AS ON SELECT TO accept_canary DO INSTEAD SELECT 1",
    "ALTER ROLE CURRENT_USER SET default_transaction_read_only = off",
    "TRUNCATE ONLY accept_canary RESTART IDENTITY",
    "INSERT INTO accept_canary VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET note = 'evil'",
    "WITH x AS (SELECT 1) INSERT INTO accept_canary SELECT 9, 'x' FROM x",
    "(DELETE FROM accept_canary)",
    "VACUUM (ANALYZE) accept_canary",
    "ANALYSE accept_canary",
    "LOCK accept_canary IN ACCESS EXCLUSIVE MODE",
    "GRANT pg_read_server_files TO CURRENT_USER",
    "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    # EXPLAIN ANALYZE in every spelling, EXPLAIN of a write
    "EXPLAIN (ANALYZE TRUE, BUFFERS) SELECT 1",
    "EXPLAIN (BUFFERS, ANALYZE) DELETE FROM accept_canary",
    'EXPLAIN ("analyze") DELETE FROM accept_canary',
    "EXPLAIN ANALYZE VERBOSE DELETE FROM accept_canary",
    "EXPLAIN VERBOSE ANALYZE SELECT 1",
    "EXPLAIN /* x */ ANALYZE DELETE FROM accept_canary",
    "EXPLAIN\nANALYZE\nSELECT 1",
    "EXPLAIN UPDATE accept_canary SET note = 'x'",
    "EXPLAIN SELECT * INTO accept_evil FROM accept_canary",
    "EXPLAIN EXECUTE p",
    "EXPLAIN WITH d AS (DELETE FROM accept_canary RETURNING 1) SELECT * FROM d",
    # second statements after literals and comments
    "SELECT 1;\nDELETE FROM accept_canary;",
    "SELECT $a$;$a$ AS s; DELETE FROM accept_canary",
    "SELECT $$ $a$ $$; DELETE FROM accept_canary",
    "SELECT e'\\\\'; DELETE FROM accept_canary; --'",
    "SELECT U&'\\0027'; DELETE FROM accept_canary",
    "SELECT 1 --\r; DELETE FROM accept_canary",
    "SELECT $_$a$_$; DELETE FROM accept_canary",
    "SELECT B'01'; DELETE FROM accept_canary",
    # dangerous functions, any spelling, any clause
    "SELECT pg_catalog . pg_sleep ( 1 )",
    "SELECT pg_sleep --x\n(1)",
    'SELECT U&"\\0070\\0067\\005f\\0073\\006c\\0065\\0065\\0070"(1)',
    "SELECT U&\"#0070g_sleep\" UESCAPE '#'(1)",
    'SELECT U&"pg\\005fsleep"(1)',
    "SELECT * FROM ROWS FROM (pg_sleep(1)) AS t",
    "SELECT id FROM accept_canary ORDER BY pg_sleep(1)",
    "SELECT id FROM accept_canary GROUP BY id HAVING pg_sleep(1) IS NULL",
    "SELECT count(*) FILTER (WHERE pg_sleep(1) IS NULL) FROM accept_canary",
    "SELECT sum(id) OVER (PARTITION BY pg_sleep(1)::text) FROM accept_canary",
    "SELECT ARRAY(SELECT pg_sleep(1))",
    "SELECT * FROM pg_ls_waldir()",
    "SELECT lo_get(16384)",
    "SELECT loread(lo_open(1, 262144), 10)",
    "SELECT * FROM dblink_get_result('c') AS t(x int)",
    "SELECT dblink_send_query('c', 'DELETE FROM accept_canary')",
    "SELECT pg_notify('c', 'x')",
    "SELECT pg_current_xact_id()",
    "SELECT txid_current_if_assigned()",
    "SELECT pg_advisory_unlock_all()",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    "SELECT pg_create_logical_replication_slot('s', 'test_decoding')",
    "SELECT pg_file_write('x', 'y', false)",
    "SELECT pg_catalog.set_config('statement_timeout', '0', true)",
    "SELECT \"set_config\"('statement_timeout', '0', true)",
    "SELECT setval(pg_get_serial_sequence('accept_canary', 'id'), 1)",
    "SELECT xmlexists('//x' PASSING BY REF query_to_xml('select 1', true, false, ''))",
    "SELECT database_to_xmlschema(true, true, '')",
    "SELECT cursor_to_xmlschema('c', true, true, '')",
    "SELECT * FROM ts_stat('SELECT to_tsvector(note) FROM accept_canary')",
    "SELECT ts_rewrite('a & b'::tsquery, 'SELECT t, s FROM aliases')",
    "SELECT * FROM connectby('accept_canary', 'id', 'id', '1', 0) AS t(a int, b int, c int)",
    "SELECT * FROM run_command_on_workers('DELETE FROM accept_canary')",
    "TABLE accept_canary UNION SELECT pg_sleep(1)::int, ''",
]


@pytest.mark.parametrize("sql", OWN_POSTGRES_BLOCKED)
@pytest.mark.parametrize("dialect", [Dialect.POSTGRES, Dialect.INTERNAL, Dialect.REDSHIFT])
def test_own_postgres_blocked(sql, dialect):
    refused(sql, dialect, tenant_schema=OWN if dialect is Dialect.INTERNAL else None)


OWN_POSTGRES_ALLOWED = [
    # CTEs: named like keywords, set operations inside, nested in subqueries
    'WITH "delete" AS (SELECT 1 AS x) SELECT x FROM "delete"',
    'WITH "insert" AS (SELECT id FROM accept_canary), "drop" AS (SELECT 1 AS y) '
    'SELECT count(*) FROM "insert", "drop"',
    "WITH t AS (SELECT id FROM accept_canary EXCEPT SELECT 2) SELECT count(*) AS n FROM t",
    "WITH RECURSIVE fib(a, b, n) AS (SELECT 0, 1, 1 UNION ALL SELECT b, a + b, n + 1 FROM fib "
    "WHERE n < 10) SELECT max(a) FROM fib",
    "WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t WHERE n < 5) "
    "SELECT * FROM t",
    "WITH a AS MATERIALIZED (SELECT id FROM accept_canary) SELECT * FROM a",
    "WITH a AS (SELECT 1 AS x), b AS (SELECT * FROM (WITH c AS (SELECT x FROM a) SELECT x "
    "FROM c) s) SELECT * FROM b",
    # statement text inside strings and comments, keyword-named identifiers
    "SELECT 'UPDATE accept_canary SET note = ''x''' AS s",
    "SELECT E'DELETE FROM accept_canary;\\n' AS s",
    "SELECT $body$ DROP TABLE accept_canary; $body$ AS s",
    "SELECT 'a'/* /* */; DELETE FROM accept_canary; -- */",  # nested: one comment
    "SELECT $ab$ x $AB$; DELETE FROM accept_canary; $ab$",  # tags are case-sensitive
    "SELECT id FROM accept_canary -- FOR UPDATE\nORDER BY id",
    'SELECT 1 AS "for update", id AS "into" FROM accept_canary',
    'SELECT note AS "pg_sleep" FROM accept_canary',
    "SELECT 1 AS pg_sleep, 2 AS dblink, 3 AS lo_import",
    'SELECT "update".id FROM accept_canary "update"',
    "/* report */ SELECT 1 AS x",
    # window functions, grouping, dates
    "SELECT id, sum(id) OVER w AS running FROM accept_canary WINDOW w AS (ORDER BY id ROWS "
    "BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
    "SELECT id, lag(note) OVER (ORDER BY id) AS prev, lead(note, 1, 'none') OVER (ORDER BY id) "
    "FROM accept_canary",
    "SELECT first_value(note) OVER (ORDER BY id RANGE BETWEEN UNBOUNDED PRECEDING AND "
    "UNBOUNDED FOLLOWING) FROM accept_canary",
    "SELECT id % 2 AS k, count(*) FROM accept_canary GROUP BY ROLLUP (id % 2)",
    "SELECT id, note, count(*) FROM accept_canary GROUP BY CUBE (id, note)",
    "SELECT id, note, count(*) FROM accept_canary GROUP BY GROUPING SETS ((id), (note), ())",
    "SELECT note, count(*) AS n FROM accept_canary GROUP BY note HAVING count(*) >= 1 "
    "ORDER BY n DESC NULLS LAST",
    "SELECT date_trunc('month', now()) AS m, extract(year FROM now()) AS y, "
    "now() - interval '7 days' AS week_ago",
    "SELECT date_trunc('day', d)::date AS day FROM generate_series(now() - interval '3 days', "
    "now(), interval '1 day') AS d",
    "SELECT to_char(now(), 'YYYY-MM-DD') AS d, age(now(), now() - interval '1 year') AS a",
    "SELECT justify_interval(interval '40 days') AS i, date_bin('15 minutes', now(), "
    "'2000-01-01') AS b",
    "SELECT count(*) FILTER (WHERE note LIKE 'a%') * 100.0 / NULLIF(count(*), 0) AS pct "
    "FROM accept_canary",
    # strings, regexps, JSON, arrays
    "SELECT COALESCE(NULLIF(note, ''), 'n/a') AS note FROM accept_canary",
    "SELECT regexp_replace(note, '[aeiou]', '', 'g') AS r, note ~* '^a' AS m FROM accept_canary",
    "SELECT concat_ws('-', 'a', 'b'), format('%s-%s', 'a', 'b'), md5('x'), "
    "overlay('abc' PLACING 'x' FROM 2 FOR 1)",
    "SELECT string_agg(DISTINCT note, ', ' ORDER BY note) AS notes, array_agg(id ORDER BY id "
    "DESC) AS ids FROM accept_canary",
    "SELECT percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY id) AS q, "
    "mode() WITHIN GROUP (ORDER BY note) AS mo FROM accept_canary",
    "SELECT * FROM unnest(ARRAY['a', 'b'], ARRAY[1, 2]) WITH ORDINALITY AS t(letter, num, ord)",
    "SELECT jsonb_build_object('id', id, 'note', note) AS j FROM accept_canary",
    "SELECT row_to_json((SELECT r FROM (SELECT id, note) r)) FROM accept_canary",
    "SELECT '{\"a\": [1, 2]}'::jsonb @> '{\"a\": [1]}' AS c, '{\"a\": 1}'::jsonb ? 'a' AS h",
    "SELECT '{\"a\": 1}'::jsonb ?| ARRAY['a', 'b'] AS any_key",
    "SELECT jsonb_path_query('{\"a\": [1, 2]}', '$.a[*] ? (@ > 1)') AS v",
    "SELECT * FROM jsonb_to_recordset('[{\"a\": 1}]'::jsonb) AS x(a int)",
    "SELECT ARRAY[1, 2] && ARRAY[2, 3] AS o, (ARRAY[1, 2, 3])[2:3] AS s",
    # joins, LATERAL, VALUES, TABLE, paging
    "SELECT * FROM accept_canary c JOIN (VALUES (1, 'x')) v(id, label) USING (id)",
    "SELECT c.id, x.n FROM accept_canary c CROSS JOIN LATERAL (SELECT count(*) AS n FROM "
    "accept_canary d WHERE d.id <= c.id) x",
    "SELECT c.id FROM accept_canary c LEFT JOIN LATERAL generate_series(1, c.id) g ON true",
    "TABLE accept_canary ORDER BY id LIMIT 1",
    "(TABLE accept_canary) UNION (SELECT 4, 'delta')",
    "SELECT 1 UNION (SELECT 2 INTERSECT (SELECT 2 UNION ALL SELECT 3))",
    "SELECT id FROM accept_canary ORDER BY id OFFSET 1 ROWS FETCH NEXT 1 ROW ONLY",
    "SELECT id FROM accept_canary ORDER BY id FETCH FIRST 1 ROW WITH TIES",
    "SELECT id FROM accept_canary TABLESAMPLE SYSTEM (100)",
    # casts, collations, numbers, misc
    "SELECT id::text, CAST(note AS varchar(10)), '1'::numeric(5,2) FROM accept_canary",
    'SELECT note COLLATE "C" AS n FROM accept_canary ORDER BY note COLLATE "C"',
    "SELECT to_tsvector('english', note) @@ to_tsquery('alpha') AS m FROM accept_canary",
    "SELECT 0x1F AS h, 0b101 AS b, 1.5e-3 AS f, .5 AS half, 1. AS one",
    "SELECT version() AS v, current_user AS u, session_user AS s, current_database() AS d",
    "SELECT 'it''s' AS a, E'it\\'s' AS b, $$it's$$ AS c, U&'it\\0027s' AS d",
    "SELECT id FROM accept_canary WHERE note LIKE ANY (ARRAY['a%', 'b%'])",
]


@pytest.mark.parametrize("sql", OWN_POSTGRES_ALLOWED)
@pytest.mark.parametrize("dialect", [Dialect.POSTGRES, Dialect.INTERNAL])
def test_own_postgres_allowed(sql, dialect):
    accepted(sql, dialect, tenant_schema=OWN if dialect is Dialect.INTERNAL else None)


OWN_INTERNAL_BLOCKED = [
    # other schemas: quoting, spacing, comments, unicode escapes, every clause
    'SELECT * FROM "tenant_other"."app_orders"',
    'SELECT * FROM "Tenant_Own".app_orders',
    "SELECT * FROM tenant_other /* x */ . /* y */ app_orders",
    "SELECT * FROM tenant_other\n.\napp_orders",
    "SELECT * FROM U&\"tenant#005fother\" UESCAPE '#' . app_orders",
    'SELECT * FROM u&"tenant\\+00005fother".app_orders',
    "SELECT customer FROM app_orders EXCEPT SELECT customer FROM \"tenant_other\".app_orders",
    "SELECT * FROM app_orders WHERE id = ANY (ARRAY(SELECT id FROM tenant_other.app_orders))",
    "SELECT * FROM json_populate_record(NULL::tenant_other.app_orders, '{}')",
    'SELECT (NULL::"tenant_other".app_orders).*',
    "SELECT ARRAY[]::tenant_other.t[]",
    "SELECT 1 OPERATOR(tenant_other.+) 1",  # was accepted
    "SELECT 'x' COLLATE tenant_other.\"c\"",  # was accepted
    "SELECT * FROM public.app_orders",
    'SELECT * FROM "$user".app_orders',
    "SELECT * FROM pg_toast.pg_toast_1234",
    "SELECT * FROM tenant_own.tenant_other.app_orders",
    # catalogs that list other tenants' objects, sessions, roles, settings
    "SELECT query FROM pg_stat_activity",
    "SELECT * FROM pg_stat_statements",
    "SELECT * FROM pg_shadow",
    "SELECT * FROM pg_authid",
    "SELECT * FROM pg_proc",
    "SELECT * FROM pg_stats",
    "SELECT * FROM pg_largeobject",
    "SELECT * FROM pg_hba_file_rules",
    "TABLE pg_class",
    "SELECT * FROM app_orders WHERE id IN (TABLE pg_authid)",
    "SELECT * FROM PG_CATALOG.PG_CLASS",
    "SELECT * FROM INFORMATION_SCHEMA.TABLES",
    'SELECT * FROM U&"information\\005fschema".tables',
    "SELECT * FROM information_schema.role_table_grants",
    "WITH x AS (SELECT * FROM information_schema.tables) SELECT count(*) FROM x",
    "SELECT * FROM pg_like_name",  # unqualified pg_*: the catalog is searched first
    # functions that look relations up by name, or reveal the server
    "SELECT 'tenant_other.f'::regproc",
    "SELECT regclass('tenant_other.app_orders')",
    "SELECT to_regtype('tenant_other.t')",
    "SELECT pg_relation_filepath('tenant_other.app_orders')",
    "SELECT pg_indexes_size('tenant_other.app_orders')",
    "SELECT pg_get_functiondef('tenant_other.f'::regproc)",
    "SELECT has_any_column_privilege('platform.secrets', 'SELECT')",
    "SELECT pgstattuple('tenant_other.app_orders')",
    "SELECT get_raw_page('tenant_other.app_orders', 0)",  # was accepted
    "SELECT * FROM heap_page_items(get_raw_page('tenant_other.app_orders', 0))",
    "SELECT * FROM bt_metap('tenant_other.idx')",  # was accepted
    "SELECT currtid2('tenant_other.app_orders', '(0,1)'::tid)",
    "SELECT inet_client_addr()",
    "SELECT current_setting('data_directory', true)",
    "SELECT table_to_xml('app_orders', true, true, '')",
    "SELECT xpath('//customer', query_to_xml('select * from platform.secrets', true, true, ''))",
    "SELECT \"tenant_other\".f()",
    "SELECT note COLLATE pg_catalog.\"C\" FROM app_orders",
    # search_path and role escapes
    "SET LOCAL search_path = tenant_other, public",
    "SET role TO DEFAULT",
    "EXPLAIN (FORMAT JSON) SELECT * FROM tenant_other.app_orders",
]


@pytest.mark.parametrize("sql", OWN_INTERNAL_BLOCKED)
def test_own_internal_blocked(sql):
    refused(sql, Dialect.INTERNAL, tenant_schema=OWN)


OWN_INTERNAL_ALLOWED = [
    "SELECT customer, count(*) AS n FROM app_orders GROUP BY customer ORDER BY n DESC LIMIT 10",
    "SELECT * FROM tenant_own.app_orders o JOIN tenant_own.app_orders p ON p.id = o.id",
    "SELECT * FROM tenant_own . app_orders",
    "SELECT * FROM U&\"tenant!005fown\" UESCAPE '!'.app_orders",
    "SELECT * FROM TENANT_OWN.APP_ORDERS",
    'SELECT * FROM "PG_CLASS"',  # quoted upper case: not the catalog, a tenant table
    "SELECT * FROM tenant_own.pg_like_name",  # qualified: the tenant's own table
    "WITH pg_stats AS (SELECT 1 AS n) SELECT n FROM pg_stats",
    "WITH recent AS (SELECT * FROM app_orders WHERE id > 1), totals AS (SELECT customer, "
    "count(*) AS n FROM recent GROUP BY customer) SELECT * FROM totals ORDER BY n DESC",
    "SELECT 'pg_catalog.pg_tables' AS s, 'information_schema.tables' AS t",
    "SELECT * FROM app_orders -- SELECT * FROM pg_class",
    'SELECT id AS pg_class, id AS "information_schema" FROM app_orders',  # aliases
    "SELECT * FROM app_orders pg_catalog",
    "SELECT current_user, session_user, current_database(), current_schema(), version()",
    "SELECT pg_backend_pid() > 0 AS p",
    "SELECT row_to_json(o) FROM app_orders o",
    "SELECT json_agg(o ORDER BY o.id) FROM app_orders o",
    "SELECT * FROM json_populate_record(NULL::app_orders, '{\"id\": 1}')",
    "SELECT (NULL::tenant_own.app_orders).id",
    "SELECT customer COLLATE tenant_own.\"C\" FROM app_orders",
    "SELECT 1 OPERATOR(+) 1",
    "SELECT quote_ident(customer), format('%s: %s', id, customer) FROM app_orders",
    "SELECT * FROM app_orders WHERE status IN ('paid', 'it''s complicated', 'back\\slash')",
    "SELECT date_trunc('week', now()) AS w, count(*) FROM app_orders GROUP BY 1",
    "SELECT * FROM unnest(ARRAY[1, 2]) AS u(id) LEFT JOIN app_orders USING (id)",
    "SELECT id, customer, rank() OVER (PARTITION BY customer ORDER BY id DESC) FROM app_orders",
    "SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY id) FROM app_orders",
    "TABLE tenant_own.app_orders",
    "SHOW search_path",
]


@pytest.mark.parametrize("sql", OWN_INTERNAL_ALLOWED)
def test_own_internal_allowed(sql):
    accepted(sql, Dialect.INTERNAL, tenant_schema=OWN)


OWN_MYSQL_BLOCKED = [
    # SELECT ... INTO anywhere, including numbers that run into the keyword
    "SELECT 1 UNION SELECT 2 INTO @a",
    "SELECT 1, 2 INTO @a, @b",
    "SELECT id, note FROM accept_canary LIMIT 1 INTO @a, @b",
    "(SELECT 1) UNION (SELECT 2) INTO @x",
    "SELECT 1 INTO @`a`",
    "SELECT 1 FROM dual INTO @a FOR UPDATE",
    "SELECT 1e0into @a",  # MySQL lexes 1e0 INTO @a (was accepted)
    "SELECT 1.5into @a",  # was accepted
    "SELECT 1.into @a",  # was accepted
    "SELECT 1e0into outfile '/tmp/x'",
    "SELECT * FROM accept_canary INTO /* x */ OUTFILE '/tmp/x'",
    "SELECT * FROM accept_canary INTO\nDUMPFILE '/tmp/x'",
    "TABLE accept_canary INTO OUTFILE '/tmp/x'",
    "WITH a AS (SELECT 1) SELECT * FROM a INTO OUTFILE '/tmp/x'",
    # locking reads
    "SELECT * FROM accept_canary FOR UPDATE SKIP LOCKED",
    "SELECT * FROM accept_canary FOR SHARE OF accept_canary NOWAIT",
    "SELECT * FROM accept_canary LOCK /* x */ IN SHARE MODE",
    "SELECT * FROM accept_canary lock\nin share mode",
    "SELECT * FROM accept_canary WHERE id IN (SELECT id FROM accept_canary LOCK IN SHARE MODE)",
    "SELECT * FROM accept_canary FOR UPDATE WAIT 1",
    "SELECT * FROM accept_canary WHERE id=1e0for update",
    "SELECT * FROM accept_canary WHERE id=1.0lock in share mode",
    # HANDLER, LOCK TABLES, transactions, SET, DO, PREPARE
    "HANDLER accept_canary OPEN AS h",
    "HANDLER h READ NEXT",
    "handler accept_canary open",
    "LOCK TABLES accept_canary WRITE",
    "UNLOCK TABLES",
    "LOCK INSTANCE FOR BACKUP",
    "FLUSH TABLES WITH READ LOCK",
    "SET @a := 1",
    "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'",
    "SET STATEMENT max_statement_time = 0 FOR SELECT 1",
    "SET PERSIST max_connections = 1",
    "DO RELEASE_LOCK('x')",
    "PREPARE s FROM @q",
    "EXECUTE s USING @a",
    "XA COMMIT 'x'",
    "START TRANSACTION WITH CONSISTENT SNAPSHOT",
    # EXPLAIN / DESCRIBE / ANALYZE that run or describe a write
    "EXPLAIN FORMAT=JSON DELETE FROM accept_canary",
    "EXPLAIN FORMAT = TREE UPDATE accept_canary SET note = 'x'",
    "EXPLAIN ANALYZE FORMAT=TREE SELECT 1",
    "EXPLAIN /* x */ ANALYZE SELECT * FROM accept_canary",
    "DESC FORMAT=JSON DELETE FROM accept_canary",
    "DESCRIBE INSERT INTO accept_canary VALUES (1, 'x')",
    "EXPLAIN FOR CONNECTION 1",
    "ANALYZE SELECT * FROM accept_canary",  # MariaDB: runs the statement
    "ANALYZE FORMAT=JSON SELECT 1",
    # executable comments and hints anywhere
    "/*!SELECT*/ 1",
    "SELECT /*!32302 1, */ 2",
    "SELECT 1 /*!99999 , SLEEP(1) */",
    "SELECT 1 /*M!, SLEEP(1) */",
    "SELECT 1 /*!50000UNION SELECT LOAD_FILE('/etc/passwd')*/",
    "SELECT 1 FROM accept_canary WHERE id = 1 /*!AND SLEEP(1)*/",
    "SELECT/*!*/1",
    "SELECT \"x\" /*!, SLEEP(1) */",
    "SELECT 1 -- x\n/*!, SLEEP(1) */",
    "SELECT 1 /* x */ /*!, SLEEP(1) */",
    "SELECT 1 /*+ BKA(t) */",
    # functions
    "SELECT (SELECT SLEEP(1)) AS s",
    "SELECT * FROM accept_canary ORDER BY SLEEP(1)",
    "SELECT IF(1, SLEEP(1), 0)",
    "SELECT BENCHMARK(10000000, SHA1('x'))",
    "SELECT LOAD_FILE(0x2f6574632f706173737764)",
    "SELECT HEX(LOAD_FILE('/etc/passwd'))",
    "SELECT RELEASE_ALL_LOCKS()",
    "SELECT SOURCE_POS_WAIT('log', 4)",
    "SELECT SETVAL(accept_seq, 100)",
    "SELECT group_replication_set_as_primary('x')",
    "SELECT version_tokens_set('a=1')",
    "SELECT @a:=id FROM accept_canary",
    "SELECT id, @rn := @rn + 1 FROM accept_canary",
    "VALUES ROW(SLEEP(1))",
    "TABLE accept_canary UNION SELECT SLEEP(1), 2",
    "SHOW TABLES WHERE SLEEP(1) = 0",
    "SHOW COUNT(SLEEP(1)) WARNINGS",
    "SHOW GRANTS FOR CURRENT_USER(SLEEP(1))",
    "SHOW KEYS FROM accept_canary INTO @a",
    # other statements
    "REPLACE accept_canary SET id = 1, note = 'x'",
    "INSERT accept_canary VALUES (9, 'x')",
    "INSERT INTO accept_canary VALUES (1, 'a') ON DUPLICATE KEY UPDATE note = 'evil'",
    "UPDATE accept_canary a JOIN accept_canary b ON a.id = b.id SET a.note = 'x'",
    "DELETE QUICK FROM accept_canary",
    "CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DO DELETE FROM accept_canary",
    "CREATE FUNCTION f RETURNS STRING SONAME 'x.so'",
    "CREATE TABLE x SELECT * FROM accept_canary",
    "ALTER USER CURRENT_USER() IDENTIFIED BY 'x'",
    "REPAIR TABLE accept_canary",
    "CHECKSUM TABLE accept_canary",
    "CACHE INDEX accept_canary IN hot",
    "PURGE BINARY LOGS TO 'x'",
    "CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'x'",
    "SHUTDOWN",
    "CLONE LOCAL DATA DIRECTORY = '/tmp/x'",
    "BINLOG 'xxx'",
    "SELECT * FROM accept_canary PROCEDURE ANALYSE()",
    "SELECT 'x\\'; SELECT SLEEP(1); -- '",
    "SELECT 1 #;\n; DROP TABLE accept_canary",
]


@pytest.mark.parametrize("sql", OWN_MYSQL_BLOCKED)
def test_own_mysql_blocked(sql):
    refused(sql, Dialect.MYSQL)


OWN_MYSQL_ALLOWED = [
    "SELECT id, note FROM accept_canary ORDER BY id LIMIT 1, 2",
    "SELECT SQL_NO_CACHE id FROM accept_canary",
    "SELECT SQL_CALC_FOUND_ROWS id FROM accept_canary LIMIT 1",
    "SELECT STRAIGHT_JOIN a.id FROM accept_canary a JOIN accept_canary b ON a.id = b.id",
    "SELECT * FROM accept_canary FORCE INDEX (PRIMARY) WHERE id > 0",
    "SELECT DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i') AS d, DATE_ADD(CURDATE(), INTERVAL 1 DAY) AS t",
    "SELECT CURDATE() - INTERVAL 7 DAY AS d, TIMESTAMPDIFF(DAY, '2024-01-01', NOW()) AS n",
    "SELECT YEAR(NOW()), MONTH(NOW()), WEEK(NOW()), YEARWEEK(NOW()), LAST_DAY(NOW())",
    "SELECT STR_TO_DATE('01/02/2024', '%d/%m/%Y') AS d, FROM_UNIXTIME(0) AS e",
    "SELECT IFNULL(NULL, 'x') AS a, NULLIF(1, 1) AS b, COALESCE(NULL, 2) AS c, "
    "IF(1 > 0, 'y', 'n') AS d",
    "SELECT GROUP_CONCAT(DISTINCT note ORDER BY note DESC SEPARATOR '; ') AS notes "
    "FROM accept_canary",
    "SELECT note, COUNT(*) AS n FROM accept_canary GROUP BY note WITH ROLLUP",
    "SELECT id, ROW_NUMBER() OVER w AS rn, SUM(id) OVER w AS s FROM accept_canary "
    "WINDOW w AS (ORDER BY id)",
    "SELECT id, LAG(note, 1, 'none') OVER (ORDER BY id) AS prev FROM accept_canary",
    "WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 5) "
    "SELECT GROUP_CONCAT(n) FROM seq",
    "SELECT * FROM (WITH x AS (SELECT 1 AS a) SELECT a FROM x) t",
    "SELECT * FROM JSON_TABLE('[{\"a\": 1}, {\"a\": 2}]', '$[*]' COLUMNS (a INT PATH '$.a')) "
    "AS jt",
    "SELECT JSON_UNQUOTE(JSON_EXTRACT('{\"a\": \"b\"}', '$.a')) AS v, JSON_ARRAYAGG(id) "
    "FROM accept_canary",
    "SELECT j->'$.a', j->>'$.a' FROM (SELECT CAST('{\"a\":1}' AS JSON) AS j) t",
    "SELECT REGEXP_REPLACE(note, '[aeiou]', '') AS r, note REGEXP '^a' AS m FROM accept_canary",
    "SELECT SUBSTRING_INDEX('a.b.c', '.', 2), FIND_IN_SET('b', 'a,b'), ELT(2, 'a', 'b')",
    "SELECT INSERT('Quadratic', 3, 4, 'What') AS s, REPLACE('abc', 'b', 'x') AS r",
    "SELECT CAST(id AS CHAR) AS s, CAST('1' AS UNSIGNED) AS u, CONVERT(id, CHAR) AS c "
    "FROM accept_canary",
    "SELECT ROUND(1.234, 2), TRUNCATE(1.239, 2), 7 DIV 2, MOD(7, 2)",
    "SELECT 1 <=> NULL AS eq, 1 XOR 0 AS x",
    "SELECT N'abc' AS n, _utf8mb4'abc' AS u, X'41' AS x, b'01' AS b, 0x41 AS h, 1e3 AS f",
    "SELECT * FROM (SELECT 1 AS 2024_sales) t",  # identifiers may start with digits
    "SELECT 'abc' COLLATE utf8mb4_bin AS s",
    "SELECT @@sql_mode AS m, @@GLOBAL.read_only AS r",
    "SELECT CURRENT_USER() AS u, DATABASE() AS d, VERSION() AS v",
    "SELECT MATCH(note) AGAINST('alpha' IN BOOLEAN MODE) AS score FROM accept_canary",
    "SELECT id FROM accept_canary ORDER BY FIELD(id, 3, 1, 2)",
    "SELECT COUNT(*) OVER () AS total, id FROM accept_canary",
    "(SELECT id FROM accept_canary ORDER BY id LIMIT 1) UNION ALL (SELECT id FROM "
    "accept_canary ORDER BY id DESC LIMIT 1)",
    "SELECT id FROM accept_canary EXCEPT SELECT 1",
    "VALUES ROW(1, 'a'), ROW(2, 'b')",
    "SELECT 'SELECT 1 INTO @a' AS s, 'LOCK IN SHARE MODE' AS t, 'FOR UPDATE' AS u",
    "SELECT '/*!50000 DROP TABLE accept_canary */' AS s",
    "SELECT `/*!x*/` FROM (SELECT 1 AS `/*!x*/`) t",
    "SELECT 1 AS `into`, 2 AS `for`, 3 AS `lock`, 4 AS `handler`",
    "SELECT 1 /* /*! inside a plain comment: MySQL does not nest */",
    "SELECT 1 -- /*!, SLEEP(1) */",
    "SELECT 'a''; DROP TABLE accept_canary; -- '",  # one string
    "SELECT `a``; DROP TABLE accept_canary; -- `",  # one identifier
    "SELECT 1--1",
    # SHOW / DESCRIBE / EXPLAIN
    "SHOW FULL TABLES",
    "SHOW TABLES FROM test LIKE 'acc%'",
    "SHOW INDEX FROM accept_canary",
    "SHOW KEYS FROM accept_canary",  # was refused
    "SHOW EXTENDED COLUMNS FROM accept_canary",  # was refused
    "SHOW COLUMNS IN accept_canary FROM test LIKE 'i%'",  # was refused
    "SHOW TABLE STATUS LIKE 'accept%'",
    "SHOW GLOBAL VARIABLES LIKE 'max%'",
    "SHOW GRANTS",
    "SHOW GRANTS FOR CURRENT_USER()",  # was refused
    "SHOW GRANTS FOR 'u'@'%'",  # was refused
    "SHOW CREATE USER CURRENT_USER",  # was refused
    "SHOW COUNT(*) WARNINGS",  # was refused
    "SHOW PROCESSLIST",
    "SHOW ENGINE INNODB STATUS",
    "DESC test.accept_canary",
    "EXPLAIN accept_canary",
    "EXPLAIN FORMAT=TREE SELECT * FROM accept_canary",
    "EXPLAIN FORMAT=JSON SELECT id FROM accept_canary UNION SELECT 1",
    "DESCRIBE SELECT * FROM accept_canary",
    "EXPLAIN WITH a AS (SELECT 1) SELECT * FROM a",
]


@pytest.mark.parametrize("sql", OWN_MYSQL_ALLOWED)
def test_own_mysql_allowed(sql):
    accepted(sql, Dialect.MYSQL)
