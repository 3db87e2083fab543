"""The trained model's paperwork: before/after metrics appended to the sentence-transformers model card, and
`manifest.json` (seeds, data hashes, generator settings, base model, loss, hyperparameters, durations, versions)."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune.train import TrainingRun


def file_hashes(directory: Path | None) -> dict[str, str]:
    if directory is None or not Path(directory).is_dir():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(Path(directory).iterdir()) if p.is_file()}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("torch", "sentence-transformers", "transformers", "datasets", "jobrag"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def metrics_table(before: dict[str, float], after: dict[str, float]) -> str:
    rows = ["| metric | base | fine-tuned | delta |", "|---|---|---|---|"]
    for key in sorted(set(before) & set(after)):
        if isinstance(before[key], (int, float)):
            rows.append(f"| {key} | {before[key]:.4f} | {after[key]:.4f} | {after[key] - before[key]:+.4f} |")
    return "\n".join(rows)


def write(out_dir: Path, run: TrainingRun, data_name: str, data_dir: Path | None, data_meta: dict[str, Any], settings: dict[str, Any],
          total_seconds: float) -> dict[str, Any]:
    manifest = {
        "model_dir": str(out_dir), "base_model": run.base_model, "base_weights_sha256_16": run.base_weights,
        "weights_sha256_16": run.weights, "data": {"name": data_name, "dir": str(data_dir) if data_dir else None,
                                                      "file_sha256_16": file_hashes(data_dir), "meta": data_meta},
        "generator": data_meta.get("generator"), "loss": run.loss, "matryoshka": run.matryoshka, "hyperparameters": settings,
        "seed": settings.get("seed"), "hard_negatives": run.hard_negatives, "train_rows": run.train_rows, "steps": run.steps,
        "train_loss": run.train_loss, "metrics_before": run.before, "metrics_after": run.after,
        "primary_metric": run.primary_metric, "durations_s": {**run.timings, "total_s": total_seconds}, "versions": versions(),
    }
    if run.budget is not None:  # --time-budget: the plan, and how long the run really took against it
        manifest["time_budget"] = {**run.budget, "actual_total_s": round(total_seconds, 1),
                                   "within_budget": total_seconds <= run.budget["budget_s"]}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    card = out_dir / "README.md"
    section = (f"\n\n## jobrag: before and after fine-tuning\n\nData: `{data_name}`; loss `{run.loss}`; {run.train_rows} training rows; "
               f"{run.steps} steps; seed {settings.get('seed')}. Full provenance in `manifest.json`.\n\n"
               f"{metrics_table(run.before, run.after)}\n")
    card.write_text((card.read_text(encoding="utf-8") if card.exists() else "") + section, encoding="utf-8")
    return manifest


def append_fusion(out_dir: Path, choice: Any) -> None:
    """Add the tuned hybrid fusion (a `rag_app.fusion.FusionChoice`, also in fusion.json) to the model card."""
    rows = ["| weight | " + " | ".join(choice.candidates) + " |", "|---|" + "---|" * len(choice.candidates)]
    weights = list(next(iter(choice.candidates.values())))
    rows += [f"| {w} | " + " | ".join(f"{choice.candidates[m][w]:.4f}" for m in choice.candidates) + " |" for w in weights]
    best = f"convex, alpha {choice.alpha:g}" if choice.method == "convex" else f"rrf, dense {choice.dense_weight:g} / BM25 {choice.bm25_weight:g}"
    section = (f"\n\n## jobrag: hybrid fusion\n\nTuned on the val split ({choice.split.get('queries')} queries, {choice.split.get('corpus')} "
               f"listings): **{best}** ({choice.metric} {choice.value:.4f}); `hybrid:` retrievers over this model use it unless "
               f"`retrieval.fusion` is set. {choice.metric.capitalize()} per candidate weight (convex: alpha; rrf: dense weight, BM25 = 1 - it):\n\n"
               + "\n".join(rows) + "\n")
    card = out_dir / "README.md"
    card.write_text((card.read_text(encoding="utf-8") if card.exists() else "") + section, encoding="utf-8")
