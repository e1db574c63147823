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


# --------------------------------------------------------------------------------------------
# Own red-team cases, round 2: siblings of the corpus lines (table functions that reach outside
# in IN / JOIN / ARRAY JOIN / CTE / scalar-subquery positions, SETTINGS and FORMAT in every
# spelling and nesting, DDL/DML and server statements) and realistic analytics reads.
# --------------------------------------------------------------------------------------------

OWN_BLOCKED = [
    # table functions that reach outside, nested
    "SELECT * FROM numbers(10) WHERE number IN (SELECT dummy FROM remote('127.0.0.1', "
    "system.one))",
    "SELECT * FROM numbers(10) WHERE number GLOBAL IN (SELECT dummy FROM "
    "remoteSecure('h:9440', system.one))",
    "SELECT * FROM numbers(1) AS a LEFT JOIN url('http://127.0.0.1:1/', CSV, 'a String') AS b "
    "ON 1 = 1",
    "SELECT * FROM numbers(1) ARRAY JOIN (SELECT groupArray(a) FROM url('http://x/', CSV, "
    "'a String')) AS x",
    "WITH (SELECT count() FROM file('/etc/passwd', 'LineAsString')) AS n SELECT n",
    "SELECT (SELECT count() FROM url('http://x/', CSV, 'a String')) AS n",
    "SELECT * FROM (SELECT * FROM (SELECT * FROM remote('h', system.one)))",
    "SELECT * FROM numbers(1) UNION ALL SELECT * FROM file('x', 'LineAsString')",
    "SELECT * FROM numbers(1) AS a, url('http://x/', CSV, 'a String') AS b",
    "SELECT * FROM numbers(1) WHERE 1 IN (SELECT 1 FROM s3('https://b/x', 'CSV'))",
    "SELECT * FROM File('/etc/passwd', 'LineAsString')",
    "SELECT * FROM S3('https://b/x', 'CSV')",
    "SELECT * FROM URL('http://169.254.169.254/', RawBLOB)",
    "SELECT * FROM MySQL('h:3306', 'db', 't', 'u', 'p')",
    "SELECT * FROM fileCluster('c', '/etc/passwd', 'LineAsString')",
    "SELECT * FROM hdfsCluster('c', 'hdfs://x', 'CSV')",
    "SELECT * FROM executablePool('x.py', 'TabSeparated', 'a String')",
    "SELECT * FROM azureBlobStorageCluster('c', 'x', 'y', 'z')",
    "SELECT * FROM iceberg('https://b/t')",
    "SELECT * FROM deltaLakeCluster('c', 'https://b/t')",
    "SELECT * FROM merge(currentDatabase(), '^t')",
    "SELECT * FROM fuzzJSON('{}', 1)",
    "SELECT * FROM timeSeriesData('db.ts')",
    "DESCRIBE mergeTreeIndex('d', 't')",
    "DESCRIBE TABLE format(JSONEachRow, '{}')",
    "DESCRIBE numbers((SELECT count() FROM file('x')))",
    # sleeping
    "SELECT Sleep(1)",
    "SELECT \"sleepEachRow\"(1) FROM numbers(2)",
    "SELECT sleep /* x */ (1)",
    "SELECT number FROM numbers(10) ORDER BY sleepEachRow(0.1)",
    "SELECT arrayMap(x -> sleep(1), [1])",
    # FORMAT, INTO OUTFILE, SETTINGS (anywhere, any spelling)
    "WITH x AS (SELECT 1) SELECT * FROM x FORMAT TSV",
    "SELECT 1 FORMAT JSONEachRow;",
    "SELECT 1 FORMAT `CSV`",
    "SELECT 1 /* c */ FORMAT /* c */ Pretty",
    "SELECT number FROM numbers(3) FORMAT Vertical -- trailing",
    "SELECT * FROM numbers(1) INTO OUTFILE 'x.csv' TRUNCATE",
    "SELECT * FROM numbers(1) INTO OUTFILE 'x.csv.gz' COMPRESSION 'gzip'",
    "SELECT 1 SETTINGS\n  max_rows_to_read = 0, max_bytes_to_read = 0",
    "SELECT 1 /* x */ SETTINGS /* y */ max_memory_usage = 0",
    "WITH x AS (SELECT 1 SETTINGS max_execution_time = 0) SELECT * FROM x",
    "SELECT number FROM numbers(3) WHERE number IN (SELECT 1 SETTINGS readonly = 2)",
    "SELECT * FROM view(SELECT 1 SETTINGS readonly = 0)",
    "SELECT 1 UNION ALL SELECT 2 SETTINGS max_execution_time = 0",
    "EXPLAIN SELECT 1 SETTINGS max_execution_time = 0",
    "SHOW TABLES SETTINGS max_execution_time = 0",
    "SHOW CREATE TABLE t FORMAT JSON",
    # statements
    "insert into t format CSV",
    "INSERT INTO FUNCTION s3('https://b/x', 'CSV') SELECT 1",
    "ALTER TABLE t DROP PARTITION 1",
    "ALTER TABLE t FREEZE",
    "DELETE FROM t WHERE 1",
    "UPDATE t SET x = 1 WHERE 1",
    "UNDROP TABLE t",
    "CREATE DICTIONARY d (a UInt8) PRIMARY KEY a SOURCE(HTTP(url 'http://x' format 'CSV')) "
    "LAYOUT(FLAT()) LIFETIME(0)",
    "CREATE TABLE t AS remote('h', system.one)",
    "CREATE FUNCTION f AS x -> x",
    "SYSTEM RELOAD DICTIONARIES",
    "KILL MUTATION WHERE 1",
    "BACKUP TABLE t TO Disk('backups', 'x.zip')",
    "RESTORE TABLE t FROM Disk('backups', 'x.zip')",
    "SET ROLE NONE",
    "EXPLAIN AST INSERT INTO t VALUES (1)",
    # statement separators after literals and comments
    "SELECT $tag$ x $tag$; DROP TABLE t",
    "SELECT `a\\``; DROP TABLE t",
    "SELECT 1 // comment\n; DROP TABLE t",
    "SELECT 1 #! comment\n; DROP TABLE t",
    "SELECT 1 /* a /* b */ ; */; DROP TABLE t",
]


@pytest.mark.parametrize("sql", OWN_BLOCKED)
def test_own_blocked(sql):
    refused(sql)


OWN_ALLOWED = [
    "SELECT * FROM system.numbers LIMIT 10",
    "SELECT number FROM system.numbers_mt WHERE number < 5 LIMIT 5",
    "SELECT * FROM numbers(10) AS t ARRAY JOIN [1, 2] AS a",
    "SELECT number, x FROM numbers(3) LEFT ARRAY JOIN range(number) AS x",
    "SELECT arrayJoin([1, 2, 3]) AS x",
    "WITH x AS (SELECT 1 AS a) SELECT * FROM x",
    "WITH 10 AS n, x AS (SELECT number FROM numbers(n)) SELECT count() FROM x",
    "SELECT dictGet('geo', 'name', toUInt64(1)) AS n",
    "SELECT dictGetOrDefault('geo', 'name', toUInt64(1), 'none') AS n, dictHas('geo', "
    "toUInt64(1)) AS h",
    "SELECT uniqExact(number) AS u, uniq(number) AS approx FROM numbers(100)",
    "SELECT toStartOfDay(now()) AS d, toStartOfWeek(today()) AS w, toStartOfInterval(now(), "
    "INTERVAL 15 MINUTE) AS q",
    "SELECT toYYYYMM(today()) AS ym, toDayOfWeek(today()) AS dow, formatDateTime(now(), '%F')",
    "SELECT countIf(number % 2 = 0) AS evens, sumIf(number, number > 5) AS s FROM numbers(10)",
    "SELECT argMax(number, number % 7) AS am, argMin(number, number) AS an FROM numbers(20)",
    "SELECT number % 3 AS k, number FROM numbers(20) ORDER BY k, number DESC LIMIT 2 BY k",
    "SELECT number % 3 AS k, count() AS c FROM numbers(20) GROUP BY k WITH TOTALS ORDER BY k",
    "SELECT number % 3 AS k, count() FROM numbers(20) GROUP BY k WITH ROLLUP",
    "SELECT number % 3 AS k, number % 2 AS j, count() FROM numbers(20) GROUP BY k, j WITH CUBE",
    "SELECT number FROM numbers(100) PREWHERE number > 10 WHERE number < 20",
    "SELECT * FROM system.one FINAL",
    "SELECT count() FROM system.one SAMPLE 1 / 10",
    "SELECT count() FROM system.one SAMPLE 0.1 OFFSET 0.5",
    "SELECT quantiles(0.5, 0.9, 0.99)(number) AS q, topK(3)(number % 5) AS t FROM numbers(100)",
    "SELECT multiIf(number < 3, 'low', number < 6, 'mid', 'high') AS b, count() FROM "
    "numbers(10) GROUP BY b",
    "SELECT JSONExtractString('{\"a\": \"b\"}', 'a') AS v, JSONExtractInt('{\"n\": 1}', 'n')",
    "SELECT replaceRegexpAll('aaa', 'a', 'b') AS r, match('abc', '^a') AS m",
    "SELECT arrayFilter(x -> x > 1, [1, 2, 3]) AS f, has([1, 2], 1) AS h",
    "SELECT number, sum(number) OVER (PARTITION BY number % 2 ORDER BY number ROWS BETWEEN "
    "UNBOUNDED PRECEDING AND CURRENT ROW) AS s FROM numbers(6)",
    "SELECT number, row_number() OVER w AS rn FROM numbers(5) WINDOW w AS (ORDER BY number)",
    "SELECT dateDiff('hour', now() - INTERVAL 1 DAY, now()) AS h, addDays(today(), 1) AS t",
    "SELECT toString(number) AS s, CAST(number AS String) AS c, number::String AS c2 "
    "FROM numbers(2)",
    "SELECT * FROM numbers(3) AS a ANY LEFT JOIN numbers(2) AS b ON a.number = b.number",
    "SELECT * FROM numbers(3) AS a ASOF LEFT JOIN numbers(2) AS b ON a.number >= b.number",
    "SELECT * FROM numbers(5) WHERE number GLOBAL IN (SELECT number FROM numbers(2))",
    "SELECT * EXCEPT (number) FROM (SELECT number, 1 AS x FROM numbers(2))",
    "SELECT COLUMNS('^num') FROM numbers(2)",
    "SELECT number FROM numbers(10) ORDER BY number WITH FILL FROM 0 TO 20 STEP 2",
    "SELECT windowFunnel(3600)(toDateTime('2024-01-01 00:00:00') + number, number = 1, "
    "number = 2) AS f FROM numbers(3)",
    "SELECT currentUser() AS u, currentDatabase() AS d, version() AS v, getSetting('max_threads')",
    "SELECT * FROM system.tables WHERE database = currentDatabase() LIMIT 5",
    "SELECT * FROM null('a UInt8')",
    "SELECT * FROM generateSeries(1, 10, 2)",
    "SELECT * FROM values('a UInt8, b String', (1, 'x'), (2, 'y'))",
    "SELECT 'url(http://x)' AS u, 'remote()' AS r, 'SETTINGS readonly = 0' AS s",
    "SELECT 1 AS remote, 2 AS s3, 3 AS mysql, 4 AS sleep",
    "SELECT number AS format FROM numbers(1)",
    "SELECT number AS settings, number AS outfile FROM numbers(1)",
    "SELECT * FROM (SELECT number AS url FROM numbers(2)) WHERE url > 0",
    "SELECT 1 /* FORMAT JSON */",
    "SELECT $$ SELECT sleep(1) $$ AS s",
    "SELECT number FROM numbers(10) QUALIFY row_number() OVER (ORDER BY number) < 3",
    "EXPLAIN SYNTAX SELECT 1",
    "EXPLAIN QUERY TREE SELECT 1",
    "DESCRIBE numbers(3)",  # a local table function (was refused)
    "DESC TABLE zeros(2)",
    "DESCRIBE (SELECT 1 AS x)",
    "SHOW CREATE TABLE system.one",
    "SHOW PROCESSLIST",
    "EXISTS DICTIONARY d",
    "SELECT 1 UNION DISTINCT SELECT 1",
]


@pytest.mark.parametrize("sql", OWN_ALLOWED)
def test_own_allowed(sql):
    validate_query(sql, Dialect.CLICKHOUSE)
