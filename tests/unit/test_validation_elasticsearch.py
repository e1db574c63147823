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
    ({"suggest": {"s": {"text": "x", "phrase": {"field": "t", "collate": {
        "query": {"source": {"match": {"t": "{{suggestion}}"}}}}}}}}, "script"),
    ({"stats": ["group"]}, "blocked_key"),
    ({"ext": {}}, "blocked_key"),
    ({"knn": {"field": "v", "query_vector_builder": {"text_embedding": {"model_id": "m"}},
              "k": 1}}, "blocked_key"),
    ({"retriever": {"standard": {"query": {"match_all": {}}}}}, "blocked_key"),
    ({"rank": {"rrf": {}}}, "blocked_key"),
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


# --------------------------------------------------------------------------------------------
# Own red-team cases, round 2: siblings of the corpus lines (scripts in every position the DSL
# takes one, other indices, query-valued options the walk must recognise) and realistic search
# bodies that must not be refused (user names that look like keywords, data that is never DSL).
# --------------------------------------------------------------------------------------------

WRAPPED = {"wrapper": {"query": "eyJtYXRjaF9hbGwiOnt9fQ=="}}

OWN_BLOCKED = [
    # wrapper / script inside queries the walk only knows as named filters (were accepted)
    ({"aggs": {"f": {"filters": {"filters": {"a": WRAPPED}}}}}, "blocked_query"),
    ({"aggs": {"f": {"filters": {"filters": [WRAPPED]}}}}, "blocked_query"),
    ({"aggs": {"m": {"adjacency_matrix": {"filters": {"a": WRAPPED}}}}}, "blocked_query"),
    ({"aggs": {"m": {"adjacency_matrix": {"filters": {"a": {"script": {"script": SCRIPT}}}}}}},
     "script"),
    ({"aggs": {"f": {"filter": WRAPPED}}}, "blocked_query"),
    ({"post_filter": WRAPPED}, "blocked_query"),
    ({"query": {"bool": {"must": [WRAPPED]}}}, "blocked_query"),
    ({"query": {"nested": {"path": "c", "query": WRAPPED}}}, "blocked_query"),
    ({"query": {"has_child": {"type": "c", "query": WRAPPED}}}, "blocked_query"),
    ({"query": {"function_score": {"functions": [{"filter": WRAPPED, "weight": 1}]}}},
     "blocked_query"),
    ({"knn": {"field": "v", "query_vector": [1], "k": 1, "filter": WRAPPED}}, "blocked_query"),
    # scripts: queries, function_score, sorts, aggregations, pipeline aggregations
    ({"query": {"script": {"script": "true"}}}, "script"),
    ({"query": {"has_parent": {"parent_type": "p", "query": {"script": {"script": SCRIPT}}}}},
     "script"),
    ({"query": {"function_score": {"query": {"match_all": {}}, "functions": [
        {"script_score": {"script": SCRIPT}, "weight": 2}]}}}, "script"),
    ({"query": {"function_score": {"functions": [{"filter": {"script": {"script": SCRIPT}}}]}}},
     "script"),
    ({"query": {"bool": {"should": [{"match": {"a": "x"}}, {"script": {"script": SCRIPT}}]}}},
     "script"),
    ({"query": {"dis_max": {"queries": [{"function_score": {"script_score": {
        "script": SCRIPT}}}]}}}, "script"),
    ({"query": {"intervals": {"t": {"all_of": {"intervals": [{"match": {"query": "a"}}],
                                               "filter": {"script": SCRIPT}}}}}}, "script"),
    ({"query": {"terms_set": {"codes": {"terms": ["a"], "minimum_should_match_script": {
        "source": "Math.min(params.num_terms, 2)"}}}}}, "script"),
    ({"sort": [{"ts": "desc"}, {"_script": {"type": "number", "script": SCRIPT}}]}, "script"),
    ({"sort": {"_script": {"type": "number", "script": SCRIPT, "order": "asc"}}}, "script"),
    ({"sort": [{"price": {"nested": {"path": "o", "filter": {"script": {"script": SCRIPT}}}}}]},
     "script"),
    ({"aggs": {"a": {"terms": {"field": "x"}, "aggs": {"m": {"scripted_metric": {
        "map_script": "state.x = 1"}}}}}}, "script"),
    ({"aggs": {"a": {"terms": {"field": "x"}, "runtime_mappings": {"y": {
        "type": "keyword", "script": "emit('x')"}}}}}, "script"),
    ({"aggs": {"h": {"histogram": {"script": "doc['a'].value", "interval": 10}}}}, "script"),
    ({"aggs": {"p": {"percentiles": {"script": {"source": "1"}}}}}, "script"),
    ({"aggs": {"c": {"cardinality": {"script": "1"}}}}, "script"),
    ({"aggs": {"t": {"top_metrics": {"metrics": {"field": "a"}, "sort": {"_script": {
        "type": "number", "script": SCRIPT}}}}}}, "script"),
    ({"aggs": {"mt": {"multi_terms": {"terms": [{"field": "a"}, {"script": SCRIPT}]}}}},
     "script"),
    ({"aggs": {"g": {"global": {}, "aggs": {"x": {"sum": {"script": "1"}}}}}}, "script"),
    ({"aggs": {"n": {"nested": {"path": "c"}, "aggs": {"x": {"avg": {"script": "1"}}}}}},
     "script"),
    ({"aggs": {"b": {"date_histogram": {"field": "ts", "calendar_interval": "1d"}, "aggs": {
        "s": {"bucket_script": {"buckets_path": {"x": "_count"}, "script": "params.x"}}}}}},
     "script"),
    ({"aggs": {"sig": {"significant_text": {"field": "t", "script_heuristic": {
        "script": SCRIPT}}}}}, "script"),
    ({"highlight": {"highlight_query": {"script": {"script": SCRIPT}}, "fields": {"a": {}}}},
     "script"),
    ({"rescore": [{"query": {"rescore_query": {"script": {"script": SCRIPT}}}}]}, "script"),
    ({"collapse": {"field": "u", "inner_hits": [{"name": "a", "script_fields": {
        "x": {"script": SCRIPT}}}]}}, "script"),
    ({"_source": {"includes": ["a"]}, "script_fields": {}}, "script"),
    ({"query": {"match_all": {}}, "script": SCRIPT}, "script"),
    # reading another index
    ({"query": {"constant_score": {"filter": {"terms": {"user": {
        "index": "other-index", "id": "1", "path": "u", "routing": "r"}}}}}}, "other_index"),
    ({"aggs": {"f": {"filter": {"terms": {"u": {"index": "users", "id": "1", "path": "x"}}}}}},
     "other_index"),
    ({"query": {"more_like_this": {"like": [{"_index": "other", "doc": {"t": "x"}}]}}},
     "other_index"),
    ({"query": {"bool": {"filter": {"geo_shape": {"loc": {"indexed_shape": {"id": "deu"}}}}}}},
     "other_index"),
    ({"indices_boost": {"other": 1.5}}, "other_index"),
    ({"query": {"rule": {"ruleset_ids": ["r"], "match_criteria": {},
                         "organic": {"match_all": {}}}}}, "blocked_query"),
    # model inference at search time
    ({"size": 0, "aggs": {"d": {"date_histogram": {"field": "ts", "calendar_interval": "1d"},
                                "aggs": {"i": {"inference": {"model_id": "m",
                                                             "buckets_path": {}}}}}}},
     "blocked_key"),
    ({"query": {"semantic": {"field": "body", "query": "x"}}}, "blocked_key"),
    ({"query": {"sparse_vector": {"field": "v", "inference_id": "elser", "query": "x"}}},
     "blocked_key"),
    ({"slice": {"id": 0, "max": 2}}, "blocked_key"),
]


@pytest.mark.parametrize("body, reason", OWN_BLOCKED, ids=lambda v: json.dumps(v)[:60]
                         if isinstance(v, dict) else str(v))
def test_own_blocked(body, reason):
    error = refused(json.dumps(body))
    assert error.details["reason"] == reason, error.details


@pytest.mark.parametrize("text, reason", [
    ('{"query": {"match_all": {}}}\n{"query": {"match_all": {}}}', "not_json"),
    ('{"index": "other"}\n{"query": {"match_all": {}}}\n', "not_json"),
    ('POST /other/_delete_by_query {"query": {"match_all": {}}}', "not_json"),
    ('{"query": {"match_all": {}} // a comment\n}', "not_json"),
    ('{"query": {"match_all": {}},}', "not_json"),
    ('{"size": -Infinity}', "not_json"),
    ('{"aggs": {"a": {"terms": {"field": "x"}}}, "aggs": {"b": {"scripted_metric": {}}}}',
     "duplicate_key"),
    ('{"query": {"sc\\u0072ipt": {"script": "1"}}}', "script"),
    ("123", "not_object"),
    ("true", "not_object"),
])
def test_own_blocked_text(text, reason):
    assert refused(text).details["reason"] == reason


OWN_ALLOWED = [
    {"query": {"bool": {"must": [{"match": {"title": "search"}}], "filter": [
        {"term": {"status": "published"}}, {"range": {"publish_date": {"gte": "2015-01-01"}}}]}}},
    {"query": {"bool": {"should": [{"term": {"tag": "a"}}, {"term": {"tag": "b"}}],
                        "minimum_should_match": 1, "boost": 1.0}}},
    {"query": {"range": {"ts": {"gte": "now-7d/d", "lt": "now/d", "time_zone": "+01:00"}}}},
    {"query": {"nested": {"path": "comments", "query": {"match": {"comments.author": "x"}},
                          "score_mode": "avg", "inner_hits": {"size": 2}}}},
    {"query": {"has_child": {"type": "answer", "query": {"match": {"body": "x"}},
                             "score_mode": "max"}}},
    {"query": {"has_parent": {"parent_type": "question", "query": {"term": {"tag": "x"}}}}},
    {"query": {"parent_id": {"type": "answer", "id": "1"}}},
    {"query": {"multi_match": {"query": "x", "fields": ["title^3", "body"]}}},
    {"query": {"simple_query_string": {"query": "\"fried eggs\" +(eggplant | potato)",
                                       "fields": ["title"]}}},
    {"query": {"wildcard": {"user": {"value": "ki*y", "case_insensitive": True}}}},
    {"query": {"ids": {"values": ["1", "4"]}}},
    {"query": {"geo_distance": {"distance": "200km", "pin.location": {"lat": 40, "lon": -70}}}},
    {"query": {"boosting": {"positive": {"term": {"a": "x"}}, "negative": {"term": {"a": "y"}},
                            "negative_boost": 0.5}}},
    {"query": {"function_score": {"query": {"match_all": {}}, "field_value_factor": {
        "field": "likes", "factor": 1.2, "modifier": "sqrt"}, "boost_mode": "multiply"}}},
    {"query": {"function_score": {"functions": [{"random_score": {"seed": 10, "field": "_seq_no"}},
                                                {"exp": {"ts": {"origin": "now", "scale": "10d"}}}],
                                  "score_mode": "sum"}}},
    {"query": {"function_score": {"functions": [{"gauss": {"script": {"origin": "0",
                                                                      "scale": "20"}}}]}}},
    {"query": {"span_near": {"clauses": [{"span_term": {"f": "v1"}}, {"span_term": {"f": "v2"}}],
                             "slop": 12, "in_order": False}}},
    {"query": {"terms_set": {"codes": {"terms": ["abc"],
                                       "minimum_should_match_field": "required"}}}},
    {"query": {"percolate": {"field": "query", "documents": [
        {"message": "a"}, {"script": "a field called script"}]}}},
    {"query": {"more_like_this": {"fields": ["title"], "like": [
        {"_id": "1"}, {"doc": {"title": "x", "script": "y"}}], "min_term_freq": 1}}},
    {"query": {"term": {"wrapper": "x"}}},
    {"query": {"match": {"index": "x"}}},
    {"query": {"term": {"_index": {"value": "logs-1"}}}},
    {"query": {"knn": {"field": "v", "query_vector": [1, 2], "k": 3}}},
    {"knn": {"field": "image_vector", "query_vector": [0.3, 0.1, 1.2], "k": 10,
             "num_candidates": 100, "filter": {"term": {"file_type": "png"}}}},
    {"suggest": {"text": "tring out Elasticsearch", "my-suggestion": {"term": {
        "field": "message"}}}},
    {"suggest": {"song-suggest": {"prefix": "nir", "completion": {"field": "suggest"}}}},
    {"size": 0, "aggs": {"per_day": {"date_histogram": {
        "field": "@timestamp", "calendar_interval": "1d", "min_doc_count": 0,
        "extended_bounds": {"min": "now-30d", "max": "now"}}, "aggs": {
            "uniq": {"cardinality": {"field": "user.id"}}}}}},
    {"size": 0, "aggs": {"c": {"composite": {"size": 100, "sources": [
        {"day": {"date_histogram": {"field": "ts", "calendar_interval": "day"}}},
        {"status": {"terms": {"field": "status"}}}], "after": {"day": 1, "status": "a"}}}}},
    {"size": 0, "aggs": {"c": {"composite": {"sources": [{"script": {"terms": {
        "field": "script"}}}]}}}},
    {"size": 0, "aggs": {"top": {"terms": {"field": "user", "size": 3}, "aggs": {
        "latest": {"top_hits": {"size": 1, "sort": [{"ts": {"order": "desc"}}],
                                "_source": {"includes": ["msg"]}}}}}}},
    {"size": 0, "aggs": {"msgs": {"filters": {"filters": {
        "errors": {"match": {"body": "error"}}, "warnings": {"match": {"body": "warning"}}},
        "other_bucket_key": "other"}}}},
    {"size": 0, "aggs": {"f": {"filters": {"filters": [{"term": {"a": 1}}, {"term": {"a": 2}}]}}}},
    {"size": 0, "aggs": {"f": {"filters": {"filters": {"script": {"match": {"body": "x"}}}}}}},
    {"size": 0, "aggs": {"m": {"adjacency_matrix": {"filters": {
        "grpA": {"terms": {"accounts": ["a"]}}, "grpB": {"terms": {"accounts": ["b"]}}}}}}},
    {"size": 0, "aggs": {"p": {"percentiles": {"field": "load_time", "percents": [95, 99]}},
                         "s": {"extended_stats": {"field": "x"}}}},
    {"size": 0, "aggs": {"r": {"range": {"field": "price", "ranges": [
        {"to": 100}, {"from": 100, "to": 200, "key": "mid"}, {"from": 200}]}}}},
    {"size": 0, "aggs": {"dr": {"date_range": {"field": "ts", "format": "MM-yyyy",
                                               "ranges": [{"to": "now-10M/M"}]}}}},
    {"size": 0, "aggs": {"n": {"nested": {"path": "resellers"}, "aggs": {
        "min_price": {"min": {"field": "resellers.price"}}}}}},
    {"size": 0, "aggs": {"all": {"global": {}, "aggs": {"avg_price": {"avg": {
        "field": "price"}}}}}},
    {"size": 0, "aggs": {"d": {"date_histogram": {"field": "ts", "fixed_interval": "1h"},
                               "aggs": {"s": {"sum": {"field": "n"}},
                                        "cs": {"cumulative_sum": {"buckets_path": "s"}}}},
                         "max_bucket": {"max_bucket": {"buckets_path": "d>s"}}}},
    {"size": 0, "aggs": {"t": {"terms": {"field": "a", "include": {"partition": 0,
                                                                   "num_partitions": 10}}}}},
    {"size": 0, "aggs": {"a": {"terms": {"field": "x"}, "meta": {"script": "just a label"}}}},
    {"size": 0, "aggs": {"sig": {"significant_terms": {"field": "tag", "background_filter": {
        "term": {"text": "x"}}}}}},
    {"sort": [{"_geo_distance": {"pin.location": [-70, 40], "order": "asc", "unit": "km"}}]},
    {"sort": [{"offer.price": {"mode": "avg", "order": "asc", "nested": {
        "path": "offer", "filter": {"term": {"offer.color": "blue"}}}}}]},
    {"query": {"match_all": {}}, "search_after": [1463538857, "654323"],
     "sort": [{"date": "asc"}, {"tie": "asc"}], "size": 10},
    {"query": {"match": {"message": "x"}}, "collapse": {"field": "user.id", "inner_hits": {
        "name": "most_recent", "size": 5, "sort": [{"@timestamp": "desc"}]}}},
    {"query": {"match": {"content": "kimchy"}}, "highlight": {
        "pre_tags": ["<em>"], "post_tags": ["</em>"], "fields": {"content": {
            "fragment_size": 150, "number_of_fragments": 3}}}},
    {"highlight": {"fields": {"comment": {"type": "fvh", "highlight_query": {
        "match_phrase": {"comment": "x"}}}}}},
    {"_source": False, "fields": ["user.id", {"field": "@timestamp", "format": "epoch_millis"}]},
    {"_source": "user.*"},
    {"post_filter": {"term": {"color": "red"}}, "aggs": {"colors": {"terms": {
        "field": "color"}}}},
    {"rescore": {"window_size": 50, "query": {"rescore_query": {"match_phrase": {
        "message": {"query": "x", "slop": 2}}}, "query_weight": 0.7}}},
]


@pytest.mark.parametrize("body", OWN_ALLOWED, ids=lambda v: json.dumps(v)[:60])
def test_own_allowed(body):
    validate_query(json.dumps(body), Dialect.ELASTICSEARCH)
