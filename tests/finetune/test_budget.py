"""`finetune --time-budget`: durations, the plan's arithmetic on a fake clock, and a tiny real run that fits its plan."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from finetune import card
from finetune.budget import (
    CHECKPOINT_S,
    MINING_SHARE,
    PROBE_STEPS,
    SLACK,
    Budget,
    BudgetCallback,
    choose_negatives,
    encodings,
    eval_subset,
    parse_duration,
)
from finetune.train import fit
from rag_app.errors import ConfigError
from rag_app.records import IRSplit
from tests.finetune.test_train import fs, ir_data


def test_durations_take_seconds_minutes_and_hours() -> None:
    assert [parse_duration(t) for t in ("90s", "10m", "1h", "1.5h", " 45 ")] == [90, 600, 3600, 5400, 45]
    for bad in ("", "10 minutes", "-5m", "0s", "m"):
        with pytest.raises(ConfigError, match="like 90s, 10m or 1h"):
            parse_duration(bad)


def _state(max_steps: int, step: int) -> SimpleNamespace:
    return SimpleNamespace(max_steps=max_steps, global_step=step, eval_steps=10**9, save_steps=10**9)


def _control() -> SimpleNamespace:
    return SimpleNamespace(should_training_stop=False, should_evaluate=False, should_save=False)


def _scheduler():
    import torch
    from transformers import get_scheduler

    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1e-4)
    return get_scheduler("linear", optimizer, num_warmup_steps=10, num_training_steps=100)


def test_the_plan_fits_the_budget_and_reschedules_warmup_and_decay() -> None:
    callback = BudgetCallback(Budget(seconds=100, started=0.0, eval_s=5.0, closing_s=10.0), warmup_ratio=0.1, evaluate=True)
    callback.on_train_begin(None, _state(100, 0), _control())  # the full schedule: 100 steps
    callback.step_times = [3.0, 1.0, 1.0, 1.0]  # the first step carries one-off costs and is left out
    state, control, scheduler = _state(100, 4), _control(), _scheduler()
    for _ in range(4):
        scheduler.optimizer.step()
        scheduler.step()
    callback._make_plan(SimpleNamespace(lr_scheduler_type="linear", lr_scheduler_kwargs={}), state, control, scheduler, now=30.0)
    plan, planned = callback.plan, state.max_steps
    eval_cost, left = 5.0 + CHECKPOINT_S, 100 * (1 - SLACK) - 10.0 - 30.0
    assert plan["seconds_per_step"] == 1.0 and plan["evaluations"] == 1  # 20% of the 55 s left buys one evaluation
    assert plan["planned_steps"] == planned == 4 + int((left - eval_cost) / 1.0) == 52
    assert plan["estimated_total_s"] <= 100 and state.eval_steps == state.save_steps == planned  # evaluated (and kept) on the last step
    assert plan["warmup_steps"] == math.ceil(0.1 * planned) and plan["lr_rescheduled"]
    lrs = []
    for _ in range(planned - 4):
        lrs.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    assert scheduler.get_last_lr()[0] == 0.0 and max(lrs) == pytest.approx(1e-4, rel=0.05)  # decays to 0 exactly at the planned end
    assert not control.should_training_stop
    control = _control()
    control.should_training_stop = True  # the first plan ended at step 4: the trainer's flow callback (run first) stopped it
    state = _state(4, 4)
    callback._upper = 100
    callback._make_plan(SimpleNamespace(lr_scheduler_type="linear", lr_scheduler_kwargs={}), state, control, _scheduler(), now=30.0)
    assert state.max_steps == 52 and not control.should_training_stop  # the second plan, with more room, resumes the run


def test_a_slow_first_step_does_not_cut_the_run_before_the_steps_are_timed() -> None:
    """jobs_b at 5 minutes: the first step took 24 s (one-off costs), steady steps 9 s; the first plan fitted 2 more."""
    callback = BudgetCallback(Budget(seconds=300, started=0.0, eval_s=20.0, closing_s=60.0), warmup_ratio=0.1, evaluate=True)
    callback.on_train_begin(None, _state(114, 0), _control())
    args = SimpleNamespace(lr_scheduler_type="linear", lr_scheduler_kwargs={})
    callback.step_times = [24.0]
    state, control = _state(114, 1), _control()
    callback._make_plan(args, state, control, _scheduler(), now=130.0)  # 300*0.95-60-130 = 95 s left: 3 steps at 24 s/step
    assert state.max_steps == 1 + PROBE_STEPS and not control.should_training_stop  # runs to the probe step, where it plans again
    callback.step_times += [9.0, 9.0, 9.0]
    state = _state(1 + PROBE_STEPS, 1 + PROBE_STEPS)
    callback._make_plan(args, state, control, _scheduler(), now=130.0 + 27.0)
    assert callback.plan["seconds_per_step"] == 9.0 and state.max_steps > 1 + PROBE_STEPS  # the timed pace buys more steps
    assert callback.plan["estimated_total_s"] <= 300
    callback.step_times = [24.0]  # no time for even one more step: stops at once, as before
    state, control = _state(114, 1), _control()
    callback._make_plan(args, state, control, _scheduler(), now=220.0)
    assert state.max_steps == 1 and control.should_training_stop


def test_a_generous_budget_keeps_the_full_schedule_and_a_slow_step_stops_early() -> None:
    callback = BudgetCallback(Budget(seconds=3600, started=0.0, eval_s=5.0, closing_s=10.0), warmup_ratio=0.1, evaluate=True)
    callback.on_train_begin(None, _state(40, 0), _control())
    callback.step_times = [2.0, 1.0, 1.0, 1.0]
    state, control = _state(40, 4), _control()
    callback._make_plan(SimpleNamespace(lr_scheduler_type="linear", lr_scheduler_kwargs={}), state, control, _scheduler(), now=30.0)
    assert callback.plan["planned_steps"] == 40 and callback.plan["evaluations"] == 4 and state.eval_steps == 10
    state.global_step, callback.step_times = 23, [1.0] * 23  # later on, the machine got busy: the next step would end past the deadline
    callback._guard(state, control, now=3600 * (1 - SLACK) - 10.0 - 0.5)
    assert control.should_training_stop and control.should_evaluate and control.should_save and state.max_steps == 23
    assert callback.plan["stopped_early_at_step"] == 23



@pytest.mark.slow
def test_a_budgeted_tiny_run_follows_its_plan(tmp_path) -> None:
    data = ir_data()
    settings = fs(seed=1, epochs=60, warmup_ratio=0.1)  # 480 steps at full length: far more than the budget holds
    run = fit(data, "sentence-transformers/all-MiniLM-L6-v2", tmp_path / "m", settings, hard_negatives=False, time_budget_s=45)
    plan = run.budget
    assert plan is not None and plan["full_schedule_steps"] == 480 and plan["planned_at_step"] == 4
    assert plan["planned_steps"] < 480 and plan["estimated_total_s"] <= 45  # the plan fits the budget
    assert run.steps == plan["steps_run"] == plan.get("stopped_early_at_step", plan["planned_steps"])
    evaluated = [h["step"] for h in run.history if "eval_val_cosine_ndcg@10" in h]
    assert evaluated and evaluated[-1] == run.steps and len(evaluated) <= plan["evaluations"] + 1  # the last step is evaluated
    manifest = card.write(tmp_path / "m", run, data.name, None, {}, settings.model_dump(), run.timings["train_s"] + 1)
    saved = json.loads((tmp_path / "m" / "manifest.json").read_text())["time_budget"]
    assert saved == manifest["time_budget"] and saved["planned_steps"] == plan["planned_steps"] and "actual_total_s" in saved


def _split(listings: int, per_listing: int = 2) -> IRSplit:
    corpus = {f"d{i}": f"listing {i}" for i in range(listings)}
    queries = {f"q{i}_{j}": f"query {j} for {i}" for i in range(listings) for j in range(per_listing)}
    return IRSplit(queries=queries, corpus=corpus, relevant_docs={q: [f"d{q[1:].split('_')[0]}"] for q in queries},
                   graded={q: {f"d{q[1:].split('_')[0]}": 2} for q in queries})


def test_a_budget_evaluates_on_a_seeded_sample_of_listings_with_all_their_queries() -> None:
    split = _split(600)
    sample = eval_subset(split, seed=3, listings=250)
    assert len(sample.corpus) == 250 and len(sample.queries) == 500  # every query of each sampled listing, no other
    assert all(set(docs) <= set(sample.corpus) for docs in sample.relevant_docs.values()) and set(sample.graded) == set(sample.queries)
    assert eval_subset(split, seed=3, listings=250) == sample and eval_subset(split, seed=4, listings=250).corpus != sample.corpus
    assert eval_subset(_split(100), seed=3, listings=250) == _split(100)  # small enough: the split itself


def test_dense_mining_that_would_eat_the_budget_falls_back_to_bm25_and_says_so(caplog) -> None:
    val, train = _split(250), _split(4500)  # jobs_a's shape: 4,500 train listings, 2 queries each
    per_doc = 0.06  # seconds per document encoding at the evaluation's length (2 cores, MiniLM, 256 tokens)
    eval_s = per_doc * encodings(val)
    estimate = per_doc * 0.5 * encodings(train)  # mining encodes at 128 of 256 tokens
    used, note = choose_negatives("dense", 600, eval_s, val, train, train_length=128, eval_length=256)
    assert used == "bm25" and note["requested"] == "dense" and note["estimated_dense_s"] == pytest.approx(estimate, rel=0.01)
    assert estimate > MINING_SHARE * 600 == note["limit_s"] and "mining BM25 negatives instead" in caplog.text
    assert choose_negatives("both", 600, eval_s, val, train, 128, 256)[0] == "bm25"
    assert choose_negatives("dense", 2400, eval_s, val, train, 128, 256)[0] == "dense"  # 20 minutes can afford it
    assert choose_negatives("bm25", 60, eval_s, val, train, 128, 256)[0] == "bm25"
    assert choose_negatives("dense", 60, 0.0, val, train, 128, 256)[0] == "dense"  # nothing timed (no evaluation): as asked
    used, note = choose_negatives("dense", 600, eval_s, val, train, 128, 256, pinned=True)  # --negatives-from dense: kept
    assert used == "dense" and note["pinned"] and note["estimated_dense_s"] > note["limit_s"] and "as asked" in caplog.text
