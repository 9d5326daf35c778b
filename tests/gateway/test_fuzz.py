"""Property test: whatever JSON a client sends, the gateway answers 2xx/4xx with an OpenAI
error body, never a 5xx (a stand-in for schemathesis, which is not installed here)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.gateway.conftest import make_settings

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_message = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", 3]), "content": _json})
_body = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["smollm2-135m-instruct", "other"]) | _json,
    "messages": st.lists(_message, max_size=3) | _json,
    "prompt": st.text(max_size=30) | _json,
    "max_tokens": st.integers(-5, 5000) | _json,
    "temperature": st.floats(-1, 3) | _json,
    "n": st.integers(0, 3),
    "stream": st.booleans() | _json,
    "logprobs": _json,
})


def test_random_bodies_never_5xx(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from distillguard.gateway.app import create_app

    app = create_app(make_settings(tmp_path, requests_per_minute=10**6, tokens_per_minute=10**9))
    acc = app.state.store.create_account("fuzz", tier="research")
    h = {"Authorization": f"Bearer {app.state.store.create_key(acc.account_id)[1]}"}
    with TestClient(app) as client:
        @settings(max_examples=150, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(body=_body, path=st.sampled_from(["/v1/chat/completions", "/v1/completions"]))
        def check(body: dict, path: str) -> None:
            r = client.post(path, json=body, headers=h)
            assert r.status_code < 500, (body, r.text)
            if r.status_code >= 400:
                assert set(r.json()["error"]) == {"message", "type", "param", "code"}

        check()
