"""Validation of Elasticsearch search bodies: the shared corpora, then our own cases."""
from __future__ import annotations

import json

import pytest

from shared.dialects import Dialect
from shared.errors import QueryValidationError
from shared.validation import validate_query
from tests.support.corpus import corpus_params


def refused(body: str) -> QueryValidationError:
    with pytest.raises(QueryValidationError) as caught:
        validate_query(body, Dialect.ELASTICSEARCH)
    assert caught.value.code == "QueryValidationError"
    assert "reason" in caught.value.details
    return caught.value


@pytest.mark.parametrize("body, entry", corpus_params("public_blocked_elasticsearch"))
def test_corpus_blocked(body, entry):
    refused(body)


@pytest.mark.parametrize("body, entry", corpus_params("public_allowed_elasticsearch"))
def test_corpus_allowed(body, entry):
    validate_query(body, Dialect.ELASTICSEARCH)


SCRIPT = {"source": "1"}

BLOCKED = [
    # scripts at any depth
    ({"query": {"bool": {"filter": [{"script": {"script": SCRIPT}}]}}}, "script"),
    ({"query": {"bool": {"must": {"script": {"script": SCRIPT}}}}}, "script"),
    ({"post_filter": {"script": {"script": SCRIPT}}}, "script"),
    ({"query": {"function_score": {"query": {"match_all": {}},
                                   "script_score": {"script": SCRIPT}}}}, "script"),
    ({"query": {"function_score": {"functions": [{"filter": {"match_all": {}}},
                                                 {"script_score": {"script": SCRIPT}}]}}},
     "script"),
    ({"query": {"script_score": {"query": {"match_all": {}}, "script": SCRIPT}}}, "script"),
    ({"runtime_mappings": {"x": {"type": "long", "script": "emit(1)"}}}, "script"),
    ({"aggs": {"m": {"scripted_metric": {"map_script": "1"}}}}, "script"),
    ({"aggs": {"h": {"histogram": {"field": "a", "interval": 1},
                     "aggs": {"s": {"bucket_selector": {"buckets_path": {}, "script": "1"}}}}}},
     "script"),
    ({"aggs": {"t": {"terms": {"script": {"source": "doc['a'].value"}}}}}, "script"),
    ({"aggs": {"r": {"range": {"field": "a", "script": "_value", "ranges": [{"to": 1}]}}}},
     "script"),
    ({"aggs": {"w": {"weighted_avg": {"value": {"script": "1"}, "weight": {"field": "w"}}}}},
     "script"),
    ({"aggs": {"c": {"composite": {"sources": [{"s": {"terms": {"script": "1"}}}]}}}},
     "script"),
    ({"aggs": {"f": {"filter": {"script": {"script": SCRIPT}}}}}, "script"),
    ({"aggs": {"f": {"filters": {"filters": {"a": {"script": {"script": SCRIPT}}}}}}},
     "script"),
    ({"aggs": {"sig": {"significant_terms": {"field": "a",
                                            "script_heuristic": {"script": SCRIPT}}}}},
     "script"),
    ({"aggs": {"d": {"date_histogram": {"field": "ts", "calendar_interval": "day"},
                     "aggs": {"mv": {"moving_fn": {"buckets_path": "_count", "window": 5,
                                                   "script": "MovingFunctions.max(values)"}}}}}},
     "script"),
    ({"aggs": {"top": {"top_hits": {"script_fields": {"x": {"script": SCRIPT}}}}}}, "script"),
    ({"aggs": {"top": {"top_hits": {"sort": [{"_script": {"script": SCRIPT,
                                                         "type": "number"}}]}}}}, "script"),
    ({"query": {"nested": {"path": "c", "query": {"match_all": {}},
                           "inner_hits": {"script_fields": {"y": {"script": SCRIPT}}}}}},
     "script"),
    ({"collapse": {"field": "u", "inner_hits": {"name": "x", "sort": [
        {"_script": {"script": SCRIPT, "type": "number"}}]}}}, "script"),
    ({"query": {"terms_set": {"tags": {"terms": ["a"],
                                       "minimum_should_match_script": SCRIPT}}}}, "script"),
    ({"query": {"has_child": {"type": "c", "query": {"script": {"script": SCRIPT}}}}},
     "script"),
    ({"query": {"dis_max": {"queries": [{"script": {"script": SCRIPT}}]}}}, "script"),
    ({"query": {"constant_score": {"filter": {"script": {"script": SCRIPT}}}}}, "script"),
    ({"query": {"boosting": {"positive": {"match_all": {}},
                             "negative": {"script": {"script": SCRIPT}},
                             "negative_boost": 0.5}}}, "script"),
    ({"highlight": {"fields": {"a": {"highlight_query": {"script": {"script": SCRIPT}}}}}},
     "script"),
    ({"rescore": {"query": {"rescore_query": {"script_score": {"script": SCRIPT}}}}},
     "script"),
    ({"sort": [{"_script": {"type": "number", "script": SCRIPT}}]}, "script"),
    ({"script_fields": {}}, "script"),
    # other indices
    ({"query": {"pinned": {"docs": [{"_index": "other", "_id": "1"}],
                           "organic": {"match_all": {}}}}}, "other_index"),
    ({"query": {"shape": {"geometry": {"indexed_shape": {"index": "other", "id": "1"}}}}},
     "other_index"),
    ({"query": {"more_like_this": {"fields": ["t"], "like": "x",
                                   "unlike": [{"_index": "o", "_id": "1"}]}}}, "other_index"),
    ({"query": {"bool": {"filter": {"terms": {"user": {"index": "users", "id": "1",
                                                        "path": "u"}}}}}}, "other_index"),
    ({"indices_boost": [{"other-index": 2}]}, "other_index"),
    # options that are not plain search options
    ({"suggest": {"s": {"text": "x", "term": {"field": "t"}}}}, "blocked_key"),
    ({"stats": ["group"]}, "blocked_key"),
    ({"ext": {}}, "blocked_key"),
    ({"knn": {"field": "v", "query_vector": [1], "k": 1}}, "blocked_key"),
    ({"profile": True}, "blocked_key"),
    ({"query": {"wrapper": {"query": "eyJtYXRjaF9hbGwiOnt9fQ=="}}}, "blocked_query"),
    ({"query": {"knn": {"field": "v", "query_vector_builder": {"text_embedding": {}}}}},
     "blocked_key"),
]


@pytest.mark.parametrize("body, reason", BLOCKED, ids=lambda v: json.dumps(v)[:60]
                         if isinstance(v, dict) else str(v))
def test_blocked(body, reason):
    error = refused(json.dumps(body))
    assert error.details["reason"] == reason, error.details


@pytest.mark.parametrize("text, reason", [
    ('{"query": {"match_all": {}}, "query": {"script": {"script": "1"}}}', "duplicate_key"),
    ('{"query": {"bool": {"filter": [], "filter": [{"script": {}}]}}}', "duplicate_key"),
    ('{"query": {"match_all": {}}} {"size": 1}', "not_json"),
    ('{"size": NaN}', "not_json"),
    ('"just a string"', "not_object"),
    ("null", "not_object"),
    ("", "empty"),
    ("GET /other-index/_search", "not_json"),
    ("{'query': {}}", "not_json"),
    ('{"query": ' * 150 + "{}" + "}" * 150, "too_deep"),
])
def test_blocked_text(text, reason):
    assert refused(text).details["reason"] == reason


ALLOWED = [
    {},
    {"query": {"match": {"script": "hello"}}},
    {"query": {"match": {"script": {"query": "hello", "operator": "and"}}}},
    {"query": {"range": {"script": {"gte": 1}}}},
    {"query": {"term": {"_index": "logs-2024"}}},
    {"query": {"terms": {"runtime_mappings": ["a", "b"]}}},
    {"aggs": {"script": {"terms": {"field": "script"}}}},
    {"aggs": {"index": {"terms": {"field": "_index"}}}},
    {"aggs": {"x": {"terms": {"field": "a", "order": {"index": "asc"}},
                    "aggs": {"index": {"max": {"field": "n"}}}}}},
    {"aggs": {"x": {"terms": {"field": "a", "order": [{"_count": "desc"}, {"_key": "asc"}]}}}},
    {"sort": [{"script": "asc"}, "_score", {"ts": {"order": "desc", "unmapped_type": "date"}}]},
    {"sort": "ts"},
    {"_source": ["a", "b"], "query": {"match_all": {}}},
    {"_source": {"includes": ["a"], "excludes": ["b"]}},
    {"highlight": {"fields": {"script": {}}}, "query": {"match": {"script": "x"}}},
    {"highlight": {"fields": [{"script": {"type": "plain"}}]}},
    {"query": {"bool": {"must": [{"match": {"title": "x"}}],
                        "filter": [{"range": {"ts": {"gte": "now-1d"}}}],
                        "must_not": {"term": {"status": "deleted"}}}}},
    {"aggs": {"by_day": {"date_histogram": {"field": "ts", "calendar_interval": "day"},
                         "aggs": {"total": {"sum": {"field": "amount"}}}}}},
    {"query": {"query_string": {"query": "script:* AND runtime_mappings"}}},
    {"collapse": {"field": "user"}, "search_after": [1, "x"], "sort": ["_doc"]},
    {"query": {"nested": {"path": "c", "query": {"match": {"c.text": "x"}},
                          "inner_hits": {}}}},
    {"aggs": {"b": {"terms": {"field": "x", "order": {"_count": "desc"}},
                    "aggs": {"s": {"bucket_sort": {"sort": [{"_count": {"order": "desc"}}],
                                                   "size": 3}}}}}},
    {"query": {"more_like_this": {"fields": ["t"], "like": "some text", "min_term_freq": 1}}},
    {"query": {"function_score": {"query": {"match_all": {}}, "functions": [
        {"filter": {"term": {"a": 1}}, "weight": 2},
        {"gauss": {"ts": {"origin": "now", "scale": "1d"}}}]}}},
    {"query": {"percolate": {"field": "q", "document": {"message": "x"}}}},
    {"size": 0, "track_total_hits": 1000, "timeout": "5s", "min_score": 0.5},
    {"query": {"geo_shape": {"location": {"shape": {"type": "point", "coordinates": [1, 2]},
                                          "relation": "within"}}}},
    {"fields": [{"field": "ts", "format": "epoch_millis"}], "docvalue_fields": ["a"]},
    {"query": {"match_phrase": {"message": "script_fields runtime_mappings pit"}}},
    {"aggs": {"f": {"filters": {"filters": {"errors": {"match": {"body": "error"}}}}}}},
    {"query": {"exists": {"field": "script"}}},
    {"query": {"intervals": {"script": {"match": {"query": "a b", "max_gaps": 1}}}}},
    {"rescore": {"window_size": 10, "query": {"rescore_query": {"match": {"t": "x"}}}}},
    {"explain": True, "version": True, "seq_no_primary_term": True, "stored_fields": ["a"]},
]


@pytest.mark.parametrize("body", ALLOWED, ids=lambda v: json.dumps(v)[:60])
def test_allowed(body):
    validate_query(json.dumps(body), Dialect.ELASTICSEARCH)


def test_messages_name_the_key_and_path():
    error = refused('{"query": {"bool": {"filter": [{"script": {"script": "1"}}]}}}')
    assert error.message == 'Scripts are not allowed: "script"'
    assert error.details["path"] == "query.bool.filter[0].script"
    error = refused('{"pit": {"id": "x"}}')
    assert error.details["reason"] == "other_index"
