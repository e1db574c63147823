"""Read-only validation of ClickHouse queries (pure functions, no I/O).

Same shape as the SQL validator (``sql.py``): the engine's own lexing first, sqlglot's tokens
must agree with it, one statement, an allow-listed read root, then one walk of the tree.

ClickHouse specifics (https://clickhouse.com/docs/en/sql-reference/table-functions):
- Table functions can reach outside the server (files, URLs, S3, other databases, processes).
  In FROM position only an allow-list of local generators is accepted; the names that reach
  outside are refused anywhere in the text (``file`` also works as a scalar function).
- ``SETTINGS`` can loosen limits per query, ``FORMAT`` changes the output the driver expects,
  ``INTO OUTFILE`` writes a file: all refused.
The server also runs with ``readonly=1`` and ``max_execution_time`` (the other layer).
"""
from __future__ import annotations

from sqlglot import exp

from shared.errors import QueryValidationError
from shared.validation.sql import (
    BLOCKED_NODE_TYPES,
    CLICKHOUSE_LEX,
    READ_KEYWORDS,
    READ_ROOTS,
    Lexed,
    Token,
    TokenKind,
    blocked_node_error,
    called_names,
    check_same_code,
    check_single_statement,
    code_tokens,
    first_word,
    function_name,
    is_punct,
    is_word,
    lex,
    node_position,
    parse_one_statement,
    raise_lex_error,
    refuse,
    statement_refusal,
)

__all__ = ["validate_clickhouse"]

_SQLGLOT_DIALECT = "clickhouse"

# Local generators that read nothing outside the query. Everything else in FROM position is
# refused (merge, loop, dictionary, mergeTreeIndex, format, fuzzJSON... and any new one).
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generaterandom", "generate_series",
    "generateseries", "values", "null",
    "view",  # view(SELECT ...): the subquery is walked like any other
})

# Refused anywhere (lower-case): table functions that reach outside the server (some also work
# as scalars, e.g. file('path')), sleeping, model loading from a path, Keeper writes.
BLOCKED_FUNCTIONS = frozenset({
    "file", "filecluster", "url", "urlcluster", "gcs", "oss", "cosn", "remote", "remotesecure",
    "cluster", "clusterallreplicas", "mysql", "postgresql", "jdbc", "odbc", "mongodb", "redis",
    "sqlite", "input", "executable", "executablepool", "ytsaurus", "arrowflight",
    "arrowflightcluster", "dictionary", "merge", "loop",
    "sleep", "sleepeachrow", "catboostevaluate", "generateserialid",
})
BLOCKED_PREFIXES = ("s3", "hdfs", "azure", "iceberg", "deltalake", "hudi", "paimon")


def function_blocked(name: str) -> bool:
    low = name.lower()
    return low in BLOCKED_FUNCTIONS or low.startswith(BLOCKED_PREFIXES)


# EXPLAIN kinds (https://clickhouse.com/docs/en/sql-reference/statements/explain) and the
# explain-only settings that may follow them; anything else before the query is refused.
_EXPLAIN_KINDS = frozenset({"ast", "syntax", "plan", "pipeline", "estimate"})
_EXPLAIN_SETTINGS = frozenset({
    "header", "description", "indexes", "projections", "actions", "json", "sorting", "graph",
    "compact", "optimize", "oneline", "run_passes", "dump_passes", "passes", "dump_ast",
    "dump_tree", "keep_logical_steps", "distributed", "query_tree_passes",
})


def validate_clickhouse(text: str) -> None:
    """Raise QueryValidationError unless ``text`` is exactly one ClickHouse read."""
    _validate(text, nested=False)


def _validate(text: str, *, nested: bool) -> None:
    if "\x00" in text:
        raise refuse("Query contains a NUL character", "lex_error", text=text,
                     offset=text.index("\x00"))
    lexed = lex(text, CLICKHOUSE_LEX)
    raise_lex_error(lexed)
    check_single_statement(lexed)
    tokens = code_tokens(lexed)

    head = (first_word(tokens) or "").lower()
    if head == "explain":
        if nested:
            raise statement_refusal(tokens, text)
        _validate_explain(text, tokens)
        return
    if head == "show":
        if nested:
            raise statement_refusal(tokens, text)
        _check_show(text, tokens)
        return
    if head == "exists" and not nested and _is_exists_statement(tokens):
        return

    if head not in READ_KEYWORDS:
        # Refused before sqlglot sees it: its fallback to exp.Command (refused anyway) would
        # log the query text at WARNING level.
        raise statement_refusal(tokens, text)
    _check_tokens(lexed, text)
    root = parse_one_statement(text, _SQLGLOT_DIALECT, tokens)
    if isinstance(root, READ_ROOTS):
        target: exp.Expression = root
    elif isinstance(root, exp.Describe) and isinstance(root.this, (exp.Table, *READ_ROOTS)) \
            and not nested:
        target = root.this  # DESCRIBE t, DESCRIBE (SELECT ...)
    elif isinstance(root, exp.Describe) and _is_described_table_function(root.this) \
            and not nested:
        # sqlglot reads DESCRIBE numbers(3) as a table with a column list: same allow-list as a
        # table function in FROM (the names that reach outside were refused on the tokens).
        name = root.this.this.name
        if name.lower() not in ALLOWED_TABLE_FUNCTIONS:
            raise _table_function_refusal(name, root, text)
        target = root.this
    else:
        raise statement_refusal(tokens, text)
    check_same_code(lexed, _SQLGLOT_DIALECT)
    _walk(target, text)


def _check_tokens(lexed: Lexed, text: str) -> None:
    """Defence in depth on ClickHouse's own tokens, independent of sqlglot's tree."""
    tokens = code_tokens(lexed)
    for tok in called_names(tokens):
        if function_blocked(tok.value):
            raise refuse(f"Function {tok.value[:64]} is not allowed", "blocked_function",
                         text=text, offset=tok.start)
    for index, tok in enumerate(tokens):
        nxt = tokens[index + 1] if index + 1 < len(tokens) else None
        after = tokens[index + 2] if index + 2 < len(tokens) else None
        if is_word(tok, "into") and is_word(nxt, "outfile"):
            raise refuse("INTO OUTFILE is not allowed", "outfile", text=text, offset=tok.start)
        # SETTINGS name = value (a column called "settings" is not followed by "name =").
        if is_word(tok, "settings") and _is_name(nxt) and is_punct(after, "="):
            raise refuse("A SETTINGS clause is not allowed", "settings_clause", text=text,
                         offset=tok.start)
        # FORMAT <name> ends a query; format(...) is an ordinary function.
        if is_word(tok, "format") and _is_name(nxt) and after is None:
            raise refuse("A FORMAT clause is not allowed", "format_clause", text=text,
                         offset=tok.start)


def _is_described_table_function(node: exp.Expression | None) -> bool:
    return isinstance(node, exp.Schema) and isinstance(node.this, exp.Table) and not (
        node.this.args.get("db") or node.this.args.get("catalog"))


def _is_name(tok: Token | None) -> bool:
    return tok is not None and tok.kind in (TokenKind.WORD, TokenKind.QUOTED)


def _walk(root: exp.Expression, text: str) -> None:
    """One pass: statement nodes, SETTINGS/FORMAT, table functions, blocked functions."""
    for node in root.walk():
        if isinstance(node, BLOCKED_NODE_TYPES):
            raise blocked_node_error(node, text)
        if isinstance(node, exp.Query):
            if node.args.get("settings"):
                raise refuse("A SETTINGS clause is not allowed", "settings_clause",
                             position=node_position(node, text))
            if node.args.get("format") is not None:
                raise refuse("A FORMAT clause is not allowed", "format_clause",
                             position=node_position(node, text))
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Func):
            name = function_name(node.this)
            if name.lower() not in ALLOWED_TABLE_FUNCTIONS:
                raise _table_function_refusal(name, node, text)
        if isinstance(node, exp.Func) and function_blocked(function_name(node)):
            raise refuse(f"Function {function_name(node)[:64]} is not allowed",
                         "blocked_function", position=node_position(node, text))


def _table_function_refusal(name: str, node: exp.Expression,
                            text: str) -> QueryValidationError:
    return refuse(f"Table function {name[:64]} is not allowed", "blocked_table_function",
                  position=node_position(node, text))


def _validate_explain(text: str, tokens: list[Token]) -> None:
    """EXPLAIN [kind] [setting = value, ...] <read>."""
    index = 1
    if is_word(tokens[index] if index < len(tokens) else None, "query") and is_word(
            tokens[index + 1] if index + 1 < len(tokens) else None, "tree"):
        index += 2
    elif index < len(tokens) and is_word(tokens[index], *_EXPLAIN_KINDS):
        index += 1
    while (index + 2 < len(tokens) and is_word(tokens[index], *_EXPLAIN_SETTINGS)
           and is_punct(tokens[index + 1], "=")
           and tokens[index + 2].kind in (TokenKind.NUMBER, TokenKind.WORD)):
        index += 3
        if is_punct(tokens[index] if index < len(tokens) else None, ","):
            index += 1
    if index >= len(tokens):
        raise refuse("EXPLAIN needs a query", "parse_error", text=text,
                     offset=tokens[-1].end if tokens else 0)
    if not (is_word(tokens[index], "select", "with") or is_punct(tokens[index], "(")):
        raise refuse("Only EXPLAIN of a read query is allowed", "blocked_statement", text=text,
                     offset=tokens[index].start)
    _validate(text[tokens[index].start:], nested=True)


def _is_exists_statement(tokens: list[Token]) -> bool:
    """EXISTS [TEMPORARY] [TABLE | DICTIONARY | DATABASE | VIEW] [db.]name (sqlglot can't parse it).

    https://clickhouse.com/docs/en/sql-reference/statements/exists
    """
    rest = tokens[1:]
    shape = "".join("n" if t.kind in (TokenKind.WORD, TokenKind.QUOTED) else
                    "." if is_punct(t, ".") else "?" for t in rest)
    return shape in ("n", "nn", "nnn", "n.n", "nn.n", "nnn.n")


def _check_show(text: str, tokens: list[Token]) -> None:
    """SHOW TABLES / DATABASES / CREATE TABLE t / COLUMNS ...: names and literals only."""
    for index, tok in enumerate(tokens[1:], start=1):
        if is_word(tok, "into") and is_word(tokens[index + 1] if index + 1 < len(tokens)
                                            else None, "outfile"):
            raise refuse("INTO OUTFILE is not allowed", "outfile", text=text, offset=tok.start)
        if tok.kind is TokenKind.PUNCT and tok.value not in ".,%":
            raise refuse("Only plain SHOW statements are allowed", "blocked_statement",
                         text=text, offset=tok.start)
        if is_word(tok, "into", "format", "settings") and tok is not tokens[1]:
            raise refuse("Only plain SHOW statements are allowed", "blocked_statement",
                         text=text, offset=tok.start)
