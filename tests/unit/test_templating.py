"""shared.templating: the sandbox, where values may go, secrets, previews, limits."""
from __future__ import annotations

import json
import time
import threading
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from shared import templating
from shared.dialects import Dialect
from shared.errors import AnalyticsError, QueryValidationError, ValidationError
from shared.templating import (
    SecretNamespace,
    check_syntax,
    render,
    render_preview,
    template_variables,
)
from shared.validation.params import parse_declarations

CORPUS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"

PG_PASSWORD = "S3cr3t-pw-123"
TOKEN = "tok-SECRET-987"
SECRETS = {"pg": {"host": "h", "password": PG_PASSWORD}, "generic": {"token": TOKEN}}
PROFILE = {
    "id": 7,
    "username": "ada",
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "is_staff": False,
    "is_superuser": False,
}
PLACEHOLDERS = {
    "<<PG_SECRET>>": "pg",
    "<<GENERIC_SECRET>>": "generic",
    "<<SENTINEL_DIR>>": "/tmp/sentinel",
    "<<OTHER_SCHEMA>>": "tenant_other",
    "<<OTHER_SCHEMA_UPPER>>": "TENANT_OTHER",
    "<<OTHER_SCHEMA_UESCAPE>>": "tenant\\005fother",
    "<<OWN_SCHEMA>>": "tenant_own",
    "<<PLATFORM_SCHEMA>>": "public",
    "<<PLATFORM_TABLE>>": "secrets",
    "<<SERVICE_ROLE>>": "analytics",
}
SQL_DIALECTS = [Dialect.POSTGRES, Dialect.INTERNAL, Dialect.MYSQL, Dialect.REDSHIFT, Dialect.CLICKHOUSE]
ALL_DIALECTS = [*SQL_DIALECTS, Dialect.ELASTICSEARCH]


def _corpus(name: str) -> list[dict]:
    cases = []
    for line in (CORPUS_DIR / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            cases.append(json.loads(line))
    return cases


def _expand(text: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text


def _namespace() -> SecretNamespace:
    return SecretNamespace(SECRETS, PROFILE)


def _render(text: str, dialect: Dialect = Dialect.POSTGRES, **params) -> str:
    return render(text, dialect=dialect, params=params).text


def _refused(text: str, dialect: Dialect = Dialect.POSTGRES, **kwargs) -> QueryValidationError:
    kwargs.setdefault("params", {})
    with pytest.raises(QueryValidationError) as caught:
        render(text, dialect=dialect, **kwargs)
    return caught.value


# --------------------------------------------------------------------------- reference decoders
# Independent of the implementation: how each server reads the body of a '...' literal.
# None means the literal would end early (an unescaped quote, a dangling backslash).


def _decode_standard(body: str) -> str | None:
    out, i = [], 0
    while i < len(body):
        if body[i] == "'":
            if body[i + 1 : i + 2] != "'":
                return None
            out.append("'")
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _decoder(escapes: dict[str, str]):
    def decode(body: str) -> str | None:
        out, i = [], 0
        while i < len(body):
            c = body[i]
            if c == "\\":
                if i + 1 >= len(body):
                    return None
                out.append(escapes.get(body[i + 1], body[i + 1]))
                i += 2
            elif c == "'":
                if body[i + 1 : i + 2] != "'":
                    return None
                out.append("'")
                i += 2
            else:
                out.append(c)
                i += 1
        return "".join(out)

    return decode


_decode_mysql = _decoder({"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "%": "\\%", "_": "\\_"})
_decode_clickhouse = _decoder({"0": "\0", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"})
DECODERS = {
    Dialect.POSTGRES: _decode_standard,
    Dialect.INTERNAL: _decode_standard,
    Dialect.REDSHIFT: _decode_mysql,
    Dialect.MYSQL: _decode_mysql,
    Dialect.CLICKHOUSE: _decode_clickhouse,
}
SQLGLOT_DIALECT = {
    Dialect.POSTGRES: "postgres",
    Dialect.INTERNAL: "postgres",
    Dialect.REDSHIFT: "redshift",
    Dialect.MYSQL: "mysql",
    Dialect.CLICKHOUSE: "clickhouse",
}


# --------------------------------------------------------------------------- corpus: quoted values


def _ends_differently_without_standard_strings(value: object) -> bool:
    """Would PostgreSQL end '<value with quotes doubled>' elsewhere with
    standard_conforming_strings off, reading backslash escapes? Then the value is refused for a
    standard string: no spelling of it ends at the same place under both readings."""
    return isinstance(value, str) and _decoder({})(value.replace("'", "''")) is None


def _refusal_allowed(value: object, dialect: Dialect) -> bool:
    if not isinstance(value, str) or "\x00" in value:
        return True
    return dialect in (Dialect.POSTGRES, Dialect.INTERNAL) and _ends_differently_without_standard_strings(value)


QUOTED = _corpus("public_param_quoted.txt")


@pytest.mark.parametrize("dialect", SQL_DIALECTS)
@pytest.mark.parametrize("case", QUOTED, ids=lambda case: case["why"])
def test_quoted_value_comes_back_verbatim(case, dialect):
    value = case["value"]
    prefix = "SELECT * FROM orders WHERE status = '"
    try:
        text = render(prefix + "{{ v }}'", dialect=dialect, params={"v": value}).text
    except QueryValidationError:
        assert _refusal_allowed(value, dialect), "plain text must render"
        return
    assert text.startswith(prefix) and text.endswith("'")
    body = text[len(prefix) : -1]
    assert DECODERS[dialect](body) == value
    if dialect in (Dialect.MYSQL, Dialect.REDSHIFT):
        # Read without backslash escapes (NO_BACKSLASH_ESCAPES) the literal still ends there.
        assert _decode_standard(body) is not None
    tree = sqlglot.parse_one(text, read=SQLGLOT_DIALECT[dialect])
    condition = tree.args["where"].this
    assert isinstance(condition, exp.EQ)
    assert isinstance(condition.this, exp.Column) and condition.this.name == "status"
    assert isinstance(condition.expression, exp.Literal) and condition.expression.is_string
    assert condition.expression.this == value
    assert len(list(tree.find_all(exp.Literal))) == 1


@pytest.mark.parametrize("dialect", [Dialect.POSTGRES, Dialect.MYSQL, Dialect.CLICKHOUSE])
@pytest.mark.parametrize("case", QUOTED, ids=lambda case: case["why"])
def test_quoted_value_in_select_list(case, dialect):
    try:
        text = render("SELECT '{{ v }}' AS v", dialect=dialect, params={"v": case["value"]}).text
    except QueryValidationError:
        assert _refusal_allowed(case["value"], dialect)
        return
    tree = sqlglot.parse_one(text, read=SQLGLOT_DIALECT[dialect])
    (projection,) = tree.expressions
    assert projection.alias == "v"
    assert isinstance(projection.this, exp.Literal) and projection.this.this == case["value"]


@pytest.mark.parametrize("case", QUOTED, ids=lambda case: case["why"])
def test_quoted_value_in_elasticsearch_json(case):
    template = '{"query": {"term": {"status": "{{ v }}"}}}'
    text = render(template, dialect=Dialect.ELASTICSEARCH, params={"v": case["value"]}).text
    assert json.loads(text) == {"query": {"term": {"status": case["value"]}}}


# --------------------------------------------------------------------------- corpus: unquoted values

UNQUOTED = _corpus("public_param_unquoted.txt")


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
@pytest.mark.parametrize("case", UNQUOTED, ids=lambda case: case["why"])
def test_unquoted_value_is_refused(case, dialect):
    template = '{"size": {{ v }}}' if dialect is Dialect.ELASTICSEARCH else "SELECT * FROM orders LIMIT {{ v }}"
    _refused(template, dialect, params={"v": case["value"]})


# --------------------------------------------------------------------------- corpus: SSTI

SSTI = _corpus("public_ssti.txt")
INTERNALS = [
    "<class", "__", "function", "built-in", "Environment", "/root", "root:x:", "object at 0x",
    "<bound", "method", "Undefined", "TemplateReference", "<secret>", "jinja", "Context",
]


def _assert_inert(text: str, rendered_secrets: frozenset[str], *, secrets_allowed: bool) -> None:
    for marker in INTERNALS:
        assert marker not in text
    for secret in (PG_PASSWORD, TOKEN):
        if secret in text:
            assert secrets_allowed and secret in rendered_secrets
        rest = text.replace(secret, "")
        for variant in (secret[::-1], secret.upper(), secret.lower(), secret[:12], secret[1:], secret[:-1]):
            assert variant not in rest


@pytest.mark.parametrize("dialect", [Dialect.POSTGRES, Dialect.MYSQL, Dialect.CLICKHOUSE, Dialect.ELASTICSEARCH])
@pytest.mark.parametrize("case", SSTI, ids=lambda case: case["why"])
def test_ssti_payload_is_refused_or_inert(case, dialect):
    payload = _expand(case["payload"])
    params = case.get("params", {})
    try:
        rendered = render(payload, dialect=dialect, params=params, secrets=_namespace())
    except QueryValidationError as exc:
        for secret in (PG_PASSWORD, TOKEN):
            assert secret not in exc.message and secret not in json.dumps(exc.details)
        return
    # As the whole template, every output is outside quotes: nothing but numbers gets through.
    _assert_inert(rendered.text, rendered.secret_values, secrets_allowed=False)


@pytest.mark.parametrize("case", SSTI, ids=lambda case: case["why"])
def test_ssti_payload_inside_a_string_is_refused_or_inert(case):
    payload = _expand(case["payload"])
    try:
        rendered = render(
            f"SELECT * FROM t WHERE x = '{payload}'",
            dialect=Dialect.POSTGRES,
            params=case.get("params", {}),
            secrets=_namespace(),
        )
    except QueryValidationError:
        return
    # A plain secret reference inside quotes is how queries use secrets: allowed, and reported
    # for redaction. Anything derived from a secret or from Python internals is not.
    _assert_inert(rendered.text, rendered.secret_values, secrets_allowed=True)


# --------------------------------------------------------------------------- values outside quotes


@pytest.mark.parametrize(
    ("value", "dialect", "expected"),
    [
        (5, Dialect.POSTGRES, "5"),
        (-5, Dialect.POSTGRES, "(-5)"),
        (-5, Dialect.ELASTICSEARCH, "-5"),
        (1.5, Dialect.MYSQL, "1.5"),
        (1e20, Dialect.CLICKHOUSE, "1e+20"),
        (Decimal("1.10"), Dialect.REDSHIFT, "1.10"),
        (True, Dialect.POSTGRES, "TRUE"),
        (False, Dialect.INTERNAL, "FALSE"),
        (True, Dialect.MYSQL, "1"),
        (False, Dialect.CLICKHOUSE, "0"),
        (True, Dialect.ELASTICSEARCH, "true"),
        (Decimal("1E+3"), Dialect.POSTGRES, "1E+3"),
        (Decimal("-1.5"), Dialect.MYSQL, "(-1.5)"),
        (Decimal("0.25"), Dialect.ELASTICSEARCH, "0.25"),
        (10**30, Dialect.MYSQL, "1" + "0" * 30),
        (-0.0, Dialect.POSTGRES, "(-0.0)"),
    ],
)
def test_numbers_and_booleans_outside_quotes(value, dialect, expected):
    assert _render("LIMIT {{ n }}", dialect, n=value) == f"LIMIT {expected}"


@pytest.mark.parametrize(
    "value",
    [
        "5 OR 1=1", "NaN", "nan", "inf", "Infinity", "-inf", "0x10", "1_000", " 5", "5 ", "+5",
        "05", "1.", ".5", "1e", "", "\u0663", "5;", float("nan"), float("inf"), Decimal("NaN"),
        Decimal("Infinity"), None, [1], {"a": 1}, "1" * 200,
        # A string is text even when it spells a number: declare the parameter to accept these.
        "5", "-1.5", "1e3", "0.25", "1e309", "true", "TRUE",
        pytest.param(10**5000, id="5000-digit-int"),  # more digits than Python prints
    ],
)
def test_non_numbers_refused_outside_quotes(value):
    error = _refused("SELECT 1 LIMIT {{ n }}", params={"n": value})
    assert error.message == "Parameter 'n' must be a number or boolean when used outside quotes"


def test_negative_number_after_minus_is_not_a_comment():
    assert _render("SELECT 1-{{ n }}", n=-1) == "SELECT 1-(-1)"


@pytest.mark.parametrize(
    "template",
    [
        "SELECT col{{ n }}",
        "SELECT {{ n }}abc",
        "SELECT 1.{{ n }}",
        "SELECT {{ n }}.5",
        "SELECT {{ n }}{{ n }}",
        "SELECT ${{ n }}",
        "SELECT @{{ n }}",
    ],
)
def test_value_glued_to_other_text_is_refused(template):
    assert "next to other text" in _refused(template, params={"n": 5}).message


# --------------------------------------------------------------------------- values inside quotes


def test_postgres_standard_string_keeps_backslashes():
    assert _render("SELECT '{{ v }}'", v="back\\slash") == "SELECT 'back\\slash'"


def test_postgres_escape_string_doubles_backslashes():
    value = "a\\b'c"
    text = _render("SELECT E'{{ v }}'", v=value)
    assert text == "SELECT E'a\\\\b''c'"
    assert _decode_mysql(text[len("SELECT E'") : -1]) == value


def test_postgres_string_continuation_keeps_escape_mode():
    # 'a' <newline> 'b' continues the E'' literal, so the second part reads backslashes too.
    text = _render("SELECT E'a'\n'{{ v }}'", v="x\\'")
    assert text == "SELECT E'a'\n'x\\\\'''"


def test_mysql_doubles_backslashes_and_quotes():
    assert _render("SELECT '{{ v }}'", Dialect.MYSQL, v="back\\slash '") == "SELECT 'back\\\\slash '''"


def test_clickhouse_escapes_with_backslashes():
    assert _render("SELECT '{{ v }}'", Dialect.CLICKHOUSE, v="a\\'b") == "SELECT 'a\\\\\\'b'"


def test_elasticsearch_string_is_json_escaped():
    text = _render('{"q": "{{ v }}"}', Dialect.ELASTICSEARCH, v='a"b\\c\nd')
    assert json.loads(text) == {"q": 'a"b\\c\nd'}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, "12"),
        (-7, "-7"),
        (1.5, "1.5"),
        (Decimal("0.10"), "0.10"),
        (Decimal("-0.0"), "-0.0"),
        (date(2024, 1, 31), "2024-01-31"),
        (datetime(2024, 1, 31, 10, 0), "2024-01-31T10:00:00"),
        ("{{ 7*7 }}", "{{ 7*7 }}"),
        ("{{ secret.pg.password }}", "{{ secret.pg.password }}"),
        ("{% for x in y %}", "{% for x in y %}"),
    ],
)
def test_values_inside_quotes_are_literal_text(value, expected):
    rendered = render("SELECT '{{ v }}'", dialect=Dialect.POSTGRES, params={"v": value}, secrets=_namespace())
    assert rendered.text == f"SELECT '{expected}'"
    assert PG_PASSWORD not in rendered.text


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
def test_nul_is_refused(dialect):
    template = '{"q": "{{ v }}"}' if dialect is Dialect.ELASTICSEARCH else "SELECT '{{ v }}'"
    assert "NUL" in _refused(template, dialect, params={"v": "a\x00b"}).message


@pytest.mark.parametrize(
    "value",
    [
        None, [1, 2], {"a": 1}, object(), print,
        # No spelling of these is *the* verbatim one: true/True, 1e+16/1E+16/10000000000000000.
        True, False, 1e16, 1e-05, float("nan"), float("inf"), Decimal("1E+16"), Decimal("1e-5"),
        pytest.param(10**5000, id="5000-digit-int"),
    ],
)
def test_values_without_text_refused_inside_quotes(value):
    error = _refused("SELECT '{{ v }}'", params={"v": value})
    assert "'v'" in error.message


def test_unpaired_surrogate_refused():
    _refused("SELECT '{{ v }}'", params={"v": "a\ud800"})


def test_lookalike_placeholder_in_a_value_stays_text():
    value = "q0123456789abcdefn0z"
    assert _render("SELECT '{{ a }}', '{{ v }}'", a="x", v=value) == f"SELECT 'x', '{value}'"


# --------------------------------------------------------------------------- refused places


@pytest.mark.parametrize(
    ("dialect", "template"),
    [
        (Dialect.POSTGRES, 'SELECT "{{ v }}" FROM t'),
        (Dialect.POSTGRES, 'SELECT U&"{{ v }}" FROM t'),
        (Dialect.REDSHIFT, 'SELECT "{{ v }}" FROM t'),
        (Dialect.MYSQL, "SELECT `{{ v }}` FROM t"),
        (Dialect.MYSQL, 'SELECT "{{ v }}"'),
        (Dialect.CLICKHOUSE, 'SELECT "{{ v }}" FROM t'),
        (Dialect.CLICKHOUSE, "SELECT `{{ v }}` FROM t"),
    ],
)
def test_quoted_identifier_refused(dialect, template):
    _refused(template, dialect, params={"v": "x"})


@pytest.mark.parametrize(
    ("dialect", "template"),
    [
        (Dialect.POSTGRES, "SELECT 1 -- {{ v }}"),
        (Dialect.POSTGRES, "SELECT 1 /* {{ v }} */"),
        (Dialect.POSTGRES, "SELECT 1 /* /* */ {{ v }} */"),
        (Dialect.POSTGRES, "SELECT 1 --x '{{ v }}'"),
        (Dialect.MYSQL, "SELECT 1 # {{ v }}"),
        (Dialect.MYSQL, "SELECT 1 -- '{{ v }}'"),
        (Dialect.MYSQL, "SELECT 1 /* '{{ v }}' */"),
        (Dialect.CLICKHOUSE, "SELECT 1 -- '{{ v }}'"),
        (Dialect.CLICKHOUSE, "SELECT 1 // {{ v }}"),
        (Dialect.CLICKHOUSE, "SELECT 1 /* {{ v }} */"),
        (Dialect.ELASTICSEARCH, '{"size": 1 /* {{ v }} */}'),
        (Dialect.ELASTICSEARCH, '{"size": 1 // {{ v }}\n}'),
    ],
)
def test_value_in_comment_refused(dialect, template):
    assert "comment" in _refused(template, dialect, params={"v": "x"}).message


@pytest.mark.parametrize(
    ("dialect", "template"),
    [
        (Dialect.POSTGRES, "SELECT $$ {{ v }} $$"),
        (Dialect.POSTGRES, "SELECT $q$ '{{ v }}' $q$"),
        (Dialect.INTERNAL, "SELECT $${{ v }}$$"),
        (Dialect.POSTGRES, "SELECT X'{{ v }}'"),
        (Dialect.POSTGRES, "SELECT U&'{{ v }}'"),
        (Dialect.MYSQL, "SELECT _utf8mb4'{{ v }}'"),
        (Dialect.MYSQL, "SELECT x'{{ v }}'"),
        (Dialect.MYSQL, "SELECT 1 /*! '{{ v }}' */"),
        (Dialect.MYSQL, "SELECT 1 /*!50000 x */, '{{ v }}'"),
        (Dialect.MYSQL, "SELECT 'it\\'s', '{{ v }}'"),
        (Dialect.REDSHIFT, "SELECT $$x$$, '{{ v }}'"),
        (Dialect.REDSHIFT, "SELECT 'a\\'', '{{ v }}'"),
        (Dialect.CLICKHOUSE, "SELECT $h$ {{ v }} $h$"),
        (Dialect.CLICKHOUSE, "SELECT 1 /* /* */ */, '{{ v }}'"),
        (Dialect.CLICKHOUSE, "SELECT 1 # it's\n, '{{ v }}'"),
        (Dialect.POSTGRES, "SELECT '{{ v }}"),
    ],
)
def test_unsafe_places_refused(dialect, template):
    _refused(template, dialect, params={"v": "x"})


@pytest.mark.parametrize(
    ("dialect", "template"),
    [
        (Dialect.POSTGRES, "SELECT E'\\{{ v }}'"),
        (Dialect.MYSQL, "SELECT 'a\\{{ v }}'"),
        (Dialect.CLICKHOUSE, "SELECT '\\\\\\{{ v }}'"),
        (Dialect.ELASTICSEARCH, '{"q": "\\{{ v }}"}'),
    ],
)
def test_value_after_backslash_escape_refused(dialect, template):
    assert "backslash" in _refused(template, dialect, params={"v": "x"}).message


def test_value_after_escaped_backslash_is_fine():
    assert _render("SELECT E'\\\\{{ v }}'", v="'") == "SELECT E'\\\\'''"


@pytest.mark.parametrize(
    ("dialect", "template", "expected"),
    [
        # MySQL: "--" starts a comment only before a space or control character.
        (Dialect.MYSQL, "SELECT 1 --x\n, '{{ v }}'", "SELECT 1 --x\n, 'it''s'"),
        # ClickHouse: in 1e--1 the first "-" is the exponent sign, the rest is code.
        (Dialect.CLICKHOUSE, "SELECT 1e--1, '{{ v }}'", "SELECT 1e--1, 'it\\'s'"),
        # PostgreSQL: $1 is a parameter and a$b$ an identifier, not dollar quotes.
        (Dialect.POSTGRES, "SELECT a$b$, $1, '{{ v }}'", "SELECT a$b$, $1, 'it''s'"),
        (Dialect.POSTGRES, "SELECT '$$', '{{ v }}', '$$'", "SELECT '$$', 'it''s', '$$'"),
        (Dialect.POSTGRES, "SELECT 1 -- it's\n, '{{ v }}'", "SELECT 1 -- it's\n, 'it''s'"),
        (Dialect.MYSQL, "SELECT 'a''b', \"c\", '{{ v }}'", "SELECT 'a''b', \"c\", 'it''s'"),
    ],
)
def test_lexer_edge_cases(dialect, template, expected):
    assert _render(template, dialect, v="it's") == expected


def test_postgres_typed_literal_and_prefixes():
    assert _render("SELECT DATE '{{ d }}', N'{{ d }}'", d="2024-01-31") == "SELECT DATE '2024-01-31', N'2024-01-31'"
    # 1e'x' is the number 1 and an E'' string in older PostgreSQL versions.
    assert _render("SELECT 1e'{{ v }}'", v="\\") == "SELECT 1e'\\\\'"


# --------------------------------------------------------------------------- declared parameters


DECLARATIONS = parse_declarations(
    [
        {"name": "col", "type": "identifier", "values": ["created_at", 'we"ird', "a`b"]},
        {"name": "ids", "type": "list", "item_type": "integer"},
        {"name": "names", "type": "list", "item_type": "text"},
        {"name": "day", "type": "date"},
        {"name": "at", "type": "datetime"},
        {"name": "status", "type": "enum", "values": ["paid", "open"]},
        {"name": "size", "type": "enum", "values": [10, 20]},
        {"name": "limit", "type": "integer", "default": 10},
        {"name": "ratio", "type": "number"},
        {"name": "flag", "type": "boolean"},
        {"name": "note", "type": "text"},
    ]
)


def _declared(template: str, dialect: Dialect = Dialect.POSTGRES, **params) -> str:
    return render(template, dialect=dialect, params=params, declarations=DECLARATIONS).text


@pytest.mark.parametrize(
    ("dialect", "value", "expected"),
    [
        (Dialect.POSTGRES, "created_at", '"created_at"'),
        (Dialect.POSTGRES, 'we"ird', '"we""ird"'),
        (Dialect.REDSHIFT, "created_at", '"created_at"'),
        (Dialect.MYSQL, "a`b", "`a``b`"),
        (Dialect.CLICKHOUSE, "a`b", "`a\\`b`"),
        (Dialect.ELASTICSEARCH, 'we"ird', '"we\\"ird"'),
    ],
)
def test_identifier_parameter(dialect, value, expected):
    assert _declared("ORDER BY t.{{ col }}", dialect, col=value) == f"ORDER BY t.{expected}"


def test_identifier_outside_allowed_values_refused():
    with pytest.raises(ValidationError) as caught:
        _declared("ORDER BY {{ col }}", col="id; DROP TABLE t")
    assert "params.col" in caught.value.details


def test_list_parameters():
    assert _declared("WHERE id IN ({{ ids }})", ids=[1, "2", -3]) == "WHERE id IN (1, 2, (-3))"
    assert _declared("WHERE n IN ({{ names }})", names=["a", "it's"]) == "WHERE n IN ('a', 'it''s')"
    assert _declared("WHERE n IN ({{ names }})", Dialect.MYSQL, names=["a\\"]) == "WHERE n IN ('a\\\\')"
    assert _declared('{"terms": {"n": [{{ names }}]}}', Dialect.ELASTICSEARCH, names=['a"']) == (
        '{"terms": {"n": ["a\\""]}}'
    )
    assert _declared("{% for i in ids %}{{ i }},{% endfor %}", ids=[1, 2]) == "1,2,"
    assert "empty list" in _refused("WHERE id IN ({{ ids }})", params={"ids": []}, declarations=DECLARATIONS).message
    _refused("WHERE id = '{{ ids }}'", params={"ids": [1]}, declarations=DECLARATIONS)


def test_typed_text_values_become_literals_outside_quotes():
    assert _declared("WHERE d = {{ day }}", day="2024-01-31") == "WHERE d = '2024-01-31'"
    assert _declared("WHERE d >= {{ at }}::timestamptz", at="2024-01-31T10:00:00Z") == (
        "WHERE d >= '2024-01-31T10:00:00Z'::timestamptz"
    )
    assert _declared("WHERE s = {{ status }}", Dialect.CLICKHOUSE, status="paid") == "WHERE s = 'paid'"
    assert _declared("WHERE s = {{ note }}", note="it's") == "WHERE s = 'it''s'"
    assert _declared("WHERE s = '{{ note }}'", note="it's") == "WHERE s = 'it''s'"
    assert _declared("LIMIT {{ size }}", size="20") == "LIMIT 20"
    assert _declared("LIMIT {{ limit }}") == "LIMIT 10"
    assert _declared("WHERE r > {{ ratio }}", ratio="0.10") == "WHERE r > 0.10"
    assert _declared("WHERE f = {{ flag }} AND {{ ratio * 2 }} > 0", flag="true", ratio=2) == "WHERE f = TRUE AND 4 > 0"
    assert "next to other text" in _refused(
        "SELECT E{{ note }}", params={"note": "x"}, declarations=DECLARATIONS
    ).message


@pytest.mark.parametrize(
    "template",
    [
        "SELECT E'a'\n{{ note }} AND b = '{{ v }}'",
        "SELECT 'a' -- c\n  {{ note }} AND b = '{{ v }}'",
        "SELECT U&'a'\n\n{{ note }} AND b = '{{ v }}'",
    ],
)
def test_text_literal_is_not_joined_to_the_string_before_it(template):
    # PostgreSQL joins 'a' <newline> 'b'; after E'a' the placed literal would read backslashes.
    for dialect in (Dialect.POSTGRES, Dialect.INTERNAL, Dialect.REDSHIFT):
        error = _refused(template, dialect, params={"note": "\\", "v": "1 OR 1=1 --"}, declarations=DECLARATIONS)
        assert "joined" in error.message or "Unicode" in error.message


def test_text_literal_after_a_string_on_the_same_line():
    assert _declared("SELECT E'a', {{ note }}", note="\\") == "SELECT E'a', '\\'"
    assert _declared("SELECT E'a'\n, {{ note }}", note="x") == "SELECT E'a'\n, 'x'"


def test_declared_value_checked_before_render():
    with pytest.raises(ValidationError) as caught:
        _declared("LIMIT {{ limit }}", limit="ten")
    assert caught.value.message.startswith("Invalid parameter 'limit'")


def test_operations_on_typed_values_give_plain_values():
    # A filtered identifier is no longer the checked identifier: it is refused outside quotes.
    _refused("ORDER BY {{ col|upper }}", params={"col": "created_at"}, declarations=DECLARATIONS)


# --------------------------------------------------------------------------- parameters


def test_missing_parameter_is_named():
    error = _refused("SELECT * FROM orders WHERE status = '{{ status }}'")
    assert error.message == "Missing parameter: status"
    assert error.details == {"parameter": "status"}


def test_optional_parameter_with_is_defined():
    template = "SELECT 1{% if status is defined %} WHERE s = '{{ status }}'{% endif %}"
    assert _render(template) == "SELECT 1"
    assert _render(template, status="x") == "SELECT 1 WHERE s = 'x'"


@pytest.mark.parametrize("name", ["secret", "1abc", "a-b", "class", "true", "", "a b"])
def test_bad_parameter_names_refused(name):
    with pytest.raises(ValidationError):
        render("SELECT 1", dialect=Dialect.POSTGRES, params={name: 1})


def test_error_names_the_parameter():
    error = _refused("SELECT {{ status }}", params={"status": "paid"})
    assert "Parameter 'status'" in error.message


# --------------------------------------------------------------------------- secrets


def _with_secrets(template: str, dialect: Dialect = Dialect.POSTGRES, **params):
    return render(template, dialect=dialect, params=params, secrets=_namespace())


def test_secret_field_and_generic_secret():
    rendered = _with_secrets("SELECT '{{ secret.pg.password }}', '{{ secret['generic'].token }}'")
    assert rendered.text == f"SELECT '{PG_PASSWORD}', '{TOKEN}'"
    assert rendered.secret_values == {PG_PASSWORD, TOKEN}
    scalar = render(
        "SELECT '{{ secret['api-key'] }}'",
        dialect=Dialect.MYSQL,
        params={},
        secrets=SecretNamespace({"api-key": "k'ey"}, None),
    )
    assert scalar.text == "SELECT 'k''ey'" and scalar.secret_values == {"k'ey"}


def test_numeric_secret_outside_quotes():
    namespace = SecretNamespace({"cfg": {"limit": 50, "port": 5432}})
    rendered = render("SELECT 1 WHERE id = {{ secret.cfg.limit }}", dialect=Dialect.POSTGRES, params={}, secrets=namespace)
    assert rendered.text == "SELECT 1 WHERE id = 50" and rendered.secret_values == {"50"}
    rendered = render("SELECT {{ secret.cfg.port }} AS p", dialect=Dialect.POSTGRES, params={}, secrets=namespace)
    assert rendered.text == "SELECT 5432 AS p"
    # LIMIT would return as many rows as the secret says: the secret would be in the response.
    error = _refused("SELECT 1 LIMIT {{ secret.cfg.limit }}", secrets=namespace)
    assert error.details == {"reason": "secret_use"} and "50" not in error.message


def test_secret_string_refused_outside_quotes_without_leaking():
    error = _refused("SELECT {{ secret.pg.password }}", secrets=_namespace())
    assert error.message == "Secret 'pg.password' must be a number or boolean when used outside quotes"


def test_user_profile_fields_are_not_secrets():
    rendered = _with_secrets(
        "SELECT '{{ secret.user_profile.email }}', {{ secret.user_profile.id }}, {{ secret.user_profile.is_staff }}"
    )
    assert rendered.text == "SELECT 'ada@example.com', 7, FALSE"
    assert rendered.secret_values == frozenset()
    assert "Unknown user profile field" in _refused(
        "SELECT '{{ secret.user_profile.password }}'", secrets=_namespace()
    ).message


def test_unknown_secret():
    error = _refused("SELECT '{{ secret.nope.x }}'", secrets=_namespace())
    assert error.message == "Secret not found: nope"
    assert _refused("SELECT '{{ secret.pg.nope }}'", secrets=_namespace()).message == "Secret not found: pg.nope"


def test_secrets_unavailable_without_namespace():
    error = _refused("SELECT '{{ secret.pg.password }}'", Dialect.INTERNAL)
    assert "Secrets are not available" in error.message


@pytest.mark.parametrize(
    "expression",
    [
        "secret",
        "secret.pg",
        "secret.user_profile",
        "secret.items()",
        "secret|list",
        "secret|length",
        "secret.pg|list",
        "secret.pg|first",
        "secret.pg|dictsort",
        "secret.pg.password|reverse",
        "secret.pg.password|upper",
        "secret.pg.password|lower",
        "secret.pg.password|string",
        "secret.pg.password|int",
        "secret.pg.password|float",
        "secret.pg.password|join",
        "secret.pg.password|list",
        "secret.pg.password|length",
        "secret.pg.password|replace('S', 's')",
        "secret.pg.password|truncate(5)",
        "secret.pg.password|wordcount",
        "secret.pg.password|default('x')|upper",
        "secret.pg.password[:12]",
        "secret.pg.password[0]",
        "secret.pg.password ~ 'x'",
        "'x' ~ secret.pg.password",
        "secret.pg.password + 'x'",
        "secret.pg.password * 2",
        "'%s' % secret.pg.password",
        "secret.pg.password.upper()",
        "secret.pg.password.startswith('S')",
        "'{0}'.format(secret.pg.password)",
        "secret.pg.password == 'S3cr3t-pw-123'",
        "'S' in secret.pg.password",
        "secret.pg.password in ['S3cr3t-pw-123']",
        "[secret.pg.password]",
        "{'a': secret.pg.password}",
        "[secret.pg.password]|join",
        "[secret.pg.password]|map('upper')|list",
        "[secret.pg.password]|sort",
        "secret.pg.password()",
    ],
)
def test_secrets_cannot_be_transformed(expression):
    error = _refused(f"SELECT '{{{{ {expression} }}}}'", secrets=_namespace())
    assert PG_PASSWORD not in error.message and PG_PASSWORD not in json.dumps(error.details)


@pytest.mark.parametrize(
    "template",
    [
        "{% for c in secret.pg.password %}'{{ c }}'{% endfor %}",
        "{% for k in secret %}'{{ k }}'{% endfor %}",
        "{% if secret.pg.password == 'x' %}1{% endif %}",
        "{% if secret.pg.password|length > 3 %}1{% endif %}",
        "{% set s = secret.pg.password %}'{{ s|reverse }}'",
        "{% macro m(s) %}{{ s|upper }}{% endmacro %}'{{ m(secret.pg.password) }}'",
    ],
)
def test_secrets_cannot_be_probed(template):
    _refused(template, secrets=_namespace())


def test_secret_objects_hide_their_values():
    namespace = _namespace()
    assert repr(namespace) == "<secret>"
    with pytest.raises(QueryValidationError):
        str(namespace)
    rendered = _with_secrets("SELECT '{{ secret.pg.password }}'")
    assert PG_PASSWORD not in repr(rendered)


# --------------------------------------------------------------------------- sandbox


@pytest.mark.parametrize("name", ["range", "dict", "lipsum", "cycler", "joiner", "namespace", "config", "request"])
def test_no_globals(name):
    assert _refused(f"SELECT {{{{ {name} }}}}").message == f"Missing parameter: {name}"


@pytest.mark.parametrize(
    "template",
    [
        "{% include 'x' %}",
        "{% import 'os' as os %}",
        "{% from 'x' import y %}",
        "{% extends 'base' %}",
        "{% filter upper %}x{% endfilter %}",
        "{% autoescape true %}x{% endautoescape %}",
        "{% debug %}",
        "{{ x|tojson }}",
        "{{ x|attr('y') }}",
        "{{ x|format('y') }}",
        "{{ x|center(9) }}",
        "{{ x",
    ],
)
def test_refused_at_syntax_check(template):
    with pytest.raises(QueryValidationError) as caught:
        check_syntax(template)
    assert caught.value.message.startswith("Template syntax error on line 1:")
    assert caught.value.details == {"line": 1}


def test_syntax_error_reports_the_line():
    with pytest.raises(QueryValidationError) as caught:
        check_syntax("SELECT 1\nFROM t\nWHERE {% if %}")
    assert caught.value.details == {"line": 3}
    check_syntax("SELECT {{ a }} {% if b %}1{% endif %}")


def test_filter_block_cannot_write_raw_values():
    # {% filter %} output skips the finalizer; it must not be available at all.
    _refused("{% filter replace('a', v) %}a{% endfilter %}", params={"v": "1; DROP TABLE t"})


def test_call_block_only_calls_macros():
    _refused("{% call v.upper() %}{% endcall %}", params={"v": "x"})


def test_macros_render_as_query_text():
    template = "{% macro cond(s) %}status = '{{ s }}'{% endmacro %}SELECT 1 WHERE {{ cond(v) }}"
    assert _render(template, v="it's") == "SELECT 1 WHERE status = 'it''s'"
    template = "{% macro w() %}WHERE {{ caller() }}{% endmacro %}SELECT 1 {% call w() %}a = '{{ v }}'{% endcall %}"
    assert _render(template, v="x'") == "SELECT 1 WHERE a = 'x'''"


def test_block_set_capture_is_a_value():
    # A captured block is data, not query text: outside quotes it is refused.
    _refused("{% set w %}a = 1{% endset %}SELECT 1 WHERE {{ w }}")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ v.__class__ }}",
        "{{ v['__class__'] }}",
        "{{ v.format }}",
        "{{ v.center(5) }}",
        "{{ v.zfill(5) }}",
        "{{ v.encode() }}",
        "{{ d.update(a=1) }}",
        "{{ d.pop('a') }}",
        "{{ l.append(1) }}",
        "{{ (1).__class__ }}",
        "{{ self.__dict__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ loop }}",
        "{{ self }}",
        "{{ v.upper }}",
        "{{ 1/0 }}",
        "{{ [] | first }}",
        "{{ d.missing.deeper }}",
    ],
)
def test_sandbox_refusals(template):
    _refused(template, params={"v": "x", "d": {"a": 1}, "l": [1]})


def test_allowed_data_methods():
    template = "SELECT '{{ v.upper() }}', '{{ v.split(',')|join('|') }}', {{ d.get('a') }}, {{ d['a'] + 1 }}"
    assert _render(template, v="a,b", d={"a": 1}) == "SELECT 'A,B', 'a|b', 1, 2"


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * 100000000 }}",
        "{{ v * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{{ 2 ** 100000 }}",
        "{{ (10 ** 4000) * (10 ** 4000) }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ v|replace('', v * 500000) }}",
        "{{ (v * 500000)|join(v * 500000) }}",
        "{% set a = v * 400000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ c|length }}",
        "{% set a = [v * 400000] %}{% set b = a + a %}{% set c = b + b %}{{ c|length }}",
        "{% set a = [v * 400000, v * 400000] %}{% set b = [a, a] %}{% set c = [b, b] %}{{ c|length }}",
        "{{ [1, 2]|sum(start=[]) }}",
    ],
)
def test_resource_limits(template):
    _refused(template, params={"v": "xy"})


def test_work_budget(monkeypatch):
    monkeypatch.setattr(templating, "MAX_OPERATIONS", 1000)
    _refused("{% for a in v %}{% for b in v %}{{ 1 }}{% endfor %}{% endfor %}", params={"v": "x" * 100})
    _refused("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}")
    assert _render("{% for a in v %}{{ loop.index }},{% endfor %}", v="abc") == "1,2,3,"


def test_rendered_size_limit(monkeypatch):
    monkeypatch.setattr(templating, "MAX_RENDERED_CHARS", 100)
    _refused("{% for a in v %}xxxxxxxxxx{% endfor %}", params={"v": "x" * 20})


@pytest.mark.parametrize(
    "template",
    [
        "{{ x.y.z }}",
        "{{ 'a'|int(base=99) }}",
        "{{ {}|first }}",
        "{{ none.x }}",
        "{{ v[10] }}",
        "{{ d[[1]] }}",
        "{{ 1 < 'a' }}",
        "{{ -v }}",
        "{{ v|round }}",
        "{{ v|sort(attribute='x') }}",
        "{{ v|map('nope')|list }}",
        "{{ v|select('nope')|list }}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
        "{{ " + "[" * 150 + "]" * 150 + " }}",
        "{% for x in 5 %}{% endfor %}",
        "{{ l.index(9) }}",
    ],
)
def test_errors_are_query_validation_errors(template):
    try:
        render(template, dialect=Dialect.POSTGRES, params={"x": {"y": 1}, "v": "ab", "d": {}, "l": [1]})
    except AnalyticsError as exc:
        assert isinstance(exc, QueryValidationError)


def test_unsupported_parameter_types_refused():
    error = _refused("SELECT 1", params={"v": object()})
    assert error.message == "Parameter 'v' has an unsupported type"


# --------------------------------------------------------------------------- variables, cache


def test_template_variables():
    text = (
        "SELECT '{{ a }}' {% set b = 1 %}{{ b }} {% for i in items %}{{ i }}{{ loop.index }}{% endfor %}"
        " '{{ secret.pg.password }}' {% if c is defined %}{{ c }}{% endif %}"
    )
    assert template_variables(text) == {"a", "items", "c"}
    with pytest.raises(QueryValidationError):
        template_variables("{{ a")


def test_compiled_templates_are_cached():
    templating._TEMPLATE_CACHE.clear()
    text = "SELECT '{{ v }}'"
    assert render(text, dialect=Dialect.POSTGRES, params={"v": "a"}, cache_key=("q1", 1)).text == "SELECT 'a'"
    assert render(text, dialect=Dialect.MYSQL, params={"v": "b"}, cache_key=("q1", 1)).text == "SELECT 'b'"
    assert (templating._TEMPLATE_CACHE.hits, templating._TEMPLATE_CACHE.misses) == (1, 1)
    # The same key with other text (an update in the same second) does not reuse the old template.
    other = "SELECT '{{ v }}', 2"
    assert render(other, dialect=Dialect.POSTGRES, params={"v": "c"}, cache_key=("q1", 1)).text == "SELECT 'c', 2"
    assert render("SELECT 1", dialect=Dialect.POSTGRES, params={}, cache_key=[1]).text == "SELECT 1"


def test_cache_is_bounded(monkeypatch):
    cache = templating._TemplateCache(2)
    for key in range(3):
        cache.put(key, "t", object())
    assert cache.get(0, "t") is None and cache.get(2, "t") is not None


def test_concurrent_renders_share_the_cache():
    templating._TEMPLATE_CACHE.clear()
    errors: list[str] = []

    def work(n: int) -> None:
        for _ in range(50):
            text = render("SELECT '{{ v }}', {{ n }}", dialect=Dialect.POSTGRES, params={"v": f"t{n}", "n": n}, cache_key="q").text
            if text != f"SELECT 't{n}', {n}":
                errors.append(text)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# --------------------------------------------------------------------------- preview


def test_preview_renders_placeholders():
    template = (
        "SELECT * FROM orders WHERE status = '{{ status }}' "
        "{% if since %}AND created_at > '{{ since }}'{% endif %} "
        "AND id IN ({% for i in ids %}{{ i }}{% if not loop.last %}, {% endif %}{% endfor %}) "
        "AND k = '{{ secret.pg.password }}' LIMIT {{ n|int }}"
    )
    text = render_preview(template, dialect=Dialect.POSTGRES)
    assert text == (
        "SELECT * FROM orders WHERE status = 'x' AND created_at > 'x' AND id IN (1) AND k = 'x' LIMIT 1"
    )
    assert sqlglot.parse_one(text, read="postgres") is not None


def test_preview_uses_declarations():
    template = "SELECT * FROM t WHERE d = {{ day }} AND id IN ({{ ids }}) ORDER BY {{ col }} LIMIT {{ limit }}"
    assert render_preview(template, dialect=Dialect.MYSQL, declarations=DECLARATIONS) == (
        "SELECT * FROM t WHERE d = '2000-01-01' AND id IN (1) ORDER BY `created_at` LIMIT 10"
    )


def test_preview_of_elasticsearch_body():
    template = '{"size": {{ n }}, "query": {"term": {"status": "{{ s }}"}}}'
    assert json.loads(render_preview(template, dialect=Dialect.ELASTICSEARCH)) == {
        "size": 1,
        "query": {"term": {"status": "x"}},
    }


@pytest.mark.parametrize(
    ("dialect", "template"),
    [
        (Dialect.INTERNAL, "SELECT '{{ secret.pg.password }}'"),
        (Dialect.POSTGRES, "SELECT '{{ secret }}'"),
        (Dialect.POSTGRES, "SELECT '{{ secret.pg.password|upper }}'"),
        (Dialect.POSTGRES, "SELECT 1 -- {{ v }}"),
        (Dialect.POSTGRES, 'SELECT "{{ v }}"'),
        (Dialect.POSTGRES, "SELECT {{ v ~ 'x' }}"),
        (Dialect.POSTGRES, "{% include 'x' %}"),
        (Dialect.POSTGRES, "SELECT '{{ secret.user_profile.password }}'"),
    ],
)
def test_preview_refuses_bad_shapes(dialect, template):
    with pytest.raises(QueryValidationError):
        render_preview(template, dialect=dialect)


def test_preview_allows_user_profile():
    assert render_preview("SELECT '{{ secret.user_profile.email }}', {{ secret.user_profile.id }}", dialect=Dialect.MYSQL) == (
        "SELECT 'x', 1"
    )


# --------------------------------------------------------------------------- red team
# Siblings of the public corpora (at least three per public line), shared with the end-to-end
# red team (tests/e2e/test_injection_redteam.py), which runs the important ones for real.

REDTEAM_QUOTED = [
    # UNION / stacked statements / comments after a closing quote
    ("x' UNION ALL SELECT note FROM accept_canary --", "UNION ALL"),
    ("x') UNION SELECT 1,2 --", "closing parenthesis then UNION"),
    ("x' UNION SELECT NULL#", "UNION with MySQL # comment"),
    ("'; SELECT 1; --", "stacked statement"),
    ("x';\nDELETE FROM accept_canary;--", "newline and DELETE"),
    ("x'/**/OR/**/'1'='1", "comments as spaces"),
    ("x' -- ", "dash-dash comment"),
    ("x' #", "hash comment"),
    ("x'*/", "close a comment that is not open"),
    ("*/ OR 1=1 /*", "comment delimiters"),
    ("--", "bare dash-dash"),
    ("#", "bare hash"),
    # quotes and backslashes, per dialect
    ("''", "doubled quote"),
    ("'''", "three quotes"),
    ("\\'\\'", "backslash-quote twice"),
    ("\\\\'", "escaped backslash then quote"),
    ("\\\\", "two backslashes"),
    ("x\\\\\\", "odd backslashes at the end"),
    ("\\", "lone backslash"),
    ("\\' OR 1=1 -- ", "MySQL backslash-quote escape"),
    ("\\x27", "hex escape text"),
    ("\\047", "octal escape text"),
    ("\\u0027", "unicode escape text"),
    ("\\0", "MySQL NUL escape text"),
    ("\\Z", "MySQL ^Z escape text"),
    ("\\%\\_", "MySQL LIKE escapes in a plain literal"),
    ("E'x'", "an escape-string prefix as text"),
    ("N'x' OR 'a'='a", "national prefix"),
    ("U&'\\0027'", "unicode-escape string as text"),
    # dollar quotes, driver placeholders, template syntax
    ("$$", "close a dollar quote"),
    ("$$; SELECT 1; $$", "dollar-quoted body"),
    ("$tag$x$tag$", "tagged dollar quote"),
    ("$1", "positional placeholder"),
    ("?", "qmark placeholder"),
    (":name", "named placeholder"),
    ("%(status)s %s %%s", "pyformat placeholders"),
    ("%", "lone percent"),
    ("{{ secret.pg.password }}", "secret reference as data"),
    ("{% for x in [1] %}x{% endfor %}", "statement syntax as data"),
    ("{# comment #}", "comment syntax as data"),
    ("{{", "unbalanced braces"),
    ("q0123456789abcdefn0z", "lookalike placeholder token"),
    # whitespace, control and unicode
    ("\r", "lone carriage return"),
    ("x\r\n' OR '1'='1", "CRLF before a quote"),
    ("\t\x0b\x0c", "tab, vertical tab, form feed"),
    ("\x1a", "ASCII SUB (MySQL ^Z)"),
    ("\x7f\x85", "DEL and NEL"),
    ("\u2028\u2029", "unicode line separators"),
    ("\ufeff", "byte order mark"),
    ("\u02bc OR \u02bc1\u02bc=\u02bc1", "modifier letter apostrophes"),
    ("\uff07 OR \uff071\uff07=\uff071", "fullwidth apostrophes"),
    ("\u2018x\u2019", "curly quotes"),
    ("x\u0301'", "combining accent before a quote"),
    ("\U0001f600'", "astral character before a quote"),
    ("\u0130stanbul", "dotted capital I"),
    # real values and shapes
    ("it's complicated", "a real status with a quote (must match row 2)"),
    ("pending", "a real status"),
    ("PAID", "case differs"),
    ("paid ", "trailing space"),
    (" paid", "leading space"),
    ("", "empty string"),
    ("x" * 20000, "long value"),
    ("'" * 3000, "many quotes"),
    ("\\" * 3001, "many backslashes"),
    # JSON types other than text
    (42, "an integer"),
    (-7, "a negative integer"),
    (1.5, "a float"),
    (12345678901234567890, "a 20-digit integer"),
    (None, "null"),
    (True, "a boolean"),
    ([1, 2], "a list"),
    ({"a": "b"}, "an object"),
    (1e16, "a float written with an exponent"),
]

REDTEAM_UNQUOTED = [
    ("1 OR 1=1", "tautology"),
    ("1; SELECT 1", "stacked statement"),
    ("1 --", "trailing comment"),
    ("1 /* */", "trailing block comment"),
    ("1#", "MySQL comment"),
    ("1)", "closing parenthesis"),
    ("1 UNION ALL SELECT 1", "UNION ALL"),
    ("(SELECT count(*) FROM accept_canary)", "scalar subquery"),
    ("pg_sleep(5)", "function call"),
    ("1 AND SLEEP(5)", "MySQL sleep"),
    ("id", "a column name"),
    ("*", "star"),
    ("1e309", "a number string that overflows"),
    ("1e3", "exponent as a string"),
    ("0x10", "hex"),
    ("1_000", "digit separators"),
    ("--1", "double minus"),
    ("+1", "unary plus"),
    ("-1", "negative number as a string"),
    ("5", "a number as a string"),
    (" 5", "leading space"),
    ("5 ", "trailing space"),
    ("5\n", "trailing newline"),
    ("\u0665", "arabic-indic digit"),
    ("\uff15", "fullwidth digit"),
    ("Infinity", "infinity"),
    ("NaN", "not a number"),
    ("TRUE", "boolean keyword as a string"),
    ("true", "JSON-ish boolean as a string"),
    ("NULL", "NULL keyword"),
    ("", "empty string"),
    ([1, 2], "a list"),
    ([], "an empty list"),
    ({"a": 1}, "an object"),
    (None, "null"),
    (["1; DROP TABLE accept_canary"], "a list with a statement"),
]

REDTEAM_SSTI = [
    ("{{ ''|attr('__class__') }}", "attr filter on a literal"),
    ("{{ p|attr('__class__')|attr('__mro__') }}", "chained attr filters", {"p": "x"}),
    ("{{ ().__class__.__bases__[0].__subclasses__() }}", "subclasses through a tuple"),
    ("{{ [].__class__.__mro__[-1].__subclasses__() }}", "subclasses through a list"),
    ("{{ ''.__class__.__base__.__subclasses__()[40]('/etc/passwd').read() }}", "file through a subclass"),
    ("{{ p.__class__.__base__ }}", "base of a parameter", {"p": "x"}),
    ("{{ namespace }}", "namespace global"),
    ("{% set ns = namespace(x=1) %}{% set ns.x = 2 %}{{ ns.x }}", "namespace assignment"),
    ("{{ lipsum }}{{ cycler }}{{ joiner }}", "other globals"),
    ("{{ dict(a=1) }}", "dict global"),
    ("{{ config }}{{ request }}{{ g }}{{ session }}{{ url_for }}", "Flask globals"),
    ("{{ range(10**8)|list }}", "range DoS"),
    ("{% for x in range(99999999) %}{{ x }}{% endfor %}", "loop DoS through range"),
    ("{{ 'a' * 10**9 }}", "string repetition DoS"),
    ("{{ [1] * 10**9 }}", "list repetition DoS"),
    ("{{ 9**9**9 }}", "power chain"),
    ("{{ 9**(9**9) }}", "power DoS"),
    ("{{ 10**10000 }}", "big integer"),
    ("{{ 1e309 }}{{ -1e309 }}", "infinite floats"),
    ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "macro recursion"),
    ("{% macro m(n) %}{{ m(n) ~ m(n) }}{% endmacro %}{{ m(1) }}", "doubling macro recursion"),
    ("{% for a in [1]*1000 %}{% for b in [1]*1000 %}{% for c in [1]*1000 %}{% endfor %}{% endfor %}{% endfor %}", "nested loop DoS"),
    ("{% for i in [1]*999999 %}{% set x = ('a'*999999)|reverse %}{% endfor %}", "filter work DoS"),
    ("{{ 'x'|replace('x', 'x'*999999)|replace('x', 'xx') }}", "replace amplification"),
    ("{{ p.zfill(10**9) }}{{ p.center(10**9) }}{{ p.ljust(10**9) }}", "padding DoS", {"p": "x"}),
    ("{% for x in [1] %}{{ loop }}{% endfor %}", "loop object"),
    ("{% for x in [1] %}{{ loop.__class__.__mro__ }}{% endfor %}", "loop internals"),
    ("{{ self }}", "template reference"),
    ("{{ self.__init__ }}", "template reference init"),
    ("{{ self.__init__.__globals__ }}", "template reference globals"),
    ("{% macro m() %}{{ caller }}{% endmacro %}{% call m() %}x{% endcall %}", "caller object"),
    ("{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, a=2) }}", "varargs and kwargs"),
    ("{% macro m() %}{{ m.__globals__ }}{% endmacro %}{{ m() }}", "macro globals"),
    ("{% macro m() %}1{% endmacro %}{{ m._func }}{{ m.__call__ }}", "macro internals"),
    ("{% raw %}{{ secret.<<PG_SECRET>>.password }}{% endraw %}", "raw block"),
    ("{% set x = secret %}{{ x.<<PG_SECRET>>.password }}", "secret namespace through set"),
    ("{% with x = secret.<<PG_SECRET>>.password %}{{ x|reverse }}{% endwith %}", "with block transform"),
    ("{{ secret.<<PG_SECRET>>.password|join }}", "join a password"),
    ("{{ secret.<<PG_SECRET>>.password|join('-') }}", "join a password with a separator"),
    ("{{ secret.<<PG_SECRET>>.password|replace('a', 'b') }}", "replace in a password"),
    ("{{ secret.<<PG_SECRET>>.password|truncate(5) }}", "truncate a password"),
    ("{{ secret.<<PG_SECRET>>.password|wordcount }}", "count words of a password"),
    ("{{ secret.<<PG_SECRET>>.password|length }}", "password length"),
    ("{{ secret.<<PG_SECRET>>.password|string }}", "password as string"),
    ("{{ secret.<<PG_SECRET>>.password|list }}", "password characters"),
    ("{{ secret.<<PG_SECRET>>.password|lower }}", "lower-cased password"),
    ("{{ secret.<<PG_SECRET>>.password|title }}", "title-cased password"),
    ("{{ secret.<<PG_SECRET>>.password|capitalize }}", "capitalized password"),
    ("{{ secret.<<PG_SECRET>>.password|sort|join }}", "sorted password characters"),
    ("{{ secret.<<PG_SECRET>>.password|e }}", "escape filter"),
    ("{{ secret.<<PG_SECRET>>.password|tojson }}", "password as JSON"),
    ("{{ secret.<<PG_SECRET>>.password[::-1] }}", "reversed by slicing"),
    ("{{ secret.<<PG_SECRET>>.password[1:] }}", "password suffix"),
    ("{{ secret.<<PG_SECRET>>.password[0] }}", "first character"),
    ("{{ secret.<<PG_SECRET>>.password ~ '' }}", "concatenated password"),
    ("{{ secret.<<PG_SECRET>>.password.__class__ }}", "dunder on a password"),
    ("{{ secret.<<PG_SECRET>>.password._value }}", "private attribute of a secret"),
    ("{{ secret._secrets }}", "private attribute of the namespace"),
    ("{{ secret.<<PG_SECRET>>._fields }}", "private attribute of a connection secret"),
    ("{{ secret.__class__.__init__.__globals__ }}", "globals through the namespace"),
    ("{% if secret.<<PG_SECRET>>.password[0] == 'p' %}1{% endif %}", "first-character oracle"),
    ("{% if secret.<<PG_SECRET>>.password > 'm' %}1{% endif %}", "ordering oracle"),
    ("{% if 'p' in secret.<<PG_SECRET>>.password %}1{% endif %}", "substring oracle"),
    ("{% if secret.<<PG_SECRET>>.password|length > 8 %}1{% endif %}", "length oracle"),
    ("{% if secret.<<PG_SECRET>>.password is lower %}1{% endif %}", "case oracle"),
    ("{% if secret.<<PG_SECRET>>.password is defined %}1{% endif %}", "defined test (constant)"),
    ("{{ secret.<<PG_SECRET>>.password if secret.<<PG_SECRET>>.password == 'x' else 'y' }}", "conditional oracle"),
    ("{% for c in secret.<<PG_SECRET>>.password %}{{ c }}{% endfor %}", "iterate a password"),
    ("{{ secret.<<PG_SECRET>>.password|default('x') }}", "default filter"),
    ("{{ [secret.<<PG_SECRET>>.password]|first }}", "password through a list"),
    ("{{ [secret.<<PG_SECRET>>.password]|map('upper')|first }}", "map upper"),
    ("{{ [secret.<<PG_SECRET>>]|map(attribute='password')|map('reverse')|first }}", "map attribute then reverse"),
    ("{{ [secret.<<PG_SECRET>>, {'password': 'm'}]|sort(attribute='password')|map(attribute='password')|first }}", "sort oracle"),
    ("{{ [secret.<<PG_SECRET>>]|selectattr('password', 'gt', 'm')|list|length }}", "selectattr oracle"),
    ("{{ [secret]|selectattr('<<PG_SECRET>>.password', 'lt', 'm')|list|length }}", "dotted selectattr oracle"),
    ("{{ [secret.<<PG_SECRET>>.password, 'a']|min }}", "min oracle"),
    ("{{ {'a': secret.<<PG_SECRET>>.password}|dictsort }}", "dictsort"),
    ("{{ {secret.<<PG_SECRET>>.password: 1}|dictsort }}", "secret as a dict key"),
    ("{{ secret.<<PG_SECRET>>['password'] }}", "item access to a field"),
    ("{{ secret['<<PG_SECRET>>'].password }}", "item access to a secret"),
    ("{{ secret.<<PG_SECRET>>.items()|list }}", "items of a connection secret"),
    ("{{ secret.<<PG_SECRET>>.keys() }}", "keys of a connection secret"),
    ("{{ secret.<<PG_SECRET>>|length }}", "field count"),
    ("{{ secret.<<PG_SECRET>>.port }}", "a numeric field"),
    ("{{ secret.<<PG_SECRET>>.connect_timeout }}", "a short numeric field"),
    ("{{ secret.<<GENERIC_SECRET>> }}", "a whole generic secret"),
    ("{{ secret.<<GENERIC_SECRET>>.token|reverse }}", "reversed generic token"),
    ("{{ secret.<<GENERIC_SECRET>>.token[0] }}", "first character of a token"),
    ("{% for k in secret.user_profile %}{{ k }}{% endfor %}", "iterate the profile"),
    ("{{ secret.user_profile.__class__.__mro__ }}", "profile internals"),
    ("{{ secret.user_profile.password }}", "a profile field that does not exist"),
    ("{% set x %}{{ secret.<<PG_SECRET>>.password }}{% endset %}{{ x|upper }}", "captured output transformed"),
    ("{% macro m() %}{{ caller()|reverse }}{% endmacro %}{% call m() %}{{ secret.<<PG_SECRET>>.password }}{% endcall %}", "caller output transformed"),
    ("{% filter upper %}{{ secret.<<PG_SECRET>>.password }}{% endfilter %}", "filter block"),
    ("{% autoescape false %}{{ p }}{% endautoescape %}", "autoescape block", {"p": "x"}),
    ("{% include 'x' %}{% import 'x' as y %}", "include and import"),
    ("{% from 'os' import path %}", "from import"),
    ("{% extends 'x' %}", "extends"),
    ("{% do p.append(1) %}", "do extension", {"p": []}),
    ("{% for x in [1] %}{% break %}{% endfor %}", "loop controls extension"),
    ("{{ p.format_map({}) }}{{ p.encode('utf-8') }}", "format_map and encode", {"p": "x"}),
    ("{{ '%s'|format(p) }}{{ '%s' % p }}", "printf formatting", {"p": "x"}),
    ("{{ (p|list).pop() }}{{ {}.update(a=1) }}", "mutating methods", {"p": "ab"}),
]


def _why(case: tuple) -> str:
    return case[1]


@pytest.mark.parametrize("dialect", SQL_DIALECTS)
@pytest.mark.parametrize("case", REDTEAM_QUOTED, ids=_why)
def test_redteam_quoted_value_is_one_literal(case, dialect):
    value = case[0]
    prefix = "SELECT * FROM orders WHERE status = '"
    try:
        text = render(prefix + "{{ v }}'", dialect=dialect, params={"v": value}).text
    except QueryValidationError:
        assert _refusal_allowed(value, dialect), "text must render"
        return
    expected = str(value)  # what the end-to-end test compares the echo with
    body = text[len(prefix) : -1]
    assert DECODERS[dialect](body) == expected
    if dialect in (Dialect.MYSQL, Dialect.REDSHIFT):
        assert _decode_standard(body) is not None
    tree = sqlglot.parse_one(text, read=SQLGLOT_DIALECT[dialect])
    condition = tree.args["where"].this
    assert isinstance(condition, exp.EQ) and isinstance(condition.expression, exp.Literal)
    assert condition.expression.this == expected
    assert len(list(tree.find_all(exp.Literal))) == 1


@pytest.mark.parametrize("case", REDTEAM_QUOTED, ids=_why)
def test_redteam_quoted_value_in_elasticsearch_json(case):
    value = case[0]
    template = '{"query": {"term": {"status": "{{ v }}"}}}'
    try:
        text = render(template, dialect=Dialect.ELASTICSEARCH, params={"v": value}).text
    except QueryValidationError:
        assert not isinstance(value, str)
        return
    assert json.loads(text) == {"query": {"term": {"status": str(value)}}}


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
@pytest.mark.parametrize("case", REDTEAM_UNQUOTED, ids=_why)
def test_redteam_unquoted_value_is_refused(case, dialect):
    template = '{"size": {{ v }}}' if dialect is Dialect.ELASTICSEARCH else "SELECT * FROM orders LIMIT {{ v }}"
    error = _refused(template, dialect, params={"v": case[0]})
    assert "Parameter 'v'" in error.message


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * FROM t WHERE id IN ({{ v }})",
        "SELECT * FROM t ORDER BY {{ v }}",
        "SELECT {{ v }} + 1",
        "SELECT * FROM t WHERE flag = {{ v }}",
        "SELECT * FROM t WHERE x - {{ v }} > 0",
    ],
)
@pytest.mark.parametrize("case", REDTEAM_UNQUOTED, ids=_why)
def test_redteam_unquoted_value_is_refused_in_every_bare_place(case, template):
    _refused(template, params={"v": case[0]})


@pytest.mark.parametrize(("value", "expected"), [(-1, "(-1)"), (-0.5, "(-0.5)"), (Decimal("-1E+2"), "(-1E+2)")])
def test_negative_numbers_never_make_a_comment(value, expected):
    for template in ("SELECT 1-{{ v }}", "SELECT 1 -{{ v }}", "SELECT x--{{ v }}"[:0] + "SELECT 2-{{ v }}"):
        text = _render(template, v=value)
        assert text.endswith(expected) and "--" not in text


@pytest.fixture()
def short_budget(monkeypatch):
    """The DoS payloads stop on the clock: a short budget keeps the suite fast."""
    monkeypatch.setattr(templating, "MAX_RENDER_SECONDS", 0.3)


def _ssti_case(case: tuple) -> tuple[str, dict]:
    return _expand(case[0]), (case[2] if len(case) > 2 else {})


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
@pytest.mark.parametrize("case", REDTEAM_SSTI, ids=_why)
def test_redteam_ssti_is_refused_or_inert(case, dialect, short_budget):
    payload, params = _ssti_case(case)
    try:
        rendered = render(payload, dialect=dialect, params=params, secrets=_namespace())
    except QueryValidationError as exc:
        for secret in (PG_PASSWORD, TOKEN):
            assert secret not in exc.message and secret not in json.dumps(exc.details)
        return
    _assert_inert(rendered.text, rendered.secret_values, secrets_allowed=False)


@pytest.mark.parametrize("dialect", SQL_DIALECTS)
@pytest.mark.parametrize("case", REDTEAM_SSTI, ids=_why)
def test_redteam_ssti_inside_a_string_is_refused_or_inert(case, dialect, short_budget):
    payload, params = _ssti_case(case)
    try:
        rendered = render(f"SELECT '{payload}' AS x", dialect=dialect, params=params, secrets=_namespace())
    except QueryValidationError:
        return
    _assert_inert(rendered.text, rendered.secret_values, secrets_allowed=True)


@pytest.mark.parametrize("case", REDTEAM_SSTI, ids=_why)
def test_redteam_ssti_in_a_preview_is_refused_or_inert(case, short_budget):
    payload, _ = _ssti_case(case)
    for template in (f"SELECT '{payload}' AS x", f"SELECT 1 AS x -- {payload}", f"SELECT {payload} AS x"):
        try:
            text = render_preview(template, dialect=Dialect.POSTGRES)
        except QueryValidationError:
            continue
        for marker in INTERNALS:
            assert marker not in text


def test_render_has_a_time_budget(monkeypatch):
    monkeypatch.setattr(templating, "MAX_RENDER_SECONDS", 0.2)
    template = "{% for i in [1]*999999 %}{% set x = ('a'*999999)|reverse %}{% endfor %}SELECT 1"
    for run in (lambda: render_preview(template, dialect=Dialect.POSTGRES), lambda: _render(template)):
        started = time.monotonic()
        with pytest.raises(QueryValidationError, match="too long to render"):
            run()
        assert time.monotonic() - started < 3


def test_filters_and_tests_count_as_work(monkeypatch):
    monkeypatch.setattr(templating, "MAX_OPERATIONS", 50)
    with pytest.raises(QueryValidationError, match="too much work"):
        _render("{% set s = 'ab' %}" + "{% set x = s|reverse %}" * 60 + "SELECT 1")
    with pytest.raises(QueryValidationError, match="too much work"):
        _render("{% set s = 'ab' %}" + "{% if s is string %}{% endif %}" * 60 + "SELECT 1")


def test_filters_still_work_and_are_not_folded_at_compile_time():
    assert _render("SELECT '{{ 'abc'|reverse|upper }}', {{ [3, 1, 2]|sort|first }}") == "SELECT 'CBA', 1"
    check_syntax("{{ ('a' * 999999)|reverse }}")  # compiles without doing the work


def test_declared_number_text_is_written_back_as_given():
    declarations = parse_declarations([{"name": "n", "type": "number"}])
    text = render("SELECT '{{ n }}', {{ n }}", dialect=Dialect.POSTGRES, params={"n": "1.50"}, declarations=declarations)
    assert text.text == "SELECT '1.50', 1.50"


def test_template_size_is_bounded_before_it_is_compiled(monkeypatch):
    monkeypatch.setattr(templating, "MAX_TEMPLATE_TOKENS", 100)
    started = time.monotonic()
    for template in ("SELECT " + "{{ a }}," * 60 + "1", "{{ [" + "1," * 60 + "1] }}", "{% set x = 1 %}" * 30):
        with pytest.raises(QueryValidationError, match="too complex"):
            check_syntax(template)
        with pytest.raises(QueryValidationError, match="too complex"):
            template_variables(template)
    assert time.monotonic() - started < 2
    check_syntax("SELECT 1 -- " + "x" * 100_000)  # query text is one token however long


def test_big_templates_are_refused_quickly():
    started = time.monotonic()
    for template in ("SELECT " + "{{a}}," * 160_000 + "1", "{{ [" + "1," * 450_000 + "1] }}"):
        with pytest.raises(QueryValidationError, match="too complex"):
            check_syntax(template)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("SELECT '{{ v }}'", "\\' OR 1=1 -- "),
        ("SELECT '{{ v }}'", "x\\"),
        ("SELECT 'a\\{{ v }}'", "'b"),
        ("SELECT '{{ v }}{{ w }}'", "x\\"),
    ],
)
def test_postgres_strings_end_alike_whatever_standard_conforming_strings_says(template, value):
    # With standard_conforming_strings off (a server, database or role default), '\'' OR 1=1 -- '
    # is the string "'" and a condition: such values are refused for standard strings.
    error = _refused(template, Dialect.POSTGRES, params={"v": value, "w": "'"})
    assert "standard_conforming_strings" in error.message


@pytest.mark.parametrize("value", ["back\\slash", "\\\\'", "a\\b\\\\", "\\x27", "C:\\temp\\"[:-1]])
def test_postgres_backslashes_that_read_alike_still_render(value):
    text = _render("SELECT '{{ v }}'", v=value)
    assert text == "SELECT '" + value.replace("'", "''") + "'"
    # and a backslash-reading server ends the literal at the same place
    assert _decoder({})(text[len("SELECT '") : -1]) is not None
