"""Batches that can be resumed exactly.

The order of training examples is a pure function of ``(seed, epoch)``, and the position in the
data is a pure function of how many micro-batches were consumed. So a resumed run, or a run split
over ranks, sees exactly the batches an uninterrupted single-process run would have seen:
global micro-batch ``k`` is ``perm_epoch[j*B : (j+1)*B]`` with ``epoch, j = divmod(k, n // B)``,
and rank ``r`` of ``W`` takes ``[r::W]`` of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableBatchSampler(Sampler[list[int]]):
    def __init__(self, n_items: int, global_batch: int, seed: int, start: int = 0,
                 rank: int = 0, world_size: int = 1):
        if global_batch % world_size:
            raise ValueError(f"global micro-batch {global_batch} does not split over {world_size} ranks")
        self.n_items, self.global_batch, self.seed = n_items, global_batch, seed
        self.start, self.rank, self.world_size = start, rank, world_size
        self.batches_per_epoch = n_items // global_batch  # the ragged tail is dropped each epoch

    def position(self, consumed: int) -> dict[str, int]:
        """Human-readable data position after ``consumed`` global micro-batches (saved in checkpoints)."""
        epoch, batch = divmod(consumed, self.batches_per_epoch)
        return {"micro_batches": consumed, "epoch": epoch, "batch_in_epoch": batch}

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n_items, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        k = self.start
        epoch, perm = None, None
        while True:
            e, j = divmod(k, self.batches_per_epoch)
            if e != epoch:
                epoch, perm = e, self._permutation(e)
            batch = perm[j * self.global_batch:(j + 1) * self.global_batch]
            yield batch[self.rank::self.world_size].tolist()
            k += 1

    def __len__(self) -> int:  # infinite; DataLoader only needs this for len(), which we never call
        return 2**62
