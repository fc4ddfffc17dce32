"""One training loop for every paradigm.

The trainer knows nothing about pixels, noise or tokens. It takes a :class:`Paradigm` (whose
``loss(batch)`` is a scalar) and a dataset, and does the rest: AdamW with the right exclusions,
warmup + cosine learning rate, gradient clipping and accumulation, an EMA of the weights,
bf16 autocast and ``torch.compile`` on GPU, DDP under ``torchrun``, a progress bar, metrics,
periodic evaluation and sampling hooks, atomic checkpoints and exact resume.

Exact resume: everything that decides the future of a run is in the checkpoint — weights,
optimizer moments, EMA, step (hence the learning rate), every rank's RNG states, and the data
position (see :mod:`twopaths.training.sampler`). On CPU a run killed and resumed produces the same
loss sequence bit for bit as one that was never interrupted (tested with a real SIGKILL).
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from twopaths.config import RunConfig, duration_seconds, save_config
from twopaths.errors import DataError, TrainingDiverged, TrainingInterrupted
from twopaths.paradigms.base import Paradigm
from twopaths.training import distributed
from twopaths.training.checkpoint import (capture_rng, clean_partial, latest_checkpoint, list_checkpoints,
                                       restore_rng, save_checkpoint)
from twopaths.training.clock import WARMUP_STEPS, StepClock, format_duration
from twopaths.training.ema import EMA
from twopaths.training.lock import hold
from twopaths.training.metrics import MetricsLog, read_metrics
from twopaths.training.optim import build_adamw, lr_at
from twopaths.training.sampler import ResumableBatchSampler


#: forward/backward passes ``--dry-run`` times (after one that warms up) to estimate a run's time
DRY_RUN_TIMED_STEPS = 3


@dataclass
class Hook:
    """Something to run every ``every`` steps on rank 0, e.g. writing samples.

    ``fn(trainer, step)`` may return a dict of numbers; it is logged as a metrics line with
    ``split`` = ``name``.
    """

    name: str
    every: int
    fn: Callable[[Trainer, int], dict[str, float] | None]


def move_to(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) batch to ``device``; strings and numbers stay as they are."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def mean_loss(model: Paradigm, dataset: Dataset, batch_size: int, device: torch.device,
              autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
              collate_fn: Callable | None = None, max_batches: int | None = None,
              progress: bool = False) -> float:
    """Item-weighted mean of ``model.loss`` over ``dataset`` in order (call under no_grad / eval mode)."""
    loader = DataLoader(dataset, batch_size=min(batch_size, len(dataset)), shuffle=False, collate_fn=collate_fn)
    total = min(len(loader), max_batches) if max_batches is not None else len(loader)
    loss_sum, count = 0.0, 0
    bar = tqdm(loader, total=total, disable=not progress, desc="eval", leave=False,
               mininterval=0.1 if sys.stderr.isatty() else 5.0)
    for i, batch in enumerate(bar):
        if i >= total:
            break
        batch = move_to(batch, device)
        with autocast():
            loss = model.loss(batch)
        n = model.items_in(batch)
        loss_sum += float(loss) * n
        count += n
    return loss_sum / max(count, 1)


class Trainer:
    def __init__(self, paradigm: Paradigm, train_set: Dataset, cfg: RunConfig, run_dir: str | Path,
                 val_set: Dataset | None = None, hooks: list[Hook] | tuple[Hook, ...] = (),
                 collate_fn: Callable | None = None):
        self.cfg = cfg
        self.tc = cfg.train
        self.run_dir = Path(run_dir)
        self.train_set, self.val_set = train_set, val_set
        self.hooks = list(hooks)
        self.collate_fn = collate_fn

        self.device = distributed.resolve_device(self.tc.device)
        self.dist = distributed.init_distributed(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.model = paradigm.to(self.device)
        self.use_bf16 = self.tc.precision == "bf16" or (self.tc.precision == "auto" and self.device.type == "cuda")
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls that remain use TF32 tensor cores
            torch.backends.cudnn.allow_tf32 = True

        world = self.dist.world_size
        self.micro_batch = self.tc.batch_size // self.tc.grad_accum  # global, over ranks
        if self.micro_batch % world:
            raise DataError(f"train.batch_size / train.grad_accum = {self.micro_batch} does not split evenly "
                            f"over {world} processes; choose a batch size divisible by {world * self.tc.grad_accum}")
        if len(train_set) < self.micro_batch:
            raise DataError(f"the training split has {len(train_set)} items but one batch needs {self.micro_batch} "
                            f"(train.batch_size / train.grad_accum); lower --set train.batch_size=... or use more data")

        self.optimizer = build_adamw(self.model, cfg.optim, self.device)
        self.ema = EMA(self.model, self.tc.ema_decay, self.tc.ema_warmup) if self.tc.ema_decay > 0 else None
        self.step = 0
        self.last_checkpoint: Path | None = None
        self._stop_signal: int | None = None  # set by SIGINT/SIGTERM: checkpoint at the next step boundary
        self._last_save = time.perf_counter()
        #: what an interrupted run tells the user to type to continue it (the arena sets its own command)
        self.resume_command = f"twopaths train --resume {self.run_dir}"

    # ------------------------------------------------------------------ helpers for hooks and eval

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.use_bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def eval_weights(self) -> Iterator[Paradigm]:
        """The model with EMA weights (when kept), in eval mode, under no_grad and a private RNG.

        Forking the RNG means evaluation never changes what training draws next, so turning
        evaluation on or off cannot change a run's training losses.
        """
        devices = [self.device] if self.device.type == "cuda" else []
        ema = self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext(self.model)
        with torch.random.fork_rng(devices=devices), ema, torch.no_grad():
            torch.manual_seed(self.tc.seed + 12345)
            self.model.eval()
            try:
                yield self.model
            finally:
                self.model.train()

    def evaluate(self, dataset: Dataset | None = None, max_batches: int | None = None) -> dict[str, float]:
        """Mean loss over the first ``max_batches`` batches of ``dataset`` (default: validation split)."""
        dataset = dataset if dataset is not None else self.val_set
        if dataset is None or len(dataset) == 0:
            return {}
        with self.eval_weights() as model:
            return {"loss": mean_loss(model, dataset, self.micro_batch, self.device, self.autocast,
                                      self.collate_fn, max_batches)}

    # ------------------------------------------------------------------ checkpoints

    def _save(self) -> None:
        rng_states = distributed.gather_objects(capture_rng(), self.dist)  # collective: all ranks call it
        if self.is_main:
            extra = {"data": self.sampler.position(self.step * self.tc.grad_accum),
                     "rng": rng_states, "world_size": self.dist.world_size}
            self.last_checkpoint = save_checkpoint(
                self.run_dir / "checkpoints", self.step, self.model, self.optimizer,
                self.ema.state_dict() if self.ema is not None else None, extra, self.tc.keep_last,
                self.tc.ckpt_every)
        distributed.barrier(self.dist)
        self._last_save = time.perf_counter()

    def _resume(self) -> None:
        ckpt = latest_checkpoint(self.run_dir)
        ckpt.load_model(self.model)
        ckpt.load_optimizer(self.optimizer)
        if self.ema is not None:
            if ckpt.has_ema:
                self.ema.load_state_dict(ckpt.read_ema())
            else:  # EMA turned on after the fact: start it from the current weights
                self.ema = EMA(self.model, self.tc.ema_decay, self.tc.ema_warmup)
        self.step = ckpt.step
        self.last_checkpoint = ckpt.path
        rng = ckpt.state.get("rng", [])
        if ckpt.state.get("world_size") == self.dist.world_size and len(rng) == self.dist.world_size:
            restore_rng(rng[self.dist.rank])
        else:  # a different number of processes: continue deterministically, though not bit-exactly
            torch.manual_seed(self.tc.seed + 1_000 * self.dist.rank + self.step)

    # ------------------------------------------------------------------ the loop

    def _loader(self, start_micro_batches: int) -> Iterator[Any]:
        self.sampler = ResumableBatchSampler(len(self.train_set), self.micro_batch, self.cfg.data.seed + self.tc.seed,
                                             start=start_micro_batches, rank=self.dist.rank,
                                             world_size=self.dist.world_size)
        # The loader gets its own generator: creating an iterator draws a worker seed from it, and
        # drawing from the global RNG there would shift a resumed run's dropout/noise by one draw.
        loader = DataLoader(self.train_set, batch_sampler=self.sampler, num_workers=self.tc.num_workers,
                            collate_fn=self.collate_fn, pin_memory=self.device.type == "cuda",
                            persistent_workers=self.tc.num_workers > 0,
                            generator=torch.Generator().manual_seed(self.tc.seed))
        return iter(loader)

    def _diverged(self, value: float, what: str) -> TrainingDiverged:
        if self.last_checkpoint is not None:
            keep = (f"The last good checkpoint is kept: {self.last_checkpoint}. Resume from it with a lower "
                    f"learning rate: twopaths train --resume {self.run_dir} --set optim.lr=...")
        else:
            keep = "No checkpoint had been written yet; nothing was saved from the diverged run."
        return TrainingDiverged(f"{what} became {value} at step {self.step}; training stopped without saving. "
                                f"{keep} Also check the data for NaN/inf values.")

    @contextlib.contextmanager
    def _interruptible(self) -> Iterator[None]:
        """SIGINT (Ctrl-C) and SIGTERM ask for a checkpoint at the next step boundary; a second one stops at once."""
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def request(signum: int, frame: Any) -> None:
            if self._stop_signal is not None:  # the second signal: stop now, keep the last checkpoint
                for s, handler in previous.items():
                    signal.signal(s, handler)
                raise KeyboardInterrupt
            self._stop_signal = signum
            tqdm.write(f"{signal.Signals(signum).name}: writing a checkpoint after this step, then stopping "
                       f"(press Ctrl-C again to stop at once)", file=sys.stderr)

        for s in previous:
            signal.signal(s, request)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def fit(self, resume: bool = False, announce: str | None = None) -> dict[str, Any]:
        """Train until ``train.max_steps``; returns a short summary (final step, last loss, seconds).

        The run directory is locked for the whole call (:mod:`twopaths.training.lock`); ``config.yaml`` is
        written only after a resumed checkpoint has loaded into this config's model, so a failed resume
        changes nothing on disk. SIGINT/SIGTERM end the run with a checkpoint (:class:`TrainingInterrupted`).
        ``announce`` is printed (rank 0, stderr) once the run has started, so a refused resume says only why.
        """
        with hold(self.run_dir) if self.is_main else contextlib.nullcontext(), self._interruptible():
            return self._fit(resume, announce)

    def _fit(self, resume: bool, announce: str | None) -> dict[str, Any]:
        tc = self.tc
        if self.is_main:
            clean_partial(self.run_dir / "checkpoints")
        if resume:
            self._resume()
        else:
            torch.manual_seed(tc.seed + 1_000 * self.dist.rank)  # stochastic losses differ per rank
        if self.is_main:
            save_config(self.cfg, self.run_dir / "config.yaml")
            if announce:
                print(announce, file=sys.stderr)
        first_step = self.step
        batches = self._loader(self.step * tc.grad_accum)
        # From the restored step (0 on a fresh start): lines a killed attempt wrote past it are dropped
        log = MetricsLog(self.run_dir, enabled=self.is_main, resume_step=self.step)

        model: torch.nn.Module = self.model
        if self.dist.enabled:
            model = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if tc.compile:
            model = torch.compile(model)

        params = [p for p in self.model.parameters() if p.requires_grad]
        clock = StepClock(self.step, tc.max_steps, duration_seconds(tc.max_time))
        bar = tqdm(total=tc.max_steps, initial=self.step, disable=not (self.is_main and tc.progress),
                   unit="step", dynamic_ncols=True, desc=self.cfg.model or "train",
                   mininterval=0.1 if sys.stderr.isatty() else 5.0)  # logs get a line every 5 s, not a flood
        window_items, window_start, last_loss = 0, time.perf_counter(), math.nan
        started = time.perf_counter()
        self.model.train()
        try:
            while self.step < clock.horizon():
                self.step += 1
                lr = lr_at(self.step, self.cfg.optim, clock.horizon())
                for group in self.optimizer.param_groups:
                    group["lr"] = lr

                loss_sum = torch.zeros((), device=self.device)
                for micro in range(tc.grad_accum):
                    batch = move_to(next(batches), self.device)
                    sync = micro == tc.grad_accum - 1 or not self.dist.enabled
                    with (contextlib.nullcontext() if sync else model.no_sync()), self.autocast():
                        loss = model(batch)
                        if loss.ndim != 0:
                            raise TypeError(f"{type(self.model).__name__}.loss must return a scalar, got shape "
                                            f"{tuple(loss.shape)}")
                    (loss / tc.grad_accum).backward()
                    loss_sum += loss.detach().float()
                    window_items += self.model.items_in(batch) * self.dist.world_size

                if self.cfg.optim.grad_clip > 0:
                    grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.optim.grad_clip)
                else:
                    grad_norm = torch.zeros((), device=self.device)
                mean_loss = distributed.all_reduce_mean(loss_sum / tc.grad_accum, self.dist)
                last_loss, norm_value = torch.stack([mean_loss, grad_norm.float()]).tolist()  # one sync per step
                if not math.isfinite(last_loss):
                    raise self._diverged(last_loss, "the training loss")
                if not math.isfinite(norm_value):
                    raise self._diverged(norm_value, "the gradient norm")

                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.ema is not None:
                    self.ema.update(self.model, self.step)

                bar.update(1)
                if self.step % tc.log_every == 0 or self.step == clock.horizon():
                    elapsed = time.perf_counter() - window_start
                    rate = window_items / max(elapsed, 1e-9)
                    log.write({"step": self.step, "loss": last_loss, "lr": lr, "grad_norm": norm_value,
                               f"{self.model.item_name}_per_s": rate, "time": time.perf_counter() - started})
                    bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}",
                                    **{f"{self.model.item_name}/s": f"{rate:,.0f}"}, refresh=False)
                    window_items, window_start = 0, time.perf_counter()

                if tc.eval_every and self.step % tc.eval_every == 0 and self.is_main:
                    metrics = self.evaluate(max_batches=tc.eval_batches)
                    if metrics:
                        log.write({"step": self.step, "split": "val", **metrics})
                        bar.write(f"step {self.step}: val loss {metrics['loss']:.4f}")
                for hook in self.hooks:
                    if hook.every and self.step % hook.every == 0 and self.is_main:
                        with self.eval_weights():
                            result = hook.fn(self, self.step)
                        if result:
                            log.write({"step": self.step, "split": hook.name, **result})
                clock.tick(self.step)
                if clock.limit and self.dist.enabled:  # every rank ends at the same step
                    clock.end_at(distributed.min_over_ranks(clock.horizon(), self.dist, self.device))
                if self.step == first_step + 1 + WARMUP_STEPS and self.is_main and tc.progress:
                    bar.write(self._estimate(clock))
                by_time = tc.ckpt_minutes > 0 and time.perf_counter() - self._last_save >= 60 * tc.ckpt_minutes
                stop, by_time, out_of_time = distributed.any_rank(
                    [self._stop_signal is not None, by_time, clock.out_of_time()], self.dist, self.device)
                if out_of_time:  # a step took longer than planned: end here rather than overrun
                    clock.end_at(self.step)
                if self.step % tc.ckpt_every == 0 or self.step == clock.horizon() or by_time or stop:
                    self._save()
                if stop and self.step < clock.horizon():
                    raise TrainingInterrupted(
                        f"interrupted: checkpoint {self.last_checkpoint} written at step {self.step} of "
                        f"{tc.max_steps}; continue exactly from there with: {self.resume_command}")
        finally:
            bar.close()
            log.close()
        if self.step == first_step:  # nothing left to do: report the loss the run ended with, not NaN
            last_loss = next((r["loss"] for r in reversed(read_metrics(self.run_dir))
                              if "split" not in r and isinstance(r.get("loss"), (int, float))), math.nan)
        return {"step": self.step, "loss": last_loss, "seconds": time.perf_counter() - started,
                "checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
                "steps_run": self.step - first_step, "stopped_by_time": self.step < tc.max_steps}

    def _estimate(self, clock: StepClock) -> str:
        """The time left, from the measured seconds per step; a validation pass is costed as its batches'
        forward passes (about 0.4 of a training step each: no backward, no optimizer)."""
        tc = self.tc
        evaluations = clock.horizon() // tc.eval_every - self.step // tc.eval_every if tc.eval_every else 0
        return clock.estimate_line(self.step, evaluations, 0.4 * tc.eval_batches * clock.seconds_per_step(self.step))

    # ------------------------------------------------------------------ dry run

    def dry_run(self) -> dict[str, Any]:
        """Check everything short of training: one forward and backward pass on a real batch.

        Nothing is written and the weights are not changed; returns the plan and the loss at init.
        """
        tc = self.tc
        n_params = sum(p.numel() for p in self.model.parameters())
        batch = move_to(next(self._loader(0)), self.device)
        times, losses = [], []
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            for _ in range(1 + DRY_RUN_TIMED_STEPS):  # the first pass warms up; the others are timed
                t0 = time.perf_counter()
                with self.autocast():
                    loss = self.model(batch)
                loss.backward()
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                times.append(time.perf_counter() - t0)
                losses.append(float(loss.detach()))
        self.optimizer.zero_grad(set_to_none=True)
        per_step = tc.grad_accum * sorted(times[1:])[len(times[1:]) // 2]  # median micro-batch x accumulation
        evaluations = tc.max_steps // tc.eval_every if tc.eval_every else 0
        total = tc.max_steps * per_step + evaluations * 0.4 * tc.eval_batches * per_step
        seconds = times[0]
        items = self.model.items_in(batch)
        return {
            "model": self.cfg.model, "parameters": n_params, "device": str(self.device),
            "precision": "bf16 autocast" if self.use_bf16 else "fp32", "processes": self.dist.world_size,
            "compile": tc.compile, "train_items": len(self.train_set),
            "val_items": len(self.val_set) if self.val_set is not None else 0,
            "batch": f"{tc.batch_size} global = {tc.grad_accum} x {self.micro_batch // self.dist.world_size} "
                     f"per process x {self.dist.world_size} processes",
            "steps": tc.max_steps, "epochs": round(tc.max_steps * tc.batch_size / len(self.train_set), 2),
            f"{self.model.item_name}_per_batch": items, "loss_at_init": round(losses[0], 4),
            "seconds_first_step": round(seconds, 4),
            "estimated_time": f"{format_duration(total)} ({tc.max_steps:,} steps at {per_step:.3g} s/step, measured "
                              f"over {DRY_RUN_TIMED_STEPS} forward/backward passes, plus {evaluations} validation "
                              f"passes; sample hooks not included)",
            "checkpoints": f"every {tc.ckpt_every} steps, last {tc.keep_last} kept, in {self.run_dir / 'checkpoints'}",
            "existing_checkpoints": len(list_checkpoints(self.run_dir / "checkpoints")),
        }
