"""The API's edge in-process, over a runtime with no models: API key, body size, CORS, request ids, readiness, and
errors that never carry a trace (the endpoints themselves run against a real server in tests/integration)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from rag_app.errors import ConfigError  # noqa: E402
from rag_app.server.app import create_app  # noqa: E402
from rag_app.server.runtime import Runtime  # noqa: E402
from rag_app.settings import load_settings  # noqa: E402


class Broken:
    """A factory whose retrievers fail: k=1 like a store with nothing ingested, anything else like a bug."""

    def build(self, spec, filters, k, understand):
        if k == 1:
            raise ConfigError("no collection 'jobs-x' yet for MiniLM: run `jobrag ingest` with this embedder first")
        raise RuntimeError("secret internal detail /srv/jobrag/settings.yaml")


class Loaded(Runtime):
    def load(self) -> None:
        self.ready.set()


class Loading(Runtime):
    def load(self) -> None:
        pass


def client(runtime_cls=Loaded, **server) -> TestClient:
    settings = load_settings(server=server)
    return TestClient(create_app(settings, runtime_cls(settings, factory=Broken())), raise_server_exceptions=False)


def test_errors_are_one_json_line_with_a_request_id_and_never_a_trace() -> None:
    with client() as api:
        bug = api.post("/v1/search", json={"query": "nurse", "k": 2}, headers={"X-Request-ID": "board-42"})
        assert bug.status_code == 500 and bug.headers["x-request-id"] == "board-42"
        error = bug.json()["error"]
        assert error["request_id"] == "board-42" and error["type"] == "server_error"
        assert "secret" not in bug.text and "Traceback" not in bug.text and "settings.yaml" not in bug.text
        empty = api.post("/v1/search", json={"query": "nurse", "k": 1})
        assert empty.status_code == 503 and empty.headers["retry-after"] == "2"
        assert empty.json()["error"]["message"].startswith("no collection 'jobs-x' yet") and "\n" not in empty.text
        assert len(empty.headers["x-request-id"]) == 16  # made up when the caller sent none
        odd = api.post("/v1/search", json={"query": "nurse", "k": 2}, headers={"X-Request-ID": "bad id\r\nx"})
        assert odd.headers["x-request-id"] != "bad id" and odd.json()["error"]["request_id"] == odd.headers["x-request-id"]


def test_not_ready_is_503_with_retry_after_while_health_answers() -> None:
    with client(Loading) as api:
        assert api.get("/healthz").json() == {"status": "ok"}
        for response in (api.get("/readyz"), api.post("/v1/search", json={"query": "nurse"}), api.get("/v1/collections")):
            assert response.status_code == 503 and response.headers["retry-after"] == "2"
            assert response.json()["error"]["type"] == "not_ready"


def test_with_an_api_key_only_health_and_readiness_answer_without_it() -> None:
    with client(api_key="s3cret") as api:
        assert api.get("/healthz").status_code == 200 and api.get("/readyz").status_code == 200
        for method, path in (("get", "/docs"), ("get", "/openapi.json"), ("get", "/v1/collections"), ("post", "/v1/search"),
                             ("post", "/v1/ask"), ("post", "/v1/chat/completions"), ("get", "/v1/models")):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                response = getattr(api, method)(path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.headers["www-authenticate"] == "Bearer" and response.json()["error"]["type"] == "unauthorized"
        good = {"Authorization": "Bearer s3cret"}
        assert api.get("/openapi.json", headers=good).status_code == 200
        assert api.post("/v1/search", json={"query": "nurse", "k": 1}, headers=good).status_code == 503  # past the key


def test_body_limits_cors_and_unknown_paths() -> None:
    with client(max_body_bytes=2048, cors_origins=["https://board.example"]) as api:
        big = {"query": "x" * 4000}
        sized = api.post("/v1/search", json=big)
        assert sized.status_code == 413 and "server.max_body_bytes" in sized.json()["error"]["message"]
        chunked = api.post("/v1/search", content=(part for part in [b'{"query": "', b"x" * 4000, b'"}']),
                           headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413  # no Content-Length: counted as it arrives
        pre = api.options("/v1/search", headers={"Origin": "https://board.example", "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://board.example"
        other = api.options("/v1/search", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers
        missing = api.get("/v1/nothing")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    with client() as api:  # no origins configured: no CORS headers at all
        assert "access-control-allow-origin" not in api.get("/healthz", headers={"Origin": "https://board.example"}).headers
