"""schemathesis against the running service (uvicorn, as the image runs it): every operation in
the OpenAPI schema, every check (status codes and bodies as declared, negative data rejected,
valid data accepted, 405s with Allow, the stateful feedback link), at least 1,000 requests."""

import json
import urllib.request

import pytest

from level3_recsys.deploy import SERVICE_APP
from level3_recsys.fuzz import run_schemathesis
from level3_recsys.loadtest.run import uvicorn_server

TOKEN = "fuzz-token-not-the-default"


@pytest.fixture(scope="module")
def service_url(tiny_bundle):
    env = {"LEVEL3_SERVE__BUNDLE_DIR": str(tiny_bundle), "LEVEL3_SERVE__ADMIN_TOKEN": TOKEN}
    with uvicorn_server(SERVICE_APP, env) as base:
        yield base


def test_schemathesis_all_checks_find_nothing(service_url, tmp_path):
    result = run_schemathesis(service_url, TOKEN, tmp_path, max_examples=100, seed=42)
    assert result["failures"] == 0 and result["exit_code"] == 0, result["output"]
    assert result["requests"] >= 1000, result
    assert all(
        status == "success" for phase, status in result["phases"].items() if phase != "examples"
    ), result["phases"]
    assert "stateful" in result["phases"], result["phases"]
    # 5,000-digit ids and query numbers: 422, never a 500
    assert result["huge_number_statuses"] == [422] * 6, result["huge_number_statuses"]
    # the stateful phase followed the schema's link: real clicks on served lists were recorded
    with urllib.request.urlopen(f"{service_url}/model", timeout=10) as response:
        model = json.load(response)
    assert any(ctr > 0 for ctr in model["ctr_by_version"].values()), model


def test_schema_declares_every_operation_and_error_body(service_url):
    with urllib.request.urlopen(f"{service_url}/openapi.json", timeout=10) as response:
        schema = json.load(response)
    operations = {(p, m) for p, methods in schema["paths"].items() for m in methods}
    assert operations == {
        ("/recommendations/{user_id}", "get"),
        ("/recommendations/session", "post"),
        ("/feedback", "post"),
        ("/users", "get"),
        ("/users/{user_id}/history", "get"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/model", "get"),
        ("/admin/reload", "post"),
        ("/admin/switch", "post"),
        ("/admin/features", "get"),
    }
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/ready":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (path, method, status)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
