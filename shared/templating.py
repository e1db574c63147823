"""Sandboxed rendering of query templates (CONTRACT section 8).

Parameter values are data, never query text. While Jinja renders, every ``{{ ... }}`` output
becomes an unguessable placeholder token and the value is set aside. Afterwards a small lexer
for the target dialect finds where each token landed -- bare SQL, a string literal, a comment,
a quoted identifier, a dollar-quoted string -- and the token is replaced by a literal that is
safe in exactly that place, or the render is refused with ``QueryValidationError``. Values never
pass through Jinja again, so a value that looks like a template (``{{ secret.x }}``) stays text.

Where a value may go:

* inside a string literal: text, numbers and dates, escaped for the dialect (PostgreSQL
  doubles ``'`` and, in ``E'...'``, backslashes; MySQL and Redshift,
  which read backslash escapes, double both -- the result is also safe under MySQL's
  ``NO_BACKSLASH_ESCAPES``; ClickHouse escapes ``\\`` and ``'`` with backslashes; Elasticsearch
  gets JSON string content). A value inside quotes comes back verbatim, so values without one
  verbatim spelling are refused there: booleans (``true`` or ``True``?) and numbers whose usual
  spelling has an exponent (``1e16`` arrives parsed, and comes back as ``1E+16``);
* outside quotes: only a number or a boolean (``TRUE``/``FALSE`` for the PostgreSQL family,
  ``1``/``0`` for MySQL and ClickHouse, ``true``/``false`` in JSON). A string is never a number,
  even ``"5"`` (declare the parameter as ``integer`` or ``number`` to accept such strings).
  Negative numbers are parenthesized in SQL so ``x-{{ n }}`` can never become a ``--`` comment.
  Declared parameters render by type: ``identifier`` as a quoted identifier, ``list`` as
  comma-separated literals, ``text``/``date``/``datetime``/``enum`` as a quoted string literal;
* nowhere else: comments, quoted identifiers, dollar-quoted or heredoc strings, prefixed
  literals (``B''``, ``X''``, ``U&''``, ``_utf8''``) and glued to a neighbouring word.

Assumptions about sessions, to be enforced by the connectors: PostgreSQL runs with
``standard_conforming_strings = on`` (the default since 9.1); MySQL connections use utf8mb4;
the rendered text is sent without driver-side parameter interpolation (no ``%`` formatting).
Structure does not depend on the first one: a value in a standard string may not put an odd
run of backslashes before a quote or at its end, so the literal ends at the same place either
way (only data could differ, as under MySQL's NO_BACKSLASH_ESCAPES).

Secrets (``{{ secret.<key> }}``, ``{{ secret.<key>.<field> }}``) are opaque objects: no filter,
operator or method can transform, compare or list them; only the final output unwraps them,
and every secret value used is reported in ``Rendered.secret_values`` for redaction. Then the
place each secret landed in the query is checked (section "secret use"): a secret may only be
returned whole as a result column or compared whole for equality, so the database cannot
transform or probe it either. Secrets are available to external queries only (``secrets``
given); ``{{ secret.user_profile.<field> }}`` reads the caller's profile, which is not secret.

Rendering is bounded in size, work and time (``MAX_*`` below), in the API's preview as in the
worker.
"""
from __future__ import annotations

import bisect
import functools
import json
import keyword
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from secrets import token_hex
from collections.abc import Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlglot
from jinja2 import meta, nodes, pass_context, pass_environment, pass_eval_context
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import BlockReference, LoopContext, Macro, StrictUndefined, Undefined, missing
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer
from sqlglot import exp

from shared.dialects import Dialect
from shared.errors import AnalyticsError, QueryValidationError, ValidationError

if TYPE_CHECKING:
    from shared.validation.params import ParamSpec

__all__ = [
    "Rendered",
    "SecretNamespace",
    "USER_PROFILE_FIELDS",
    "check_syntax",
    "param_name_error",
    "parse_number_text",
    "render",
    "render_preview",
    "template_variables",
]

# Limits on what a template may cost. A template comes from a tenant, is compiled in the API
# (create/update) and rendered in a worker; none of these may be made to exhaust either.
MAX_TEMPLATE_CHARS = 1_000_000
# Jinja tokens (tag delimiters, names, operators, literals; a run of query text is one). Parsing
# and compiling cost grows with them, before any render budget applies: a single {{ [1,1,...] }}
# of 900 kB took 35 s and a 1 MB run of {{ a }} 60 s and 2 GB to compile. Query templates use
# a few hundred; lexing stops counting at the limit, so the check itself stays cheap.
MAX_TEMPLATE_TOKENS = 20_000
MAX_RENDERED_CHARS = 4_000_000
MAX_VALUE_SIZE = 1_000_000  # characters of a string, or elements of a built list/dict
MAX_OPERATIONS = 1_000_000  # loop iterations plus calls
# Wall-clock budget of one render. MAX_OPERATIONS alone does not bound time: each counted step
# may be a filter over a million-element value ({% for %} x 10^6 of s|reverse took 12 minutes
# of an API thread at create time). Every loop iteration, call, filter, test and operator
# checks the clock, so a render stops within one step of the budget.
MAX_RENDER_SECONDS = 5.0
MAX_OUTPUTS = 200_000  # {{ }} outputs in one render
MAX_INT_BITS = 10_000
MAX_PARAM_DEPTH = 32
TEMPLATE_CACHE_SIZE = 256

# A secret may be output whole only if the Redactor (shared.results.MIN_REDACT_LENGTH) would
# recognise it in the result; shorter ones and booleans can only be compared.
MIN_OUTPUT_SECRET_CHARS = 4

USER_PROFILE_FIELDS = frozenset(
    {"id", "username", "email", "first_name", "last_name", "is_staff", "is_superuser"}
)
RESERVED_PARAM_NAMES = frozenset({"secret"})
# Jinja reads these as constants, so a parameter with one of these names could never be used.
_JINJA_CONSTANTS = frozenset({"true", "false", "none"})

# A plain decimal number as JSON writes it: no sign other than "-", no leading zeros, no
# spaces, no hex, no NaN or Infinity. [0-9] rather than \d, which also matches other scripts.
_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_MAX_NUMBER_CHARS = 100


# --------------------------------------------------------------------------- public helpers


def param_name_error(name: object) -> str | None:
    """Why ``name`` cannot name a parameter, or None when it can."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name in _JINJA_CONSTANTS:
        return "Parameter names must be identifiers (letters, digits and _, not starting with a digit)"
    if name in RESERVED_PARAM_NAMES:
        return f"'{name}' is reserved and cannot be a parameter name"
    return None


def parse_number_text(text: object) -> int | Decimal | None:
    """The number a string spells in plain decimal notation, or None."""
    if not isinstance(text, str) or len(text) > _MAX_NUMBER_CHARS or not _NUMBER_TEXT.fullmatch(text):
        return None
    if "." in text or "e" in text or "E" in text:
        return Decimal(text)
    return int(text)


@dataclass(frozen=True, repr=False)
class Rendered:
    """A rendered query and every secret value placed in it (to redact from results)."""

    text: str
    secret_values: frozenset[str]

    def __repr__(self) -> str:  # never print a query or a secret by accident
        return f"Rendered(<{len(self.text)} chars>, <{len(self.secret_values)} secret values>)"


# --------------------------------------------------------------------------- opaque objects


def _secret_misuse(*_args: Any, **_kwargs: Any) -> Any:
    raise QueryValidationError(
        "Secrets can only be output as {{ secret.<key> }} or {{ secret.<key>.<field> }}; "
        "they cannot be transformed, compared, converted or listed"
    )


class _Opaque:
    """Base of the secret objects: every Python protocol a filter or operator could use to
    read, convert or enumerate one refuses. The sandbox reaches their contents only through
    ``_lookup`` (see ``_Sandbox.getattr``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<secret>"

    def __bool__(self) -> bool:
        return True

    __hash__ = object.__hash__
    __str__ = __format__ = __bytes__ = _secret_misuse
    __iter__ = __reversed__ = __len__ = __contains__ = __getitem__ = __call__ = _secret_misuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _secret_misuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _secret_misuse
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _secret_misuse
    __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = _secret_misuse
    __int__ = __float__ = __index__ = __round__ = __reduce__ = __reduce_ex__ = _secret_misuse


class SecretNamespace(_Opaque):
    """The ``secret`` template variable of an external query, built by the worker.

    ``secrets`` maps secret keys of the app to their decrypted value: a scalar (a ``generic``
    secret) or a mapping of fields. ``user_profile`` holds the caller's profile fields
    (``USER_PROFILE_FIELDS``), read as ``secret.user_profile.<field>``.
    """

    __slots__ = ("_secrets", "_profile")

    def __init__(self, secrets: Mapping[str, Any], user_profile: Mapping[str, Any] | None = None):
        if not isinstance(secrets, Mapping):
            raise TypeError("secrets must be a mapping")
        self._secrets = dict(secrets)
        self._profile = None if user_profile is None else dict(user_profile)

    def _lookup(self, name: str) -> Any:
        if name == "user_profile":
            if self._profile is None:
                raise QueryValidationError("The caller's user profile is not available to this query")
            return _UserProfile(self._profile)
        if name not in self._secrets:
            raise QueryValidationError(f"Secret not found: {name}", details={"secret": name})
        return _secret_node(name, self._secrets[name])


class _SecretMapping(_Opaque):
    __slots__ = ("_path", "_fields")

    def __init__(self, path: str, fields: Mapping[str, Any]):
        self._path = path
        self._fields = fields

    def _lookup(self, name: str) -> Any:
        if name not in self._fields:
            path = f"{self._path}.{name}"
            raise QueryValidationError(f"Secret not found: {path}", details={"secret": path})
        return _secret_node(f"{self._path}.{name}", self._fields[name])


class _SecretValue(_Opaque):
    __slots__ = ("_path", "_value")

    def __init__(self, path: str, value: Any):
        self._path = path
        self._value = value


def _secret_node(path: str, value: Any) -> _Opaque:
    return _SecretMapping(path, value) if isinstance(value, Mapping) else _SecretValue(path, value)


class _UserProfile(_Opaque):
    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]):
        self._fields = fields

    def _lookup(self, name: str) -> Any:
        if name not in USER_PROFILE_FIELDS:
            raise QueryValidationError(f"Unknown user profile field: {name}")
        return self._fields.get(name)


class _PreviewSecrets(_Opaque):
    """``secret`` in a preview: any reference is accepted and renders as a placeholder."""

    __slots__ = ()

    def _lookup(self, name: str) -> Any:
        return _PreviewProfile() if name == "user_profile" else _PreviewSecretRef(name)


class _PreviewSecretRef(_Opaque):
    __slots__ = ("_path",)

    def __init__(self, path: str):
        self._path = path

    def _lookup(self, name: str) -> Any:
        return _PreviewSecretRef(f"{self._path}.{name}")


class _PreviewProfile(_Opaque):
    __slots__ = ()

    def _lookup(self, name: str) -> Any:
        if name not in USER_PROFILE_FIELDS:
            raise QueryValidationError(f"Unknown user profile field: {name}")
        if name == "id":
            return 1
        return False if name.startswith("is_") else "x"


class _PreviewValue:
    """Stands for an unknown value in a preview: usable in every expression, iterates once,
    renders as ``1`` outside quotes and ``x`` inside them."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def _lookup(self, name: Any) -> _PreviewValue:
        return _PreviewValue(f"{self._name}.{name}")

    def __iter__(self) -> Iterator[_PreviewValue]:
        yield _PreviewValue(f"{self._name}[]")

    def __len__(self) -> int:
        return 1

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return "1"

    def __repr__(self) -> str:
        return "1"

    def __int__(self) -> int:
        return 1

    __index__ = __int__

    def __float__(self) -> float:
        return 1.0

    def __contains__(self, item: Any) -> bool:
        return False

    def __eq__(self, other: Any) -> bool:
        return other is self

    def __ne__(self, other: Any) -> bool:
        return other is not self

    __hash__ = object.__hash__

    def _false(self, *_args: Any) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _false

    def _same(self, *_args: Any, **_kwargs: Any) -> _PreviewValue:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _same
    __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = __round__ = _same
    __call__ = _same


_LOOKUP_TYPES = (SecretNamespace, _SecretMapping, _UserProfile, _PreviewSecrets, _PreviewSecretRef, _PreviewProfile)


# Typed values of declared parameters. Templates cannot construct these (no access to types),
# and any operation on one returns a plain str or tuple, which renders by the generic rules.
class _TextStr(str):
    """A declared text, date, datetime or enum value: a quoted literal outside quotes."""

    __slots__ = ()


class _IdentifierStr(str):
    """A declared identifier, already checked against its allowed names."""

    __slots__ = ()


class _DeclaredNumber(Decimal):
    """A declared number given as text ("0.10"): its digits are the caller's, so it is
    written back as given inside quotes."""

    __slots__ = ()


class _DeclaredList(tuple):
    """A declared list: comma-separated literals outside quotes."""

    __slots__ = ()


class _Fragment(str):
    """Output of a macro, ``caller()``, a block or a recursive loop: template text with
    placeholder tokens in it, passed through to the query as text (the tokens inside are
    resolved like any other)."""

    __slots__ = ()


# --------------------------------------------------------------------------- render state


class _Entry(NamedTuple):
    value: Any
    label: str
    # A secret (or, in a preview, a secret reference): where it lands is checked after
    # substitution (see "secret use" below). ``output_ok``: the Redactor would recognise the
    # value if the query returned it whole (text of at least MIN_OUTPUT_SECRET_CHARS).
    secret: bool = False
    output_ok: bool = False


class _RenderState:
    """Per-render data, reached from Jinja callbacks through a context variable."""

    def __init__(self, dialect: Dialect, labels: Mapping[int, str]):
        self.dialect = dialect
        self.nonce = token_hex(8)
        self.pattern = re.compile(f"q{self.nonce}n([0-9]+)z")
        # Sentinels standing for secrets in the probe copy of the query (see "secret use"):
        # a word inside quotes, a number of 19 digits outside them.
        self.sentinel_digits = str(10**11 + int(token_hex(6), 16) % (9 * 10**11))
        self.sentinel_pattern = re.compile(f"zq{self.nonce}s([0-9]+)z|{self.sentinel_digits}([0-9]{{7}})")
        self.entries: list[_Entry] = []
        self.secret_values: set[str] = set()
        self.labels = labels
        self.operations = 0
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS
        self._sizes: dict[int, tuple[Any, int]] = {}

    def add(self, value: Any, label: str, *, secret: bool = False, output_ok: bool = False) -> str:
        if len(self.entries) >= MAX_OUTPUTS:
            raise QueryValidationError(f"The template produces more than {MAX_OUTPUTS} values")
        self.entries.append(_Entry(value, label, secret, output_ok))
        return f"q{self.nonce}n{len(self.entries) - 1}z"

    def add_secret(self, secret: _SecretValue) -> str:
        value = secret._value
        text = None if isinstance(value, bool) else _text_of(value)
        if text:
            self.secret_values.add(text)
        # Booleans and short values would come back unredacted: they may be compared, not output.
        output_ok = text is not None and len(text) >= MIN_OUTPUT_SECRET_CHARS
        return self.add(value, f"Secret '{secret._path}'", secret=True, output_ok=output_ok)

    def label(self, value: Any) -> str:
        name = self.labels.get(id(value))
        return f"Parameter '{name}'" if name is not None else "A template value"

    def spend(self) -> None:
        self.operations += 1
        if self.operations > MAX_OPERATIONS:
            raise QueryValidationError(
                f"The template does too much work (more than {MAX_OPERATIONS} loop iterations and calls)"
            )
        if time.monotonic() > self.deadline:
            raise QueryValidationError(f"The template takes too long to render (more than {MAX_RENDER_SECONDS:g} s)")

    def check_size(self, value: Any) -> None:
        if self._size(value, 0) > MAX_VALUE_SIZE:
            raise QueryValidationError("The template builds a value that is too large")

    def _size(self, value: Any, depth: int) -> int:
        # Elements of a list built from the same big list many times over count each time;
        # sizes of containers are memoized by identity (the memo keeps them alive, so an id
        # is never reused while it is in there).
        if isinstance(value, str):
            return len(value) + 1
        if not isinstance(value, (list, tuple, dict)):
            return 1
        known = self._sizes.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        if depth > 100:
            raise QueryValidationError("The template builds a value that is nested too deeply")
        total = 1
        children = (item for pair in value.items() for item in pair) if isinstance(value, dict) else value
        for child in children:
            total += self._size(child, depth + 1)
            if total > MAX_VALUE_SIZE:
                break
        self._sizes[id(value)] = (value, total)
        return total


_STATE: ContextVar[_RenderState | None] = ContextVar("analytics_template_render", default=None)


def _state() -> _RenderState:
    state = _STATE.get()
    if state is None:  # only renders run templates; compile-time folding never calls back here
        raise QueryValidationError("Template callbacks ran outside a render")
    return state


# --------------------------------------------------------------------------- the environment


class _MissingParameterError(UndefinedError):
    def __init__(self, message: str | None = None, *, parameter: str):
        super().__init__(message)
        self.parameter = parameter


class _SecretsUnavailableError(UndefinedError):
    pass


class _Undefined(StrictUndefined):
    """StrictUndefined whose error names the missing parameter."""

    __slots__ = ()

    def __init__(self, hint: str | None = None, obj: Any = missing, name: str | None = None, exc: Any = UndefinedError):
        if hint is None and obj is missing and name == "secret":
            exc = _SecretsUnavailableError
        elif hint is None and obj is missing and isinstance(name, str):
            exc = functools.partial(_MissingParameterError, parameter=name)
        super().__init__(hint, obj, name, exc)

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint is None and self._undefined_obj is missing:
            if self._undefined_name == "secret":
                return "Secrets are not available in this query (internal queries get parameters only)"
            return f"Missing parameter: {self._undefined_name}"
        return super()._undefined_message


@pass_context  # pass_context also keeps Jinja from finalizing constants at compile time
def _finalize(_context: Any, value: Any) -> str:
    """Every {{ }} output: set the value aside and emit its placeholder token."""
    state = _state()
    if isinstance(value, Undefined):
        str(value)  # raises the undefined error
    if isinstance(value, _Fragment):
        return str.__str__(value)
    if isinstance(value, _SecretValue):
        return state.add_secret(value)
    if isinstance(value, _PreviewSecretRef):
        return state.add(_PreviewValue(value._path), f"Secret '{value._path}'", secret=True, output_ok=True)
    if isinstance(value, _Opaque):
        raise QueryValidationError(
            "A whole secret cannot be output; use {{ secret.<key> }} for a single value "
            "or {{ secret.<key>.<field> }}"
        )
    return state.add(value, state.label(value))


# Methods a template may call on data. Everything else on a str (format, center, zfill,
# join, replace, ...) either reaches Python internals or can blow up memory; the filters
# below cover the useful ones with size checks.
_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
        "isascii", "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle",
        "isupper", "lower", "lstrip", "partition", "removeprefix", "removesuffix", "rfind",
        "rindex", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith",
        "strip", "swapcase", "title", "upper",
    }
)
_MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})
_SEQUENCE_METHODS = frozenset({"count", "index"})
_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "dictsort", "first", "float", "groupby",
    "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
    "rejectattr", "replace", "reverse", "round", "select", "selectattr", "sort", "string",
    "sum", "title", "trim", "truncate", "unique", "upper", "wordcount",
)


class _Hardening(NodeTransformer):
    """Rewrites a parsed template before it is compiled: refuses statements that load other
    templates or write unfinalized output, and routes loops, string concatenation and
    container literals through size- and work-limited environment methods."""

    def _refuse(self, node: nodes.Node, what: str) -> None:
        raise TemplateSyntaxError(f"{what} is not supported in query templates", node.lineno)

    def visit_Const(self, node: nodes.Const) -> nodes.Node:
        # 1e309 is float('inf'), which Jinja writes into the compiled code as the name ``inf``:
        # a NameError at render time instead of a refusal.
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise TemplateSyntaxError("numbers must be finite", node.lineno)
        return node

    def visit_Extends(self, node: nodes.Extends) -> None:
        self._refuse(node, "{% extends %}")

    def visit_Include(self, node: nodes.Include) -> None:
        self._refuse(node, "{% include %}")

    def visit_Import(self, node: nodes.Import) -> None:
        self._refuse(node, "{% import %}")

    def visit_FromImport(self, node: nodes.FromImport) -> None:
        self._refuse(node, "{% from ... import %}")

    def visit_FilterBlock(self, node: nodes.FilterBlock) -> None:
        # A filter block writes its filtered body without the finalizer:
        # {% filter replace('a', v) %}a{% endfilter %} would put raw values into the query.
        self._refuse(node, "{% filter %}")

    def visit_EvalContextModifier(self, node: nodes.EvalContextModifier) -> None:
        self._refuse(node, "{% autoescape %}")

    def visit_ScopedEvalContextModifier(self, node: nodes.ScopedEvalContextModifier) -> None:
        self._refuse(node, "{% autoescape %}")

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = _environment_call("bounded_iter", [node.iter], node.iter.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        return _environment_call("bounded_concat", node.nodes, node.lineno)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return _environment_call("bounded_container", [self.generic_visit(node)], node.lineno)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return _environment_call("bounded_container", [self.generic_visit(node)], node.lineno)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        node = self.generic_visit(node)
        if node.ctx != "load":  # an assignment target such as {% for k, v in ... %}
            return node
        return _environment_call("bounded_container", [node], node.lineno)


def _environment_call(name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name, lineno=lineno), list(args), [], None, None, lineno=lineno)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, narrowed further: a small allow-list of methods on data, secrets
    reachable only by name, operators and loops bounded in size and work."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = _Hardening().visit(super()._parse(source, name, filename))
        tree.set_environment(self)
        return tree

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, (_Opaque, _PreviewValue)):
            return False
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, str):
            return attr in _STR_METHODS
        if isinstance(obj, Mapping):
            return attr in _MAPPING_METHODS
        if isinstance(obj, (list, tuple)):
            return attr in _SEQUENCE_METHODS
        if isinstance(obj, (int, float, Decimal, date)):
            return False
        return True  # Jinja's own objects: loop, macros, blocks

    def wrap_str_format(self, value: Any) -> None:
        # str.format and format_map are not on the allow-list, so no sandboxed variant either.
        return None

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, _SecretValue):
            _secret_misuse()
        if isinstance(obj, (_LOOKUP_TYPES, _PreviewValue)):
            return obj._lookup(attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, _SecretValue):
            _secret_misuse()
        if isinstance(obj, _PreviewValue):
            return obj._lookup(argument)
        if isinstance(obj, _LOOKUP_TYPES):
            if not isinstance(argument, str):
                raise QueryValidationError("Secrets are looked up by name, e.g. secret['my-key'].field")
            return obj._lookup(argument)
        return super().getitem(obj, argument)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        state = _state()
        state.spend()
        if "caller" in kwargs and not isinstance(obj, Macro):
            # {% call %} writes the callee's result without the finalizer: only a macro's
            # output, itself rendered through the finalizer, may be written that way.
            raise QueryValidationError("{% call %} can only call a macro")
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(obj, (Macro, BlockReference, LoopContext)) and isinstance(result, str):
            return _Fragment(result)
        if isinstance(result, (str, list, tuple, dict)):
            state.check_size(result)
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        state = _state()
        state.spend()
        if operator == "%" and isinstance(left, str):
            raise QueryValidationError("String formatting with % is not supported in query templates")
        if operator in ("*", "**") and _is_int(left) and _is_int(right):
            if operator == "*":
                bits = left.bit_length() + right.bit_length()
            else:
                bits = 0 if abs(left) <= 1 or right <= 0 else left.bit_length() * right
            if bits > MAX_INT_BITS:
                raise QueryValidationError("The template computes a number that is too large")
        if operator == "*":  # check before Python allocates 'x' * 10**9
            for sequence, count in ((left, right), (right, left)):
                repeats = isinstance(sequence, (str, list, tuple)) and _is_int(count)
                if repeats and len(sequence) * count > MAX_VALUE_SIZE:
                    raise QueryValidationError("The template builds a value that is too large")
        result = self.binop_table[operator](left, right)
        if isinstance(result, (str, list, tuple)):
            state.check_size(result)
        return result

    def bounded_iter(self, iterable: Any) -> Iterator[Any]:
        if isinstance(iterable, _Opaque):
            _secret_misuse()
        return _counted(iter(iterable), _state())

    def bounded_concat(self, *parts: Any) -> str:
        texts = []
        total = 0
        for part in parts:
            text = str(part)
            total += len(text)
            if total > MAX_VALUE_SIZE:
                raise QueryValidationError("The template builds a value that is too large")
            texts.append(text)
        return "".join(texts)

    def bounded_container(self, value: Any) -> Any:
        _state().check_size(value)
        return value


def _counted(iterator: Iterator[Any], state: _RenderState) -> Iterator[Any]:
    for item in iterator:
        state.spend()
        yield item


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounded_filters(defaults: Mapping[str, Any]) -> dict[str, Any]:
    join, replace, sum_ = defaults["join"], defaults["replace"], defaults["sum"]

    @pass_eval_context
    def bounded_join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> str:
        items = list(value)
        if len(str(d)) * len(items) > MAX_VALUE_SIZE:
            raise QueryValidationError("The template builds a value that is too large")
        result = join(eval_ctx, items, d, attribute)
        if len(result) > MAX_VALUE_SIZE:
            raise QueryValidationError("The template builds a value that is too large")
        return result

    @pass_eval_context
    def bounded_replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> str:
        text, old_text, new_text = str(s), str(old), str(new)
        hits = text.count(old_text) if old_text else len(text) + 1
        if _is_int(count) and count >= 0:
            hits = min(hits, count)
        if len(text) + hits * (len(new_text) - len(old_text)) > MAX_VALUE_SIZE:
            raise QueryValidationError("The template builds a value that is too large")
        return replace(eval_ctx, s, old, new, count)

    @pass_environment
    def numeric_sum(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        # sum() over lists or with a list start concatenates: only numbers are added.
        if isinstance(start, bool) or not isinstance(start, (int, float, Decimal, _PreviewValue)):
            raise QueryValidationError("sum only adds numbers")
        return sum_(environment, iterable, attribute, start)

    filters = {name: defaults[name] for name in _FILTERS}
    filters.update(join=bounded_join, replace=bounded_replace, sum=numeric_sum)
    return {name: _spending(function) for name, function in filters.items()}


def _spending(function: Any) -> Any:
    """A filter or test that counts as one step of work (and checks the render's clock):
    Jinja calls filters and tests directly, not through ``_Sandbox.call``. Outside a render
    (Jinja folding constants at compile time) ``_state()`` raises, so nothing is folded and
    compiling stays cheap."""

    @functools.wraps(function)  # also copies jinja_pass_arg (pass_context & co.)
    def counted(*args: Any, **kwargs: Any) -> Any:
        _state().spend()
        return function(*args, **kwargs)

    return counted


@functools.cache
def _environment() -> _Sandbox:
    env = _Sandbox(
        undefined=_Undefined,
        finalize=_finalize,
        autoescape=False,
        loader=None,  # include, import and extends have nothing to load (and are refused)
        extensions=(),
        keep_trailing_newline=True,
        cache_size=0,
        auto_reload=False,
    )
    # The sandbox still installs range, dict, lipsum, cycler, joiner and namespace. Each one
    # builds values or hands out Python objects (and namespace() would let loops accumulate
    # state); a query template needs none of them, so there are no globals at all.
    env.globals.clear()
    env.filters = _bounded_filters(env.filters)
    env.tests = {name: _spending(test) for name, test in env.tests.items()}
    return env


# --------------------------------------------------------------------------- compile + cache


class _TemplateCache:
    """A small thread-safe LRU of compiled templates. The text is kept with each entry, so a
    key reused for other text (say, an update within the same second) compiles afresh."""

    def __init__(self, maxsize: int):
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[str, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, text: str) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != text:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[1]

    def put(self, key: Hashable, text: str, template: Any) -> None:
        with self._lock:
            self._items[key] = (text, template)
            self._items.move_to_end(key)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


_TEMPLATE_CACHE = _TemplateCache(TEMPLATE_CACHE_SIZE)


@contextmanager
def _syntax_errors() -> Iterator[None]:
    try:
        yield
    except AnalyticsError:
        raise
    except TemplateSyntaxError as exc:
        line = exc.lineno
        raise QueryValidationError(
            f"Template syntax error on line {line}: {exc.message or 'invalid syntax'}", details={"line": line}
        ) from None
    except (RecursionError, MemoryError, SyntaxError):
        raise QueryValidationError("The template is too complex to compile") from None
    except TemplateError as exc:
        raise QueryValidationError(f"Template error: {exc.message or type(exc).__name__}") from None


def _source(text: Any) -> str:
    if not isinstance(text, str):
        raise QueryValidationError("The query template must be text")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise QueryValidationError(f"The query template is longer than {MAX_TEMPLATE_CHARS} characters")
    for count, _token in enumerate(_environment().lexer.tokeniter(text, None), start=1):
        if count > MAX_TEMPLATE_TOKENS:
            raise QueryValidationError(
                f"The query template is too complex (more than {MAX_TEMPLATE_TOKENS} template tokens)"
            )
    return text


def _compile(text: str) -> Any:
    with _syntax_errors():
        return _environment().from_string(_source(text))


def _compiled(text: str, cache_key: Hashable | None) -> Any:
    if cache_key is None:
        return _compile(text)
    try:
        template = _TEMPLATE_CACHE.get(cache_key, text)
    except TypeError:  # an unhashable key: nothing to cache under
        return _compile(text)
    if template is None:
        template = _compile(text)
        _TEMPLATE_CACHE.put(cache_key, text, template)
    return template


def check_syntax(text: str) -> None:
    """Raise ``QueryValidationError`` (with ``details={"line": N}``) unless ``text`` compiles."""
    _compile(text)


def template_variables(text: str) -> set[str]:
    """Names the template reads from outside (its parameters), without ``secret``."""
    with _syntax_errors():
        names = meta.find_undeclared_variables(_environment().parse(_source(text)))
    return set(names) - {"secret"}


# --------------------------------------------------------------------------- rendering


def render(
    text: str,
    *,
    dialect: Dialect,
    params: Mapping[str, Any],
    declarations: Mapping[str, ParamSpec] | None = None,
    secrets: SecretNamespace | None = None,
    cache_key: Hashable | None = None,
) -> Rendered:
    """Render a query template for ``dialect``.

    Raises ``ValidationError`` for a bad parameter name or a declared value that does not
    match its declaration, ``QueryValidationError`` for everything else (syntax, missing
    parameter, forbidden operation, a value that cannot be placed where the template puts it).
    """
    dialect = _dialect(dialect)
    variables, labels = _template_params(params, declarations)
    template = _compiled(text, cache_key)
    if secrets is not None:
        if not isinstance(secrets, SecretNamespace):
            raise TypeError("secrets must be a SecretNamespace")
        variables["secret"] = secrets
    state = _RenderState(dialect, labels)
    output = _run(template, variables, state)
    return Rendered(_substitute(output, state), frozenset(state.secret_values))


def render_preview(text: str, *, dialect: Dialect, declarations: Mapping[str, ParamSpec] | None = None) -> str:
    """Render with a placeholder for every variable, to validate the shape of a template at
    create/update time: a number outside quotes, ``x`` inside them, a declared parameter's
    default or a sample of its type, a placeholder for any secret reference (external
    queries only). Loops over unknown values run once."""
    dialect = _dialect(dialect)
    template = _compile(text)
    declarations = declarations or {}
    variables: dict[str, Any] = {}
    for name in sorted(template_variables(text)):
        spec = declarations.get(name)
        variables[name] = _preview_value(spec) if spec is not None else _PreviewValue(name)
    if dialect is not Dialect.INTERNAL:
        variables["secret"] = _PreviewSecrets()
    labels = {id(value): name for name, value in variables.items()}
    state = _RenderState(dialect, labels)
    return _substitute(_run(template, variables, state), state)


def _dialect(dialect: Any) -> Dialect:
    try:
        return Dialect(dialect)
    except ValueError:
        raise QueryValidationError(f"Unsupported dialect: {dialect}") from None


def _template_params(
    params: Mapping[str, Any] | None, declarations: Mapping[str, ParamSpec] | None
) -> tuple[dict[str, Any], dict[int, str]]:
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ValidationError("Invalid parameters", details={"params": ["Must be an object"]})
    for name in params:
        error = param_name_error(name)
        if error is not None:
            raise ValidationError(f"Invalid parameter name '{name}': {error}", details={f"params.{name}": [error]})
    if declarations:
        # Imported here: shared.validation may import this module, so a module-level import
        # would be circular.
        from shared.validation.params import coerce_params

        params = coerce_params(params, declarations)
    variables: dict[str, Any] = {}
    labels: dict[int, str] = {}
    for name, value in params.items():
        value = _plain(value, name, 0)
        spec = declarations.get(name) if declarations else None
        if spec is not None and value is not None:
            value = _declared_value(spec, value)
        variables[name] = value
        labels.setdefault(id(value), name)
    return variables, labels


def _plain(value: Any, name: str, depth: int) -> Any:
    """A copy of a parameter value made of plain JSON-like types (no callables, no objects,
    no str subclasses that could pass for template output)."""
    if depth > MAX_PARAM_DEPTH:
        raise QueryValidationError(f"Parameter '{name}' is nested too deeply")
    if value is None or type(value) in (bool, int, float, str, Decimal, date, datetime):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item, name, depth + 1) for item in value]
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        return {str.__str__(key): _plain(item, name, depth + 1) for key, item in value.items()}
    raise QueryValidationError(f"Parameter '{name}' has an unsupported type")


def _declared_value(spec: ParamSpec, value: Any) -> Any:
    kind = spec.type
    if kind == "list":
        item_spec = spec.item_spec()
        return _DeclaredList(_declared_value(item_spec, item) for item in value)
    if kind == "integer":
        return int(value)
    if kind == "number":
        return _DeclaredNumber(value) if isinstance(value, str) else value
    if kind == "identifier":
        return _IdentifierStr(value)
    if isinstance(value, str):  # text, date, datetime, a string enum value
        return _TextStr(value)
    return value  # boolean, a numeric or boolean enum value


def _preview_value(spec: ParamSpec) -> Any:
    if spec.default is not None:
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        return _declared_value(spec, default)
    samples = {
        "text": "x",
        "integer": 1,
        "number": 1,
        "boolean": True,
        "date": "2000-01-01",
        "datetime": "2000-01-01T00:00:00",
    }
    kind = spec.type
    if kind == "list":
        return _DeclaredList([_preview_value(spec.item_spec())])
    if kind in ("enum", "identifier"):
        return _declared_value(spec, spec.values[0])
    return _declared_value(spec, samples[str(kind)])


def _run(template: Any, variables: dict[str, Any], state: _RenderState) -> str:
    token = _STATE.set(state)
    try:
        with _render_errors():
            chunks = []
            size = 0
            for chunk in template.generate(variables):
                size += len(chunk)
                if size > MAX_RENDERED_CHARS:
                    raise QueryValidationError(f"The rendered query is longer than {MAX_RENDERED_CHARS} characters")
                chunks.append(chunk)
            return "".join(chunks)
    finally:
        _STATE.reset(token)


@contextmanager
def _render_errors() -> Iterator[None]:
    # Messages are built from fixed text, names and types only -- never from a value, so
    # neither a secret nor a parameter value can appear in an error. Timeouts and other
    # BaseExceptions (and exception types no template can raise) pass through.
    try:
        yield
    except AnalyticsError:
        raise
    except _MissingParameterError as exc:
        raise QueryValidationError(exc.message, details={"parameter": exc.parameter}) from None
    except _SecretsUnavailableError as exc:
        raise QueryValidationError(exc.message) from None
    except SecurityError:
        raise QueryValidationError("The template uses a forbidden attribute or operation") from None
    except UndefinedError as exc:
        raise QueryValidationError(f"Template error: {exc.message}") from None
    except TemplateSyntaxError as exc:
        raise QueryValidationError(
            f"Template syntax error on line {exc.lineno}: {exc.message}", details={"line": exc.lineno}
        ) from None
    except TemplateError as exc:
        raise QueryValidationError(f"Template error: {exc.message or type(exc).__name__}") from None
    except RecursionError:
        raise QueryValidationError("The template nests too deeply") from None
    except MemoryError:
        raise QueryValidationError("The template needs too much memory") from None
    except (
        TypeError, ValueError, ArithmeticError, AttributeError, LookupError, RuntimeError, AssertionError, NameError
    ) as exc:
        raise QueryValidationError(f"Template error: unsupported operation ({type(exc).__name__})") from None


# --------------------------------------------------------------------------- literals


_SQL_TRUE_FALSE = {
    Dialect.POSTGRES: ("TRUE", "FALSE"),
    Dialect.INTERNAL: ("TRUE", "FALSE"),
    Dialect.REDSHIFT: ("TRUE", "FALSE"),
    # Booleans are TINYINT(1) in MySQL and UInt8 in many ClickHouse tables: 1/0 compare right.
    Dialect.MYSQL: ("1", "0"),
    Dialect.CLICKHOUSE: ("1", "0"),
    Dialect.ELASTICSEARCH: ("true", "false"),
}


def _escape_standard(text: str) -> str:
    return text.replace("'", "''")


def _escape_backslashes(text: str) -> str:
    # '' rather than \' for the quote: the same text is then safe whether or not the server
    # reads backslash escapes (MySQL NO_BACKSLASH_ESCAPES); only the data would differ.
    return text.replace("\\", "\\\\").replace("'", "''")


def _escape_clickhouse(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _escape_json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


_ESCAPES = {
    "standard": _escape_standard,
    "backslash": _escape_backslashes,
    "clickhouse": _escape_clickhouse,
    "json": _escape_json,
}
# How a bare declared text becomes a whole string literal, per dialect.
_LITERAL_STYLE = {
    Dialect.POSTGRES: "standard",
    Dialect.INTERNAL: "standard",
    Dialect.REDSHIFT: "backslash",
    Dialect.MYSQL: "backslash",
    Dialect.CLICKHOUSE: "clickhouse",
}


def _text_of(value: Any) -> str | None:
    """The text a value stands for inside quotes, or None when it has none."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than Python will print (a 500, not a 400, before)
            return None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, _PreviewValue):
        return "x"
    return None


def _checked_text(text: str, label: str) -> str:
    if "\x00" in text:
        raise QueryValidationError(f"{label} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise QueryValidationError(f"{label} is not valid text (unpaired surrogate)") from None
    return text


def _quoted_content(entry: _Entry) -> str:
    value = entry.value
    if isinstance(value, bool):
        # JSON true is "true", Python's is "True": no spelling is *the* verbatim one. Outside
        # quotes a boolean is the dialect's own TRUE/FALSE (or 1/0), which is what SQL wants.
        raise QueryValidationError(f"{entry.label} is a boolean; use it outside quotes")
    if isinstance(value, (float, Decimal)) and not isinstance(value, _DeclaredNumber) and not _verbatim_number(value):
        raise QueryValidationError(
            f"{entry.label} is a number that cannot be written back as it was given; pass it as text"
        )
    if isinstance(value, (_DeclaredList, list, tuple, dict)) or value is None:
        text = None
    else:
        text = _text_of(value)
    if text is None:
        raise QueryValidationError(f"{entry.label} must be text, a number or a date when used inside quotes")
    return _checked_text(text, entry.label)


def _verbatim_number(value: float | Decimal) -> bool:
    """Inside quotes a value comes back exactly as the caller wrote it. A JSON number arrives
    parsed (a float, or a Decimal from the API's parser) and its spelling is lost: 1e16 and
    1e-05 become 1E+16 and 0.00001. Only numbers whose usual spelling has no exponent are
    written back; the rest must be sent as text."""
    if isinstance(value, float):
        return math.isfinite(value) and "e" not in repr(value)
    if not value.is_finite() or "E" in str(value):
        return False
    return "e" not in repr(float(value))


def _number_text(value: Any, dialect: Dialect) -> str | None:
    if isinstance(value, bool):
        return _SQL_TRUE_FALSE[dialect][0 if value else 1]
    if isinstance(value, _PreviewValue):
        return "1"
    # A string is never a number here, even "5": the contract takes numbers and booleans
    # outside quotes, and a string that looks like one is still text (declare the parameter
    # as integer or number to accept "5" from a query string).
    try:
        if isinstance(value, int):
            text = str(value)
        elif isinstance(value, float) and math.isfinite(value):
            text = repr(value)
        elif isinstance(value, Decimal) and value.is_finite():
            text = str(value)
        else:
            return None
    except ValueError:  # an int with more digits than Python will print
        return None
    if text.startswith("-") and dialect is not Dialect.ELASTICSEARCH:
        return f"({text})"  # so that x-{{ n }} can never read as a -- comment
    return text


def _string_literal(text: str, dialect: Dialect) -> str:
    if dialect is Dialect.ELASTICSEARCH:
        return json.dumps(text, ensure_ascii=False)
    return "'" + _ESCAPES[_LITERAL_STYLE[dialect]](text) + "'"


def _identifier_literal(name: str, dialect: Dialect) -> str:
    if dialect in (Dialect.POSTGRES, Dialect.INTERNAL, Dialect.REDSHIFT):
        return '"' + name.replace('"', '""') + '"'
    if dialect is Dialect.MYSQL:
        return "`" + name.replace("`", "``") + "`"
    if dialect is Dialect.CLICKHOUSE:
        return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
    return json.dumps(name, ensure_ascii=False)


def _bare_item(value: Any, label: str, dialect: Dialect) -> tuple[str, str] | None:
    """(literal, shape) of a value outside quotes, or None when it cannot go there."""
    if isinstance(value, _IdentifierStr):
        return _identifier_literal(_checked_text(str.__str__(value), label), dialect), "identifier"
    if isinstance(value, _TextStr):
        return _string_literal(_checked_text(str.__str__(value), label), dialect), "text"
    text = _number_text(value, dialect)
    return None if text is None else (text, "number")


def _bare_literal(entry: _Entry, dialect: Dialect) -> tuple[str, str]:
    value = entry.value
    if isinstance(value, _DeclaredList):
        if not value:
            raise QueryValidationError(f"{entry.label} is an empty list and cannot be used outside quotes")
        items = [_bare_item(item, entry.label, dialect) for item in value]
        if any(item is None for item in items):
            raise QueryValidationError(f"{entry.label} has an item that cannot be used outside quotes")
        return ", ".join(item[0] for item in items), "list"
    item = _bare_item(value, entry.label, dialect)
    if item is None:
        raise QueryValidationError(f"{entry.label} must be a number or boolean when used outside quotes")
    return item


_GLUE = frozenset("'\"`@\\$")


def _sticky(char: str) -> bool:
    """Would this neighbour merge with a literal into another token (a longer number or
    word, a prefixed or doubled string, a variable)?"""
    return bool(char) and (not char.isascii() or char.isalnum() or char == "_" or char in _GLUE)


def _check_neighbours(text: str, start: int, end: int, shape: str, label: str) -> None:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    glued = _sticky(before) or _sticky(after)
    if shape != "identifier":  # schema.{{ table }} is fine; 1.{{ n }} is another number
        glued = glued or before == "." or after == "."
    if shape != "number" and before == "&":  # U&'...' and U&"..." decode escapes
        glued = True
    if glued:
        raise QueryValidationError(
            f"{label} is used outside quotes right next to other text; separate it with a space"
        )


# --------------------------------------------------------------------------- lexing


class _Region(NamedTuple):
    start: int
    end: int
    # "string" (detail: escape style) or "refuse" (detail: what the place is)
    kind: str
    detail: str


class _Unsafe(Exception):
    """The query text cannot be lexed with certainty; no value is placed in it."""


_NEWLINE = re.compile(r"[\r\n]")
_COMMENT_DELIMITERS = re.compile(r"/\*|\*/")
_QUOTE_SCANS = {
    (quote, backslash): re.compile(re.escape(quote) + (r"|\\" if backslash else ""))
    for quote in ("'", '"', "`")
    for backslash in (False, True)
}
_PG_IDENT = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_PG_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PG_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
_PG_PARAM = re.compile(r"\$[0-9]+")
# PostgreSQL glues 'a' <newline> 'b' into one literal, in the mode of the first part (so an
# E'' part makes the next one read backslashes too); comments may sit in between.
_PG_GAP = r"(?:[ \t\f]|--[^\n\r]*+)*+[\n\r](?:[ \t\n\r\f\v]|--[^\n\r]*+[\n\r])*+"
_PG_CONTINUATION = re.compile(_PG_GAP + "'")
_PG_CONTINUATION_GAP = re.compile(_PG_GAP)
_PG_FAMILY = frozenset({Dialect.POSTGRES, Dialect.INTERNAL, Dialect.REDSHIFT})
_MYSQL_WORD = re.compile(r"[A-Za-z0-9_$\u0080-\U0010ffff]+")
_CH_WORD = re.compile(r"[A-Za-z0-9_$]+")
_CH_WORD_NO_DOLLAR = re.compile(r"[A-Za-z0-9_]+")
_ASCII_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_WHITESPACE = frozenset(" \t\n\r\f\v")


def _is_word_ascii(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


def _quoted_end(text: str, start: int, quote: str, *, backslash: bool, doubling: bool = True) -> int | None:
    """Index after the quote closing the literal opened at ``start``, or None."""
    scan = _QUOTE_SCANS[(quote, backslash)]
    n = len(text)
    pos = start + 1
    while True:
        match = scan.search(text, pos)
        if match is None:
            return None
        k = match.start()
        if text[k] == "\\":
            if k + 1 >= n:
                return None
            pos = k + 2
        elif doubling and k + 1 < n and text[k + 1] == quote:
            pos = k + 2
        else:
            return k + 1


def _required(end: int | None, what: str) -> int:
    if end is None:
        raise _Unsafe(f"an unterminated {what}")
    return end


def _end_either_mode(text: str, start: int, quote: str, what: str) -> int:
    """End of a literal whose backslash handling depends on server settings: both readings
    must agree (MySQL NO_BACKSLASH_ESCAPES and ANSI_QUOTES, Redshift)."""
    with_escapes = _quoted_end(text, start, quote, backslash=True)
    without = _quoted_end(text, start, quote, backslash=False)
    if with_escapes != without:
        raise _Unsafe(f"a {what} whose end depends on how the server reads backslashes")
    return _required(with_escapes, what)


def _line_comment_end(text: str, start: int) -> int:
    match = _NEWLINE.search(text, start)
    if match is None:
        return len(text)
    k = match.start()
    # Engines disagree on whether a lone carriage return ends a -- comment.
    if text[k] == "\r" and not text.startswith("\n", k + 1):
        raise _Unsafe("a carriage return inside a line comment")
    return k


def _block_comment_end(text: str, start: int, *, nested: bool) -> int:
    if not nested:
        k = text.find("*/", start + 2)
        return _required(None if k < 0 else k + 2, "block comment")
    depth = 1
    pos = start + 2
    while True:
        match = _COMMENT_DELIMITERS.search(text, pos)
        if match is None:
            raise _Unsafe("an unterminated block comment")
        depth += 1 if match.group() == "/*" else -1
        pos = match.end()
        if depth == 0:
            return pos


def _scan(text: str, dialect: Dialect, stop: int) -> list[_Region]:
    """The literals, identifiers and comments of ``text`` up to ``stop``, in order."""
    if dialect in (Dialect.POSTGRES, Dialect.INTERNAL):
        return _scan_postgres(text, stop, redshift=False)
    if dialect is Dialect.REDSHIFT:
        return _scan_postgres(text, stop, redshift=True)
    if dialect is Dialect.MYSQL:
        return _scan_mysql(text, stop)
    if dialect is Dialect.CLICKHOUSE:
        return _scan_clickhouse(text, stop)
    return _scan_json(text, stop)


def _scan_postgres(text: str, stop: int, *, redshift: bool) -> list[_Region]:
    # After src/backend/parser/scan.l. Redshift is treated as PostgreSQL whose string
    # literals read backslash escapes (its QUOTE_LITERAL doubles backslashes); where the two
    # might lex differently (backslashes, nested comments, dollar quotes) it is refused.
    regions: list[_Region] = []
    n = len(text)
    i = 0
    word, word_end = "", -1
    while i < n and i < stop:
        c = text[i]
        if c == "'":
            i = _pg_string(text, i, word if word_end == i else "", regions, redshift=redshift)
        elif c == '"':
            if redshift:
                end = _end_either_mode(text, i, '"', "quoted identifier")
            else:
                end = _required(_quoted_end(text, i, '"', backslash=False), "quoted identifier")
            regions.append(_Region(i, end, "refuse", "a quoted identifier (declare it as an identifier parameter)"))
            i = end
        elif c == "-" and text.startswith("-", i + 1):
            end = _line_comment_end(text, i)
            regions.append(_Region(i, end, "refuse", "a comment"))
            i = end
        elif c == "/" and text.startswith("*", i + 1):
            end = _block_comment_end(text, i, nested=True)
            if redshift and end != _block_comment_end(text, i, nested=False):
                raise _Unsafe("a nested block comment")
            regions.append(_Region(i, end, "refuse", "a comment"))
            i = end
        elif c == "$":
            match = _PG_DOLLAR_TAG.match(text, i)
            if match is None:
                param = _PG_PARAM.match(text, i)
                i = param.end() if param else i + 1
                continue
            if redshift:
                raise _Unsafe("a dollar-quoted string")
            close = text.find(match.group(), match.end())
            end = _required(None if close < 0 else close + len(match.group()), "dollar-quoted string")
            regions.append(_Region(i, end, "refuse", "a dollar-quoted string"))
            i = end
        elif c.isalpha() or c == "_" or not c.isascii():
            match = _PG_IDENT.match(text, i)
            if match is None:  # a non-ASCII character that cannot start a word for the regex
                i += 1
                continue
            word, i = match.group(), match.end()
            word_end = i
            if word in ("U", "u") and text.startswith("&", i) and text[i + 1 : i + 2] in ("'", '"'):
                if text[i + 1] == "'":
                    i = _pg_string(text, i + 1, "U&", regions, redshift=redshift)
                else:
                    end = _required(_quoted_end(text, i + 1, '"', backslash=False), "quoted identifier")
                    regions.append(_Region(i + 1, end, "refuse", "a quoted identifier"))
                    i = end
        elif c in _ASCII_DIGITS or (c == "." and text[i + 1 : i + 2] in _ASCII_DIGITS and i + 1 < n):
            i = _PG_NUMBER.match(text, i).end()
        else:
            i += 1
    return regions


def _pg_string(text: str, start: int, prefix: str, regions: list[_Region], *, redshift: bool) -> int:
    kind = prefix.lower()
    if kind in ("b", "x", "u&"):
        style = None  # bit strings and Unicode-escape strings decode their content
    elif redshift:
        style = "backslash"
    else:
        style = "backslash" if kind == "e" else "standard"
    while True:
        if redshift:
            end = _end_either_mode(text, start, "'", "string literal")
        else:
            end = _required(_quoted_end(text, start, "'", backslash=style == "backslash"), "string literal")
        if style is None:
            regions.append(_Region(start, end, "refuse", "a bit-string or Unicode-escape string literal"))
        else:
            regions.append(_Region(start, end, "string", style))
        continuation = _PG_CONTINUATION.match(text, end)
        if continuation is None:
            return end
        regions.append(_Region(end, continuation.end() - 1, "refuse", "a comment"))
        start = continuation.end() - 1


def _scan_mysql(text: str, stop: int) -> list[_Region]:
    # After sql/sql_lex.cc. Whether "..." is a string or an identifier (ANSI_QUOTES) and
    # whether backslashes escape (NO_BACKSLASH_ESCAPES) are session settings: a literal must
    # end at the same place either way.
    regions: list[_Region] = []
    n = len(text)
    i = 0
    word, word_end = "", -1
    while i < n and i < stop:
        c = text[i]
        if c == "'":
            end = _end_either_mode(text, i, "'", "string literal")
            prefix = word if word_end == i else ""
            if prefix[:1] == "_" or prefix.lower() in ("x", "b") or text[i - 1 : i] == "@":
                regions.append(_Region(i, end, "refuse", "a string literal with a character-set, hex or bit prefix"))
            else:
                regions.append(_Region(i, end, "string", "backslash"))
            i = end
        elif c == '"':
            end = _end_either_mode(text, i, '"', "double-quoted literal")
            what = "a double-quoted literal (a string or an identifier depending on the SQL mode)"
            regions.append(_Region(i, end, "refuse", what))
            i = end
        elif c == "`":
            end = _required(_quoted_end(text, i, "`", backslash=False), "quoted identifier")
            regions.append(_Region(i, end, "refuse", "a quoted identifier (declare it as an identifier parameter)"))
            i = end
        elif c == "#" or (
            c == "-" and text.startswith("-", i + 1) and (i + 2 >= n or text[i + 2] <= " " or text[i + 2] == "\x7f")
        ):
            end = _line_comment_end(text, i)
            regions.append(_Region(i, end, "refuse", "a comment"))
            i = end
        elif c == "/" and text.startswith("*", i + 1):
            if text.startswith(("/*!", "/*+", "/*M!"), i):
                raise _Unsafe("an executable or optimizer-hint comment")
            end = _block_comment_end(text, i, nested=False)
            regions.append(_Region(i, end, "refuse", "a comment"))
            i = end
        elif (match := _MYSQL_WORD.match(text, i)) is not None:
            word, i = match.group(), match.end()
            word_end = i
        else:
            i += 1
    return regions


def _scan_clickhouse(text: str, stop: int) -> list[_Region]:
    # After src/Parsers/Lexer.cpp, including its number rules, which decide whether the "-"
    # of "1e--2" is an exponent sign or starts a comment.
    regions: list[_Region] = []
    n = len(text)
    i = 0
    previous = "other"  # the kind of the previous significant token
    while i < n and i < stop:
        c = text[i]
        if c in _WHITESPACE:
            i += 1
        elif c in _ASCII_DIGITS:
            i = _ch_number(text, i, after_dot=previous == "dot")
            if i < n and _is_word_ascii(text[i]):
                i = _CH_WORD_NO_DOLLAR.match(text, i).end()
                previous = "word"
            else:
                previous = "number"
        elif c == "'":
            end = _required(_quoted_end(text, i, "'", backslash=True), "string literal")
            regions.append(_Region(i, end, "string", "clickhouse"))
            i, previous = end, "other"
        elif c in "\"`":
            end = _required(_quoted_end(text, i, c, backslash=True), "quoted identifier")
            regions.append(_Region(i, end, "refuse", "a quoted identifier (declare it as an identifier parameter)"))
            i, previous = end, "identifier"
        elif c == ".":
            next_is_digit = text[i + 1 : i + 2] in _ASCII_DIGITS and i + 1 < n
            if i > 0 and (not next_is_digit or previous in ("close", "word", "identifier", "number")):
                i, previous = i + 1, "dot"
            else:
                i, previous = _ch_fraction(text, i), "number"
        elif c == "-" and text.startswith("-", i + 1):
            i = _ch_comment(text, i, _line_comment_end(text, i), regions, certain=True)
        elif c == "/" and text.startswith("/", i + 1):
            i = _ch_comment(text, i, _line_comment_end(text, i), regions, certain=False)
        elif c == "/" and text.startswith("*", i + 1):
            end = _block_comment_end(text, i, nested=True)
            if end != _block_comment_end(text, i, nested=False):
                raise _Unsafe("a nested block comment")  # older ClickHouse releases do not nest
            i = _ch_comment(text, i, end, regions, certain=True)
        elif c == "#" and text[i + 1 : i + 2] in (" ", "!"):
            i = _ch_comment(text, i, _line_comment_end(text, i), regions, certain=False)
        elif c in ")]":
            i, previous = i + 1, "close"
        elif c == "$":
            close = text.find("$", i + 1)
            if close >= 0 and text.find(text[i : close + 1], close + 1) >= 0:
                raise _Unsafe("a heredoc string")
            if i + 1 < n and _is_word_ascii(text[i + 1]):
                i, previous = _CH_WORD.match(text, i).end(), "word"
            else:
                i, previous = i + 1, "other"
        elif c in "xXbB" and i + 2 < n and text[i + 1] == "'":
            digits = _HEX_DIGITS if c in "xX" else frozenset("01")
            j = i + 2
            while j < n and text[j] in digits:
                j += 1
            if j >= n or text[j] != "'":
                raise _Unsafe("an unterminated hex or binary string literal")
            regions.append(_Region(i, j + 1, "refuse", "a hex or binary string literal"))
            i, previous = j + 1, "other"
        elif _is_word_ascii(c):
            i, previous = _CH_WORD.match(text, i).end(), "word"
        else:
            i, previous = i + 1, "other"
    return regions


def _ch_comment(text: str, start: int, end: int, regions: list[_Region], *, certain: bool) -> int:
    # // and # comments are recent in ClickHouse; an older server reads them as code, so
    # they may not hide anything that would change the meaning of what follows.
    if not certain and any(mark in text[start:end] for mark in ("'", '"', "`", "$", "/*", "*/")):
        raise _Unsafe("a // or # comment with quotes in it")
    regions.append(_Region(start, end, "refuse", "a comment"))
    return end


def _ch_separator(text: str, pos: int, start_of_block: bool, hex_digits: bool) -> bool:
    # isNumberSeparator: an "_" between two digits of the same block.
    if text[pos] != "_" or start_of_block or pos + 1 >= len(text):
        return False
    return text[pos + 1] in (_HEX_DIGITS if hex_digits else _ASCII_DIGITS)


def _ch_digits(text: str, i: int, start_of_block: bool, hex_digits: bool) -> int:
    digits = _HEX_DIGITS if hex_digits else _ASCII_DIGITS
    while i < len(text) and (text[i] in digits or _ch_separator(text, i, start_of_block, hex_digits)):
        i += 1
        start_of_block = False
    return i


def _ch_number(text: str, i: int, *, after_dot: bool) -> int:
    n = len(text)
    if after_dot:  # x.1.2 is tuple access: only a plain integer
        return _ch_digits(text, i + 1, False, False)
    hex_digits = False
    start_of_block = False
    if i + 2 < n and text[i] == "0" and text[i + 1] in "xXbB":
        if text[i + 1] in "xX":
            valid = text[i + 2] in _HEX_DIGITS
            hex_digits = valid
        else:
            valid = text[i + 2] in "01"
        i += 2 if valid else 1
        start_of_block = valid
    else:
        i += 1
    i = _ch_digits(text, i, start_of_block, hex_digits)
    if i < n and text[i] == ".":
        i = _ch_digits(text, i + 1, True, hex_digits)
    if i + 1 < n and text[i] in ("pP" if hex_digits else "eE"):
        i += 1
        if i + 1 < n and text[i] in "+-":
            i += 1
        i = _ch_digits(text, i, True, False)
    return i


def _ch_fraction(text: str, i: int) -> int:
    n = len(text)
    i = _ch_digits(text, i + 1, True, False)
    if i + 1 < n and text[i] in "eE":
        i += 1
        if i + 1 < n and text[i] in "+-":
            i += 1
        i = _ch_digits(text, i, True, False)
    return i


def _scan_json(text: str, stop: int) -> list[_Region]:
    # Elasticsearch parses search bodies with Jackson, comments allowed.
    regions: list[_Region] = []
    n = len(text)
    i = 0
    while i < n and i < stop:
        c = text[i]
        if c == '"':
            end = _required(_quoted_end(text, i, '"', backslash=True, doubling=False), "JSON string")
            regions.append(_Region(i, end, "string", "json"))
            i = end
        elif c == "/" and text.startswith("/", i + 1):
            end = _line_comment_end(text, i)
            regions.append(_Region(i, end, "refuse", "a comment"))
            i = end
        elif c == "/" and text.startswith("*", i + 1):
            end = _block_comment_end(text, i, nested=False)
            regions.append(_Region(i, end, "refuse", "a comment"))
            i = end
        else:
            i += 1
    return regions


# --------------------------------------------------------------------------- substitution


def _substitute(output: str, state: _RenderState) -> str:
    if "\x00" in output:
        raise QueryValidationError("The rendered query contains a NUL character")
    matches = list(state.pattern.finditer(output))
    if not matches:
        _check_query_text_reads(output, state.dialect)
        return output
    # ``probe`` is the same query with a sentinel in place of every secret, for the secret
    # use check; it is built alongside and costs nothing when no secret is used.
    probe: list[str] = []
    secrets: dict[int, _Entry] = {}
    try:
        regions = _scan(output, state.dialect, matches[-1].end())
    except _Unsafe as exc:
        raise QueryValidationError(f"Parameters cannot be placed safely in a query with {exc}") from None
    starts = [region.start for region in regions]
    pieces = []
    last = 0
    for match in matches:
        index = int(match.group(1))
        if index >= len(state.entries):
            raise QueryValidationError("The rendered query contains an unknown placeholder")
        entry = state.entries[index]
        start, end = match.span()
        position = bisect.bisect_right(starts, start) - 1
        region = regions[position] if position >= 0 and start < regions[position].end else None
        if region is None:
            literal, shape = _bare_literal(entry, state.dialect)
            _check_neighbours(output, start, end, shape, entry.label)
            joined = literal.startswith("'") and state.dialect in _PG_FAMILY
            if joined and _after_string(output, regions, position, start):
                raise QueryValidationError(
                    f"{entry.label} would be joined to the string literal on the line before it; "
                    "put a comma or an operator between them"
                )
        elif region.kind == "string":
            literal = _in_string(entry, region, output, start)
        else:
            raise QueryValidationError(f"{entry.label} cannot be used inside {region.detail}")
        pieces.append(output[last:start])
        pieces.append(literal)
        probe.append(output[last:start])
        if entry.secret:
            secrets[index] = entry
            probe.append(_sentinel(state, index, literal, quoted=region is not None))
        else:
            probe.append(literal)
        last = end
    pieces.append(output[last:])
    if secrets:
        probe.append(output[last:])
        _check_secret_use("".join(probe), secrets, state)
    text = "".join(pieces)
    if not secrets:
        _check_query_text_reads(text, state.dialect)
    return text


def _sentinel(state: _RenderState, index: int, literal: str, *, quoted: bool) -> str:
    """What stands for secret ``index`` in the probe: the same kind of token as its literal
    (string content, or a number with the same sign and parentheses), so the probe parses
    exactly like the real query."""
    if quoted:
        return f"zq{state.nonce}s{index}z"
    digits = f"{state.sentinel_digits}{index:07d}"
    if literal.startswith("(-"):
        return f"(-{digits})"
    return f"-{digits}" if literal.startswith("-") else digits


def _after_string(output: str, regions: list[_Region], position: int, start: int) -> bool:
    """Would a '...' literal at ``start`` continue the string literal before it? PostgreSQL
    joins 'a' <newline> 'b' into one literal read in the first part's mode, so a standard
    literal placed after E'...' would be read with backslash escapes."""
    while position >= 0 and regions[position].detail == "a comment":
        position -= 1
    if position < 0:
        return False
    previous = regions[position]
    if previous.kind != "string" and not previous.detail.endswith("string literal"):
        return False
    return _PG_CONTINUATION_GAP.fullmatch(output, previous.end, start) is not None


def _in_string(entry: _Entry, region: _Region, output: str, start: int) -> str:
    backslashes = 0
    while start - backslashes - 1 > region.start and output[start - backslashes - 1] == "\\":
        backslashes += 1
    if region.detail != "standard" and backslashes % 2:
        raise QueryValidationError(f"{entry.label} cannot follow a backslash escape inside a string literal")
    content = _ESCAPES[region.detail](_quoted_content(entry))
    if region.detail == "standard" and not _ends_alike(content, backslashes):
        raise QueryValidationError(
            f"{entry.label} has a backslash before a quote or at its end, which would end the string "
            "elsewhere on a server with standard_conforming_strings off; send it without that backslash"
        )
    return content


def _ends_alike(content: str, backslashes: int) -> bool:
    """Would a standard-string literal holding ``content`` (after ``backslashes`` backslashes of
    the template) end at the same place if the server read backslash escapes? That is the case
    when no odd run of backslashes precedes a quote or the end of the value. PostgreSQL reads
    them when standard_conforming_strings is off (a server, database or role setting the
    query cannot see): '\\'' OR 1=1 --' would then be a string and a condition. The same rule
    as for MySQL and Redshift, whose values can be escaped for both readings; a standard string
    cannot write a backslash any other way, so the few values it cannot hold are refused."""
    run = backslashes
    for char in content:
        if char == "\\":
            run += 1
            continue
        if char == "'" and run % 2:
            return False
        run = 0
    return run % 2 == 0


# --------------------------------------------------------------------------- secret use
#
# The sandbox keeps a template from transforming a secret, but the database can do it too:
# md5('{{ secret.pg.password }}'), substr(...), reverse(...), '...' LIKE 'a%', '...' > 'm'.
# What comes back is a form the Redactor cannot recognise, or one bit per query of an oracle
# that reads the secret out. So where each secret lands in the rendered query is checked, and
# a secret is data that may only be
#
# * returned whole as a column of the query's own result (the Redactor replaces it there;
#   booleans and values shorter than MIN_OUTPUT_SECRET_CHARS would not be recognised), or
# * compared whole for equality: =, <>, !=, <=>, IS [NOT] DISTINCT FROM, [NOT] IN (...).
#   Equality tells whether a guess of the whole value is right, nothing about its parts.
#
# possibly through parentheses, an alias, or (PostgreSQL family) a cast to an integer or text
# type, which keeps the value (the Redactor also recognises a numeric secret as a number).
# Everything else is refused: function arguments, any other operator, LIKE/regex/ordering
# comparisons, LIMIT, CASE operands, VALUES lists, subqueries and CTEs (their output feeds
# other expressions), EXPLAIN and anything the parser cannot read. A query that uses a secret
# may not read query texts either (current_query(), pg_stat_activity, the processlist, query
# logs): that is the rendered query, secret included, as data that SQL can cut into pieces.
#
# The check parses a probe copy of the query in which every secret is a unique sentinel of the
# same kind (a word inside quotes, a number outside them): the tree is the real query's, and no
# secret value ever reaches the parser or its log messages.

_SQLGLOT_DIALECT = {
    Dialect.POSTGRES: "postgres",
    Dialect.INTERNAL: "postgres",
    Dialect.REDSHIFT: "redshift",
    Dialect.MYSQL: "mysql",
    Dialect.CLICKHOUSE: "clickhouse",
}
# Nodes that are a string or number constant (E'...' is a ByteString to sqlglot).
_CONSTANTS = (exp.Literal, exp.National, exp.RawString, exp.ByteString)
_EQUALITY = (exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.NullSafeNEQ)
_INTEGER_TYPES = frozenset({exp.DataType.Type.INT, exp.DataType.Type.BIGINT, exp.DataType.Type.SMALLINT})
# Casts that keep a value as it is: no length or precision (varchar(3) truncates, numeric(5,1)
# rounds), no lenient parsing (MySQL's CAST('12ab' AS SIGNED) is 12), no Redshift TEXT
# (varchar(256)). "char", name, dates, bytea, json... all transform.
_VALUE_KEEPING_CASTS = {
    Dialect.POSTGRES: _INTEGER_TYPES | {exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR},
    Dialect.INTERNAL: _INTEGER_TYPES | {exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR},
    Dialect.REDSHIFT: _INTEGER_TYPES,
}
# Where SQL reads the text of running or past queries: its own (with the secrets it uses) and
# other executions' (with their parameters and secrets), as data a query can cut into pieces.
# Matched by name in any schema: the default database of a connection may be the system one.
_QUERY_TEXT_FUNCTIONS = frozenset(
    {"current_query", "pg_stat_get_activity", "pg_stat_get_backend_activity", "pg_stat_statements"}
)
_QUERY_TEXT_RELATIONS = frozenset(
    {
        # PostgreSQL (pg_cursors and pg_prepared_statements: this session's own statements)
        "pg_stat_activity", "pg_stat_statements", "pg_cursors", "pg_prepared_statements",
        # MySQL/MariaDB
        "processlist", "general_log", "slow_log",
        # ClickHouse (system.*)
        "processes", "query_log", "query_thread_log", "query_views_log", "text_log", "session_log",
        "asynchronous_insert_log",
        # Redshift
        "stl_query", "stl_querytext", "stl_ddltext", "stl_utilitytext", "svl_statementtext",
        "stv_inflight", "stv_recents", "svl_qlog", "sys_query_history", "sys_query_text",
    }
)
_QUERY_TEXT_PREFIXES = ("events_statements", "events_transactions")  # performance_schema
_QUERY_TEXT_SCHEMAS = {Dialect.MYSQL: frozenset({"performance_schema", "sys"})}
# With a secret in the query, every Redshift system table and view is refused too.
_SECRET_QUERY_TEXT_PREFIXES = ("stl_", "stv_", "svl_", "sys_")
_ES_CLAUSES = frozenset(
    {
        "query", "post_filter", "bool", "must", "filter", "should", "must_not", "constant_score",
        "dis_max", "queries", "boosting", "positive", "negative", "nested",
    }
)
_ES_AGGREGATIONS = frozenset({"aggs", "aggregations"})


def _secret_refusal(label: str, problem: str) -> QueryValidationError:
    return QueryValidationError(
        f"{label} {problem}: a secret can only be returned whole as a result column or compared "
        "whole with =, <> or IN",
        details={"reason": "secret_use"},
    )


def _check_secret_use(probe: str, secrets: Mapping[int, _Entry], state: _RenderState) -> None:
    if state.dialect is Dialect.ELASTICSEARCH:
        _check_secret_use_json(probe, secrets, state)
    else:
        _check_secret_use_sql(probe, secrets, state)


def _sentinel_indexes(text: str, state: _RenderState) -> list[int]:
    return [int(match.group(1) or match.group(2)) for match in state.sentinel_pattern.finditer(text)]


def _first_label(secrets: Mapping[int, _Entry]) -> str:
    return next(iter(secrets.values())).label


def _check_secret_use_sql(probe: str, secrets: Mapping[int, _Entry], state: _RenderState) -> None:
    root = _parse_probe(probe, state.dialect)
    if root is None:
        raise _secret_refusal(_first_label(secrets), "is used in a query the secret check cannot read")
    outputs = {id(node) for node in _result_columns(root)}
    seen: set[int] = set()
    aliases: set[str] = set()
    for node in root.walk():
        for value in node.args.values():
            if not isinstance(value, str):
                continue
            for index in _sentinel_indexes(value, state):
                entry = secrets.get(index)
                if entry is None or index in seen:  # a sentinel we did not place: fail closed
                    raise _secret_refusal(_first_label(secrets), "could not be located in the query")
                seen.add(index)
                if not isinstance(node, _CONSTANTS):
                    raise _secret_refusal(entry.label, "cannot be used as a name")
                problem, alias = _sql_context_problem(node, entry, outputs, state.dialect)
                if problem is not None:
                    raise _secret_refusal(entry.label, problem)
                if alias:
                    aliases.add(alias)
    if seen != set(secrets):
        raise _secret_refusal(_first_label(secrets), "could not be located in the query")
    _refuse_alias_references(root, aliases, _first_label(secrets))
    source = _query_text_source(root, state.dialect, with_secrets=True)
    if source is not None:
        raise _secret_refusal(_first_label(secrets), f"is used in a query that reads query texts ({source})")


def _refuse_alias_references(root: exp.Expression, aliases: set[str], label: str) -> None:
    """A secret output as ``'...' AS p`` must not be read back through ``p``: MySQL lets HAVING
    and ORDER BY use select aliases (``HAVING p LIKE 'a%'`` is an oracle), ClickHouse and
    Redshift let any expression use them (``reverse(p)``)."""
    if not aliases:
        return
    for column in root.find_all(exp.Column):
        if column.name.lower() in aliases:
            raise _secret_refusal(label, f"is output as {column.name!r}, which the query uses again")


_PARSING = ContextVar("analytics_template_parsing", default=False)


class _QuietWhileParsing(logging.Filter):
    """sqlglot logs what it cannot parse, query text included: not during our parses."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _PARSING.get()


_QUIET = _QuietWhileParsing()


def _parse_probe(probe: str, dialect: Dialect) -> exp.Expression | None:
    logger = logging.getLogger("sqlglot")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)
    token = _PARSING.set(True)
    try:
        statements = [s for s in sqlglot.parse(probe, read=_SQLGLOT_DIALECT[dialect]) if s is not None]
    except Exception:  # noqa: BLE001 - whatever the parser throws, the query is not readable
        return None
    finally:
        _PARSING.reset(token)
    statements = [s for s in statements if not isinstance(s, exp.Semicolon)]
    if len(statements) != 1 or isinstance(statements[0], exp.Command):
        return None  # EXPLAIN and other statements sqlglot keeps as text
    return statements[0]


def _result_columns(root: exp.Expression) -> list[exp.Expression]:
    """The select-list items whose values are the query's result as they are: those of the
    outermost SELECT. Not the branches of a UNION/INTERSECT/EXCEPT: the other branches decide
    the column's type, and SELECT '<secret>' UNION SELECT NULL::bytea returns the secret as
    bytes (base64 in the response), '"char"' as its first character."""
    if isinstance(root, exp.Subquery):
        return _result_columns(root.this)
    if isinstance(root, exp.Select):
        return list(root.expressions)
    return []


def _sql_context_problem(
    node: exp.Expression, entry: _Entry, outputs: set[int], dialect: Dialect
) -> tuple[str | None, str | None]:
    """(why the secret cannot be where it is or None, the alias it is output under or None)."""
    node = _unwrap_own_sign(node, entry)
    while True:
        parent = node.parent
        if isinstance(parent, exp.Paren):
            node = parent
        elif isinstance(parent, exp.Cast) and parent.this is node and _keeps_value(parent, dialect):
            node = parent
        else:
            break
    parent = node.parent
    if isinstance(parent, _EQUALITY):
        return None, None
    if isinstance(parent, exp.In) and (parent.this is node or any(item is node for item in parent.expressions)):
        return None, None
    alias = None
    if isinstance(parent, exp.Alias) and parent.this is node:
        node, alias = parent, parent.alias.lower()
    if id(node) in outputs:
        if entry.output_ok:
            return None, alias
        return "is a boolean or too short to be redacted from a result, so it cannot be output", None
    if isinstance(parent, (exp.Func, exp.Binary, exp.Unary, exp.Cast)):
        return "cannot be passed to a function, operator or cast", None
    return "cannot be used here", None


def _unwrap_own_sign(node: exp.Expression, entry: _Entry) -> exp.Expression:
    """A negative number is rendered as (-n): that sign and parenthesis are the value's own."""
    value = entry.value
    negative = isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) and value < 0
    if negative and isinstance(node.parent, exp.Neg) and isinstance(node.parent.parent, exp.Paren):
        return node.parent.parent
    return node


def _keeps_value(cast: exp.Cast, dialect: Dialect) -> bool:
    to = cast.args.get("to")
    if not isinstance(to, exp.DataType) or to.expressions:
        return False
    return to.this in _VALUE_KEEPING_CASTS.get(dialect, frozenset())


# U&"pg\005fstat\005factivity" [UESCAPE '!']: sqlglot cannot parse these, PostgreSQL reads a name.
_PG_UNICODE_IDENTIFIER = re.compile(r"""[Uu]&"((?:[^"]|"")*)"(?:\s*[Uu][Ee][Ss][Cc][Aa][Pp][Ee]\s*'([^'])')?""")


def _decoded_identifier(match: re.Match[str]) -> str:
    escape = re.escape(match.group(2) or "\\")
    body = match.group(1).replace('""', '"')

    def char(code: re.Match[str]) -> str:
        if code.group(1) is None and code.group(2) is None:
            return code.group(0)[1:]  # a doubled escape character
        try:
            return chr(int(code.group(1) or code.group(2), 16))
        except ValueError:
            return "?"

    name = re.sub(f"{escape}(?:([0-9A-Fa-f]{{4}})|\\+([0-9A-Fa-f]{{6}})|{escape})", char, body)
    return '"' + name.replace('"', '""') + '"'


def _query_text_source(root: exp.Expression, dialect: Dialect, *, with_secrets: bool) -> str | None:
    """The relation or function through which the query reads query texts, or None."""
    schemas = _QUERY_TEXT_SCHEMAS.get(dialect, frozenset())
    prefixes = _QUERY_TEXT_PREFIXES + (_SECRET_QUERY_TEXT_PREFIXES if with_secrets else ())
    for node in root.walk():
        if isinstance(node, exp.Table):
            name, schema = node.name.lower(), node.db.lower()
            if name in _QUERY_TEXT_RELATIONS or schema in schemas or name.startswith(prefixes):
                return f"{schema}.{name}" if schema else name
        elif isinstance(node, exp.Func):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            if isinstance(name, str) and name.lower() in _QUERY_TEXT_FUNCTIONS:
                return name.lower()
    return None


def _check_query_text_reads(text: str, dialect: Dialect) -> None:
    """Every SQL query, secrets or not: reading the texts of queries would hand out other
    executions' parameters and secrets. (What does not parse is left to validate_query, which
    refuses it.)"""
    if dialect is Dialect.ELASTICSEARCH:
        return
    if dialect in _PG_FAMILY:
        text = _PG_UNICODE_IDENTIFIER.sub(_decoded_identifier, text)
    root = _parse_probe(text, dialect)
    source = None if root is None else _query_text_source(root, dialect, with_secrets=False)
    if source is not None:
        raise QueryValidationError(
            f"The query reads the text of running or past queries ({source}), which holds other "
            "executions' parameters and secrets",
            details={"reason": "query_text"},
        )


def _check_secret_use_json(probe: str, secrets: Mapping[int, _Entry], state: _RenderState) -> None:
    """Elasticsearch: a secret may only be the value of a ``term`` query (or an item of a
    ``terms`` list) -- exact matches. Prefix, wildcard, regexp, fuzzy, range and full-text
    queries, and every other place, are oracles or transforms of their input."""
    label = _first_label(secrets)
    try:
        body = json.loads(probe)
    except (ValueError, RecursionError):
        raise _secret_refusal(label, "is used in a search body the secret check cannot read") from None
    seen: list[int] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(body, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if _sentinel_indexes(key, state):
                    raise _secret_refusal(label, "cannot be used as a field name")
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, position)) for position, item in enumerate(value))
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            indexes = _sentinel_indexes(str(value), state)
            if indexes and not (isinstance(value, str) and _es_exact_match(path)):
                raise _secret_refusal(secrets.get(indexes[0], _Entry(None, label)).label, "cannot be used here")
            seen.extend(indexes)
    if sorted(seen) != sorted(secrets):
        raise _secret_refusal(label, "could not be located in the search body")


def _es_exact_match(path: tuple[Any, ...]) -> bool:
    """``term: {field: S}``, ``term: {field: {value: S}}`` or ``terms: {field: [S, ...]}``,
    inside query structure only (so that "term" is a query, not a field or an option)."""
    if len(path) >= 2 and path[-2] == "term" and isinstance(path[-1], str):
        head = path[:-2]
    elif len(path) >= 3 and path[-3] == "term" and path[-1] == "value":
        head = path[:-3]
    elif len(path) >= 3 and path[-3] == "terms" and isinstance(path[-2], str) and isinstance(path[-1], int):
        head = path[:-3]
    else:
        return False
    for position, key in enumerate(head):
        aggregation_name = position > 0 and head[position - 1] in _ES_AGGREGATIONS
        if not (isinstance(key, int) or key in _ES_CLAUSES or key in _ES_AGGREGATIONS or aggregation_name):
            return False
    return True
