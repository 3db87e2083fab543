"""The HTTP API for real: one `jobrag serve` subprocess (API key on) over 24 sample listings and one hostile listing,
the packaged MiniLM, Chroma on disk; plain HTTP with httpx and the OpenAI client library."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402

from rag_app.server.bench import serve_subprocess  # noqa: E402
from tests.conftest import ACTIVE_CONTENT, INJECTED, write_jsonl  # noqa: E402
from tests.helpers.serve import serve_env, sse_json  # noqa: E402

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


def base(api: httpx.Client) -> str:
    return str(api.base_url).rstrip("/")


@pytest.fixture(scope="module")
def api(tmp_path_factory, embedder):
    from ingest.pipeline import Ingestor, read_listings
    from ingest.sources import SAMPLE_PATH
    from rag_app.settings import load_settings
    from rag_app.store import Store

    root = tmp_path_factory.mktemp("api")
    rows = [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()[:24]] + [INJECTED]
    settings = load_settings(home=root / "home", ingest={"batch_listings": 32})
    Ingestor(settings, embedder, Store.from_settings(settings)).run(read_listings(str(write_jsonl(root / "jobs.jsonl", rows)), settings),
                                                                    progress=False)
    env = serve_env(root / "home", root / "config", llm__mode="none", server__api_key=KEY)
    with serve_subprocess(env, [], root / "serve.log") as served, httpx.Client(base_url=served.url, headers=AUTH, timeout=120) as client:
        yield client


def test_health_readiness_collections_and_docs(api) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["ready"] and ready["llm"] == "none" and ready["embedder"].endswith("all-MiniLM-L6-v2")
    [collection] = api.get("/v1/collections").json()
    assert collection["default"] and collection["model"].endswith("all-MiniLM-L6-v2") and collection["chunks"] >= 25
    assert collection["version"]  # the ingest recorded one
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/v1/search", "/v1/ask", "/v1/chat/completions", "/v1/collections", "/healthz", "/readyz"} <= set(paths)
    assert api.get("/docs").status_code == 200
    assert httpx.get(f"{base(api)}/v1/collections").status_code == 401  # the key is on


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_search_ranks_listings_with_passages_scores_and_understood_constraints(api, retriever) -> None:
    found = api.post("/v1/search", json={"query": "forklift operator in a warehouse", "retriever": retriever, "k": 3}).json()
    assert found["retriever"] == retriever and [s["rank"] for s in found["sources"]] == [1, 2, 3]
    assert "sample-0013" in [s["id"] for s in found["sources"]]  # the Junior Forklift Operator
    assert all(s["chunk"] and isinstance(s["score"], float) for s in found["sources"])
    constrained = api.post("/v1/search", json={"query": "remote accountant paying over $80k", "retriever": retriever, "k": 4}).json()
    assert {c["key"] for c in constrained["understood"]} >= {"workplace", "min_pay"} and constrained["constraints_applied"]
    first = constrained["sources"][0]
    assert first["id"] == "sample-0005" and first["unmet"] == [] and first["metadata"]["workplace"] == "Remote"
    for s in constrained["sources"][constrained["constraints_met"]:]:  # then the closest matches, each saying what it misses
        assert s["unmet"] or s["metadata"]["workplace"] == "Remote"  # (or a weaker match that meets them, after those)
    dropped = api.post("/v1/search", json={"query": "remote accountant paying over $80k", "retriever": retriever, "ignore": ["workplace"]}).json()
    assert dropped["ignored"] == ["workplace"]
    filtered = api.post("/v1/search", json={"query": "engineer", "retriever": retriever, "filters": {"workplace": ["Hybrid"]}}).json()
    assert filtered["sources"] and all(s["metadata"]["workplace"] == "Hybrid" for s in filtered["sources"])


def test_ask_returns_the_answer_and_streams_sources_tokens_then_the_answer(api) -> None:
    body = {"question": "pharmacist jobs in Houston", "k": 3}
    answer = api.post("/v1/ask", json=body).json()
    assert answer["sources"] and answer["cited_ids"] and all(f"[{i}]" in answer["text"] for i in answer["cited_ids"])
    assert "sample-0022" in answer["cited_ids"] and answer["timings"]["retrieve_ms"] > 0 and answer["llm"] == "none"
    assert {c["key"] for c in answer["understood_filters"]} == {"location"}
    events = sse_json(api.post("/v1/ask", json=body | {"stream": True}).text)
    kinds = [name for name, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "answer" and set(kinds[1:-1]) == {"token"}
    streamed = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "token").strip() == streamed["text"] == answer["text"]
    follow = api.post("/v1/ask", json={"question": "which of those are full-time?", "history": [answer]}).json()
    assert follow["sources"] and {s["id"] for s in follow["sources"]} <= {s["id"] for s in answer["sources"]}


def test_the_openai_client_gets_a_cited_answer_with_the_listings_in_the_extension(api) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{base(api)}/v1", api_key=KEY, max_retries=0)
    response = client.chat.completions.create(model="jobrag", messages=[{"role": "system", "content": "be brief"},
                                                                         {"role": "user", "content": "sous chef"}])
    content, extension = response.choices[0].message.content, response.model_extra["jobrag"]
    assert extension["cited_ids"] and all(f"[{i}]" in content for i in extension["cited_ids"]) and "sample-0008" in extension["cited_ids"]
    assert {s["id"] for s in extension["sources"]} >= set(extension["cited_ids"]) and response.model == "jobrag"
    chunks = list(client.chat.completions.create(model="jobrag", stream=True, messages=[{"role": "user", "content": "sous chef"}],
                                                 extra_body={"jobrag": {"k": 2, "retriever": "hybrid"}}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1].model_extra["jobrag"]
    assert chunks[-1].choices[0].finish_reason == "stop" and len(last["sources"]) == 2 and all(f"[{i}]" in streamed for i in last["cited_ids"])
    follow = client.chat.completions.create(model="jobrag", messages=[{"role": "user", "content": "sous chef"},
                                                                       {"role": "assistant", "content": content},
                                                                       {"role": "user", "content": "which of those are full-time?"}])
    assert set(follow.model_extra["jobrag"]["cited_ids"]) <= {s["id"] for s in extension["sources"]}  # read back from the citations
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{base(api)}/v1", api_key="wrong", max_retries=0).chat.completions.create(
            model="jobrag", messages=[{"role": "user", "content": "sous chef"}])


BAD = [("/v1/search", {"query": ""}, "query"), ("/v1/search", {"query": "x" * 1001}, "query"), ("/v1/search", {"query": "x", "k": 0}, "k"),
       ("/v1/search", {"query": "x", "k": 51}, "k"), ("/v1/search", {"query": "x", "filters": {"salary": "1"}}, "filters.salary"),
       ("/v1/search", {"query": "x", "filters": {"min_pay": -5}}, "filters.min_pay"), ("/v1/search", {"query": "x", "ignore": ["pay"]}, "ignore.0"),
       ("/v1/search", {"query": "x", "retriever": "sparse"}, "retriever"), ("/v1/search", {"query": "x", "retriever": "dense:/tmp/model"}, "retriever"),
       ("/v1/search", {"query": "x", "colour": "red"}, "colour"), ("/v1/search", {}, "query"),
       ("/v1/ask", {"question": "x" * 1001}, "question"), ("/v1/ask", {"question": "x", "history": [{"question": "q"}]}, "history.0.query"),
       ("/v1/ask", {"question": "x", "stream": "often"}, "stream"),
       ("/v1/chat/completions", {"messages": []}, "messages"), ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
       ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}, "messages"),
       ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "jobrag": {"k": 99}}, "jobrag.k"),
       ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "jobrag": {"retriever": "bm25:nope"}}, "jobrag.retriever")]


@pytest.mark.parametrize(("path", "body", "field"), BAD, ids=[f"{p}:{f}" for p, _, f in BAD])
def test_bad_input_is_422_naming_the_field(api, path, body, field) -> None:
    response = api.post(path, json=body)
    assert response.status_code == 422, response.text[:500]
    error = response.json()["error"]
    assert error["field"] == field and error["message"].startswith(f"{field}: ") and error["request_id"]


def test_a_hostile_listing_reaches_no_client_as_active_content(api) -> None:
    question = "night shift warehouse associate forklift in Reno"
    responses = [api.post("/v1/search", json={"query": question, "retriever": r}).json() for r in ("dense", "bm25", "hybrid")]
    responses.append(api.post("/v1/ask", json={"question": question}).json())
    responses.append(api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]}).json())
    responses.append(sse_json(api.post("/v1/ask", json={"question": question, "stream": True}).text))
    for response in responses:
        text = json.dumps(response, ensure_ascii=False)
        assert "evil-1" in text
        assert [p for p in ACTIVE_CONTENT if re.search(p, text)] == []
