"""The Python API: the CLI's train, sample, generate and eval as functions (``import twopaths as tp``).

    run = tp.train("mlp-lm", data="fortunes", out="runs/mlp", train={"max_steps": 200})
    print(run.generate("The secret of", max_new_tokens=50))
    run = tp.load("runs/ddpm")
    images = run.sample(16, sampler="dpmpp", steps=20)      # (16, C, H, W) in [-1, 1]
    tp.evaluate(run, metrics=["fid", "kid"], n=1000)

Each function calls the same code as its command (:mod:`twopaths.runs`, :mod:`twopaths.eval`), checks
its arguments as the command does and raises :class:`~twopaths.errors.TwopathsError` with the same
message the command prints. See docs/python-api.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from twopaths.errors import TwopathsError
from twopaths.runs import LoadedRun, load_run, train_run, training_config


@dataclass
class Run:
    """A trained run: ``model`` (the paradigm, EMA weights, eval mode), ``cfg`` (its RunConfig), ``path``."""

    loaded: LoadedRun

    @property
    def model(self) -> Any:
        return self.loaded.model

    @property
    def cfg(self) -> Any:
        return self.loaded.cfg

    @property
    def path(self) -> Path:
        return self.loaded.run_dir

    @property
    def step(self) -> int:
        return self.loaded.checkpoint.step

    def sample(self, n: int, *, sampler: str | None = None, steps: int | None = None, guidance: float = 1.0,
               seed: int = 0, spacing: str = "leading") -> torch.Tensor:
        """``n`` samples (n, ...) on the CPU: images in [-1, 1] or 2-D points. Diffusion models use
        ``sampler`` with ``steps`` (default: the run's own, ``arch.sampler`` and ``arch.sample_steps``) and classifier-free ``guidance``; class-conditional
        models cycle through the classes; the same ``seed`` gives the same samples."""
        from twopaths.eval.images import sample_model

        if "tokenizer" in self.loaded.meta:
            raise TwopathsError(f"model '{self.cfg.model}' generates text: use run.generate(prompt)")
        _positive(n=n, steps=steps)
        _finite(guidance=guidance)
        if self.loaded.spec.evaluation == "diffusion":
            T = self.cfg.arch.diffusion.timesteps
            if steps is not None and steps > T:
                raise TwopathsError(f"steps={steps} is more than the run's T = {T} training timesteps")
        with torch.no_grad():
            return sample_model(self.model, n, min(n, 500), sampler, steps, guidance, seed, progress=False,
                                spacing=spacing)

    def generate(self, prompt: str = "", *, max_new_tokens: int = 200, temperature: float = 0.8,
                 top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> str:
        """Continue ``prompt`` by up to ``max_new_tokens`` tokens (autoregressive text models); returns the
        new text. ``temperature`` 0 is greedy; ``top_k`` / ``top_p`` restrict the choice."""
        from twopaths.paradigms.autoregressive import Autoregressive, generate_text

        if not isinstance(self.model, Autoregressive) or "tokenizer" not in self.loaded.meta:
            raise TwopathsError(f"model '{self.cfg.model}' does not generate text token by token; use run.sample(n)")
        _positive(max_new_tokens=max_new_tokens, top_k=top_k)
        _finite(temperature=temperature)
        if temperature < 0:
            raise TwopathsError(f"temperature must be 0 or more, got {temperature}")
        if top_p is not None and not 0 < top_p <= 1:
            raise TwopathsError(f"top_p must be in (0, 1], got {top_p}")
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            return generate_text(self.model, self.loaded.meta["tokenizer"], prompt, max_new_tokens, temperature,
                                 top_k, top_p, [], generator)


def load(path: str | Path, *, checkpoint: str | None = None, ema: bool = True) -> Run:
    """The run in ``path`` with its newest checkpoint (or ``checkpoint``), EMA weights unless ``ema=False``."""
    return Run(load_run(Path(path), checkpoint, use_ema=ema))


def train(model: str | None = None, *, out: str | Path | None = None, data: str | None = None,
          resume: str | Path | None = None, progress: bool = False, preset: str = "auto",
          **sections: dict[str, Any]) -> Run:
    """Train ``model`` on ``data`` into ``out`` (or continue the run ``resume``) and return the trained run.

    ``preset``: ``cpu`` (sized to finish on 2 CPU cores), ``gpu`` (the full model), or ``auto`` (cpu
    unless training on CUDA), as ``twopaths train --preset``; the overrides apply on top.

    ``sections`` override config values by section, as ``--set`` does: ``train={"max_steps": 200}``,
    ``optim={"lr": 1e-3}``, ``arch={...}``, ``data={...}``. Refuses an ``out`` that already holds a run.
    """
    unknown = sorted(set(sections) - {"train", "optim", "arch", "data"})
    if unknown:
        raise TwopathsError(f"unknown config section(s) {', '.join(unknown)}; use train=, optim=, arch= or data=")
    overrides = [f"train.progress={json.dumps(progress)}"] + [
        f"{section}.{key}={json.dumps(value)}" for section, values in sections.items() for key, value in values.items()]
    cfg, run_dir = training_config(model, out=Path(out) if out is not None else None, data=data,
                                   overrides=overrides, resume=Path(resume) if resume is not None else None,
                                   preset=preset)
    train_run(cfg, run_dir, resume=resume is not None, announce=progress, preset=preset)
    return load(run_dir)


def evaluate(run: Run, metrics: list[str] | tuple[str, ...] = ("loss",), *, split: str | None = None,
             n: int | None = None, sampler: str | None = None, steps: int | None = None, guidance: float = 1.0,
             seed: int = 0) -> dict[str, Any]:
    """Metrics of a trained run, as ``twopaths eval``: ``loss`` (and what the family reports with it:
    perplexity, bits/dim) on ``split`` (default val), or sample metrics (``fid``, ``kid``, ``pr``,
    ``classes`` for images, ``modes`` for 2-D points) from ``n`` samples against real data."""
    from twopaths.data.registry import dataset_kind, load_splits
    from twopaths.eval.loss import loss_metrics
    from twopaths.eval.sampling import sample_metrics

    out: dict[str, Any] = {"step": run.step}
    sample_asked = [m for m in metrics if m != "loss"]
    if "loss" in metrics:
        loaded = run.loaded if run.loaded.splits is not None else dataclasses.replace(
            run.loaded, splits=load_splits(run.cfg.data, run.path))  # the data, not the weights again
        out.update(loss_metrics(loaded, split or "val", n=n))
    if sample_asked:
        kind = dataset_kind(run.cfg.data.name)
        out["samples"] = sample_metrics(run.loaded, run.cfg.data, kind, sample_asked, split=split, n=n, seed=seed,
                                        sampler=sampler, steps=steps, guidance=guidance)
    return out


def _positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise TwopathsError(f"{name} must be a whole number >= 1, got {value!r}")


def _finite(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise TwopathsError(f"{name} must be a finite number, got {value!r}")


__all__ = ["Run", "evaluate", "load", "train"]
