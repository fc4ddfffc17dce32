"""A trained run's mean loss on a split, with what its family reports beside it (perplexity, bits/dim...)."""

from __future__ import annotations

from typing import Any

import torch

from twopaths.errors import TwopathsError


def loss_metrics(run: Any, split: str = "val", *, n: int | None = None, batches: int | None = None,
                 loss: bool = True, nll: bool = False, progress: bool = False) -> dict[str, Any]:
    """``{"split", "items", "loss", ...}``: the item-weighted mean of ``run.model.loss`` over the first ``n``
    items (or ``batches`` batches) of ``split`` of a run loaded with its data, plus the model spec's report
    of it (unless ``loss=False``); ``nll`` adds the likelihood bound (:func:`twopaths.eval.likelihood.likelihood_bound`). Seeded,
    so a stochastic loss (diffusion's t and noise) gives the same number every time."""
    from twopaths.training.trainer import mean_loss

    if split not in ("train", "val", "test"):
        raise TwopathsError(f"unknown split '{split}'; use train, val or test")
    dataset = getattr(run.splits, split)
    if n is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(n, len(dataset))))
    torch.manual_seed(0)
    metrics: dict[str, Any] = {"split": split, "items": len(dataset)}
    with torch.no_grad():
        if loss:
            mean = mean_loss(run.model, dataset, run.cfg.train.batch_size, torch.device("cpu"), max_batches=batches,
                             progress=progress)
            metrics.update(run.spec.report(mean, run.meta))
        if nll:
            from twopaths.eval.likelihood import likelihood_bound

            if not hasattr(run.model, "nll_bits_per_dim"):
                raise TwopathsError(f"model '{run.cfg.model}' has no likelihood bound; use --metrics loss")
            metrics.update(likelihood_bound(run, dataset, batches))
    return metrics
