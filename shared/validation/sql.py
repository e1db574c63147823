"""Read-only validation of SQL for PostgreSQL, Redshift, MySQL/MariaDB and internal queries.

Pure functions, no I/O. The rule (CONTRACT section 9): exactly one statement, and that statement
is a read. sqlglot is lenient by design (unknown syntax becomes ``exp.Command``, a comment the
engine executes is just a comment to it), so it is never trusted alone:

1. A small lexer that follows the *engine's* rules (strings, quoted identifiers, comments,
   dollar quotes) runs first. It refuses MySQL executable comments, counts statements and finds
   blocked function calls by itself. Where the engine's string rules depend on a session setting
   (``standard_conforming_strings``, ``NO_BACKSLASH_ESCAPES``/``ANSI_QUOTES``) the text is lexed
   both ways and must be acceptable both ways.
2. sqlglot's own tokens must cover exactly the code the engine would see (same comments, same
   literal boundaries); otherwise the text is ambiguous and refused.
3. The parsed root must be an allow-listed read, then ONE walk of the tree refuses DDL/DML nodes,
   ``SELECT ... INTO``, locking reads and blocked functions (plus, for the internal dialect,
   anything outside the tenant's own schema).

The database's read-only session is the other, independent layer (CONTRACT section 9.2).
"""
from __future__ import annotations

import contextvars
import logging
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect as SqlglotDialect
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

from shared.dialects import Dialect
from shared.errors import QueryValidationError

__all__ = [
    "BLOCKED_NODE_TYPES",
    "CLICKHOUSE_LEX",
    "READ_KEYWORDS",
    "READ_ROOTS",
    "LexProfile",
    "Lexed",
    "Token",
    "TokenKind",
    "blocked_node_error",
    "called_names",
    "check_same_code",
    "check_single_statement",
    "code_tokens",
    "first_word",
    "function_name",
    "is_punct",
    "is_word",
    "lex",
    "node_position",
    "parse_one_statement",
    "raise_lex_error",
    "refuse",
    "statement_refusal",
    "validate_sql",
]

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def line_col(text: str, offset: int) -> dict[str, int]:
    """1-based line and column of ``offset`` in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return {"line": line, "col": col}


def refuse(message: str, reason: str, *, text: str | None = None, offset: int | None = None,
           position: dict[str, int] | None = None) -> QueryValidationError:
    """Build the one error type validation raises; ``details`` carry a reason and a position."""
    details: dict[str, object] = {"reason": reason}
    if position is not None:
        details["position"] = position
    elif text is not None and offset is not None:
        details["position"] = line_col(text, offset)
    return QueryValidationError(message, details=details)


def _fragment(value: str, limit: int = 64) -> str:
    """A user's own identifier, shortened and stripped of control characters for a message."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# Lexer: the engine's view of the text
# --------------------------------------------------------------------------------------------


class TokenKind(Enum):
    WORD = "word"  # unquoted identifier or keyword, as written
    QUOTED = "quoted"  # quoted identifier (MySQL "..." too: it is one under ANSI_QUOTES)
    STRING = "string"  # any string literal, dollar quote or heredoc
    NUMBER = "number"
    PUNCT = "punct"  # one character of punctuation or operator, including ';'


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    value: str  # WORD: as written; QUOTED: the decoded name; others: the raw text
    start: int  # inclusive offset (a literal's prefix such as E or U& included)
    end: int  # exclusive offset
    open: int  # offset of the opening delimiter of a literal (== start otherwise)
    unicode: bool = False  # PostgreSQL U&"..." / U&'...': needs decoding and a rewrite


@dataclass(frozen=True, slots=True)
class Comment:
    start: int
    end: int
    body: str  # the text between the delimiters


@dataclass(frozen=True, slots=True)
class LexProfile:
    """How one engine splits text into code, literals and comments."""

    name: str
    backslash_strings: bool  # '...' (and MySQL "...") take backslash escapes
    double_quote_is_string: bool  # MySQL: "..." lexes like a '...' string
    backtick_identifiers: bool
    backslash_identifiers: bool  # ClickHouse: "..." and `...` take backslash escapes
    hash_comments: str  # "never" | "always" (MySQL) | "space_or_bang" (ClickHouse)
    dash_comment_needs_space: bool  # MySQL: '--' starts a comment only before whitespace
    slash_slash_comments: bool  # ClickHouse: '//' starts a line comment
    line_comment_ends: str  # characters that end a line comment
    nested_block_comments: bool  # PostgreSQL and ClickHouse nest /* */, MySQL does not
    dollar_quotes: str  # "none" | "postgres" ($tag$...$tag$) | "clickhouse" (heredoc)
    postgres_prefixes: bool  # E'...', U&'...', U&"..." (+ UESCAPE)
    dollar_in_words: bool = True
    # What a number directly followed by letters is: "word" (ClickHouse: one bare word, or an
    # error), "split" (PostgreSQL before 15 ends the number there: 1for update is FOR UPDATE; 15+
    # refuses the text), "mysql" (an integer runs into an identifier, 1abc; a decimal or float
    # ends there: 1e0into @a and 1.5into @a are INTO).
    number_suffix: str = "word"

    def alternate(self) -> LexProfile:
        """The same engine with the other backslash setting for strings."""
        return LexProfile(
            name=self.name + "-alt",
            backslash_strings=not self.backslash_strings,
            double_quote_is_string=self.double_quote_is_string,
            backtick_identifiers=self.backtick_identifiers,
            backslash_identifiers=self.backslash_identifiers,
            hash_comments=self.hash_comments,
            dash_comment_needs_space=self.dash_comment_needs_space,
            slash_slash_comments=self.slash_slash_comments,
            line_comment_ends=self.line_comment_ends,
            nested_block_comments=self.nested_block_comments,
            dollar_quotes=self.dollar_quotes,
            postgres_prefixes=self.postgres_prefixes,
            dollar_in_words=self.dollar_in_words,
            number_suffix=self.number_suffix,
        )


# PostgreSQL lexer: https://www.postgresql.org/docs/current/sql-syntax-lexical.html
# (block comments nest; "--" comments end at \n or \r; E'' strings always take backslashes).
POSTGRES_LEX = LexProfile(
    name="postgres",
    backslash_strings=False,  # standard_conforming_strings = on (the default since 9.1)
    double_quote_is_string=False,
    backtick_identifiers=False,
    backslash_identifiers=False,
    hash_comments="never",
    dash_comment_needs_space=False,
    slash_slash_comments=False,
    line_comment_ends="\n\r",
    nested_block_comments=True,
    dollar_quotes="postgres",
    postgres_prefixes=True,
    dollar_in_words=True,
    number_suffix="split",
)
# Redshift takes backslash escapes in ordinary strings (and sqlglot's redshift dialect agrees).
REDSHIFT_LEX = LexProfile(
    name="redshift",
    backslash_strings=True,
    double_quote_is_string=False,
    backtick_identifiers=False,
    backslash_identifiers=False,
    hash_comments="never",
    dash_comment_needs_space=False,
    slash_slash_comments=False,
    line_comment_ends="\n\r",
    nested_block_comments=True,
    dollar_quotes="postgres",
    postgres_prefixes=True,
    dollar_in_words=True,
    number_suffix="split",
)
# MySQL comments: https://dev.mysql.com/doc/refman/8.0/en/comments.html ('-- ' needs a space,
# '#' to end of line, /* */ does not nest, /*! */ is executed). Strings take backslashes unless
# NO_BACKSLASH_ESCAPES; "..." is a string unless ANSI_QUOTES.
MYSQL_LEX = LexProfile(
    name="mysql",
    backslash_strings=True,
    double_quote_is_string=True,
    backtick_identifiers=True,
    backslash_identifiers=False,
    hash_comments="always",
    dash_comment_needs_space=True,
    slash_slash_comments=False,
    line_comment_ends="\n",
    nested_block_comments=False,
    dollar_quotes="none",
    postgres_prefixes=False,
    dollar_in_words=True,
    number_suffix="mysql",
)
# ClickHouse: src/Parsers/Lexer.cpp (backslash escapes in strings AND identifiers, nested block
# comments, '--', '//' and '# '/'#!' line comments, $heredoc$ strings).
CLICKHOUSE_LEX = LexProfile(
    name="clickhouse",
    backslash_strings=True,
    double_quote_is_string=False,
    backtick_identifiers=True,
    backslash_identifiers=True,
    hash_comments="space_or_bang",
    dash_comment_needs_space=False,
    slash_slash_comments=True,
    line_comment_ends="\n",
    nested_block_comments=True,
    dollar_quotes="clickhouse",
    postgres_prefixes=False,
    dollar_in_words=True,
)


@dataclass(frozen=True, slots=True)
class Lexed:
    text: str
    tokens: tuple[Token, ...]
    comments: tuple[Comment, ...]
    error: tuple[str, str, int] | None  # (message, reason, offset) where lexing stopped


_ASCII_WS = " \t\n\r\f\v"
_LETTERS = frozenset(string.ascii_letters + "_")
_WORD_CHARS = frozenset(string.ascii_letters + string.digits + "_")
_HEX = frozenset(string.hexdigits)
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")


def _is_word_start(ch: str) -> bool:
    return ch in _LETTERS or ord(ch) >= 0x80


def _is_word_char(ch: str, profile: LexProfile) -> bool:
    return ch in _WORD_CHARS or ord(ch) >= 0x80 or (ch == "$" and profile.dollar_in_words)


def _scan_quoted(text: str, i: int, quote: str, backslash: bool) -> int:
    """End (exclusive) of the quoted run opening at ``i``, or -1 if it is not closed."""
    n = len(text)
    j = i + 1
    while j < n:
        ch = text[j]
        if backslash and ch == "\\":
            j += 2
            continue
        if ch == quote:
            if j + 1 < n and text[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return -1


_SIMPLE_ESCAPES = {
    "mysql": {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"},
    "clickhouse": {"b": "\b", "f": "\f", "r": "\r", "n": "\n", "t": "\t", "0": "\0", "a": "\a",
                   "v": "\v"},
}


def _unquote(body: str, quote: str, backslash: bool, flavour: str) -> str:
    """Decode the body of a quoted run: doubled quotes, and backslash escapes where they apply."""
    if not backslash:
        return body.replace(quote + quote, quote)
    escapes = _SIMPLE_ESCAPES.get(flavour, {})
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            hex_digits = body[i + 2:i + 4]
            if flavour == "clickhouse" and nxt in "xX" and len(hex_digits) == 2 and all(
                    c in _HEX for c in hex_digits):
                out.append(chr(int(hex_digits, 16)))
                i += 4
                continue
            out.append(escapes.get(nxt, nxt))
            i += 2
            continue
        if ch == quote and body[i + 1:i + 2] == quote:
            out.append(quote)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def lex(text: str, profile: LexProfile) -> Lexed:
    """Split ``text`` the way the engine described by ``profile`` does.

    Lexing stops at the first problem (an unclosed literal or comment, a stray '#' in
    ClickHouse); ``error`` then says what and where.
    """
    tokens: list[Token] = []
    comments: list[Comment] = []
    n = len(text)
    i = 0

    def fail(message: str, reason: str, at: int) -> Lexed:
        return Lexed(text, tuple(tokens), tuple(comments), (message, reason, at))

    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""

        if ch in _ASCII_WS:
            i += 1
            continue

        # ---- comments -------------------------------------------------------------------
        line_comment = False
        if ch == "-" and nxt == "-":
            after = text[i + 2] if i + 2 < n else ""
            # MySQL reads "1 --1" as 1 - (-1): '--' starts a comment only before whitespace or
            # a control character (or at the end).
            line_comment = not profile.dash_comment_needs_space or not after or (
                after in _ASCII_WS or ord(after) < 32)
        elif ch == "#" and profile.hash_comments != "never":
            if profile.hash_comments == "space_or_bang" and nxt not in (" ", "!"):
                return fail("Unexpected '#'", "lex_error", i)
            line_comment = True
        elif ch == "/" and nxt == "/" and profile.slash_slash_comments:
            line_comment = True
        if line_comment:
            j = i + 1
            while j < n and text[j] not in profile.line_comment_ends:
                j += 1
            body_start = i + (1 if ch == "#" else 2)
            comments.append(Comment(i, j, text[body_start:j]))
            i = j
            continue
        if ch == "/" and nxt == "*":
            depth = 1
            j = i + 2
            while j < n:
                if profile.nested_block_comments and text.startswith("/*", j):
                    depth += 1
                    j += 2
                elif text.startswith("*/", j):
                    depth -= 1
                    j += 2
                    if depth == 0:
                        break
                else:
                    j += 1
            if depth != 0:
                return fail("Unterminated comment", "lex_error", i)
            comments.append(Comment(i, j, text[i + 2:j - 2]))
            i = j
            continue

        # ---- literals -------------------------------------------------------------------
        if ch == "'":
            end = _scan_quoted(text, i, "'", profile.backslash_strings)
            if end < 0:
                return fail("Unterminated string", "lex_error", i)
            tokens.append(Token(TokenKind.STRING, text[i:end], i, end, i))
            i = end
            continue
        if ch == '"' or (ch == "`" and profile.backtick_identifiers):
            if ch == '"' and profile.double_quote_is_string:
                backslash = profile.backslash_strings
            else:
                backslash = profile.backslash_identifiers
            end = _scan_quoted(text, i, ch, backslash)
            if end < 0:
                return fail("Unterminated quoted identifier", "lex_error", i)
            flavour = profile.name.split("-")[0]
            value = _unquote(text[i + 1:end - 1], ch, backslash, flavour)
            tokens.append(Token(TokenKind.QUOTED, value, i, end, i))
            i = end
            continue
        if ch == "$" and profile.dollar_quotes == "postgres":
            match = _DOLLAR_TAG.match(text, i)
            if match:
                tag = match.group(0)
                close = text.find(tag, match.end())
                if close < 0:
                    return fail("Unterminated dollar-quoted string", "lex_error", i)
                end = close + len(tag)
                tokens.append(Token(TokenKind.STRING, text[i:end], i, end, i))
                i = end
                continue
            tokens.append(Token(TokenKind.PUNCT, "$", i, i + 1, i))
            i += 1
            continue
        if ch == "$" and profile.dollar_quotes == "clickhouse":
            tag_end = text.find("$", i + 1)
            if tag_end >= 0:
                tag = text[i:tag_end + 1]
                close = text.find(tag, tag_end + 1)
                if close >= 0:
                    end = close + len(tag)
                    tokens.append(Token(TokenKind.STRING, text[i:end], i, end, i))
                    i = end
                    continue
            if not nxt or nxt not in _WORD_CHARS:
                tokens.append(Token(TokenKind.PUNCT, "$", i, i + 1, i))
                i += 1
                continue
            # otherwise a bare word that starts with '$'

        # ---- words, numbers, punctuation --------------------------------------------------
        if _is_word_start(ch) or (ch == "$" and profile.dollar_quotes != "postgres"):
            j = i + 1
            while j < n and _is_word_char(text[j], profile):
                j += 1
            word = text[i:j]
            if profile.postgres_prefixes:
                literal = _postgres_prefixed_literal(text, i, j, word, profile)
                if literal is not None:
                    if isinstance(literal, tuple):
                        return fail(*literal)
                    tokens.append(literal)
                    i = literal.end
                    continue
            tokens.append(Token(TokenKind.WORD, word, i, j, i))
            i = j
            continue
        if ch in string.digits:
            if profile.number_suffix == "word":
                j = i + 1
                while j < n and (text[j] in _WORD_CHARS or text[j] == "."):
                    j += 1
                tokens.append(Token(TokenKind.NUMBER, text[i:j], i, j, i))
            else:
                j, integer = _scan_number(text, i, underscores=profile.number_suffix == "split")
                if integer and profile.number_suffix == "mysql" and j < n and _is_word_char(
                        text[j], profile):
                    while j < n and _is_word_char(text[j], profile):
                        j += 1
                    tokens.append(Token(TokenKind.WORD, text[i:j], i, j, i))
                else:
                    # whatever letters follow start the next token (1for update, 1e0into @a)
                    tokens.append(Token(TokenKind.NUMBER, text[i:j], i, j, i))
            i = j
            continue
        tokens.append(Token(TokenKind.PUNCT, ch, i, i + 1, i))
        i += 1

    return _merge_uescape(Lexed(text, tuple(tokens), tuple(comments), None))


_RADIX_DIGITS = {"x": frozenset(string.hexdigits), "b": frozenset("01"),
                 "o": frozenset("01234567")}


def _scan_number(text: str, i: int, *, underscores: bool) -> tuple[int, bool]:
    """End of the numeric literal at ``i`` and whether it is an integer (no '.', no exponent).

    0x1F / 0b01 / 0o17, or digits [. digits] [e [+-] digits]; ``underscores`` allows PostgreSQL
    16's digit separators (1_000). Letters after the literal are not part of it.
    """
    n = len(text)

    def digits(k: int, allowed: frozenset[str]) -> int:
        while k < n:
            if text[k] in allowed:
                k += 1
            elif underscores and text[k] == "_" and k + 1 < n and text[k + 1] in allowed:
                k += 2
            else:
                break
        return k

    decimal = frozenset(string.digits)
    if text[i] == "0" and i + 1 < n and text[i + 1].lower() in _RADIX_DIGITS:
        end = digits(i + 2, _RADIX_DIGITS[text[i + 1].lower()])
        if end > i + 2:
            return end, True
    j = digits(i, decimal)
    integer = True
    if j < n and text[j] == ".":
        j = digits(j + 1, decimal)
        integer = False
    if j < n and text[j] in "eE":
        k = j + 1
        if k < n and text[k] in "+-":
            k += 1
        if k < n and text[k] in decimal:
            j = digits(k, decimal)
            integer = False
    return j, integer


def _postgres_prefixed_literal(text: str, i: int, j: int, word: str,
                               profile: LexProfile) -> Token | tuple[str, str, int] | None:
    """E'...', B'...', X'...', N'...', U&'...', U&"..." (the word must be exactly the prefix)."""
    n = len(text)
    low = word.lower()
    if j < n and text[j] == "'" and low in ("e", "b", "x", "n"):
        backslash = low == "e" or profile.backslash_strings
        end = _scan_quoted(text, j, "'", backslash)
        if end < 0:
            return ("Unterminated string", "lex_error", i)
        return Token(TokenKind.STRING, text[i:end], i, end, j)
    if low == "u" and text.startswith("&", j) and j + 1 < n and text[j + 1] in "'\"":
        quote = text[j + 1]
        end = _scan_quoted(text, j + 1, quote, False)
        if end < 0:
            return ("Unterminated string", "lex_error", i)
        body = text[j + 2:end - 1].replace(quote + quote, quote)
        kind = TokenKind.QUOTED if quote == '"' else TokenKind.STRING
        return Token(kind, body, i, end, j + 1, unicode=True)
    return None


def _decode_unicode_escapes(body: str, escape: str) -> str | None:
    """PostgreSQL U& escapes: \\XXXX, \\+XXXXXX, doubled escape; None when invalid."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != escape:
            out.append(ch)
            i += 1
            continue
        if body[i + 1:i + 2] == escape:
            out.append(escape)
            i += 2
            continue
        if body[i + 1:i + 2] == "+":
            digits, i = body[i + 2:i + 8], i + 8
        else:
            digits, i = body[i + 1:i + 5], i + 5
        if not digits or not all(c in _HEX for c in digits) or len(digits) not in (4, 6):
            return None
        code = int(digits, 16)
        if code == 0 or code > 0x10FFFF:
            return None
        if 0xD800 <= code <= 0xDBFF:  # a UTF-16 surrogate pair written as two escapes
            if body[i:i + 1] != escape:
                return None
            low_digits = body[i + 1:i + 5]
            if len(low_digits) != 4 or not all(c in _HEX for c in low_digits):
                return None
            low = int(low_digits, 16)
            if not 0xDC00 <= low <= 0xDFFF:
                return None
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            i += 5
        elif 0xDC00 <= code <= 0xDFFF:
            return None
        out.append(chr(code))
    return "".join(out)


def _merge_uescape(lexed: Lexed) -> Lexed:
    """Decode U& literals, folding a following ``UESCAPE 'c'`` into the literal's token."""
    if not any(t.unicode for t in lexed.tokens):
        return lexed
    tokens = list(lexed.tokens)
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.unicode:
            out.append(tok)
            i += 1
            continue
        escape = "\\"
        end = tok.end
        if (i + 2 < len(tokens) and tokens[i + 1].kind is TokenKind.WORD
                and tokens[i + 1].value.lower() == "uescape"
                and tokens[i + 2].kind is TokenKind.STRING and not tokens[i + 2].unicode):
            raw = tokens[i + 2].value
            if len(raw) != 3 or raw[0] != "'" or raw[1] in _HEX or raw[1] in "+'\" \t\r\n\f":
                return Lexed(lexed.text, tuple(out), lexed.comments,
                             ("Invalid UESCAPE character", "lex_error", tokens[i + 2].start))
            escape = raw[1]
            end = tokens[i + 2].end
            i += 2
        decoded = _decode_unicode_escapes(tok.value, escape)
        if decoded is None:
            return Lexed(lexed.text, tuple(out), lexed.comments,
                         ("Invalid Unicode escape", "lex_error", tok.start))
        out.append(Token(tok.kind, decoded, tok.start, end, tok.open, unicode=True))
        i += 1
    return Lexed(lexed.text, tuple(out), lexed.comments, lexed.error)


def _rewrite_unicode(lexed: Lexed) -> str:
    """The text with every U& literal replaced by its plain equivalent, for sqlglot."""
    parts: list[str] = []
    last = 0
    for tok in lexed.tokens:
        if not tok.unicode:
            continue
        parts.append(lexed.text[last:tok.start])
        if tok.kind is TokenKind.QUOTED:
            parts.append('"' + tok.value.replace('"', '""') + '"')
        else:
            parts.append("'" + tok.value.replace("'", "''") + "'")
        last = tok.end
    parts.append(lexed.text[last:])
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Checks on the engine's tokens
# --------------------------------------------------------------------------------------------


def raise_lex_error(lexed: Lexed) -> None:
    if lexed.error is not None:
        message, reason, offset = lexed.error
        raise refuse(message, reason, text=lexed.text, offset=offset)


def check_single_statement(lexed: Lexed) -> None:
    """Exactly one statement: one optional trailing ';' and nothing but comments after it."""
    tokens = lexed.tokens
    if not tokens or all(t.kind is TokenKind.PUNCT and t.value == ";" for t in tokens):
        raise refuse("Query is empty", "empty", text=lexed.text, offset=0)
    for index, tok in enumerate(tokens):
        if tok.kind is TokenKind.PUNCT and tok.value == ";" and index != len(tokens) - 1:
            raise refuse("Exactly one statement is allowed", "multiple_statements",
                         text=lexed.text, offset=tok.start)


def code_tokens(lexed: Lexed) -> list[Token]:
    """Tokens without the one trailing ';'."""
    tokens = list(lexed.tokens)
    if tokens and tokens[-1].kind is TokenKind.PUNCT and tokens[-1].value == ";":
        tokens.pop()
    return tokens


def is_word(tok: Token | None, *words: str) -> bool:
    return tok is not None and tok.kind is TokenKind.WORD and tok.value.lower() in words


def is_punct(tok: Token | None, char: str) -> bool:
    return tok is not None and tok.kind is TokenKind.PUNCT and tok.value == char


def called_names(tokens: list[Token]) -> Iterator[Token]:
    """Words and quoted identifiers directly followed by '(' (comments in between allowed)."""
    for index, tok in enumerate(tokens[:-1]):
        if tok.kind in (TokenKind.WORD, TokenKind.QUOTED) and is_punct(tokens[index + 1], "("):
            yield tok


# sqlglot token types that are literals: their span must match the engine's literal exactly.
_LITERAL_TOKEN_TYPES = frozenset({
    TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.BYTE_STRING, TokenType.RAW_STRING,
    TokenType.HEREDOC_STRING, TokenType.UNICODE_STRING, TokenType.HEX_STRING,
    TokenType.BIT_STRING, TokenType.IDENTIFIER,
})
_CLOSING_DELIMITERS = frozenset("'\"`$")


def check_same_code(lexed: Lexed, sqlglot_dialect: str) -> None:
    """Refuse unless sqlglot sees exactly the code the engine sees.

    Every non-blank character must be code (or literal) for both or comment for both, and every
    literal must end at the same place for both. Otherwise sqlglot would validate a different
    query than the one the database runs (a comment sqlglot skips but the engine executes, a
    string sqlglot ends elsewhere).
    """
    text = lexed.text
    try:
        sg_tokens = SqlglotDialect.get_or_raise(sqlglot_dialect).tokenize(text)
    except Exception as error:  # noqa: BLE001 - any tokenizer failure is a refusal
        raise refuse("Query could not be parsed", "parse_error") from error
    ours = bytearray(len(text))
    theirs = bytearray(len(text))
    for tok in lexed.tokens:
        ours[tok.start:tok.end] = b"\x01" * (tok.end - tok.start)
    their_literal_ends: dict[int, int] = {}
    for tok in sg_tokens:
        start, end = tok.start, tok.end + 1
        if start < 0 or end > len(text) or start >= end:
            continue
        theirs[start:end] = b"\x01" * (end - start)
        if tok.token_type in _LITERAL_TOKEN_TYPES and text[end - 1] in _CLOSING_DELIMITERS:
            their_literal_ends[end] = start
    for offset, char in enumerate(text):
        if char not in _ASCII_WS and ours[offset] != theirs[offset]:
            raise refuse("Query is ambiguous: comments or quotes are read differently by the "
                         "database", "ambiguous_lexing", text=text, offset=offset)
    our_literal_ends = {t.end: t for t in lexed.tokens
                        if t.kind in (TokenKind.STRING, TokenKind.QUOTED)
                        and text[t.end - 1] in _CLOSING_DELIMITERS}
    for end, tok in our_literal_ends.items():
        start = their_literal_ends.get(end)
        if start is None or not tok.open - 2 <= start <= tok.open:
            raise refuse("Query is ambiguous: quotes are read differently by the database",
                         "ambiguous_lexing", text=text, offset=tok.start)
    for end, start in their_literal_ends.items():
        if end not in our_literal_ends:
            raise refuse("Query is ambiguous: quotes are read differently by the database",
                         "ambiguous_lexing", text=text, offset=start)


# --------------------------------------------------------------------------------------------
# Parsing and the tree walk (shared with ClickHouse)
# --------------------------------------------------------------------------------------------


READ_KEYWORDS = frozenset({"select", "with", "values", "table", "explain", "show", "describe",
                           "desc"})

# sqlglot logs "'<the query>' contains unsupported syntax..." at WARNING when it falls back to
# exp.Command; a rendered query must not be logged above DEBUG. The filter drops sqlglot's
# records only while one of our parses runs in the current context.
_PARSING = contextvars.ContextVar("shared_validation_parsing", default=False)


class _DuringValidationParse(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _PARSING.get()


_QUIET_FILTER = _DuringValidationParse()


def _sqlglot_parse(text: str, sqlglot_dialect: str) -> list[exp.Expression | None]:
    logger = logging.getLogger("sqlglot")
    if _QUIET_FILTER not in logger.filters:
        logger.addFilter(_QUIET_FILTER)
    token = _PARSING.set(True)
    try:
        return sqlglot.parse(text, read=sqlglot_dialect)
    finally:
        _PARSING.reset(token)


def parse_one_statement(text: str, sqlglot_dialect: str,
                        tokens: list[Token] | None = None) -> exp.Expression:
    """Parse with sqlglot for the dialect; exactly one statement or a refusal."""
    try:
        parsed = _sqlglot_parse(text, sqlglot_dialect)
    except ParseError as error:
        if tokens and (first_word(tokens) or "").lower() not in READ_KEYWORDS:
            raise statement_refusal(tokens, text) from error
        position = None
        if error.errors:
            first = error.errors[0]
            if first.get("line") and first.get("col"):
                position = {"line": int(first["line"]), "col": int(first["col"])}
        raise refuse("Query could not be parsed", "parse_error", position=position) from error
    except Exception as error:  # noqa: BLE001 - fail closed on anything the parser throws
        raise refuse("Query could not be parsed", "parse_error") from error
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if not statements:
        raise refuse("Query is empty", "empty")
    if len(statements) != 1:
        raise refuse("Exactly one statement is allowed", "multiple_statements")
    return statements[0]


def _classes_of(module_name: str) -> tuple[type[exp.Expression], ...]:
    return tuple(
        cls for cls in vars(exp).values()
        if isinstance(cls, type) and issubclass(cls, exp.Expression)
        and cls.__module__ == module_name
    )


# Harmless expressions that sqlglot happens to define next to the DDL classes.
_HARMLESS_DDL_MODULE_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name) for name in ("CharacterSet", "Heredoc", "Comprehension")
    if hasattr(exp, name)
)

# Every statement-like node: all of sqlglot's DDL, DML, property and constraint classes (so a
# node kind added by a later sqlglot lands here, fail closed) plus the statement-ish classes that
# live elsewhere. exp.Command is among the DDL classes.
BLOCKED_NODE_TYPES: tuple[type[exp.Expression], ...] = tuple(
    cls
    for cls in (
        _classes_of("sqlglot.expressions.ddl")
        + _classes_of("sqlglot.expressions.dml")
        + _classes_of("sqlglot.expressions.properties")
        + _classes_of("sqlglot.expressions.constraints")
        + tuple(
            getattr(exp, name) for name in (
                "Into", "Lock", "Grant", "Revoke", "Analyze", "AnalyzeColumns", "AnalyzeDelete",
                "AnalyzeHistogram", "AnalyzeListChainedRows", "AnalyzeSample",
                "AnalyzeStatistics", "AnalyzeValidate", "AnalyzeWith", "Block", "IfBlock",
                "LoopBlock", "WhileBlock", "RepeatBlock", "Iterate", "Leave", "Return",
                "StoredProcedure", "MultitableInserts", "ConditionalInsert", "Put", "Get",
                "ListStage", "AddPartition", "DropPartition", "ReplacePartition", "EndStatement",
                "QueryBand", "Cache", "Uncache", "Refresh", "LockingStatement",
            ) if hasattr(exp, name)
        )
    )
    if cls not in _HARMLESS_DDL_MODULE_NODES
)

_NODE_LABELS: dict[type[exp.Expression], str] = {
    exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Merge: "MERGE",
    exp.Create: "CREATE", exp.Drop: "DROP", exp.Alter: "ALTER", exp.TruncateTable: "TRUNCATE",
    exp.Grant: "GRANT", exp.Revoke: "REVOKE", exp.Copy: "COPY", exp.Set: "SET",
    exp.Transaction: "BEGIN", exp.Commit: "COMMIT", exp.Rollback: "ROLLBACK", exp.Use: "USE",
    exp.LoadData: "LOAD DATA", exp.Analyze: "ANALYZE", exp.Comment: "COMMENT", exp.Kill: "KILL",
    exp.Pragma: "PRAGMA", exp.Attach: "ATTACH", exp.Detach: "DETACH", exp.Execute: "EXECUTE",
    exp.Describe: "DESCRIBE", exp.Show: "SHOW", exp.Cache: "CACHE", exp.Refresh: "REFRESH",
    exp.Export: "EXPORT", exp.Install: "INSTALL",
}


def node_label(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        word = str(node.this or "").split()
        return _fragment(word[0].upper()) if word else "this statement"
    for cls, label in _NODE_LABELS.items():
        if isinstance(node, cls):
            return label
    return type(node).__name__.upper()


def node_position(node: exp.Expression, text: str | None) -> dict[str, int] | None:
    """Line and column of the earliest token under ``node`` that sqlglot recorded, if any."""
    if text is None:
        return None
    starts = [
        int(child.meta["start"]) for child in node.walk()
        if child.meta and isinstance(child.meta.get("start"), int)
    ]
    return line_col(text, min(starts)) if starts else None


def blocked_node_error(node: exp.Expression, text: str | None) -> QueryValidationError:
    position = node_position(node, text)
    if isinstance(node, exp.Into):
        return refuse("SELECT ... INTO is not allowed", "select_into", position=position)
    if isinstance(node, exp.Lock):
        return refuse("Locking reads (FOR UPDATE / FOR SHARE) are not allowed", "locking_read",
                      position=position)
    return refuse(f"Only read queries are allowed: {node_label(node)} is blocked",
                  "blocked_statement", position=position)


def function_name(node: exp.Func) -> str:
    """The name a function was called by (for an unknown function: as written)."""
    if isinstance(node, exp.Anonymous):
        return node.name
    return node.sql_name()


def first_word(tokens: list[Token]) -> str | None:
    for tok in tokens:
        if tok.kind is TokenKind.WORD:
            return tok.value
        if tok.kind is not TokenKind.PUNCT or tok.value != "(":
            return None
    return None


def statement_refusal(tokens: list[Token], text: str) -> QueryValidationError:
    word = first_word(tokens)
    offset = tokens[0].start if tokens else 0
    if word:
        return refuse(f"Only read queries are allowed: {_fragment(word.upper(), 32)} is blocked",
                      "blocked_statement", text=text, offset=offset)
    return refuse("Only read queries are allowed", "blocked_statement", text=text, offset=offset)


READ_ROOTS: tuple[type[exp.Expression], ...] = (
    exp.Select, exp.SetOperation, exp.Subquery, exp.Values,
)


# --------------------------------------------------------------------------------------------
# SQL function rules (PostgreSQL, Redshift, MySQL, internal)
# --------------------------------------------------------------------------------------------

# Blocked by name in every SQL dialect (compared lower-case, schema qualification ignored).
BLOCKED_FUNCTIONS = frozenset({
    # time / resource
    "sleep", "benchmark", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
    # MySQL locks and waits
    "get_lock", "release_lock", "release_all_locks", "master_pos_wait", "source_pos_wait",
    "wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids",
    # files (MySQL; the PostgreSQL ones are pg_*)
    "load_file",
    # settings, sequences (MariaDB spells nextval NEXT VALUE FOR)
    "set_config", "nextval", "setval", "next_value_for",
    # large objects that are not lo_*
    "loread", "lowrite",
    # run SQL given as a string: ts_stat, ts_rewrite(query, 'select ...'), tablefunc
    "ts_stat", "ts_rewrite", "connectby",
    # index maintenance that writes
    "brin_summarize_new_values", "brin_summarize_range", "brin_desummarize_range",
    "gin_clean_pending_list",
    # lib_mysqludf_sys
    "sys_exec", "sys_eval", "sys_get", "sys_set",
})
BLOCKED_PREFIXES = (
    "lo_", "dblink", "txid_", "binary_upgrade_", "crosstab",
    # run SQL over their own connections, outside the read-only transaction (Citus)
    "run_command_on_", "master_run_on_worker",
    # MySQL server-plugin UDFs that change server state (replication, firewall, audit log,
    # keyring, version tokens, locking service)
    "asynchronous_connection_failover_", "group_replication_", "audit_log_", "keyring_",
    "version_tokens_", "service_get_", "service_release_", "mysql_firewall_", "set_firewall_",
)
# query_to_xml, cursor_to_xml, table_to_xml, schema_to_xml, database_to_xml and variants run SQL
# (or read whole tables/schemas by name).
BLOCKED_SUFFIXES = ("_to_xml", "_to_xmlschema", "_to_xml_and_xmlschema")
# Every pg_* function is refused (file readers, backend and WAL control, advisory locks, logical
# replication, catalog introspection...) except these harmless ones.
ALLOWED_PG_FUNCTIONS = frozenset({
    "pg_typeof", "pg_column_size", "pg_column_compression", "pg_size_pretty", "pg_size_bytes",
    "pg_backend_pid", "pg_postmaster_start_time", "pg_conf_load_time", "pg_is_in_recovery",
    "pg_client_encoding", "pg_jit_available", "pg_trigger_depth", "pg_input_is_valid",
    "pg_input_error_info", "pg_collation_for", "pg_last_xact_replay_timestamp",
})
# Internal only: functions that take relation names or reveal other schemas and settings.
INTERNAL_BLOCKED_FUNCTIONS = frozenset({
    "currval",  # takes a sequence name (useless here anyway: nextval is refused)
    "current_setting", "current_schemas", "obj_description", "col_description",
    "shobj_description", "row_security_active", "pgrowlocks", "format_type", "inet_server_addr",
    "inet_server_port", "inet_client_addr", "inet_client_port", "acldefault", "aclexplode",
    # take a relation name as text (the implicit cast to regclass is a catalog lookup): tid
    # lookups, pageinspect and amcheck read any relation's raw pages
    "currtid", "currtid2", "get_raw_page", "heap_page_items", "heap_tuple_infomask_flags",
    "page_header", "page_checksum", "fsm_page_contents", "tuple_data_split", "verify_heapam",
    "hash_metapage_info", "hash_bitmap_info",
})
INTERNAL_BLOCKED_PREFIXES = ("to_reg", "pgstat", "bt_", "brin_", "gin_", "gist_", "hash_page_")
_HAS_PRIVILEGE = re.compile(r"^has_\w*_privilege$")
# Object-identifier types: a cast to one of them looks the name up in the catalog.
REG_TYPES = frozenset({
    "regclass", "regcollation", "regconfig", "regdictionary", "regnamespace", "regoper",
    "regoperator", "regproc", "regprocedure", "regrole", "regtype",
})
CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema"})


def sql_function_blocked(name: str, *, internal: bool) -> bool:
    low = name.lower()
    if "." in low:
        low = low.rsplit(".", 1)[1]
    if low in BLOCKED_FUNCTIONS or low.startswith(BLOCKED_PREFIXES) or low.endswith(
            BLOCKED_SUFFIXES):
        return True
    if low.startswith("pg_") and low not in ALLOWED_PG_FUNCTIONS:
        return True
    if internal and (low in INTERNAL_BLOCKED_FUNCTIONS or low in REG_TYPES
                     or low.startswith(INTERNAL_BLOCKED_PREFIXES) or _HAS_PRIVILEGE.match(low)):
        return True
    return False


def function_refusal(name: str, *, text: str | None = None, offset: int | None = None,
                     position: dict[str, int] | None = None) -> QueryValidationError:
    return refuse(f"Function {_fragment(name)} is not allowed", "blocked_function", text=text,
                  offset=offset, position=position)


# --------------------------------------------------------------------------------------------
# The SQL validator
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SqlRules:
    dialect: Dialect
    sqlglot_dialect: str
    lex_profile: LexProfile
    internal: bool  # PostgreSQL + tenant isolation
    mysql: bool


_RULES: dict[Dialect, _SqlRules] = {
    Dialect.POSTGRES: _SqlRules(Dialect.POSTGRES, "postgres", POSTGRES_LEX, False, False),
    Dialect.INTERNAL: _SqlRules(Dialect.INTERNAL, "postgres", POSTGRES_LEX, True, False),
    Dialect.REDSHIFT: _SqlRules(Dialect.REDSHIFT, "redshift", REDSHIFT_LEX, False, False),
    Dialect.MYSQL: _SqlRules(Dialect.MYSQL, "mysql", MYSQL_LEX, False, True),
}


def validate_sql(text: str, dialect: Dialect, *, tenant_schema: str | None = None) -> None:
    """Raise QueryValidationError unless ``text`` is exactly one read for a SQL ``dialect``."""
    rules = _RULES[dialect]
    if rules.internal and not tenant_schema:
        raise ValueError("tenant_schema is required for internal queries")
    _validate(text, rules, tenant_schema, nested=False)


def _validate(text: str, rules: _SqlRules, tenant_schema: str | None, *, nested: bool) -> None:
    if "\x00" in text:
        raise refuse("Query contains a NUL character", "lex_error", text=text,
                     offset=text.index("\x00"))
    primary = lex(text, rules.lex_profile)
    raise_lex_error(primary)
    # The other string rule (backslash escapes on/off) is a session setting we do not control
    # (standard_conforming_strings, NO_BACKSLASH_ESCAPES / ANSI_QUOTES): the text must be one
    # statement without executable comments under both. An unclosed literal under the other
    # rule just ends that view of the text.
    alternate = lex(text, rules.lex_profile.alternate())
    for view in (primary, alternate):
        if rules.mysql:
            _check_mysql_comments(view)
    check_single_statement(primary)
    _check_no_separator(alternate)

    tokens = code_tokens(primary)
    head = (first_word(tokens) or "").lower()
    if not rules.mysql and head == "explain":
        _validate_postgres_explain(text, tokens, rules, tenant_schema, nested=nested)
        return
    if not rules.mysql and head == "show":
        # SHOW <setting> only reads a setting of the session (for internal queries at most the
        # tenant's own search_path); it cannot name a relation.
        if nested:
            raise statement_refusal(tokens, text)
        _check_show_words(text, tokens)
        return
    if rules.mysql and not nested and _is_mysql_describe_table(tokens):
        return

    parse_text, parse_view = text, primary
    if rules.sqlglot_dialect == "postgres" and any(t.unicode for t in primary.tokens):
        # sqlglot reads U&"\0070g_sleep" as U & "\0070g_sleep": give it the decoded spelling.
        parse_text = _rewrite_unicode(primary)
        parse_view = lex(parse_text, rules.lex_profile)
        raise_lex_error(parse_view)
    if head not in READ_KEYWORDS:
        # Not even shaped like a read. Refused before sqlglot sees it: its fallback to
        # exp.Command (refused anyway) would log the query text at WARNING level.
        raise statement_refusal(tokens, text)
    # When the text is well formed under the other string rule too, what that reading sees as
    # code (e.g. "SELECT 'a\', SLEEP(5) -- '") is code on such a server: check it as well.
    for view in (primary, alternate) if alternate.error is None else (primary,):
        _check_tokens(view, rules, text)
    if rules.mysql and not nested and _is_mysql_plain_show(tokens):
        return
    root = parse_one_statement(parse_text, rules.sqlglot_dialect, tokens)
    walk_roots = _check_root(root, rules, tokens, text, nested=nested)
    check_same_code(parse_view, rules.sqlglot_dialect)
    for walk_root in walk_roots:
        _walk(walk_root, rules, tenant_schema, parse_text)


def _check_no_separator(view: Lexed) -> None:
    """No ';' followed by more code (this view may have stopped early at an unclosed literal)."""
    for index, tok in enumerate(view.tokens):
        if is_punct(tok, ";") and index != len(view.tokens) - 1:
            raise refuse("Exactly one statement is allowed", "multiple_statements",
                         text=view.text, offset=tok.start)


def _check_mysql_comments(view: Lexed) -> None:
    """MySQL runs /*! ... */ (and MariaDB /*M! ... */) as code; /*+ ... */ hints can SET_VAR.

    https://dev.mysql.com/doc/refman/8.0/en/comments.html,
    https://dev.mysql.com/doc/refman/8.0/en/optimizer-hints.html#optimizer-hints-set-var
    """
    for comment in view.comments:
        raw = view.text[comment.start:comment.end]
        if raw.startswith("/*!") or raw[:4].lower() == "/*m!":
            raise refuse("Executable comments (/*! ... */) are not allowed",
                         "executable_comment", text=view.text, offset=comment.start)
        if raw.startswith("/*+"):
            raise refuse("Optimizer hints (/*+ ... */) are not allowed", "optimizer_hint",
                         text=view.text, offset=comment.start)


def _check_root(root: exp.Expression, rules: _SqlRules, tokens: list[Token], text: str, *,
                nested: bool) -> list[exp.Expression]:
    """Allow-list the statement kind; return the subtrees the walk must cover."""
    if isinstance(root, READ_ROOTS):
        return [root]
    if rules.mysql and not nested and isinstance(root, exp.Describe):
        # MySQL EXPLAIN / DESCRIBE / DESC. EXPLAIN ANALYZE runs the statement.
        second = tokens[1] if len(tokens) > 1 else None
        if str(root.args.get("style") or "").upper() in ("ANALYZE", "ANALYSE") or is_word(
                second, "analyze", "analyse"):
            raise refuse("EXPLAIN ANALYZE is not allowed: it runs the statement",
                         "explain_analyze", text=text, offset=tokens[0].start)
        target = root.this
        if isinstance(target, (exp.Table, *READ_ROOTS)):
            return [target]
        if isinstance(target, exp.Expression):
            raise blocked_node_error(target, text)
        raise statement_refusal(tokens, text)
    if rules.mysql and not nested and isinstance(root, exp.Show):
        # SHOW only reads; its LIKE / WHERE parts are walked like any expression.
        if root.args.get("into_outfile"):
            raise refuse("INTO OUTFILE is not allowed", "outfile", text=text,
                         offset=tokens[0].start)
        return list(root.iter_expressions())
    raise statement_refusal(tokens, text)


# Words that make DESCRIBE/EXPLAIN more than "describe this table" (sqlglot parses those).
_NOT_A_TABLE_NAME = frozenset({
    "select", "with", "table", "values", "analyze", "analyse", "format", "for", "extended",
    "partitions", "delete", "insert", "update", "replace", "into",
})


def _is_mysql_describe_table(tokens: list[Token]) -> bool:
    """MySQL ``DESCRIBE [db.]table [column | 'pattern']``, which sqlglot cannot parse.

    https://dev.mysql.com/doc/refman/8.0/en/explain.html
    """
    if not tokens or not is_word(tokens[0], "describe", "desc", "explain"):
        return False
    rest = tokens[1:]
    names = [t for t in rest if t.kind in (TokenKind.WORD, TokenKind.QUOTED)]
    if not names or any(is_word(t, *_NOT_A_TABLE_NAME) for t in names):
        return False
    shape = "".join(
        "n" if t.kind in (TokenKind.WORD, TokenKind.QUOTED) else
        "s" if t.kind is TokenKind.STRING and t.value[:1] in "'\"" else
        "." if is_punct(t, ".") else "?"
        for t in rest
    )
    return shape in ("n", "n.n", "nn", "ns", "n.nn", "n.ns")


# Parenthesised parts a plain MySQL SHOW may contain: SHOW COUNT(*) WARNINGS, SHOW GRANTS FOR
# CURRENT_USER(), SHOW CREATE USER CURRENT_USER().
_SHOW_CALLS = (("count", "(", "*", ")"), ("current_user", "(", ")"))


def _is_mysql_plain_show(tokens: list[Token]) -> bool:
    """A MySQL/MariaDB SHOW made of names and literals only, which sqlglot may not know.

    Every SHOW statement only reads (https://dev.mysql.com/doc/refman/8.0/en/show.html); what
    could do more is an expression in its WHERE / LIKE part or a trailing INTO, so anything with
    WHERE, INTO or a parenthesis other than COUNT(*) / CURRENT_USER() is left to the parser.
    """
    if len(tokens) < 2 or not is_word(tokens[0], "show"):
        return False
    index = 1
    while index < len(tokens):
        tok = tokens[index]
        call = next((c for c in _SHOW_CALLS if [t.value.lower() for t in
                                                 tokens[index:index + len(c)]] == list(c)), None)
        if call is not None:
            index += len(call)
            continue
        if is_word(tok, "where", "into", "select", "outfile", "dumpfile"):
            return False
        plain = (tok.kind in (TokenKind.WORD, TokenKind.QUOTED, TokenKind.NUMBER)
                 or (tok.kind is TokenKind.STRING and tok.value[:1] in "'\"")
                 or (tok.kind is TokenKind.PUNCT and tok.value in ".,@%="))
        if not plain:
            return False
        index += 1
    return True


def _check_show_words(text: str, tokens: list[Token]) -> None:
    """PostgreSQL / Redshift SHOW <name>: only names and plain literals may follow."""
    for tok in tokens[1:]:
        if (tok.kind is TokenKind.PUNCT and tok.value not in ".,%") or is_word(tok, "into"):
            raise refuse("Only SHOW <setting> is allowed", "blocked_statement", text=text,
                         offset=tok.start)


def _validate_postgres_explain(text: str, tokens: list[Token], rules: _SqlRules,
                               tenant_schema: str | None, *, nested: bool) -> None:
    """EXPLAIN [(option [value], ...)] [VERBOSE] <read>; ANALYZE runs the statement: refused.

    https://www.postgresql.org/docs/current/sql-explain.html (Redshift: EXPLAIN [VERBOSE]).
    """
    if nested:
        raise statement_refusal(tokens, text)
    index = 1
    if index < len(tokens) and is_punct(tokens[index], "("):
        index += 1
        while index < len(tokens) and not is_punct(tokens[index], ")"):
            tok = tokens[index]
            if is_word(tok, "analyze", "analyse"):
                raise refuse("EXPLAIN ANALYZE is not allowed: it runs the statement",
                             "explain_analyze", text=text, offset=tok.start)
            if tok.kind not in (TokenKind.WORD, TokenKind.NUMBER) and not is_punct(tok, ","):
                raise refuse("EXPLAIN options are not valid", "blocked_statement", text=text,
                             offset=tok.start)
            index += 1
        index += 1  # the closing ')'
    while index < len(tokens) and is_word(tokens[index], "analyze", "analyse", "verbose"):
        if is_word(tokens[index], "analyze", "analyse"):
            raise refuse("EXPLAIN ANALYZE is not allowed: it runs the statement",
                         "explain_analyze", text=text, offset=tokens[index].start)
        index += 1
    if index >= len(tokens):
        raise refuse("EXPLAIN needs a statement", "parse_error", text=text,
                     offset=tokens[-1].end if tokens else 0)
    _validate(text[tokens[index].start:], rules, tenant_schema, nested=True)


def _check_tokens(view: Lexed, rules: _SqlRules, text: str) -> None:
    """Defence in depth on the engine's own tokens, independent of sqlglot's tree."""
    tokens = code_tokens(view)
    for tok in called_names(tokens):
        if sql_function_blocked(tok.value, internal=rules.internal):
            raise function_refusal(tok.value, text=text, offset=tok.start)
    for index, tok in enumerate(tokens):
        nxt = tokens[index + 1] if index + 1 < len(tokens) else None
        prev = tokens[index - 1] if index > 0 else None
        if is_word(tok, "into"):  # no read statement has INTO
            if is_word(prev, "insert", "merge", "replace", "ignore"):
                label = "INSERT" if is_word(prev, "ignore") else prev.value.upper()
                raise refuse(f"Only read queries are allowed: {label} is blocked",
                             "blocked_statement", text=text, offset=prev.start)
            if is_word(nxt, "outfile", "dumpfile"):
                raise refuse("INTO OUTFILE is not allowed", "outfile", text=text,
                             offset=tok.start)
            raise refuse("SELECT ... INTO is not allowed", "select_into", text=text,
                         offset=tok.start)
        after = tokens[index + 2] if index + 2 < len(tokens) else None
        if is_word(tok, "for") and (is_word(nxt, "update", "share")
                                    or (is_word(nxt, "no") and is_word(after, "key"))
                                    or (is_word(nxt, "key") and is_word(after, "share"))) or (
                rules.mysql and is_word(tok, "lock") and is_word(nxt, "in")):
            raise refuse("Locking reads (FOR UPDATE / FOR SHARE) are not allowed",
                         "locking_read", text=text, offset=tok.start)
        if rules.mysql and is_punct(tok, ":") and nxt is not None and is_punct(nxt, "=") \
                and nxt.start == tok.end:
            raise refuse("Variable assignment (:=) is not allowed", "variable_assignment",
                         text=text, offset=tok.start)
        if rules.internal and tok.kind in (TokenKind.WORD, TokenKind.QUOTED):
            low = tok.value.lower()
            # A catalog schema is only reachable as a qualifier; an alias may share its name.
            if low in CATALOG_SCHEMAS and is_punct(nxt, "."):
                raise refuse(f"System catalog {_fragment(tok.value)} is not allowed",
                             "catalog_access", text=text, offset=tok.start)
            if low in REG_TYPES:
                raise refuse(f"Type {_fragment(tok.value)} is not allowed (it reads the "
                             "catalog)", "catalog_access", text=text, offset=tok.start)


# --------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------


def _walk(root: exp.Expression, rules: _SqlRules, tenant_schema: str | None, text: str) -> None:
    """One pass over the tree: statement nodes, blocked functions, isolation."""
    for node in root.walk():
        if isinstance(node, BLOCKED_NODE_TYPES):
            raise blocked_node_error(node, text)
        if isinstance(node, exp.Func):
            name = function_name(node)
            if sql_function_blocked(name, internal=rules.internal):
                raise function_refusal(name, position=node_position(node, text))
        if rules.mysql and isinstance(node, exp.PropertyEQ):  # SELECT @x := ...
            raise refuse("Variable assignment (:=) is not allowed", "variable_assignment",
                         position=node_position(node, text))
        if rules.internal:
            assert tenant_schema is not None
            _check_isolation(node, tenant_schema, text)


# PostgreSQL truncates identifiers to NAMEDATALEN - 1 = 63 bytes.
_PG_MAX_IDENTIFIER_BYTES = 63


def _pg_name(identifier: exp.Expression | str | None) -> str | None:
    """An identifier as PostgreSQL resolves it: unquoted folds to lower case, then truncation."""
    if identifier is None:
        return None
    if isinstance(identifier, exp.Identifier):
        name = identifier.this if identifier.quoted else identifier.this.lower()
    elif isinstance(identifier, exp.Expression):
        name = identifier.name.lower()
    else:
        name = identifier.lower()
    raw = name.encode("utf-8")
    if len(raw) > _PG_MAX_IDENTIFIER_BYTES:
        name = raw[:_PG_MAX_IDENTIFIER_BYTES].decode("utf-8", errors="ignore")
    return name


def _catalog_refusal(name: str, node: exp.Expression, text: str) -> QueryValidationError:
    return refuse(f"System catalog {_fragment(name)} is not allowed", "catalog_access",
                  position=node_position(node, text))


def _check_schema_part(part: exp.Expression | None, tenant_schema: str, node: exp.Expression,
                       text: str) -> None:
    """A schema qualifier must name the tenant's schema exactly ("TENANT_X" is another one)."""
    if part is None or not part.name:
        return
    if _pg_name(part) == tenant_schema:
        return
    if part.name.lower() in CATALOG_SCHEMAS or part.name.lower().startswith("pg_"):
        raise _catalog_refusal(part.name, node, text)
    raise refuse(f"Only the tenant's own schema can be queried: {_fragment(part.name)} is not "
                 "allowed", "schema_isolation", position=node_position(node, text))


def _check_isolation(node: exp.Expression, tenant_schema: str, text: str) -> None:
    """Internal queries read the tenant's schema only: no other schema, no catalog."""
    if isinstance(node, exp.Table):
        catalog = node.args.get("catalog")
        if catalog is not None and catalog.name:
            raise refuse("Three-part names (database.schema.table) are not allowed",
                         "schema_isolation", position=node_position(node, text))
        db = node.args.get("db")
        if db is not None and db.name:
            _check_schema_part(db, tenant_schema, node, text)
            return
        if isinstance(node.this, exp.Func):
            return  # a function in FROM: the function rules apply
        name = _pg_name(node.this) or ""
        # pg_catalog is searched before the tenant schema: pg_class, pg_tables, pg_roles...
        if (name.startswith("pg_") or name in CATALOG_SCHEMAS) and not _is_cte_reference(
                node, name):
            raise _catalog_refusal(node.name, node, text)
    elif isinstance(node, exp.Column):
        catalog = node.args.get("catalog")
        if catalog is not None and catalog.name:
            raise refuse("Four-part names are not allowed", "schema_isolation",
                         position=node_position(node, text))
        _check_schema_part(node.args.get("db"), tenant_schema, node, text)
    elif isinstance(node, exp.Dot):
        # schema.function(...)
        left = node.this
        if isinstance(node.expression, exp.Func) and isinstance(left, (exp.Identifier,
                                                                        exp.Column, exp.Var)):
            qualifier = left if isinstance(left, exp.Identifier) else left.this
            if isinstance(qualifier, exp.Expression):
                _check_schema_part(qualifier, tenant_schema, node, text)
    elif isinstance(node, exp.DataType):
        # schema.type, and casts to the catalog lookup types (regclass, ...)
        kind = node.args.get("kind")
        type_name = node.this.name if isinstance(node.this, Enum) else str(node.this)
        if isinstance(kind, exp.Dot):
            _check_schema_part(kind.this, tenant_schema, node, text)
            type_name = kind.expression.name
        elif isinstance(kind, exp.Expression):
            type_name = kind.name
        if type_name.lower().rsplit(".", 1)[-1] in REG_TYPES:
            raise refuse("Casts to catalog lookup types (regclass, ...) are not allowed",
                         "catalog_access", position=node_position(node, text))
    elif isinstance(node, exp.ObjectIdentifier):
        if node.name.lower() in REG_TYPES:
            raise refuse("Casts to catalog lookup types (regclass, ...) are not allowed",
                         "catalog_access", position=node_position(node, text))
    elif isinstance(node, exp.Collate):
        # COLLATE schema."name": sqlglot reads the qualifier as a column's table.
        collation = node.expression
        if isinstance(collation, exp.Column):
            _check_schema_part(collation.args.get("table"), tenant_schema, node, text)
    elif isinstance(node, exp.Operator):
        # OPERATOR(schema.op) calls the operator's function in that schema. sqlglot keeps only
        # the unquoted text, and a tenant schema holds no operators: any qualifier is refused.
        if "." in str(node.args.get("operator") or ""):
            raise refuse("Schema-qualified operators are not allowed", "schema_isolation",
                         position=node_position(node, text))


def _cte_aliases(ctes: Iterable[exp.Expression]) -> set[str]:
    return {_pg_name(cte.args["alias"].this) or "" for cte in ctes
            if isinstance(cte, exp.CTE) and cte.args.get("alias") is not None}


def _is_cte_reference(table: exp.Table, name: str) -> bool:
    """Whether an unqualified table name resolves to a CTE in scope rather than a relation.

    A query's CTEs are visible in its body; inside the WITH list a CTE sees only the ones before
    it (all of them under WITH RECURSIVE). A CTE of a subquery is not visible outside it.
    """
    child: exp.Expression = table
    parent = table.parent
    while parent is not None:
        if isinstance(parent, exp.With) and isinstance(child, exp.CTE):
            ctes = [c for c in parent.expressions if isinstance(c, exp.CTE)]
            position = next((i for i, c in enumerate(ctes) if c is child), len(ctes))
            visible = ctes if parent.args.get("recursive") else ctes[:position]
            if name in _cte_aliases(visible):
                return True
        else:
            with_node = parent.args.get("with_")
            if isinstance(with_node, exp.With) and with_node is not child and name in \
                    _cte_aliases(with_node.expressions):
                return True
        child, parent = parent, parent.parent
    return False
