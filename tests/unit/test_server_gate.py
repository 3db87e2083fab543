"""The generation gate (bounded queue in front of the LLM), the shard hash, and the API's edge in-process (no models)."""

from __future__ import annotations

import threading

import pytest

from ingest.pipeline import in_shard
from rag_app.cli.cmd_ingest import parse_shard
from rag_app.errors import ConfigError
from rag_app.server.runtime import GatedLLM, GenerationGate, QueueFull


def test_the_gate_admits_running_plus_queued_and_refuses_one_more_at_once() -> None:
    gate = GenerationGate(concurrency=2, queue=1, wait_s=0.2)
    tickets = [gate.admit() for _ in range(3)]
    with pytest.raises(QueueFull, match="server.llm_concurrency"):
        gate.admit()
    tickets[0].release()
    tickets[0].release()  # idempotent: the stream's end and its finaliser may both call it
    assert gate.admitted == 2
    tickets.append(gate.admit())
    with pytest.raises(QueueFull):
        gate.admit()


def test_a_stream_holds_a_slot_until_it_ends_or_is_closed_and_a_waiter_times_out() -> None:
    gate = GenerationGate(concurrency=1, queue=0, wait_s=0.2)

    class Model:
        def stream_chat(self, messages, **kw):
            yield from ("a", "b", "c")

    llm = GatedLLM(Model(), gate)
    first = llm.stream_chat([])
    assert next(first) == "a"  # holds the only slot now
    with pytest.raises(TimeoutError, match="server.llm_queue_timeout_s"):
        next(llm.stream_chat([]))
    first.close()  # the engine stops reading early (one framing line): the slot comes back
    assert list(llm.stream_chat([])) == ["a", "b", "c"]
    released = threading.Event()

    def other_thread() -> None:
        stream = llm.stream_chat([])
        next(stream)
        stream.close()
        released.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join(5)
    assert released.is_set() and list(llm.stream_chat([])) == ["a", "b", "c"]


def test_shards_partition_listings_stably() -> None:
    ids = [f"job-{i}" for i in range(500)]
    owners = [[k for k in (1, 2, 3) if in_shard(i, k, 3)] for i in ids]
    assert all(len(o) == 1 for o in owners)  # exactly one shard each
    sizes = [sum(o == [k] for o in owners) for k in (1, 2, 3)]
    assert min(sizes) > 120  # spread, not all in one
    # a stable hash (not Python's seeded hash()): the same owner on every machine, pinned here
    assert {i: next(k for k in (1, 2, 3) if in_shard(i, k, 3)) for i in ("job-1", "job-2", "job-3", "sample-0001")} == \
        {"job-1": 2, "job-2": 3, "job-3": 1, "sample-0001": 1}
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) is None
    for bad in ("0/2", "3/2", "1-2", "a/b"):
        with pytest.raises(ConfigError, match="K/N"):
            parse_shard(bad)
