"""`finetune --time-budget`: size a fine-tune's schedule so the whole run ends inside a wall-clock budget.

The trainer starts with its full schedule (the epochs, or `--max-steps`) as the upper bound and evaluation parked. A
transformers `TrainerCallback` plans after the first step (timed with its one-off costs, so the plan errs short: when
there is time for any further step it runs at least to the probe, with the guard below watching the clock) and
plans again once a few more steps are timed (the first left out): what is left of the budget, minus the closing work (evaluating the final model, saving it: timed as the
evaluation before training), pays for N evaluations (each timed the same way, plus a checkpoint) and as many steps as fit
at the measured pace, never more than the full schedule. The warm-up (`finetune.warmup_ratio` of the new total) and the
decay are recomputed for the new total, and the evaluations are spread evenly, the last on the final step, so the best
checkpoint is kept as without a budget. While training it keeps an eye on the clock: if steps slow down (a busy machine)
it stops early, evaluating and saving that step. The plan and what happened go into the manifest.

What comes before the first step is sized to the budget too, because on a small CPU it can eat most of it (jobs_a,
10 minutes, 2 cores: 84 s evaluating the base model, 196 s mining dense negatives, 70 s evaluating the result):
- the val evaluator runs on a seeded sample of val listings (`eval_subset`: at most `EVAL_LISTINGS`, every query of
  each), recorded as such: evaluated three or more times, it is the largest fixed cost after mining;
- dense negatives (the base model encoding the whole train corpus) are replaced by BM25 negatives when their
  estimated cost, extrapolated from the timed first evaluation, exceeds `MINING_SHARE` of the budget
  (`choose_negatives`); the manifest records what was asked, what ran and why.
"""

from __future__ import annotations

import logging
import math
import random
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

from rag_app.errors import ConfigError
from rag_app.records import IRSplit

logger = logging.getLogger(__name__)
PROBE_STEPS = 3  # steps timed (after the first) before the second, final plan
MAX_EVALS = 4  # evaluations spread over a budgeted run
EVAL_SHARE = 0.2  # at most this share of the training time goes to evaluations (at least one is kept)
CHECKPOINT_S = 2.0  # a checkpoint save (model only), until one has been timed
SLACK = 0.05  # share of the budget kept free for what no plan foresees (a step slowed by a busy machine)
EVAL_LISTINGS = 250  # val listings (with all their queries) a budgeted run evaluates on
MINING_SHARE = 0.25  # dense mining may take at most this share of a budget
QUERY_COST = 0.1  # a short query costs about this share of a document encoding
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """'90s', '10m', '1.5h' or plain seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text or "")
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"time budget {text!r}: give a positive duration like 90s, 10m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass
class Budget:
    """The budget and the costs measured before training."""

    seconds: float
    started: float  # time.perf_counter() when the fine-tune started
    eval_s: float  # one evaluation of the val split (0 when training without evaluation)
    closing_s: float  # work after the last step: evaluating every evaluator again and saving the model

    @property
    def deadline(self) -> float:
        """When the last training step (and its evaluation) must be done."""
        return self.started + self.seconds * (1 - SLACK) - self.closing_s


def eval_subset(split: IRSplit, seed: int, listings: int = EVAL_LISTINGS) -> IRSplit:
    """A seeded sample of `listings` val listings with every query that has one of them relevant (the split itself if smaller)."""
    if len(split.corpus) <= listings:
        return split
    keep = set(random.Random(seed).sample(sorted(split.corpus), listings))
    relevant = {q: [d for d in docs if d in keep] for q, docs in split.relevant_docs.items()}
    relevant = {q: docs for q, docs in relevant.items() if docs and q in split.queries}
    return IRSplit(queries={q: split.queries[q] for q in relevant}, corpus={d: split.corpus[d] for d in sorted(keep)},
                   relevant_docs=relevant, graded={q: g for q, g in split.graded.items() if q in relevant})


def encodings(split: IRSplit) -> float:
    """The work of one evaluation pass, in document encodings (queries are short)."""
    return len(split.corpus) + QUERY_COST * len(split.queries)


def choose_negatives(requested: str, budget_s: float, eval_s: float, eval_split: IRSplit, train: IRSplit,
                     train_length: int, eval_length: int, pinned: bool = False) -> tuple[str, dict[str, Any]]:
    """`bm25` in place of `dense`/`both` when dense mining would cost more than MINING_SHARE of the budget, unless the
    user `pinned` the source (`--negatives-from` given): then it is kept and the estimate only recorded.

    The cost is extrapolated from the timed evaluation: seconds per document encoding, scaled by the training length
    (mining encodes at `train_length` tokens, the evaluation at `eval_length`), times the train corpus and its queries.
    """
    if requested == "bm25" or eval_s <= 0:
        return requested, {"requested": requested, "used": requested}
    per_doc = eval_s / max(encodings(eval_split), 1.0) * min(1.0, train_length / max(eval_length, 1))
    estimate = per_doc * encodings(train)
    limit = MINING_SHARE * budget_s
    used = "bm25" if estimate > limit and not pinned else requested
    if estimate > limit:
        logger.warning("time budget %.0fs: mining %s negatives would take about %.0fs (over %.0f%% of it); %s", budget_s, requested,
                       estimate, 100 * MINING_SHARE, "mining them as asked (--negatives-from)" if pinned else
                       f"mining BM25 negatives instead (give a larger budget to keep {requested})")
    note = {"requested": requested, "used": used, "estimated_dense_s": round(estimate, 1), "limit_s": round(limit, 1)}
    return used, note | ({"pinned": True} if pinned else {})


class BudgetCallback(TrainerCallback):
    """Times the first steps, then resizes the schedule to `budget` (see the module docstring); `plan` records it."""

    def __init__(self, budget: Budget, warmup_ratio: float, evaluate: bool) -> None:
        self.budget, self.warmup_ratio, self.evaluate = budget, warmup_ratio, evaluate
        self.eval_cost = budget.eval_s + CHECKPOINT_S if evaluate else 0.0
        self.step_times: list[float] = []
        self.plan: dict[str, Any] = {}
        self._step_started = self._last_step_end = self._evaluated_at = 0.0
        self._upper = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._upper = state.max_steps

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step_started = time.perf_counter()
        if self._evaluated_at:  # an evaluation + checkpoint ran since the last step ended: keep the dearest seen
            self.eval_cost = max(self.eval_cost, self._step_started - self._evaluated_at)
            self._evaluated_at = 0.0

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._evaluated_at = self._evaluated_at or self._last_step_end

    def on_step_end(self, args: Any, state: Any, control: Any, lr_scheduler: Any = None, **kwargs: Any) -> None:
        now = self._last_step_end = time.perf_counter()
        self.step_times.append(now - self._step_started)
        if state.global_step in (1, PROBE_STEPS + 1):
            self._make_plan(args, state, control, lr_scheduler, now)
        elif state.global_step < state.max_steps:
            self._guard(state, control, now)

    def _make_plan(self, args: Any, state: Any, control: Any, lr_scheduler: Any, now: float) -> None:
        timed = self.step_times[1:] or self.step_times  # the first step pays for warm-up allocations
        pace = statistics.median(timed)
        left = self.budget.deadline - now
        evals = max(1, min(MAX_EVALS, int(EVAL_SHARE * left / self.eval_cost))) if self.evaluate and self.eval_cost else 0
        fit = max(0, int((left - evals * self.eval_cost) / pace))
        if fit and state.global_step == 1:  # the first step's one-off costs can be 3x a step: run to the probe, the guard watches
            fit = max(fit, PROBE_STEPS)
        planned = max(state.global_step, min(self._upper, state.global_step + fit))
        if planned == state.global_step < self._upper:
            logger.warning("time budget %.0fs: no time left to train after %.0fs of loading, evaluating and mining (and %.0fs reserved "
                           "for the end); stopping at step %d: give a larger budget", self.budget.seconds, now - self.budget.started,
                           self.budget.closing_s, state.global_step)
        every = math.ceil(planned / evals) if evals else planned
        warmup = math.ceil(self.warmup_ratio * planned)
        state.max_steps = planned
        if self.evaluate:
            state.eval_steps = state.save_steps = every
        rescheduled = _reschedule(lr_scheduler, args, warmup, planned)
        if planned <= state.global_step:
            self._stop(state, control)
        else:  # a first plan that ended at this step had the trainer's flow callback (it runs first) stop it
            control.should_training_stop = False
        self.plan = {"budget_s": self.budget.seconds, "planned_at_step": state.global_step, "planned_at_s": round(now - self.budget.started, 1),
                     "seconds_per_step": round(pace, 3), "timed_steps": len(timed), "eval_cost_s": round(self.eval_cost, 1),
                     "closing_reserve_s": round(self.budget.closing_s, 1), "full_schedule_steps": self._upper, "planned_steps": planned,
                     "warmup_steps": warmup, "eval_every": every if evals else None, "evaluations": evals, "lr_rescheduled": rescheduled,
                     "estimated_total_s": round(now - self.budget.started + (planned - state.global_step) * pace + evals * self.eval_cost
                                                + self.budget.closing_s, 1)}
        logger.info("time budget %.0fs: %d steps at %.2fs/step (full schedule %d), %d evaluation(s), warm-up %d",
                    self.budget.seconds, planned, pace, self._upper, evals, warmup)

    def _guard(self, state: Any, control: Any, now: float) -> None:
        """Stop at this step when the next one (and the evaluations due) would run past the deadline."""
        pace = statistics.median(self.step_times[-5:])
        following = state.global_step + 1
        due_next = self.evaluate and (following % state.eval_steps == 0 or following >= state.max_steps)
        need = (self.eval_cost if control.should_evaluate else 0.0) + pace + (self.eval_cost if due_next else 0.0)
        if now + need > self.budget.deadline:
            logger.warning("time budget: stopping at step %d of %d (steps are slower than planned)", state.global_step, state.max_steps)
            self.plan["stopped_early_at_step"] = state.global_step
            self._stop(state, control)

    def _stop(self, state: Any, control: Any) -> None:
        state.max_steps = state.global_step
        control.should_training_stop = True
        if self.evaluate:  # the final step is evaluated and saved, so the best checkpoint is chosen as usual
            control.should_evaluate = control.should_save = True


def _reschedule(lr_scheduler: Any, args: Any, warmup: int, total: int) -> bool:
    """Give the trainer's LambdaLR the schedule it would have built for `total` steps; False when it is another kind."""
    import torch
    from transformers import get_scheduler

    inner = getattr(lr_scheduler, "scheduler", lr_scheduler)  # accelerate may wrap it
    if not isinstance(inner, torch.optim.lr_scheduler.LambdaLR):
        logger.info("time budget: %s is not a LambdaLR; the learning-rate schedule keeps its original length", type(inner).__name__)
        return False
    scratch = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    fresh = get_scheduler(args.lr_scheduler_type, scratch, num_warmup_steps=warmup, num_training_steps=total,
                          scheduler_specific_kwargs=args.lr_scheduler_kwargs or {})
    inner.lr_lambdas = [fresh.lr_lambdas[0]] * len(inner.lr_lambdas)
    for group, base in zip(inner.optimizer.param_groups, inner.base_lrs):  # the next optimizer step already uses the new schedule
        group["lr"] = base * inner.lr_lambdas[0](inner.last_epoch)
    inner._last_lr = [g["lr"] for g in inner.optimizer.param_groups]
    return True
