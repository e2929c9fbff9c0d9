"""Real responses of the daemon validated against the OpenAPI document it
serves (GET /openapi.json): every route's success answer and a sample of
error answers must match the schema documented for that status. A small
validator for the JSON Schema subset the document uses (type, properties,
required, additionalProperties, items, enum, oneOf, nullable, minItems,
maxItems, minimum, pattern, $ref); standard library only."""
import re

import pytest

from conftest import golden


def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        path = node["$ref"].lstrip("#/").split("/")
        node = doc
        for p in path:
            node = node[p]
    return node


def validate(doc, schema, value, where="$"):
    """Returns a list of problems (empty when value matches schema)."""
    schema = resolve(doc, schema)
    if value is None and schema.get("nullable"):
        return []
    if "oneOf" in schema:
        matches = [s for s in schema["oneOf"] if not validate(doc, s, value, where)]
        return [] if len(matches) == 1 else [f"{where}: matches {len(matches)} of oneOf"]
    problems = []
    t = schema.get("type")
    checks = {"object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
              "string": lambda v: isinstance(v, str),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "boolean": lambda v: isinstance(v, bool)}
    if t and not checks[t](value):
        return [f"{where}: expected {t}, got {type(value).__name__} {value!r:.60}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{where}: {value} < minimum {schema['minimum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in value:
                problems.append(f"{where}: missing required '{k}'")
        for k, v in value.items():
            if k in props:
                problems += validate(doc, props[k], v, f"{where}.{k}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where}: undocumented key '{k}'")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += validate(doc, schema["additionalProperties"], v, f"{where}.{k}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, v in enumerate(value):
                problems += validate(doc, schema["items"], v, f"{where}[{i}]")
    return problems


def documented_schema(doc, template, method, status):
    op = doc["paths"][template][method.lower()]
    responses = op["responses"]
    resp = resolve(doc, responses.get(str(status)) or responses.get("default"))
    assert resp is not None, f"{method} {template}: status {status} is not documented"
    content = resp.get("content", {})
    media = content.get("application/json")
    return media["schema"] if media else None


IDS = golden("classifier_f32")["cases"][0]["input_ids"][0]
OIP_IDS = {"id": "x", "inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [1, len(IDS)],
                                  "data": IDS}]}

# (template, method, path, body, expected status)
CALLS = [
    ("/healthz", "GET", "/healthz", None, 200),
    ("/readyz", "GET", "/readyz", None, 200),
    ("/v1/models", "GET", "/v1/models", None, 200),
    ("/v1/models/{name}", "GET", "/v1/models/classifier", None, 200),
    ("/v1/models/{name}", "GET", "/v1/models/mind", None, 200),
    ("/v1/models/{name}", "GET", "/v1/models/nope", None, 404),
    ("/v1/models/{name}/classify", "POST", "/v1/models/classifier/classify",
     {"inputs": ["oil price", {"input_ids": IDS}]}, 200),
    ("/v1/models/{name}/classify", "POST", "/v1/models/classifier/classify", {"inputs": 3}, 400),
    ("/v1/models/{name}/classify", "POST", "/v1/models/classifier/classify",
     {"inputs": [{"input_ids": [5] * 20}], "truncate": False}, 422),
    ("/v1/models/{name}/embed", "POST", "/v1/models/newsrec/embed", {"inputs": ["oil"]}, 200),
    ("/v1/models/{name}/recommend", "POST", "/v1/models/mind/recommend",
     {"history": [{"news_id": "N101"}], "candidates": ["oil bank", {"news_id": "N102"}],
      "top_k": 1}, 200),
    ("/v1/models/{name}/news/{id}", "PUT", "/v1/models/mind/news/DOC1", {"title": "team win"},
     201),
    ("/v1/models/{name}/news/{id}", "PUT", "/v1/models/mind/news/DOC1", {"title": "team wins"},
     200),
    ("/v1/models/{name}/news/{id}", "GET", "/v1/models/mind/news/DOC1", None, 200),
    ("/v1/models/{name}/news", "POST", "/v1/models/mind/news",
     {"items": [{"news_id": "DOC2", "title": "oil bank", "category": "finance"},
                {"news_id": "DOC1", "title": "team"}]}, 200),
    ("/v1/models/{name}/news", "POST", "/v1/models/mind/news", {"items": []}, 400),
    ("/v1/models/{name}/recommend", "POST", "/v1/models/mind/recommend",
     {"history": [{"news_id": "N101"}], "top_k": 3, "since": "2020-01-01T00:00:00Z"}, 200),
    ("/v1/models/{name}/news/{id}", "DELETE", "/v1/models/mind/news/DOC2", None, 200),
    ("/v1/models/{name}/news/{id}", "DELETE", "/v1/models/mind/news/DOC2", None, 404),
    ("/v1/models/{name}/news/{id}", "GET", "/v1/models/mind/news/DOC2", None, 404),
    ("/v2", "GET", "/v2", None, 200),
    ("/v2/health/live", "GET", "/v2/health/live", None, 200),
    ("/v2/health/ready", "GET", "/v2/health/ready", None, 200),
    ("/v2/models/{name}", "GET", "/v2/models/classifier", None, 200),
    ("/v2/models/{name}/ready", "GET", "/v2/models/classifier/ready", None, 200),
    ("/v2/models/{name}/infer", "POST", "/v2/models/classifier/infer", OIP_IDS, 200),
    ("/v2/models/{name}/infer", "POST", "/v2/models/newsrec/infer", OIP_IDS, 200),
    ("/v2/models/{name}/infer", "POST", "/v2/models/classifier/infer",
     {**OIP_IDS, "outputs": [{"name": "probabilities", "parameters": {"classification": 2}},
                             {"name": "embeddings", "parameters": {"unknown": 1}}]}, 200),
    ("/v2/models/{name}/infer", "POST", "/v2/models/classifier/infer",
     {"inputs": [{"name": "input_ids", "datatype": "FP64", "shape": [1, 1], "data": [1]}]}, 400),
    ("/v2/models/{name}/versions/{version}", "GET", "/v2/models/classifier/versions/1", None,
     200),
    ("/v2/models/{name}/versions/{version}", "GET", "/v2/models/classifier/versions/2", None,
     404),
    ("/v2/models/{name}/versions/{version}/ready", "GET", "/v2/models/newsrec/versions/1/ready",
     None, 200),
    ("/v2/models/{name}/versions/{version}/infer", "POST",
     "/v2/models/classifier/versions/1/infer", OIP_IDS, 200),
    ("/v2/models/{name}/versions/{version}/infer", "POST",
     "/v2/models/classifier/versions/1/infer", {"inputs": []}, 400),
    ("/openapi.json", "GET", "/openapi.json", None, 200),
    ("/v1/models/{name}/tokenize", "POST", "/v1/models/classifier/tokenize",
     {"inputs": ["oil price", ""]}, 200),
    ("/v1/models/{name}/tokenize", "POST", "/v1/models/classifier/tokenize", {"inputs": [3]}, 400),
    ("/v1/embeddings", "POST", "/v1/embeddings", {"model": "classifier", "input": ["oil"]}, 200),
    ("/v1/embeddings", "POST", "/v1/embeddings",
     {"model": "newsrec", "input": [[1, 2]], "encoding_format": "base64"}, 200),
    ("/v1/embeddings", "POST", "/v1/embeddings", {"model": "nope", "input": "x"}, 404),
    ("/v1/embeddings", "POST", "/v1/embeddings", {"model": "classifier", "input": []}, 400),
    ("/tei/{name}", "POST", "/tei/classifier", {"inputs": "oil", "parameters": {}}, 200),
    ("/tei/{name}", "POST", "/tei/newsrec", {"inputs": ["oil", "team"]}, 200),
    ("/tei/{name}", "POST", "/tei/classifier", {"inputs": "oil", "parameters": {"x": 1}}, 400),
    ("/tei/{name}/embed", "POST", "/tei/classifier/embed", {"inputs": ["oil", "team"]}, 200),
    ("/tei/{name}/embed", "POST", "/tei/classifier/embed", {"inputs": []}, 422),
    ("/tei/{name}/embed", "POST", "/tei/nope/embed", {"inputs": "x"}, 404),
    ("/tei/{name}/predict", "POST", "/tei/classifier/predict", {"inputs": "oil"}, 200),
    ("/tei/{name}/predict", "POST", "/tei/classifier/predict", {"inputs": ["oil", "a"]}, 200),
    ("/tei/{name}/predict", "POST", "/tei/newsrec/predict", {"inputs": "oil"}, 400),
    ("/tei/{name}/info", "GET", "/tei/classifier/info", None, 200),
    ("/tei/{name}/info", "GET", "/tei/newsrec/info", None, 200),
    ("/tei/{name}/health", "GET", "/tei/classifier/health", None, 200),
    ("/tei/{name}/health", "GET", "/tei/nope/health", None, 404),
    ("/predictions/{name}", "POST", "/predictions/classifier", {"data": "oil"}, 200),
    ("/predictions/{name}", "POST", "/predictions/newsrec", {"text": "oil"}, 200),
    ("/predictions/{name}", "POST", "/predictions/classifier", {"data": 3}, 400),
    ("/predictions/{name}", "PUT", "/predictions/classifier", {"data": "oil"}, 200),
    ("/predictions/{name}", "POST", "/predictions/nope", {"data": "oil"}, 404),
    ("/predictions/{name}/{version}", "POST", "/predictions/classifier/1", {"data": "oil"}, 200),
    ("/predictions/{name}/{version}", "PUT", "/predictions/classifier/2", {"data": "oil"}, 404),
    ("/ping", "GET", "/ping", None, 200),
    # the shared daemon has server.model_control off (test_repository.py runs them on)
    ("/v2/repository/index", "POST", "/v2/repository/index", {}, 403),
    ("/v2/repository/models/{name}/load", "POST", "/v2/repository/models/classifier/load", {},
     403),
    ("/v2/repository/models/{name}/unload", "POST", "/v2/repository/models/classifier/unload", {},
     403),
]


@pytest.fixture(scope="module")
def spec(daemon):
    r = daemon.get("/openapi.json")
    assert r.status == 200
    return r.json()


def test_every_route_is_exercised(spec):
    covered = {(t, m.lower()) for t, m, _, _, _ in CALLS}
    for template, ops in spec["paths"].items():
        for method in ops:
            if method in ("get", "post", "put", "delete") and template != "/metrics":
                assert (template, method) in covered, f"{method.upper()} {template}"


@pytest.mark.parametrize("call", CALLS, ids=[f"{c[1]} {c[2]} {c[4]}" for c in CALLS])
def test_response_matches_the_document(daemon, spec, call):
    template, method, path, body, status = call
    r = daemon.request(method, path, body=body)
    assert r.status == status, r
    schema = documented_schema(spec, template, method, status)
    if schema is None:
        return
    problems = validate(spec, schema, r.json())
    assert not problems, "\n".join(problems)
