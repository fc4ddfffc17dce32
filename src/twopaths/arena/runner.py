"""Run the arena: train every contender on the same budget, measure it, cache the results.

Layout of the output directory::

    OUT/runs/SUITE/CONTENDER/seedK/   a normal twopaths run (config.yaml, checkpoints, metrics.jsonl)
                                      + arena.json: what training measured (cached)
    OUT/runs/SUITE/CONTENDER/quality.json   samples and metrics of seed 0 (cached)
    OUT/results.json, report.md, report.html, images/

Every cached file is written atomically, so a killed arena re-run skips what is done and
resumes a half-trained contender from its newest checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from twopaths.arena.measure import PeakMemory, timed, train_step_flops, training_memory_bytes
from twopaths.arena.suites import CURVE_FRACTIONS, PARAM_MATCH_FACTOR, Contender, Suite
from twopaths.config import RunConfig
from twopaths.errors import DataError, TrainingDiverged, TwopathsError
from twopaths.eval.images import balanced_labels
from twopaths.nn.flops import count_network_calls, flops_of
from twopaths.training.metrics import read_metrics
from twopaths.training.optim import effective_warmup


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (temp file + rename): a kill leaves the old file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_jsonable), encoding="utf-8")
    tmp.replace(path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


ARENA_MARKER = ".twopaths-arena"


def claim_output(out: Path) -> None:
    """Refuse an output folder that holds files the arena did not write; mark it as the arena's.

    A folder is the arena's when it carries the marker file (written on first use) or holds a
    ``results.json`` from an earlier arena; an empty or new folder is claimed. So a rerun resumes,
    and a report.md the user keeps elsewhere in that folder is never overwritten.
    """
    if out.exists() and not out.is_dir():
        raise TwopathsError(f"--out {out} is a file; the arena writes a folder (runs, results.json, report.*)")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    previous = read_json(out / "results.json")
    ours = (out / ARENA_MARKER).is_file() or (isinstance(previous, dict) and "suites" in previous)
    if entries and not ours:
        raise TwopathsError(f"{out} already holds files the arena did not write ({', '.join(entries[:3])}"
                            f"{', ...' if len(entries) > 3 else ''}); choose a new or empty folder (nothing was changed)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ARENA_MARKER).write_text("written by twopaths arena; the folder may be resumed and its report rebuilt\n",
                                        encoding="utf-8")
    except OSError as exc:
        raise TwopathsError(f"cannot write into {out}: {exc.strerror}") from None


def load_results(path: Path) -> dict[str, Any]:
    """``results.json`` as the arena wrote it, checked enough that a report can be built from it."""
    results = read_json(path)
    if results is None:
        raise TwopathsError(f"no readable {path}; run the arena into {path.parent} first")
    problem = None
    if not isinstance(results, dict) or not isinstance(results.get("suites"), dict):
        problem = "it has no 'suites' mapping"
    else:
        for name, suite in results["suites"].items():
            if not isinstance(suite, dict) or not isinstance(suite.get("contenders"), dict):
                problem = f"suite {name!r} has no 'contenders' mapping"
            elif not all(isinstance(c, dict) and isinstance(c.get("runs", []), list) for c in suite["contenders"].values()):
                problem = f"a contender of suite {name!r} is not a mapping with a list of 'runs'"
            if problem:
                break
    if problem:
        raise TwopathsError(f"{path} is not an arena results file ({problem}); rerun the arena to rebuild it")
    return results


def environment(device: torch.device) -> dict[str, Any]:
    """Hardware and versions, for the report's reproducibility section."""
    import numpy

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
                            "platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
                            "cpu_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                            "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    from twopaths.version import __version__

    info["twopaths"] = __version__
    return info


# ----------------------------------------------------------------------------- training


def contender_config(suite: Suite, contender: Contender, seed: int, device: str) -> RunConfig:
    from twopaths.models import resolve_config

    overrides = [*suite.overrides, *contender.overrides, f"train.seed={seed}", f"train.device={device}"]
    return resolve_config(contender.model, None, overrides, suite.data)


def recipe(suite: Suite, contender: Contender, seed: int) -> dict[str, Any]:
    """What decides a contender's run (model, overrides, seed, budget, and a digest of the whole resolved
    configuration, so that a preset changed in code counts too): kept with its files, so a cached or
    half-trained run is reused only for the same recipe."""
    import hashlib

    resolved = dataclasses.asdict(contender_config(suite, contender, seed, "cpu"))
    digest = hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"model": contender.model, "data": suite.data, "overrides": [*suite.overrides, *contender.overrides],
            "seed": seed, "budget_flops": suite.budget_flops, "budget_s": suite.budget_s, "config_sha256": digest}


def _check_recipe(saved: dict[str, Any] | None, wanted: dict[str, Any], where: Path) -> None:
    """One line when ``saved`` was made by another recipe. Keys an older arena did not record (the
    configuration digest) are not compared, so its cached runs stay usable."""
    old = (saved or {}).get("recipe")
    if old is not None and any(old[k] != v for k, v in wanted.items() if k in old):
        raise TwopathsError(f"{where} was trained with another recipe than this arena's (its model, overrides, "
                            f"seed, budget or preset changed since); use a new --out, or delete {where.parent} to "
                            f"train it again (nothing was changed)")


def calibrate(cfg: RunConfig, splits: Any, seconds: float | None = None) -> dict[str, float]:
    """Parameters, FLOPs per training step and training memory of a fresh copy of the model; with
    ``seconds``, also its steps/s (the ``--budget-seconds`` mode alone needs a speed, and it is
    load-dependent: a FLOP budget never reads a clock).

    The FLOPs are counted on a real batch (:func:`twopaths.arena.measure.train_step_flops`), so
    they are the same on every machine. The copy is thrown away, so the real run starts from the
    same initialisation as any other.
    """
    from torch.utils.data import DataLoader

    from twopaths.models import get_spec
    from twopaths.training.distributed import resolve_device
    from twopaths.training.optim import build_adamw
    from twopaths.training.trainer import move_to

    device = resolve_device(cfg.train.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.train.seed)
        model = get_spec(cfg.model).build(cfg, splits.meta).to(device).train()
        loader = DataLoader(splits.train, batch_size=cfg.train.batch_size, shuffle=True, drop_last=True,
                            generator=torch.Generator().manual_seed(0))
        batches = iter(loader)
        first = move_to(next(batches), device)
        out = {"params": sum(p.numel() for p in model.parameters()), "flops_per_step": train_step_flops(model, first),
               "memory_bytes": training_memory_bytes(model, first, ema=cfg.train.ema_decay > 0),
               "items_per_step": model.items_in(first)}
        if seconds is None:
            return out
        optimizer = build_adamw(model, cfg.optim, device)
        use_bf16 = device.type == "cuda" and cfg.train.precision != "fp32"

        def step(batch: Any) -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss = model.loss(batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for _ in range(2):
            step(first)
        n = 0
        with timed(device) as t:
            start = time.perf_counter()
            while n < 3 or time.perf_counter() - start < seconds:
                try:
                    batch = next(batches)
                except StopIteration:
                    batches = iter(loader)
                    batch = next(batches)
                step(move_to(batch, device))
                n += 1
    return {**out, "steps_per_s": n / t["seconds"]}


#: checkpoints of a seed-0 run, one every 1/CHECKPOINTS of it (the curve reads those at CURVE_FRACTIONS)
CHECKPOINTS = round(1 / CURVE_FRACTIONS[0])


def planned_steps(suite: Suite, calibration: dict[str, float]) -> int:
    """Optimizer steps of one contender: the FLOP budget over the FLOPs of one step (or, with a
    wall-clock budget, the calibrated speed times 0.9 of the budget), rounded down to a multiple of
    8 so that the checkpoints at :data:`CURVE_FRACTIONS` of the run fall on whole steps."""
    if suite.budget_s is not None:
        steps = int(0.9 * suite.budget_s * calibration["steps_per_s"])
    else:
        steps = int(suite.budget_flops // calibration["flops_per_step"])
    return max(CHECKPOINTS, steps - steps % CHECKPOINTS)


def _loss_curve(run_dir: Path) -> list[list[float]]:
    """[[step, training seconds so far, loss], ...] from metrics.jsonl, across resumed segments."""
    curve, offset, last_time = [], 0.0, 0.0
    for rec in read_metrics(run_dir):
        if "split" in rec or "loss" not in rec:
            continue
        t = float(rec.get("time", 0.0))
        if curve and t + offset < last_time - 1e-9 and rec["step"] > curve[-1][0]:
            offset = last_time  # a resumed segment restarts its clock
        last_time = t + offset
        curve.append([int(rec["step"]), last_time, float(rec["loss"])])
    return curve


def train_contender(suite: Suite, contender: Contender, seed: int, out: Path, device: str,
                    log: Any = print) -> dict[str, Any]:
    """Train one contender for one seed within the suite's budget (or return the cached result)."""
    from twopaths.data.registry import load_splits
    from twopaths.models import load_run_config
    from twopaths.runs import build_trainer
    from twopaths.training.checkpoint import latest_checkpoint, list_checkpoints

    run_dir = out / "runs" / suite.name / contender.name / f"seed{seed}"
    wanted = recipe(suite, contender, seed)
    cached = read_json(run_dir / "arena.json")
    _check_recipe(cached, wanted, run_dir / "arena.json")
    _check_recipe(read_json(run_dir / "calibration.json"), wanted, run_dir / "calibration.json")
    if cached is not None:
        log(f"  cached: {run_dir / 'arena.json'}")
        return cached
    resume = bool(list_checkpoints(run_dir / "checkpoints"))
    calibration = read_json(run_dir / "calibration.json")
    if resume and calibration is not None:
        cfg = load_run_config(run_dir)
        splits = load_splits(cfg.data, run_dir)
        log(f"  resuming from step {latest_checkpoint(run_dir).step}")
    else:
        resume = False
        cfg = contender_config(suite, contender, seed, device)
        splits = load_splits(cfg.data, run_dir)
        calibration = calibrate(cfg, splits, seconds=1.5 if suite.budget_s is not None else None)
        steps = planned_steps(suite, calibration)
        cfg.train.max_steps = steps
        # a preset's warmup is sized for its own (longer) schedule; inside a budget it must not eat the run
        cfg.optim.warmup_steps = effective_warmup(cfg.optim, steps)
        # seed 0 keeps a checkpoint at every eighth of the run: the quality curve reads those at CURVE_FRACTIONS
        cfg.train.ckpt_every = steps // CHECKPOINTS if seed == 0 else steps
        cfg.train.keep_last = CHECKPOINTS
        cfg.train.log_every = max(1, steps // 100)
        calibration["planned_steps"] = steps
        calibration["recipe"] = wanted
        write_json(run_dir / "calibration.json", calibration)
    trainer = build_trainer(cfg, run_dir, splits)
    trainer.resume_command = "the same 'twopaths arena' command (finished contenders are kept)"
    diverged = None
    with PeakMemory(trainer.device) as memory:
        try:
            trainer.fit(resume=resume)
        except TrainingDiverged as err:
            diverged = str(err)
            log(f"  diverged: {err}")
    curve = _loss_curve(run_dir)
    train_seconds = curve[-1][1] if curve else 0.0
    rates = [rec[f"{trainer.model.item_name}_per_s"] for rec in read_metrics(run_dir)
             if f"{trainer.model.item_name}_per_s" in rec]
    tail = [loss for _, _, loss in curve[-max(1, len(curve) // 10):]]
    result = {
        "seed": seed, "model": cfg.model, "params": calibration["params"], "steps": trainer.step,
        "planned_steps": calibration["planned_steps"], "budget_flops": suite.budget_flops, "budget_s": suite.budget_s,
        "train_seconds": train_seconds, "item_name": trainer.model.item_name,
        "items_per_s": statistics.median(rates) if rates else None,
        "flops_per_step": calibration["flops_per_step"],
        "total_flops": calibration["flops_per_step"] * trainer.step,
        "peak_memory_bytes": memory.peak_bytes if memory.peak_bytes is not None else calibration["memory_bytes"],
        "memory_kind": "CUDA allocator peak" if trainer.device.type == "cuda"
        else "weights + grads + AdamW + EMA + saved activations, counted",
        "final_train_loss": statistics.fmean(tail) if tail and not diverged else None,
        "diverged": diverged, "loss_curve": curve,
        "config": dataclasses.asdict(cfg), "recipe": wanted,
    }
    write_json(run_dir / "arena.json", result)
    return read_json(run_dir / "arena.json")  # exactly what a cached re-run will see


# ----------------------------------------------------------------------------- sampling and quality


def draw(model: Any, n: int, nfe: int | None, sampler: str, generator: torch.Generator,
         batch: int = 500, spacing: str = "trailing") -> torch.Tensor:
    """n samples in data space, in batches of ``batch``; diffusion models at ``nfe`` steps of ``sampler``.

    Diffusion steps are spaced ``trailing`` (the first step at t = T - 1): leading spacing never
    starts from pure noise and few-step sampling suffers for it (Lin et al. 2024, table 2).
    """
    from twopaths.eval.images import sample_model

    return sample_model(model, n, batch, sampler, nfe, progress=False, spacing=spacing, generator=generator)


def sampling_flops(model: Any, nfe: int | None, sampler: str, generator: torch.Generator) -> int:
    """FLOPs of one sample (exact counts). A sample-by-sample audio autoregression costs the same at every
    step (its incremental sampler keeps fixed-size buffers), so its clip of L samples is counted on clips of
    64 and 128 samples and extended linearly: the same number as counting all 8,000 steps, 50x sooner."""
    from twopaths.paradigms.sample_autoregressive import SampleAutoregressive

    if not isinstance(model, SampleAutoregressive):
        return flops_of(lambda: draw(model, 1, nfe, sampler, generator))
    cond = balanced_labels(model, 1)
    short, long = (flops_of(lambda: model.sample(1, cond=cond, generator=generator, length=k)) for k in (64, 128))
    return short + (model.length - 64) * (long - short) // 64


def sampling_cost(model: Any, nfe: int | None, sampler: str, device: torch.device,
                  repeats: int = 3) -> dict[str, float]:
    """Latency of one sample alone (batch 1: the median, min and max of ``repeats`` timings), its
    sequential network calls and its FLOPs (exact counts)."""
    g = torch.Generator().manual_seed(1)
    draw(model, 1, nfe, sampler, g)  # warm-up
    times = []
    for _ in range(repeats):
        with count_network_calls(model) as calls, timed(device) as one:
            draw(model, 1, nfe, sampler, g)
        times.append(one["seconds"])
    flops = sampling_flops(model, nfe, sampler, g)
    return {"latency_s": statistics.median(times), "latency_min": min(times), "latency_max": max(times),
            "sequential_calls": calls.get("calls", 0), "flops_per_sample": flops}


#: bootstrap rounds behind each final FID's spread (``fid_std``), which the verdicts compare gaps with
FID_BOOTSTRAP_ROUNDS = 100


class QualityContext:
    """What one suite's quality metrics share: the feature network, real images, the text reference."""

    def __init__(self, suite: Suite, device: torch.device, log: Any = print):
        self.suite, self.device, self.log = suite, device, log
        self._cache: dict[str, Any] = {}

    def feature_net(self) -> Any:
        if "net" not in self._cache:
            from twopaths.eval.features import load_feature_net

            self._cache["net"] = load_feature_net(self.suite.data)
        return self._cache["net"]

    def real(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(n test images, n other real images): the reference set and the floor's stand-in."""
        if n not in self._cache:
            from twopaths.data.registry import real_images

            self._cache[n] = (real_images(self.suite.data, n, "test")[0], real_images(self.suite.data, n, "train")[0])
        return self._cache[n]

    def image_metrics(self, fake: torch.Tensor, metrics: tuple[str, ...] = ("fid", "kid", "pr", "classes"),
                      fid_rounds: int = FID_BOOTSTRAP_ROUNDS) -> dict[str, Any]:
        """FID (with ``fid_std``, its bootstrap spread), KID, precision/recall/density/coverage and class
        statistics of ``fake``, each with its real-vs-real floor at the same n (as ``NAME_floor``), plus
        the feature network's identity."""
        from twopaths.eval.images import evaluate_images

        real, floor = self.real(len(fake))
        out = evaluate_images(fake, real, floor, self.feature_net(), metrics=metrics, progress=False,
                              fid_rounds=fid_rounds)
        return {**out["metrics"], **{f"{k}_floor": v for k, v in out["floor"].items()},
                "class_histogram": out.get("class_histogram"), "feature_net": out["feature_net"], "n": out["n"]}

    def audio_metrics(self, cfg: RunConfig, fake: torch.Tensor, labels: torch.Tensor | None) -> dict[str, Any]:
        """Accuracy (of ``labels``, class-conditional clips), Fréchet distance, IS and modified IS of ``fake``
        (n, 1, L) by the in-project digit classifier: the FD against n test clips, its floor n training clips
        against the same test clips (the same n, as for images), plus the classifier's identity."""
        from twopaths.data.registry import load_splits
        from twopaths.eval.audio_features import audio_scores, load_audio_feature_net

        if "audio" not in self._cache:
            splits = load_splits(cfg.data)
            self._cache["audio"] = (load_audio_feature_net("spoken-digits"), splits.test.audio, splits.train.audio,
                                    list(splits.meta.get("class_names") or []))
        net, test, train, classes = self._cache["audio"]
        n = min(len(fake), len(test))
        if classes != list(net.card.get("classes") or []):
            labels = None  # other classes than the classifier's digits: no accuracy (FD and IS still apply)
        scores = audio_scores(net, fake, test[:n], labels=labels)
        floor = audio_scores(net, train[:n], test[:n])
        return {**scores, "fd_floor": floor["fd"], "n": len(fake), "n_real": n, "feature_net": net.identity}

    def video_clips(self, cfg: RunConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(test clips, their true object centres (N, T, K, 2), ``n_eval`` training clips): the reference,
        the prediction's ground truth and the floor's stand-in."""
        if "video" not in self._cache:
            from twopaths.data.registry import load_splits

            splits = load_splits(dataclasses.replace(cfg.data, size=max(self.suite.n_eval, 1)))
            self._cache["video"] = (splits.test.video, splits.test.positions, splits.train.video)
        return self._cache["video"]

    def text_documents(self, cfg: RunConfig) -> dict[str, list[str]]:
        if "docs" not in self._cache:
            from twopaths.data.registry import text_documents

            self._cache["docs"] = text_documents(cfg.data)[0]
        return self._cache["docs"]

    def text_reference(self, cfg: RunConfig) -> Any:
        """A 5-gram Kneser-Ney character model of the training documents: the judge of gen-PPL."""
        if "text" not in self._cache:
            from twopaths.eval.text import CharNGram

            self._cache["text"] = CharNGram(order=5).fit(self.text_documents(cfg)["train"])
        return self._cache["text"]


def _mean_val_loss(run: Any, batches: int = 10) -> float:
    from twopaths.training.trainer import mean_loss

    torch.manual_seed(0)
    with torch.no_grad():
        return mean_loss(run.model, run.splits.val, run.cfg.train.batch_size, next(run.model.parameters()).device,
                         max_batches=batches)


def evaluate_contender(suite: Suite, contender: Contender, out: Path, ctx: QualityContext,
                       log: Any = print) -> dict[str, Any]:
    """Samples, quality metrics, sampling speed and the quality curve of seed 0 (cached in quality.json)."""
    from twopaths.runs import load_run
    from twopaths.viz import save_grid, save_points

    base = out / "runs" / suite.name / contender.name
    cached = read_json(base / "quality.json")
    if cached is not None:
        return cached
    run_dir = base / "seed0"
    run = load_run(run_dir, device=ctx.device, with_data=True)
    model = run.model
    val_loss = _mean_val_loss(run)
    quality: dict[str, Any] = {"val": run.spec.report(val_loss, run.meta), "by_nfe": {}}
    nfes: tuple[int | None, ...] = contender.nfe or (None,)
    main_nfe = nfes[len(nfes) // 2] if contender.nfe else None
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    main_samples = None

    if suite.kind in ("points", "image"):
        for nfe in nfes:
            label = "single" if nfe is None else str(nfe)
            log(f"  sampling {suite.n_eval} at NFE {label}")
            with timed(ctx.device) as t:  # throughput at batch n_eval (up to 500)
                samples = draw(model, suite.n_eval, nfe, contender.sampler, g)
            speed = {"samples_per_s": suite.n_eval / t["seconds"],
                     **sampling_cost(model, nfe, contender.sampler, ctx.device)}
            if suite.kind == "points":
                from twopaths.eval.coverage import mode_coverage

                metrics = mode_coverage(samples, run.meta["modes"], run.meta["std"])
            else:
                metrics = ctx.image_metrics(samples)
            quality["by_nfe"][label] = {**metrics, **speed}
            if nfe == main_nfe:
                main_samples = samples
                name = f"{suite.name}-{contender.name}.png"
                if suite.kind == "points":
                    save_points(samples[:2000], images / name, modes=run.meta.get("modes"),
                                title=f"{contender.name}: {min(len(samples), 2000)} samples")
                else:
                    save_grid(samples[:64], images / name, nrow=8)
                quality["grid"] = f"images/{name}"
        quality["main_nfe"] = "single" if main_nfe is None else str(main_nfe)
    elif suite.kind == "audio":
        audio, main_samples = _audio_quality(run, suite, contender, ctx, images, log)
        quality.update(audio)
    elif suite.kind == "video":
        video, main_samples = _video_quality(run, suite, contender, ctx, images, log)
        quality.update(video)
    elif suite.kind == "sequence":  # associative recall: accuracy vs distance, no free-running samples
        quality["recall"] = _recall_quality(run, suite, log)
    elif suite.kind == "molecules":
        quality.update(_molecule_quality(run, suite, contender, ctx, images / f"{suite.name}-{contender.name}.png", log))
        quality["grid"] = f"images/{suite.name}-{contender.name}.png"
    else:  # text
        quality.update(_text_quality(run, suite, contender, ctx, images / f"{suite.name}-{contender.name}.txt"))
        quality["unigram_perplexity"] = _unigram_perplexity(run, ctx)
        quality["grid"] = f"images/{suite.name}-{contender.name}.txt"
    quality["curve"] = _quality_curve(run, suite, contender, main_nfe, main_samples, val_loss, ctx, run_dir, log)
    write_json(base / "quality.json", quality)
    return read_json(base / "quality.json")


#: what the quality curve of each kind of suite measures at a checkpoint (lower is better for all but
#: ``high_quality``): images FID at n_curve, points the fraction of n_curve samples near a mode, text
#: and recall the validation loss (for a masked diffusion LM its bound)
CURVE_METRIC = {"image": "fid", "points": "high_quality", "text": "val_loss", "sequence": "val_loss",
                "molecules": "val_loss", "audio": "fd", "video": "frame_fid"}


#: kinds whose quality curve samples the model at each checkpoint (the others read the validation loss)
SAMPLED_KINDS = ("points", "image", "audio", "video")


def _batch(suite: Suite) -> int:
    """Samples drawn at once: 100 one-second clips hold 0.8M samples (100 video clips 0.8M pixels), 500
    images or points far fewer."""
    return 100 if suite.kind in ("audio", "video") else 500


def _curve_point(run: Any, suite: Suite, samples: torch.Tensor | None, val_loss: float | None,
                 ctx: QualityContext) -> dict[str, Any]:
    """The curve's measurement of the model as it is: from ``samples`` (points, image) or the loss."""
    if suite.kind == "image":
        m = ctx.image_metrics(samples, metrics=("fid",), fid_rounds=0)
        return {"fid": m["fid"], "fid_floor": m.get("fid_floor"), "n": len(samples)}
    if suite.kind == "points":
        from twopaths.eval.coverage import mode_coverage

        m = mode_coverage(samples, run.meta["modes"], run.meta["std"])
        return {"high_quality": m["high_quality"], "modes_covered": m["modes_covered"], "n": len(samples)}
    if suite.kind == "audio":
        m = ctx.audio_metrics(run.cfg, samples, balanced_labels(run.model, len(samples)))
        return {"fd": m["fd"], "fd_floor": m["fd_floor"], "accuracy": m.get("accuracy"), "n": len(samples)}
    if suite.kind == "video":
        m = _video_scores(ctx, run, samples)
        return {"frame_fid": m["frame_fid"], "frame_fid_floor": m["frame_fid_floor"],
                "temporal_consistency_px": m["temporal_consistency_px"], "n": len(samples)}
    return {"val_loss": val_loss if val_loss is not None else _mean_val_loss(run)}


def _quality_curve(run: Any, suite: Suite, contender: Contender, nfe: int | None, final_samples: torch.Tensor | None,
                   final_val_loss: float, ctx: QualityContext, run_dir: Path, log: Any) -> list[dict[str, Any]]:
    """Quality at the checkpoints at :data:`CURVE_FRACTIONS` of the budget (geometric, the last one the
    final model), against training FLOPs and seconds; sampled quality at n = ``suite.n_curve``.

    The final point reuses the final model's samples (or its validation loss); earlier checkpoints
    are loaded (EMA weights where kept) and sampled with the same seed.
    """
    from twopaths.training.checkpoint import list_checkpoints, open_checkpoint, step_of

    arena = read_json(run_dir / "arena.json")
    logged = [(step, seconds) for step, seconds, _ in arena["loss_curve"]]
    total, flops_per_step = arena["steps"], arena["flops_per_step"]
    wanted = sorted({max(1, round(f * total)) for f in CURVE_FRACTIONS})
    by_step = {step_of(p): p for p in list_checkpoints(run_dir / "checkpoints")}
    sampled = suite.kind in SAMPLED_KINDS
    n = min(suite.n_curve, suite.n_eval)
    points = []
    for step in wanted:
        if step == total:
            point = _curve_point(run, suite, final_samples[:n] if sampled else None, final_val_loss, ctx)
        elif step in by_step:
            ckpt = open_checkpoint(by_step[step])
            ckpt.load_model(run.model)
            if ckpt.has_ema:
                ckpt.load_ema_into_model(run.model)
            run.model.eval()
            log(f"  quality at step {step} of {total}")
            try:
                samples = draw(run.model, n, nfe, contender.sampler, torch.Generator().manual_seed(0),
                               batch=_batch(suite)) if sampled else None
            except TwopathsError as err:  # e.g. a latent diffusion model still training its autoencoder
                points.append({"step": step, "flops": step * flops_per_step, "train_seconds": None,
                               CURVE_METRIC[suite.kind]: None, "note": str(err)})
                continue
            point = _curve_point(run, suite, samples, None, ctx)
        else:
            continue  # that checkpoint was not kept (a run trained before curves were recorded)
        seconds = max((t for s, t in logged if s <= step), default=None)
        points.append({"step": step, "flops": step * flops_per_step, "train_seconds": seconds, **point})
    return points


def _unigram_perplexity(run: Any, ctx: QualityContext) -> float:
    """Perplexity of the validation text under the training text's token frequencies (add-one
    smoothed): what a model that learned nothing but the alphabet's frequencies would score. A
    language model has learned the data when its perplexity is well below this."""
    from twopaths.data.text import encode_documents

    tok, docs = run.meta["tokenizer"], ctx.text_documents(run.cfg)
    counts = 1.0 + torch.bincount(encode_documents(tok, docs["train"]), minlength=tok.vocab_size).double()
    logp = (counts / counts.sum()).log()  # (vocab,)
    return float(torch.exp(-logp[encode_documents(tok, docs["val"])].mean()))


def _text_quality(run: Any, suite: Suite, contender: Contender, ctx: QualityContext,
                  out_txt: Path) -> dict[str, Any]:
    """Samples of ``length`` tokens (the model's context, at most 128) from a new document, for an
    autoregressive model once (KV cache) and for a diffusion LM at each of its step counts; each
    scored by :func:`twopaths.eval.text.text_report` next to real text of the same length."""
    from twopaths.eval.text import text_report

    model, tok, n = run.model, run.meta["tokenizer"], suite.n_eval
    length = min(128, run.cfg.data.context)
    by_nfe: dict[str, Any] = {}
    real = None
    for nfe in contender.nfe or (None,):
        g = torch.Generator().manual_seed(0)
        with count_network_calls(model) as calls, timed(ctx.device) as t:
            if nfe is None:
                ids = model.generate([[tok.eot_id]] * n, max_new_tokens=length, temperature=1.0, generator=g)
            else:
                ids = model.sample(n, sampler=contender.sampler, steps=nfe, generator=g, length=length).tolist()
        texts = [tok.decode(row) for row in ids]
        if real is None:  # real text cut to the samples' mean length: what a perfect model would score
            stream = "\n".join(ctx.text_documents(run.cfg)["test"])
            size = max(1, sum(map(len, texts)) // len(texts))
            real = [stream[i * size:(i + 1) * size] for i in range(n)]
            out_txt.write_text("\n\n----\n\n".join(texts[:8]) + "\n", encoding="utf-8")
        by_nfe["single" if nfe is None else str(nfe)] = {
            **text_report(texts, ctx.text_reference(run.cfg), real=real),
            "tokens_per_s": n * length / t["seconds"], "samples_per_s": n / t["seconds"],
            "sequential_calls": calls.get("calls", 0), "length": length}
    main = "single" if not contender.nfe else str(contender.nfe[len(contender.nfe) // 2])
    return {"by_nfe": by_nfe, "main_nfe": main}


def _molecule_quality(run: Any, suite: Suite, contender: Contender, ctx: QualityContext, out_png: Path,
                      log: Any) -> dict[str, Any]:
    """``suite.n_eval`` molecules per setting (each NFE of a masked diffusion model, else one), sampled as
    ``twopaths sample`` does (:func:`twopaths.eval.smiles_sampling.sample_smiles`, seed 0, temperature 1),
    scored by all MOSES metrics against the run's train (novelty) and test splits, with their sampling
    speed: molecules/s at batch 500, sequential network calls per batch, and the latency of one
    molecule alone (3 repeats). The main setting's first valid molecules are drawn into ``out_png``."""
    from twopaths.eval.molecules import moses_metrics
    from twopaths.eval.smiles_sampling import sample_smiles, write_molecules

    docs, n, batch = ctx.text_documents(run.cfg), suite.n_eval, 500
    nfes: tuple[int | None, ...] = contender.nfe or (None,)
    main = "single" if not contender.nfe else str(nfes[len(nfes) // 2])
    by_nfe: dict[str, Any] = {}
    for nfe in nfes:
        label = "single" if nfe is None else str(nfe)
        sampler = contender.sampler if nfe is not None else None
        log(f"  sampling {n} molecules at NFE {label}")
        with count_network_calls(run.model) as calls, timed(ctx.device) as t:
            gen = sample_smiles(run, n, seed=0, batch_size=batch, steps=nfe, sampler=sampler)
        times = []
        for repeat in range(4):  # the first is a warm-up
            with timed(ctx.device) as one:
                sample_smiles(run, 1, seed=1 + repeat, steps=nfe, sampler=sampler)
            times.append(one["seconds"])
        metrics = moses_metrics(gen, docs["train"], docs["test"])  # unique@k where k molecules are valid
        by_nfe[label] = {**metrics, "n": n, "samples_per_s": n / t["seconds"],
                         "sequential_calls": calls.get("calls", 0) / math.ceil(n / batch),
                         "latency_s": statistics.median(times[1:]), "latency_min": min(times[1:]),
                         "latency_max": max(times[1:])}
        if label == main:
            write_molecules(gen, out_png.with_suffix(".smi"))
            try:
                write_molecules(gen, out_png, max_drawn=24)
            except TwopathsError as err:  # no valid molecule to draw
                log(f"  {err}")
    return {"by_nfe": by_nfe, "main_nfe": main, "published": "Polykovskiy et al. 2020 (twopaths.eval.moses_published)"}


#: clips of the main setting kept in the report per contender (one per digit of a conditional model)
AUDIO_CLIPS = 10


def _main_setting(contender: Contender) -> str:
    """The setting a contender is shown at: its middle NFE (a diffusion model), else its only one."""
    return "single" if not contender.nfe else str(contender.nfe[len(contender.nfe) // 2])


def _each_setting(model: Any, suite: Suite, contender: Contender, ctx: QualityContext, log: Any,
                  what: str = "clips") -> Iterator[tuple[str, torch.Tensor, float, dict[str, float]]]:
    """For each sampling setting of the contender (each NFE, else one): its label, ``suite.n_eval``
    samples (seed 0, in batches of :func:`_batch`), the seconds they took and :func:`sampling_cost`."""
    for nfe in contender.nfe or (None,):
        label = "single" if nfe is None else str(nfe)
        log(f"  sampling {suite.n_eval} {what} at NFE {label}")
        with timed(ctx.device) as t:
            x = draw(model, suite.n_eval, nfe, contender.sampler, torch.Generator().manual_seed(0), batch=_batch(suite))
        yield label, x, t["seconds"], sampling_cost(model, nfe, contender.sampler, ctx.device)


def _audio_quality(run: Any, suite: Suite, contender: Contender, ctx: QualityContext, images: Path,
                   log: Any) -> tuple[dict[str, Any], torch.Tensor]:
    """``suite.n_eval`` clips per setting (each NFE of a diffusion model, else one), every class in turn, scored
    by :meth:`QualityContext.audio_metrics`, with clips/s at batch 100, the latency of one clip alone (3
    repeats), its **real-time factor** (seconds of compute per second of audio, batch 1) and the batched one,
    sequential network calls and FLOPs per clip. The main setting's first :data:`AUDIO_CLIPS` clips are written
    as WAV files with a spectrogram grid (``images/SUITE-CONTENDER/``). Returns the quality and the main
    setting's clips (the quality curve's last point)."""
    from twopaths.models.audio import write_clips

    model, n, main = run.model, suite.n_eval, _main_setting(contender)
    rate = int(run.meta.get("sample_rate", 8000))
    labels = balanced_labels(model, n)
    by_nfe: dict[str, Any] = {}
    main_clips = torch.empty(0)
    quality: dict[str, Any] = {}
    for label, clips, seconds, cost in _each_setting(model, suite, contender, ctx, log):
        seconds_of_audio = clips.shape[-1] / rate
        by_nfe[label] = {**ctx.audio_metrics(run.cfg, clips, labels), "samples_per_s": n / seconds, **cost,
                         "real_time_factor": cost["latency_s"] / seconds_of_audio,
                         "real_time_factor_batched": seconds / (n * seconds_of_audio)}
        if label == main:
            main_clips = clips
            names = run.meta.get("class_names") or []
            keep = clips[:AUDIO_CLIPS]
            titles = [names[int(y)] if labels is not None and names else f"clip {i}"
                      for i, y in enumerate(labels[:len(keep)] if labels is not None else range(len(keep)))]
            files = write_clips(keep, images / f"{suite.name}-{contender.name}.wav", rate, titles)
            quality["clips"] = [f"images/{f.parent.name}/{f.name}" for f in files if f.suffix == ".wav"]
            quality["grid"] = f"images/{files[-1].parent.name}/{files[-1].name}"
    return {**quality, "by_nfe": by_nfe, "main_nfe": main}, main_clips


#: video prediction: frames given from each held-out test clip, clips continued, and clips shown
PREDICT_CONTEXT, PREDICT_CLIPS, PREDICT_SHOWN = 4, 100, 4


def _video_scores(ctx: QualityContext, run: Any, clips: torch.Tensor, fid_rounds: int = 0) -> dict[str, Any]:
    """:func:`twopaths.eval.video.video_scores` of ``clips`` against as many test clips, the floor as many
    training clips: the metrics, and the floor's as ``NAME_floor``."""
    from twopaths.eval.video import video_scores

    test, _, train = ctx.video_clips(run.cfg)
    n = len(clips)
    s = video_scores(clips, test[:n], train[:n], fid_rounds=fid_rounds)
    return {**s["metrics"], **{f"{k}_floor": v for k, v in s["floor"].items()}, "n": n,
            "feature_net": s["feature_net"], "tracker": s["tracker"]}


def _video_quality(run: Any, suite: Suite, contender: Contender, ctx: QualityContext, images: Path,
                   log: Any) -> tuple[dict[str, Any], torch.Tensor]:
    """``suite.n_eval`` clips per setting (each NFE: denoising steps per clip for joint diffusion, per frame
    for frame-by-frame generation), scored by :func:`_video_scores` (frame FID with its block-bootstrap
    spread, temporal consistency of the tracked motion, identity drift, each beside real clips), with
    clips/s at batch 100, the latency of one clip alone (3 repeats), sequential network calls and FLOPs per
    clip. At the main setting: an animated GIF and a frame strip of 8 clips, and **prediction**: the first
    :data:`PREDICT_CONTEXT` frames of :data:`PREDICT_CLIPS` (at most n) held-out test clips continued, the tracked
    positions of the continued frames against the true trajectory (px; the tracker's own error on the true
    frames beside), with a strip of ground truth over each continuation."""
    from twopaths.eval.video_tracker import track
    from twopaths.viz import save_clips

    model, n, main = run.model, suite.n_eval, _main_setting(contender)
    by_nfe: dict[str, Any] = {}
    main_clips = torch.empty(0)
    quality: dict[str, Any] = {}
    for label, clips, seconds, cost in _each_setting(model, suite, contender, ctx, log):
        by_nfe[label] = {**_video_scores(ctx, run, clips, FID_BOOTSTRAP_ROUNDS), "samples_per_s": n / seconds, **cost}
        if label == main:
            main_clips = clips
            files = save_clips(clips[:8], images / f"{suite.name}-{contender.name}.gif")
            quality["grid"], quality["strip"] = (f"images/{f.name}" for f in files)
    test, positions, _ = ctx.video_clips(run.cfg)
    m, k = min(PREDICT_CLIPS, n, len(test)), PREDICT_CONTEXT
    log(f"  continuing {m} test clips from {k} frames")
    steps = None if main == "single" else int(main)
    predicted = model.predict(test[:m, :k], sampler=contender.sampler if steps else None, steps=steps,
                              generator=torch.Generator().manual_seed(0), spacing="trailing").cpu().clamp(-1, 1)
    truth = positions[:m, k:, 0]  # (m, T - k, 2): the first object's true centres in the continued frames
    error = (track(predicted[:, k:]) - truth).norm(dim=-1).mean(1)  # (m,) px per clip
    tracker_error = (track(test[:m, k:]) - truth).norm(dim=-1).mean()
    shown = torch.stack([test[:PREDICT_SHOWN], predicted[:PREDICT_SHOWN]], 1).flatten(0, 1)  # truth, continuation, ...
    save_clips(shown, images / f"{suite.name}-{contender.name}-predict.png", context=k)
    quality["prediction"] = {"context_frames": k, "n": m, "position_error_px": float(error.mean()),
                             "position_error_se": float(error.std() / m ** 0.5) if m > 1 else 0.0,
                             "tracker_error_px": float(tracker_error),
                             "mse": float((predicted[:, k:] - test[:m, k:]).square().mean()),
                             "strip": f"images/{suite.name}-{contender.name}-predict.png"}
    return {**quality, "by_nfe": by_nfe, "main_nfe": main}, main_clips


def _recall_quality(run: Any, suite: Suite, log: Any) -> dict[str, Any]:
    """Answer accuracy per distance on ``suite.n_eval`` held-out recall items per distance
    (:func:`twopaths.eval.recall.accuracy_by_distance`), with chance and the model's reach."""
    from twopaths.data import recall
    from twopaths.eval.recall import accuracy_by_distance

    context = run.cfg.data.context
    tokens, distances = recall.eval_set(context, suite.n_eval, seed=run.cfg.data.seed)
    log(f"  recall accuracy at distances {', '.join(map(str, recall.distance_grid(context)))}")
    accuracy = accuracy_by_distance(run.model, tokens, distances)
    return {"accuracy": {str(d): a for d, a in accuracy.items()}, "n_per_distance": suite.n_eval,
            "chance": recall.chance_accuracy(), "max_distance": recall.max_distance(context),
            "receptive_field": getattr(run.model.net, "receptive_field", None)}


# ----------------------------------------------------------------------------- the whole arena


def _fmt_eta(seconds: float) -> str:
    m, s = divmod(int(max(seconds, 0)), 60)
    return f"{m}m{s:02d}s"


class ArenaClock:
    """The arena's ETA, from what it measured so far, per suite (a small model runs at a fraction of a
    big one's FLOP/s, and 2-D points evaluate in seconds where images take a minute): each suite's
    training FLOP/s over its finished jobs times the FLOPs it has left, plus its evaluation seconds
    per contender times the evaluations it has left. Before a suite's first job it assumes
    ``assumed_flops_per_s`` and ``assumed_eval_s``."""

    def __init__(self, jobs: list[tuple[Suite, Contender, int]], assumed_flops_per_s: float = 5e10,
                 assumed_eval_s: float = 60.0):
        self.flops_left: dict[str, float] = {}
        self.evals_left: dict[str, int] = {}
        for s, _, seed in jobs:
            self.flops_left[s.name] = self.flops_left.get(s.name, 0.0) + s.budget_flops
            self.evals_left[s.name] = self.evals_left.get(s.name, 0) + (seed == 0)
        self.train: dict[str, tuple[float, float]] = {}  # suite -> (FLOPs trained, seconds)
        self.eval: dict[str, tuple[int, float]] = {}  # suite -> (evaluations, seconds)
        self.assumed_flops_per_s, self.assumed_eval_s = assumed_flops_per_s, assumed_eval_s

    def trained(self, suite: Suite, result: dict[str, Any], seconds: float) -> None:
        self.flops_left[suite.name] -= suite.budget_flops
        if seconds > 1.0:  # a cached job says nothing about speed
            flops, spent = self.train.get(suite.name, (0.0, 0.0))
            self.train[suite.name] = (flops + (result.get("total_flops") or 0.0), spent + seconds)

    def evaluated(self, suite: Suite, seconds: float, cached: bool) -> None:
        self.evals_left[suite.name] -= 1
        if not cached:
            count, spent = self.eval.get(suite.name, (0, 0.0))
            self.eval[suite.name] = (count + 1, spent + seconds)

    def eta(self) -> float:
        total = 0.0
        for name, left in self.flops_left.items():
            flops, spent = self.train.get(name, (0.0, 0.0))
            rate = flops / spent if flops and spent else self.assumed_flops_per_s
            count, eval_s = self.eval.get(name, (0, 0.0))
            per_eval = eval_s / count if count else self.assumed_eval_s
            total += max(left, 0.0) / rate + max(self.evals_left[name], 0) * per_eval
        return total


def budget_kind(suite: Suite) -> str:
    if suite.budget_s is not None:
        return (f"equal wall-clock seconds of training per contender and seed ({suite.budget_s:g} s; load-dependent: "
                f"a busy machine trains every model less)")
    return f"equal training FLOPs per contender and seed ({suite.budget_flops / 1e12:.3g} TFLOP, counted)"


def run_arena(suites: list[Suite], out: Path, suite_size: str, device: str = "auto",
              log: Any = print) -> dict[str, Any]:
    """Train and evaluate every contender of ``suites`` into ``out``; returns (and writes) results.json."""
    from twopaths.training.lock import hold

    claim_output(out)
    with hold(out, "arena folder"):
        return _run_arena(suites, out, suite_size, device, log)


def _run_arena(suites: list[Suite], out: Path, suite_size: str, device: str, log: Any) -> dict[str, Any]:
    from twopaths.training.distributed import resolve_device

    dev = resolve_device(device)
    jobs = [(s, c, seed) for s in suites for c in s.contenders for seed in range(s.seeds)]
    clock = ArenaClock(jobs)
    started = time.perf_counter()
    results: dict[str, Any] = {"suite": suite_size, "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                               "environment": environment(dev), "suites": {}}
    skipped: dict[str, str] = {}
    contexts: dict[str, QualityContext] = {}  # per suite: feature net, real images, text judge
    for i, (suite, contender, seed) in enumerate(jobs, 1):
        if suite.name in skipped:
            continue
        budget = f"{suite.budget_s:g} s" if suite.budget_s is not None else f"{suite.budget_flops / 1e12:.3g} TFLOP"
        log(f"[{i}/{len(jobs)}] {suite.name} · {contender.name} (seed {seed}) · budget {budget} · "
            f"arena ETA {_fmt_eta(clock.eta())}")
        job_start = time.perf_counter()
        try:
            train = train_contender(suite, contender, seed, out, device, log)
        except DataError as err:  # the suite's data is not on this machine: say so and go on
            skipped[suite.name] = str(err)
            results["suites"][suite.name] = {"data": suite.data, "kind": suite.kind, "skipped": str(err),
                                             "contenders": {}}
            log(f"  skipping suite {suite.name}: {err}")
            continue
        clock.trained(suite, train, time.perf_counter() - job_start)
        entry = results["suites"].setdefault(suite.name, {
            "data": suite.data, "kind": suite.kind, "budget_flops": suite.budget_flops, "budget_s": suite.budget_s,
            "seeds": suite.seeds, "budget_kind": budget_kind(suite), "n_eval": suite.n_eval,
            "n_curve": min(suite.n_curve, suite.n_eval), "curve_metric": CURVE_METRIC[suite.kind],
            "param_match_factor": PARAM_MATCH_FACTOR, "contenders": {}})
        c_entry = entry["contenders"].setdefault(contender.name, {
            "model": contender.model, "family": contender.family,
            "sampler": f"{contender.sampler}, trailing spacing" if contender.nfe else None, "runs": []})
        c_entry["runs"].append(train)
        if seed == 0 and not train.get("diverged"):
            ctx = contexts.setdefault(suite.name, QualityContext(suite, dev, log))
            eval_start = time.perf_counter()
            cached = (out / "runs" / suite.name / contender.name / "quality.json").exists()
            c_entry["quality"] = evaluate_contender(suite, contender, out, ctx, log)
            clock.evaluated(suite, time.perf_counter() - eval_start, cached)
        elif seed == 0:
            clock.evaluated(suite, 0.0, True)
        log(f"  done in {time.perf_counter() - job_start:.0f}s")
    results["arena_seconds"] = time.perf_counter() - started
    write_json(out / "results.json", results)
    return results


__all__ = ["run_arena", "claim_output", "load_results", "train_contender", "evaluate_contender", "calibrate", "draw", "write_json", "read_json"]
