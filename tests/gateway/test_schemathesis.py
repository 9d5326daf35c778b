"""Property-based fuzzing of the gateway's OpenAPI spec with schemathesis: whatever the body
(valid, or violating the schema in the ways schemathesis knows), the gateway never answers 5xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.gateway.conftest import ADMIN, make_settings

schemathesis = pytest.importorskip("schemathesis")

# (path, method, generation mode): GET /v1/models has no inputs to violate, so no negative mode.
CASES = [("/v1/chat/completions", "POST", "positive"), ("/v1/chat/completions", "POST", "negative"),
         ("/v1/completions", "POST", "positive"), ("/v1/completions", "POST", "negative"),
         ("/v1/models", "GET", "positive")]


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    from fastapi.testclient import TestClient

    from distillguard.gateway.app import create_app

    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    app = create_app(make_settings(tmp, requests_per_minute=100_000, tokens_per_minute=10**9))
    # No `with`: the lifespan would close the request-log writer before the fuzzing runs.
    r = TestClient(app).post("/admin/accounts", json={"name": "fuzz"},
                             headers={"Authorization": f"Bearer {ADMIN}"})
    return schemathesis.openapi.from_asgi("/openapi.json", app), r.json()["api_key"]


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_no_server_error_for_any_generated_request(fuzz_target: tuple[Any, str], path: str, method: str,
                                                   mode: str) -> None:
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    schema, api_key = fuzz_target
    operation = schema[path][method]
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))
    statuses: list[int] = []

    @given(case=strategy)
    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"},
                                          checks=[not_a_server_error])
        statuses.append(response.status_code)

    run()
    assert statuses and max(statuses) < 500
