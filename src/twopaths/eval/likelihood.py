"""A model's likelihood bound on a data split, in bits per dimension (``twopaths eval --metrics nll``)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

__all__ = ["likelihood_bound"]


def likelihood_bound(run: Any, dataset: Any, max_batches: int | None = None) -> dict[str, float]:
    """Bits per dimension of ``dataset`` under ``run``'s model from its likelihood bound (``nll_bits_per_dim``:
    for diffusion the full variational bound, T network evaluations per batch), and the prior term's share."""
    model = run.model
    loader = DataLoader(dataset, batch_size=min(64, len(dataset)))
    total = min(len(loader), max_batches) if max_batches else len(loader)
    bits, prior = [], []
    # a diffusion bound costs T network evaluations per batch: the bar counts those, so it moves within a batch
    per_batch = model.schedule.T if run.spec.evaluation == "diffusion" else 1
    with tqdm(total=total * per_batch, desc="VLB" if per_batch > 1 else "likelihood bound",
              unit="net evals" if per_batch > 1 else "batch") as bar:
        for i, batch in enumerate(loader):
            if i >= total:
                break
            x = batch[model.data_key]
            y = batch["label"] if model.num_classes else None
            if per_batch > 1:
                out = model.nll_bits_per_dim(x, y, on_step=lambda: bar.update(1))
            else:
                out = model.nll_bits_per_dim(x, y)
                bar.update(1)
            bits.append(out["bits_per_dim"])
            prior.append(out["prior_bits_per_dim"])
    return {"nll_bits_per_dim": float(torch.cat(bits).mean()), "prior_bits_per_dim": float(torch.cat(prior).mean())}
