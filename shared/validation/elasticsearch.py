"""Validation of an Elasticsearch search body (pure functions, no I/O).

The rendered text must be exactly one JSON object (duplicate keys, NaN and arrays refused) whose
top-level keys are allow-listed search options. The body is then walked with enough knowledge of
the search DSL to tell a DSL keyword from a user-chosen name:

- a *key* is refused when it is a keyword Elasticsearch interprets as a script
  (``script``, ``script_fields``, ``runtime_mappings``, ``scripted_metric``, ``bucket_script``,
  ``bucket_selector``, ``_script`` sort, ``script_score``, ...), or as a read of another index
  (``index``/``_index`` in a terms lookup, a more_like_this/pinned item or a percolate query,
  ``indexed_shape``, ``pit``, ``indices_boost``);
- user-chosen names are NOT keywords and are never refused: field names directly under leaf
  queries (``{"term": {"script": "x"}}`` searches a field called "script") and decay functions,
  aggregation names, named filters (``filters`` / ``adjacency_matrix``), composite source names,
  suggester names, sort fields, highlight fields and bucket ``order`` keys;
- values are data and are never refused (``"runtime_mappings"`` as a search string is fine), nor
  are documents Elasticsearch only indexes or echoes (percolated documents, artificial
  more_like_this documents, aggregation ``meta``).

Everything not recognised as a name position is treated as a keyword position, so a new DSL
feature is checked rather than skipped (fail closed). Query DSL reference:
https://www.elastic.co/guide/en/elasticsearch/reference/current/query-dsl.html
"""
from __future__ import annotations

import json
from typing import Any

from shared.errors import QueryValidationError

__all__ = ["validate_elasticsearch"]

# Top-level search options that only shape the search of the secret's own index pattern.
# Not allowed: pit (a point in time can be opened on another index), indices_boost (names other
# indices), script_fields / runtime_mappings (scripts), stats, ext, retriever / rank (a
# composable framework whose retrievers call models or read rulesets from system indices, and
# grows new kinds every release), profile (internal shard and node details), slice (only
# meaningful with pit/scroll). knn is a plain vector search of the same index (its
# query_vector_builder, which calls a model, is refused below); suggest is walked like the rest
# (the phrase suggester's collate, a template script, is refused with the scripts).
ALLOWED_TOP_LEVEL_KEYS = frozenset({
    "query", "aggs", "aggregations", "size", "from", "sort", "_source", "fields",
    "track_total_hits", "search_after", "post_filter", "highlight", "collapse", "timeout",
    "min_score", "docvalue_fields", "stored_fields", "explain", "version",
    "seq_no_primary_term", "track_scores", "terminate_after", "rescore", "knn", "suggest",
})

# Keys that make Elasticsearch run a script, wherever they are a keyword.
SCRIPT_KEYS = frozenset({
    "script",  # script query, value scripts of aggregations, intervals filter, moving_fn, ...
    "script_fields",
    "runtime_mappings",
    "scripted_metric",
    "bucket_script",
    "bucket_selector",
    "_script",  # script-based sort
    "script_score",  # query, and function_score's function
    "script_heuristic",  # significant_terms
    "minimum_should_match_script",  # terms_set
    "collate",  # phrase suggester: a mustache template script run as a query per suggestion
})
# Keys that read another index (or open a point in time on one).
OTHER_INDEX_KEYS = frozenset({
    "index",  # terms lookup, percolate, indexed_shape
    "_index",  # more_like_this like/unlike items, pinned docs
    "indexed_shape",  # geo_shape / shape with a pre-indexed shape
    "pit",
    "indices_boost",
})
# Query types refused outright: wrapper hides a base64-encoded query from this walk; rule
# queries read a ruleset from another (system) index. Refused in EVERY keyword position, not
# only where this walk knows a query is expected: ES takes queries in places the walk may not
# model (named filters, a future option), and none of these words is a keyword elsewhere.
BLOCKED_QUERY_TYPES = frozenset({"wrapper", "rule", "rule_query"})
# Other keywords refused anywhere: they call a model at search time (query_vector_builder, the
# inference pipeline aggregation, semantic / sparse_vector / text_expansion inference, the
# learning_to_rank rescorer, the reranking retriever).
OTHER_BLOCKED_KEYS = frozenset({
    "query_vector_builder", "inference", "inference_id", "model_id", "semantic",
    "learning_to_rank", "text_similarity_reranker",
})

# Leaf queries whose body is {<field name>: <value or options>}: the first level of keys are
# field names chosen by the user. Only in query position (the terms/range *aggregations* take a
# script parameter at that level and are walked as keywords).
FIELD_KEYED_QUERIES = frozenset({
    "term", "terms", "terms_set", "match", "match_phrase", "match_phrase_prefix",
    "match_bool_prefix", "prefix", "wildcard", "regexp", "fuzzy", "range", "span_term",
    "intervals", "geo_distance", "geo_bounding_box", "geo_polygon", "geo_grid", "geo_shape",
    "shape", "common", "text_expansion", "weighted_tokens",
})
# Keys whose value is a query (or a list of queries).
QUERY_VALUED_KEYS = frozenset({
    "query", "post_filter", "filter", "must", "should", "must_not", "positive", "negative",
    "queries", "highlight_query", "rescore_query", "organic", "background_filter",
})
# Keys whose value is {<user's name>: <query>} or a list of queries: the filters and
# adjacency_matrix aggregations.
NAMED_QUERIES_KEYS = frozenset({"filters"})
# Keys whose value is {<user's name>: <keyword options>} (or a list of those): composite
# aggregation sources, and decay functions ({"gauss": {"<field>": {"origin": ...}}}).
NAMED_OPTIONS_KEYS = frozenset({"sources", "gauss", "exp", "linear"})
# Keys whose value is data Elasticsearch never interprets as DSL: documents to percolate, an
# artificial more_like_this document and its per-field analyzers, an aggregation's free-form
# metadata, the variables of a pipeline aggregation's buckets_path. Not walked.
DATA_KEYS = frozenset({"document", "documents", "doc", "per_field_analyzer", "meta",
                       "buckets_path"})

_MAX_DEPTH = 100


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _refuse(message: str, reason: str, path: str | None = None,
            position: dict[str, int] | None = None) -> QueryValidationError:
    details: dict[str, Any] = {"reason": reason}
    if path:
        details["path"] = path
    if position is not None:
        details["position"] = position
    return QueryValidationError(message, details=details)


def _short(key: str) -> str:
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in key)
    return cleaned if len(cleaned) <= 64 else cleaned[:61] + "..."


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text, object_pairs_hook=_pairs_without_duplicates,
                          parse_constant=_no_constants)
    except _DuplicateKeyError as error:
        raise _refuse(f'Duplicate key "{_short(error.key)}" in the search body',
                      "duplicate_key") from error
    except json.JSONDecodeError as error:
        raise _refuse("Query must be a single JSON object (a search body)", "not_json",
                      position={"line": error.lineno, "col": error.colno}) from error
    except (ValueError, RecursionError) as error:
        raise _refuse("Query must be a single JSON object (a search body)",
                      "not_json") from error
    if not isinstance(body, dict):
        raise _refuse("Query must be a single JSON object (a search body)", "not_object")
    return body


def validate_elasticsearch(text: str) -> None:
    """Raise QueryValidationError unless ``text`` is one safe JSON search body."""
    body = _parse(text)
    for key, value in body.items():
        path = key
        if key not in ALLOWED_TOP_LEVEL_KEYS:
            _check_key(key, path)  # a more specific message for script/pit/indices_boost
            raise _refuse(f'Search option "{_short(key)}" is not allowed', "blocked_key",
                          path=path)
        _walk_by_key(key, value, path, 1)


def _check_key(key: str, path: str) -> None:
    """Refuse a key that is a DSL keyword Elasticsearch would act on."""
    if key in SCRIPT_KEYS:
        raise _refuse(f'Scripts are not allowed: "{_short(key)}"', "script", path=path)
    if key in OTHER_INDEX_KEYS:
        raise _refuse(f'Reading another index is not allowed: "{_short(key)}"', "other_index",
                      path=path)
    if key in BLOCKED_QUERY_TYPES:
        raise _refuse(f'Query type "{_short(key)}" is not allowed', "blocked_query", path=path)
    if key in OTHER_BLOCKED_KEYS:
        raise _refuse(f'"{_short(key)}" is not allowed', "blocked_key", path=path)


def _depth_guard(depth: int, path: str) -> None:
    if depth > _MAX_DEPTH:
        raise _refuse("Search body is nested too deeply", "too_deep", path=path)


def _walk_by_key(key: str, value: Any, path: str, depth: int) -> None:
    """Walk ``value`` knowing the keyword ``key`` it belongs to."""
    if key in DATA_KEYS:
        return
    if key in QUERY_VALUED_KEYS:
        _walk_query(value, path, depth)
    elif key in NAMED_QUERIES_KEYS:
        _walk_named_queries(value, path, depth)
    elif key in NAMED_OPTIONS_KEYS and isinstance(value, (dict, list)):
        _walk_named(value, path, depth)
    elif key == "suggest" and isinstance(value, dict):
        _walk_named(value, path, depth)  # {"text": ..., "<suggester name>": {options}}
    elif key in ("aggs", "aggregations"):
        _walk_aggs(value, path, depth)
    elif key == "sort":
        _walk_sort(value, path, depth)
    elif key == "highlight":
        _walk_highlight(value, path, depth)
    elif key == "order" and isinstance(value, (dict, list)):
        _walk_named(value, path, depth)  # bucket order: {"_count": "desc", "<sub agg>": "asc"}
    else:
        _walk_keywords(value, path, depth)


def _walk_keywords(node: Any, path: str, depth: int) -> None:
    """A position where every key is a DSL keyword."""
    _depth_guard(depth, path)
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}"
            _check_key(key, child)
            _walk_by_key(key, value, child, depth + 1)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _walk_keywords(item, f"{path}[{index}]", depth + 1)


def _walk_query(node: Any, path: str, depth: int) -> None:
    """A query container {<query type>: <body>}, or a list of them."""
    _depth_guard(depth, path)
    if isinstance(node, list):
        for index, item in enumerate(node):
            _walk_query(item, f"{path}[{index}]", depth + 1)
        return
    if not isinstance(node, dict):
        return  # e.g. "query": "text" inside a match query's options
    for query_type, body in node.items():
        child = f"{path}.{query_type}"
        _check_key(query_type, child)
        if query_type in FIELD_KEYED_QUERIES and isinstance(body, dict):
            for field, options in body.items():
                # `field` is a user's field name (it may well be called "script"); its options
                # are keywords again (a terms lookup's "index", a shape's "indexed_shape").
                _walk_keywords(options, f"{child}.{field}", depth + 2)
        else:
            _walk_by_key(query_type, body, child, depth + 1)


def _walk_aggs(node: Any, path: str, depth: int) -> None:
    """{<aggregation name>: <aggregation body>}: the names are the user's."""
    _depth_guard(depth, path)
    if not isinstance(node, dict):
        _walk_keywords(node, path, depth)
        return
    for name, body in node.items():
        _walk_aggregation(body, f"{path}.{name}", depth + 1)


def _walk_aggregation(node: Any, path: str, depth: int) -> None:
    """{<aggregation type>: <options>, "aggs": {...}, "meta": {...}}.

    The type's options are keywords, except that the "filter" aggregation's body is a query (so
    its field names are the user's) and the "filters" aggregation's body holds a "filters"
    option of named queries: the type key must not be mistaken for that option.
    """
    _depth_guard(depth, path)
    if not isinstance(node, dict):
        _walk_keywords(node, path, depth)
        return
    for key, value in node.items():
        child = f"{path}.{key}"
        _check_key(key, child)
        if key == "filter":
            _walk_query(value, child, depth + 1)
        elif key in ("aggs", "aggregations") or key in DATA_KEYS:
            _walk_by_key(key, value, child, depth + 1)
        else:
            _walk_keywords(value, child, depth + 1)


def _walk_named_queries(node: Any, path: str, depth: int) -> None:
    """{<user's filter name>: <query>} or [<query>, ...] (filters, adjacency_matrix)."""
    _depth_guard(depth, path)
    if isinstance(node, dict):
        for name, query in node.items():
            _walk_query(query, f"{path}.{name}", depth + 1)
    else:
        _walk_query(node, path, depth + 1)


def _walk_named(node: Any, path: str, depth: int) -> None:
    """{<user's name>: <options>} or a list of those: names unchecked, options are keywords."""
    _depth_guard(depth, path)
    items = node if isinstance(node, list) else [node]
    for index, item in enumerate(items):
        if isinstance(item, dict):
            for name, options in item.items():
                _walk_keywords(options, f"{path}.{name}", depth + 1)
        else:
            _walk_keywords(item, f"{path}[{index}]", depth + 1)


def _walk_sort(node: Any, path: str, depth: int) -> None:
    """"field", {"field": "asc"}, {"field": {options}}, lists of those; "_script" refused."""
    _depth_guard(depth, path)
    if isinstance(node, list):
        for index, item in enumerate(node):
            _walk_sort(item, f"{path}[{index}]", depth + 1)
        return
    if isinstance(node, dict):
        for field, options in node.items():
            child = f"{path}.{field}"
            if field == "_script":  # any other key is a field name (even "script")
                _check_key(field, child)
            _walk_keywords(options, child, depth + 1)


def _walk_highlight(node: Any, path: str, depth: int) -> None:
    """Highlight options; the keys of "fields" are field names."""
    _depth_guard(depth, path)
    if not isinstance(node, dict):
        _walk_keywords(node, path, depth)
        return
    for key, value in node.items():
        child = f"{path}.{key}"
        _check_key(key, child)
        if key == "fields":
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    for field, options in item.items():
                        _walk_keywords(options, f"{child}[{index}].{field}", depth + 2)
                else:
                    _walk_keywords(item, f"{child}[{index}]", depth + 2)
        else:
            _walk_by_key(key, value, child, depth + 1)
