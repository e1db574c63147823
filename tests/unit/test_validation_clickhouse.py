"""Validation of ClickHouse queries: the shared corpora, then our own cases."""
from __future__ import annotations

import pytest

from shared.dialects import Dialect
from shared.errors import QueryValidationError
from shared.validation import validate_query
from tests.support.corpus import corpus_params


def refused(sql: str) -> QueryValidationError:
    with pytest.raises(QueryValidationError) as caught:
        validate_query(sql, Dialect.CLICKHOUSE)
    assert caught.value.code == "QueryValidationError"
    assert "reason" in caught.value.details
    return caught.value


@pytest.mark.parametrize("sql, entry", corpus_params("public_blocked_clickhouse"))
def test_corpus_blocked(sql, entry):
    refused(sql)


@pytest.mark.parametrize("sql, entry", corpus_params("public_allowed_clickhouse"))
def test_corpus_allowed(sql, entry):
    validate_query(sql, Dialect.CLICKHOUSE)


BLOCKED = [
    # output and settings clauses
    ("SELECT * FROM numbers(1) FORMAT JSON", "format_clause"),
    ("SELECT * FROM numbers(1) FORMAT Null", "format_clause"),
    ("SELECT * FROM numbers(1) INTO OUTFILE 'accept_ch_out.csv'", "outfile"),
    ("SELECT * FROM numbers(10) SETTINGS max_threads = 100", "settings_clause"),
    ("SELECT * FROM (SELECT 1 SETTINGS readonly = 0)", "settings_clause"),
    ("SELECT * FROM numbers(1) settings `max_execution_time` = 0", "settings_clause"),
    # table functions that reach outside, in every position and spelling
    ("SELECT file('/etc/passwd')", "blocked_function"),
    ("SELECT length(file('/etc/passwd')) AS n", "blocked_function"),
    ("SELECT * FROM \"file\"('/etc/passwd', 'LineAsString')", "blocked_function"),
    ("SELECT * FROM `fi\\le`('/etc/passwd', 'LineAsString')", "blocked_function"),
    ("SELECT * FROM numbers(1) AS a JOIN file('/etc/passwd', 'LineAsString') AS b ON 1",
     "blocked_function"),
    ("SELECT * FROM view(SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String'))",
     "blocked_function"),
    ("SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')", "blocked_function"),
    ("SELECT * FROM executable('x.sh', CSV, 'a String')", "blocked_function"),
    ("SELECT * FROM hdfs('hdfs://h:9000/x', 'CSV', 'a String')", "blocked_function"),
    ("SELECT * FROM icebergS3('https://b.s3.amazonaws.com/t')", "blocked_function"),
    ("SELECT * FROM hudi('https://b.s3.amazonaws.com/t')", "blocked_function"),
    ("SELECT * FROM jdbc('jdbc:mysql://h/db', 't')", "blocked_function"),
    ("SELECT * FROM odbc('DSN=x', 't')", "blocked_function"),
    ("SELECT * FROM mongodb('h:27017', 'db', 'c', 'u', 'p', 'x String')", "blocked_function"),
    ("SELECT * FROM redis('h:6379', 'k', 'k String')", "blocked_function"),
    ("SELECT * FROM gcs('https://storage.googleapis.com/b/x.csv', 'CSV')", "blocked_function"),
    ("SELECT * FROM urlCluster('c', 'http://127.0.0.1/', CSV)", "blocked_function"),
    ("SELECT * FROM cluster('default', system.one)", "blocked_function"),
    ("SELECT * FROM s3Queue('https://b.s3.amazonaws.com/*', CSV)", "blocked_function"),
    ("SELECT * FROM merge('system', '.*')", "blocked_function"),
    ("SELECT * FROM loop(numbers(1)) LIMIT 10", "blocked_function"),
    ("SELECT * FROM dictionary('d')", "blocked_function"),
    ("SELECT * FROM mergeTreeIndex('default', 't')", "blocked_table_function"),
    ("SELECT * FROM format(JSONEachRow, '{\"a\": 1}')", "blocked_table_function"),
    ("DESCRIBE file('/etc/passwd', 'LineAsString')", "blocked_function"),
    ("DESC TABLE url('http://127.0.0.1:1/', CSV)", "blocked_function"),
    ("EXPLAIN SELECT * FROM file('/etc/passwd', 'LineAsString')", "blocked_function"),
    # sleeping and other blocked scalars
    ("SELECT sleep(3)", "blocked_function"),
    ("SELECT SLEEP(1)", "blocked_function"),
    ("SELECT sleepEachRow(1) FROM numbers(3)", "blocked_function"),
    ("SELECT number FROM numbers(3) WHERE sleepEachRow(1) = 0", "blocked_function"),
    ("EXPLAIN PIPELINE SELECT sleep(1)", "blocked_function"),
    ("SELECT catboostEvaluate('/m.bin', 1)", "blocked_function"),
    # statements
    ("INSERT INTO FUNCTION remote('127.0.0.1', default.t) SELECT 1", "blocked_statement"),
    ("SYSTEM SHUTDOWN", "blocked_statement"),
    ("OPTIMIZE TABLE t FINAL", "blocked_statement"),
    ("RENAME TABLE a TO b", "blocked_statement"),
    ("TRUNCATE TABLE t", "blocked_statement"),
    ("ALTER TABLE t UPDATE x = 1 WHERE 1", "blocked_statement"),
    ("CREATE TABLE t (x UInt8) ENGINE = Memory", "blocked_statement"),
    ("SET max_execution_time = 0", "blocked_statement"),
    ("USE system", "blocked_statement"),
    ("CHECK TABLE t", "blocked_statement"),
    ("WATCH lv", "blocked_statement"),
    ("REVOKE ALL ON *.* FROM default", "blocked_statement"),
    ("EXPLAIN INSERT INTO t SELECT 1", "blocked_statement"),
    ("SHOW TABLES INTO OUTFILE 'x.txt'", "outfile"),
    ("EXISTS TABLE file('/etc/passwd')", "blocked_statement"),
    # lexing
    ("SELECT $$x$$; DROP TABLE t", "multiple_statements"),
    ("SELECT 1; SELECT 2", "multiple_statements"),
    ("SELECT 'a\\'; DROP TABLE t; --'; DROP TABLE t", "multiple_statements"),
    ("SELECT 1 #x", "lex_error"),
    ("SELECT 1 /* unterminated", "lex_error"),
]


@pytest.mark.parametrize("sql, reason", BLOCKED)
def test_blocked(sql, reason):
    error = refused(sql)
    assert error.details["reason"] == reason, error.details


ALLOWED = [
    "SELECT * FROM system.one",
    "SELECT count() FROM numbers_mt(1000)",
    "SELECT * FROM zeros(3)",
    "SELECT * FROM generateRandom('a UInt8', 1) LIMIT 3",
    "SELECT * FROM values('a UInt8', 1, 2)",
    "SELECT * FROM view(SELECT number FROM numbers(2))",
    "SELECT number FROM numbers(5) AS a INNER JOIN numbers(3) AS b USING number",
    "SHOW TABLES",
    "SHOW DATABASES",
    "SHOW SETTINGS LIKE 'max_%'",
    "DESCRIBE TABLE system.one",
    "EXISTS TABLE system.one",
    "EXISTS system.one",
    "EXPLAIN SELECT 1",
    "EXPLAIN PLAN SELECT number FROM numbers(3)",
    "EXPLAIN indexes = 1 SELECT 1",
    "SELECT format('{} {}', 'a', 'b') AS s",
    "SELECT formatDateTime(now(), '%Y') AS y",
    "SELECT arrayMap(x -> x * 2, [1, 2, 3]) AS a",
    "SELECT 1 AS file, 2 AS url",
    "SELECT number AS settings FROM numbers(1)",
    "SELECT 'SETTINGS max_threads = 1' AS s, 'FORMAT JSON' AS f",
    "SELECT toTypeName(1) AS t",
    "SELECT countIf(number > 5) AS c FROM numbers(10)",
    "SELECT number FROM numbers(10) LIMIT 1 BY number % 2",
    "SELECT $$heredoc 'string'$$ AS s",
    "SELECT 1;",
    "SELECT 1 -- trailing comment",
    "SELECT 1 # trailing comment",
    "SELECT 1 /* nested /* comment */ still */ AS x",
    "SELECT domain('http://example.com/a') AS d, URLHierarchy('http://a/b') AS h",
    "SELECT uniqMerge(s) FROM (SELECT uniqState(number) AS s FROM numbers(3))",
    "SELECT 'it\\'s' AS s",
    "SELECT toStartOfDay(now()) AS d, dateDiff('day', toDate('2024-01-01'), today()) AS n",
    "WITH 5 AS n SELECT number FROM numbers(n)",
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_allowed(sql):
    validate_query(sql, Dialect.CLICKHOUSE)


def test_messages():
    error = refused("SELECT * FROM FILE('/etc/passwd', 'LineAsString')")
    assert error.message == "Function FILE is not allowed"
    assert error.details["position"] == {"line": 1, "col": 15}
    assert refused("SELECT 1 SETTINGS readonly = 0").message == "A SETTINGS clause is not allowed"
