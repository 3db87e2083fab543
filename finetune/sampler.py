"""A batch sampler for in-batch-negative losses: no text twice in a batch, and no two rows of one entity (company).

sentence-transformers' NoDuplicatesBatchSampler prevents repeated texts; two postings of the same employer are
different texts but often near-identical, so as in-batch negatives they teach the model to push apart what a job
seeker would call equally relevant. This sampler adds the row's entities to the duplicate check: its leakage group
(company) and, unless `finetune.same_role_negatives` is on, its occupation (core title), so that another employer's
posting for the same job never serves as an in-batch negative either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from sentence_transformers.base.sampler import DefaultBatchSampler


class EntityNoDuplicatesBatchSampler(DefaultBatchSampler):
    def __init__(self, dataset: Any, batch_size: int, drop_last: bool, entities: list[str | tuple[str, ...]], valid_label_columns: list[str] | None = None,
                 generator: torch.Generator | None = None, seed: int = 0) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last, valid_label_columns=valid_label_columns,
                         generator=generator, seed=seed)
        columns = [c for c in dataset.column_names if c not in (valid_label_columns or ["label", "score"])]
        rows = zip(*(dataset[c] for c in columns))
        keys = [(e,) if isinstance(e, str) else tuple(e) for e in entities]
        self.values = [frozenset({hash(t) for t in row} | {hash(f"entity:{k}") for k in keys[i]}) for i, row in enumerate(rows)]

    def __iter__(self) -> Iterator[list[int]]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        pending = torch.randperm(len(self.values), generator=gen).tolist()
        while pending:
            batch: list[int] = []
            seen: set[int] = set()
            deferred: list[int] = []
            for pos, idx in enumerate(pending):
                if len(batch) == self.batch_size:
                    deferred.extend(pending[pos:])
                    break
                if self.values[idx] & seen:
                    deferred.append(idx)
                else:
                    batch.append(idx)
                    seen |= self.values[idx]
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch
            pending = deferred
