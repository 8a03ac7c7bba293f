"""Property-based fuzzing of every operation in the OpenAPI schema: no input gives a 5xx.

Hypothesis generates path values, query values and JSON bodies (well-formed and not) for each
operation the app's own OpenAPI document lists, and sends them through the ASGI app.
"""

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from level3_recsys.serve import create_app

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
path_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(alphabet="abc-._~0123456789%", min_size=1, max_size=12),
)
query_values = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40).map(str), st.text(max_size=10), st.just("")
)


def body_for(schema_name: str | None):
    """Mostly near-valid bodies (right keys, random values), sometimes anything at all."""
    keys = {
        "SessionRequest": ["item_ids", "k"],
        "FeedbackRequest": ["user_id", "model_version", "impressions", "clicks"],
        "SwitchRequest": ["serve"],
    }.get(schema_name, [])
    near = st.fixed_dictionaries({}, optional={k: json_values for k in keys})
    item_lists = st.lists(
        st.one_of(st.integers(min_value=-5, max_value=200), st.sampled_from(range(95, 135))),
        max_size=30,
    )
    plausible = st.fixed_dictionaries(
        {},
        optional={
            k: item_lists
            if k in ("item_ids", "impressions", "clicks")
            else st.one_of(st.integers(-3, 300), st.text(max_size=5))
            for k in keys
        },
    )
    return st.one_of(near, plausible, json_values, st.binary(max_size=30))


@pytest.fixture(scope="module")
def client(tiny_bundle):
    from level3_recsys.settings import load

    app = create_app(load(None, serve={"admin_token": "fuzz-token"}), tiny_bundle)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def operations(client):
    schema = client.app.openapi()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            body_ref = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("$ref")
            )
            yield (
                path,
                method,
                operation.get("parameters", []),
                (body_ref.rsplit("/", 1)[-1] if body_ref else None),
            )


def test_schema_lists_every_public_operation(client):
    paths = {(p, m) for p, m, _, _ in operations(client)}
    assert ("/recommendations/{user_id}", "get") in paths
    assert ("/recommendations/session", "post") in paths
    assert ("/feedback", "post") in paths
    assert ("/admin/switch", "post") in paths


OPERATIONS = [
    ("/recommendations/{user_id}", "get"),
    ("/recommendations/session", "post"),
    ("/feedback", "post"),
    ("/health", "get"),
    ("/ready", "get"),
    ("/model", "get"),
    ("/admin/reload", "post"),
    ("/admin/switch", "post"),
    ("/admin/features", "get"),
]


def test_fuzzed_operations_match_the_schema(client):
    assert {(p, m) for p, m, _, _ in operations(client)} == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_input_gives_a_server_error(client, path, method, data):
    parameters, body_schema = next(
        (params, body) for p, m, params, body in operations(client) if (p, m) == (path, method)
    )
    url = path
    query = {}
    for parameter in parameters:
        if parameter["in"] == "path":
            url = url.replace("{" + parameter["name"] + "}", data.draw(path_values))
        elif parameter["in"] == "query" and data.draw(st.booleans()):
            query[parameter["name"]] = data.draw(query_values)
    headers = {"X-Admin-Token": "fuzz-token"} if data.draw(st.booleans()) else {}
    kwargs = {"params": query, "headers": headers}
    if method in ("post", "put", "patch"):
        body = data.draw(body_for(body_schema))
        if isinstance(body, bytes):
            kwargs["content"] = body
            headers["content-type"] = "application/json"
        else:
            kwargs["content"] = json.dumps(body).encode()
            headers["content-type"] = "application/json"
    response = client.request(method.upper(), url, **kwargs)
    assert response.status_code < 500, (method, url, kwargs, response.text)
