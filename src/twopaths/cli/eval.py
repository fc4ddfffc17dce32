"""``twopaths eval``: score a trained run (loss, likelihood, sample metrics, accuracy, translation,
reconstruction), or print the real-vs-real floor of a data set.

Which metrics fit which run is decided here; the metrics themselves are in :mod:`twopaths.eval`
(:mod:`~twopaths.eval.sampling`, :mod:`~twopaths.eval.likelihood`, :mod:`~twopaths.eval.classifier`,
:mod:`~twopaths.eval.translation`, :mod:`~twopaths.eval.reconstruction`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from twopaths.cli.options import (GAUSSIAN_SAMPLERS, MAX_N, add_checkpoint_args, add_decoding_args, check_n,
                                  check_steps, check_writable, command, count, decoding_options, finite, load,
                                  natural, non_negative)
from twopaths.cli.options import weights as run_weights
from twopaths.errors import TwopathsError
from twopaths.eval.audio_sampling import AUDIO_SAMPLE_METRICS
from twopaths.eval.video_sampling import VIDEO_SAMPLE_METRICS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "eval", cmd_eval)
    p.add_argument("run", type=Path, nargs="?", help="run directory (omit with --real-vs-real)")
    p.add_argument("--real-vs-real", metavar="DATASET",
                   help="no run: print the floor of the sample metrics for DATASET at --n")
    p.add_argument("--split", choices=["val", "test", "train"], default=None,
                   help="loss/nll: the split to score (default val); sample metrics: the real split compared "
                        "against (default test; the floor's other real images come from train, or val)")
    p.add_argument("--batches", type=count, default=None, help="loss/nll: only the first N batches (default: all)")
    p.add_argument("--n", type=count, default=None,
                   help="loss/nll: only the first N items of the split; sample metrics: number of samples "
                        "(default 10,000, or the real split's size if smaller)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated, from: loss, nll, fid, kid, pr, classes, modes, accuracy, recon, bleu, chrf, "
                        "exact, moses, fd, is, motion, identity (see below; default loss (classifiers: "
                        "loss,accuracy; video runs: fid,motion,identity), or the sample metrics with --real-vs-real)")
    add_checkpoint_args(p)
    g = p.add_argument_group("sample metrics")
    g.add_argument("--sampler", choices=GAUSSIAN_SAMPLERS, default=None,
                   help="diffusion sampler (default: the run's own, its arch.sampler)")
    g.add_argument("--steps", type=count, default=None,
                   help="sampling steps (default: the run's arch.sample_steps, or T for ddpm when that is "
                        "not the run's own sampler; an mdlm's moses samples: one per token)")
    g.add_argument("--guidance", type=finite, default=1.0, help="classifier-free guidance scale (1 = plain conditional)")
    g.add_argument("--seed", type=natural, default=0, help="sampling seed (same seed, same samples, same numbers)")
    g.add_argument("--temperature", type=non_negative, default=None,
                   help="moses: softmax temperature of the sampled tokens (default 1, as MOSES samples; lower "
                        "trades diversity for validity)")
    g.add_argument("--batch-size", type=count, default=500, help="samples generated per batch (default 500)")
    g.add_argument("--feature-net", metavar="NAME_OR_PATH",
                   help="feature network: a shipped name (fashion-mnist, shapes) or a .safetensors file with "
                        "a .json card beside it (default: the run's dataset)")
    g = p.add_argument_group("translation metrics (seq2seq)")
    add_decoding_args(g)
    p.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    p.add_argument("--force", action="store_true", help=f"allow --n above {MAX_N:,}")


LOSS_METRICS = ("loss", "nll")
IMAGE_SAMPLE_METRICS = ("fid", "kid", "pr", "classes")
POINT_SAMPLE_METRICS = ("modes",)
CLASSIFIER_METRICS = ("loss", "accuracy")
PAIR_METRICS = ("bleu", "chrf", "exact")
RECON_METRICS = ("recon",)  # autoencoder and ldm runs: twopaths.eval.reconstruction
MOLECULE_METRICS = ("moses",)  # text runs on molecules: twopaths.eval.smiles_sampling
AUDIO_METRICS = AUDIO_SAMPLE_METRICS  # audio runs: fd, is, accuracy (of their class-conditional samples)
VIDEO_METRICS = tuple(VIDEO_SAMPLE_METRICS)  # video runs: fid (per frame), motion, identity (twopaths.eval.video)


def cmd_eval(args: argparse.Namespace) -> int:
    """evaluate a trained run: loss, likelihood, FID/KID/precision-recall

    Evaluate a run's newest checkpoint. loss and nll score a data split; fid, kid, pr and classes (images)
    and modes (2-D mixtures) score N samples drawn from the model against N test-split items, always beside
    the real-vs-real floor (N other real items scored the same way). Prints a table and, with --json, writes
    the numbers to a file.

    metrics:
      loss     mean training loss on the split (text: also perplexity, bits per token)
      nll      diffusion: bits/dim from the full variational bound (T evaluations per batch)
      fid      Frechet distance of feature-net features (Heusel et al. 2017)
      kid      kernel inception distance, mean and std over 100 subsets (Binkowski et al. 2018)
      pr       precision, recall (k=3) and density, coverage (k=5)
      classes  predicted-class entropy (1 = all classes equally) and Inception Score
      modes    2-D mixtures: modes covered and high-quality fraction (3 sigma)
      recon    autoencoder, ldm: reconstruction MSE and PSNR of N split images, and FID of the
               reconstructions beside the same images' own (floor)
      accuracy classifiers (vit): test accuracy, per class, beside the evaluation CNN's; writes
               RUN/confusion-SPLIT.png
      bleu, chrf, exact
               seq2seq: corpus BLEU, chrF (sacrebleu, 0-100) and exact-match % of the translations of
               the split (default test: unseen numbers)
      moses    text runs on moses/moses-small: N sampled molecules' validity, uniqueness, novelty,
               IntDiv, filters, FCD/SNN/Frag/Scaf against the test split and property distances
               (Polykovskiy et al. 2020; FCD with ChemNet as fcd_torch)
      fd, is, accuracy
               audio runs (wavenet, diffwave): N sampled clips scored by the spoken-digit classifier:
               Frechet distance in its features (with the real-vs-real floor), Inception score and
               modified IS, and the accuracy of class-conditional samples; plus samples/s and the
               real-time factor
      fid, motion, identity
               video runs (video-ddpm, video-ar; their default): N sampled clips (default 1,000) against
               N test clips, with the floor of N train clips: per-frame FID, temporal consistency (px off
               the best constant-velocity-with-bounces path of the tracked object) and identity drift
               (feature distance of the item, first frame vs last); plus the network calls, FLOPs and
               seconds of one clip

    examples:
      twopaths eval runs/ddpm --metrics fid,kid,pr,classes --n 10000 --sampler dpmpp --steps 20
      twopaths eval runs/ddpm --metrics fid --n 2000 --guidance 3 --json fid.json
      twopaths eval --real-vs-real fashion-mnist --n 10000
      twopaths eval runs/mix --metrics modes --n 4000
      twopaths eval runs/gpt --split test
      twopaths eval runs/vit --metrics accuracy
      twopaths eval runs/fr --metrics bleu,chrf,exact --beam 4 --length-penalty 0.6
      twopaths eval runs/mol --metrics moses --n 1000
      twopaths eval runs/diffwave --metrics fd,is,accuracy --n 500 --steps 6
      twopaths eval runs/video-ddpm --n 500 --steps 10   # per-frame FID, motion, identity
    """
    from twopaths.data.registry import dataset_kind

    if (args.run is None) == (args.real_vs_real is None):
        raise TwopathsError("give a run directory, or --real-vs-real DATASET (not both)")
    check_n(args.n, args.force)
    if args.json:
        check_writable(args.json)  # before the evaluation, not after it
    default = "loss" if args.run is not None else None
    metrics_asked = [m.strip() for m in (args.metrics or default or "").split(",") if m.strip()]
    known = tuple(dict.fromkeys(LOSS_METRICS + IMAGE_SAMPLE_METRICS + POINT_SAMPLE_METRICS + ("accuracy",)
                                + PAIR_METRICS + RECON_METRICS + MOLECULE_METRICS + AUDIO_METRICS + VIDEO_METRICS))
    unknown = [m for m in metrics_asked if m not in known]
    if unknown:
        raise TwopathsError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(known)}")

    if args.real_vs_real is not None:
        kind = dataset_kind(args.real_vs_real)
        if kind not in ("image", "points"):
            raise TwopathsError(f"--real-vs-real needs an image or 2-D point dataset; '{args.real_vs_real}' is "
                                f"{kind} data")
        metrics_asked = metrics_asked or list(IMAGE_SAMPLE_METRICS if kind == "image" else POINT_SAMPLE_METRICS)
        from twopaths.config import DataConfig
        from twopaths.eval.sampling import sample_metrics

        _check_metric_kinds(metrics_asked, kind, args.real_vs_real, allow_loss=False)
        result = sample_metrics(None, DataConfig(name=args.real_vs_real), kind, metrics_asked, **_sampling(args))
        _print_sample_table(result, real_only=True)
        if args.json:
            args.json.write_text(json.dumps({"dataset": args.real_vs_real, **result}, indent=2))
        return 0

    if args.metrics is None and _is_video_run(args.run):  # a video run's default: its sample metrics
        metrics_asked = list(VIDEO_METRICS)
    if args.temperature is not None and "moses" not in metrics_asked:
        raise TwopathsError("--temperature is the sampling temperature of --metrics moses (molecules); the other "
                            "metrics sample at the model's own distribution")
    # the splits are read (and tokenized) only for metrics that score them; sample metrics draw their own
    # real items, and --metrics moses reads the molecules as strings
    needs_splits = any(m in LOSS_METRICS + CLASSIFIER_METRICS + PAIR_METRICS + RECON_METRICS for m in metrics_asked)
    run = load(args, with_data=needs_splits)
    check_steps(run, args.steps)
    if "moses" in metrics_asked and args.steps is not None and not run.spec.samplers:
        raise TwopathsError(f"--steps counts the denoising steps of a masked diffusion model (mdlm); "
                            f"'{run.cfg.model}' samples a molecule token by token")
    kind = dataset_kind(run.cfg.data.name)
    classifier = run.spec.evaluation == "classifier"
    if classifier and args.metrics is None:
        metrics_asked = list(CLASSIFIER_METRICS)
    _check_metric_kinds(metrics_asked, "classifier" if classifier else kind, run.cfg.data.name, allow_loss=True)
    weights = run_weights(args, run)
    report: dict = {"run": str(args.run), "step": run.checkpoint.step}
    loss_asked = [m for m in metrics_asked if m in LOSS_METRICS]
    if loss_asked:
        from twopaths.eval.loss import loss_metrics

        split = args.split or "val"
        result = loss_metrics(run, split, n=args.n, batches=args.batches, loss="loss" in loss_asked,
                              nll="nll" in loss_asked, progress=True)
        metrics = {k: v for k, v in result.items() if k not in ("split", "items")}
        dataset_items = result["items"]
        print(f"{run.cfg.model} on {run.cfg.data.name}/{split}, checkpoint step {run.checkpoint.step}"
              f" ({weights} weights), {dataset_items:,} items")
        for key, value in metrics.items():
            print(f"  {key:<20} {value:.4f}")
        report.update({"split": split, "items": dataset_items, **metrics})
    if kind == "audio" and any(m in AUDIO_METRICS for m in metrics_asked):
        from twopaths.eval.audio_sampling import audio_sample_report

        asked = [m for m in metrics_asked if m in AUDIO_METRICS]
        result = audio_sample_report(run, asked, n=args.n, split=args.split, seed=args.seed, sampler=args.sampler,
                                     steps=args.steps, guidance=args.guidance, batch_size=args.batch_size)
        print(f"{run.cfg.model} on {run.cfg.data.name}, checkpoint step {run.checkpoint.step} ({weights} weights): "
              f"{result['n']:,} sampled clips vs {result['real']:,} {result['real_split']} clips; "
              f"{result['samples_per_s']:,.0f} samples/s, real-time factor {result['real_time_factor']:.3g}")
        result["floor"] = {k: result["floor"].get(k, float("nan")) for k in result["metrics"]}
        _print_sample_table(result)
        report["audio"] = result
    elif kind == "video" and any(m in VIDEO_METRICS for m in metrics_asked):
        from twopaths.eval.video_sampling import video_sample_report

        result = video_sample_report(run, [m for m in metrics_asked if m in VIDEO_METRICS], n=args.n, split=args.split,
                                     sampler=args.sampler, steps=args.steps, seed=args.seed, guidance=args.guidance,
                                     batch_size=args.batch_size)
        print(f"{run.cfg.model} on {run.cfg.data.name}, checkpoint step {run.checkpoint.step} ({weights} weights): "
              f"{result['n']:,} sampled clips ({result['sampling']}) vs {result['n']:,} {result['real_split']} clips "
              f"({result['frames']:,} frames); floor: {result['n']:,} train clips")
        _print_sample_table(result)
        cost = result["cost"]
        print(f"  sampling cost per clip: {cost['network_calls_per_clip']:,} network calls, "
              f"{cost['flops_per_clip'] / 1e9:.4g} GFLOP, {cost['seconds_per_clip']:.4g} s "
              f"(in batches of {min(args.batch_size, result['n'])})")
        report["video"] = result
    elif "accuracy" in metrics_asked:
        from twopaths.eval.classifier import classifier_accuracy

        report.update(classifier_accuracy(run, split=args.split, n=args.n, batch_size=args.batch_size, weights=weights))
    pair_asked = [m for m in metrics_asked if m in PAIR_METRICS]
    if pair_asked:
        from twopaths.eval.translation import translation_metrics

        report["translation"] = translation_metrics(run, pair_asked, split=args.split, n=args.n,
                                                    **decoding_options(args), batch_size=args.batch_size,
                                                    weights=weights)
    if "recon" in metrics_asked:
        from twopaths.eval.reconstruction import reconstruction_report

        report["recon"] = reconstruction_report(run, split=args.split, n=args.n, feature_net=args.feature_net,
                                                seed=args.seed, batch_size=args.batch_size)
    if "moses" in metrics_asked:
        from twopaths.eval.molecules import UNIQUE_AT
        from twopaths.eval.smiles_sampling import moses_report

        temperature = 1.0 if args.temperature is None else args.temperature
        result = moses_report(run, args.n or 10_000, seed=args.seed, batch_size=args.batch_size,
                              temperature=temperature, steps=args.steps)
        how = f"temperature {temperature:g}" + (f", {args.steps} steps" if args.steps else "")
        print(f"{run.cfg.model} on {run.cfg.data.name}, checkpoint step {run.checkpoint.step} ({weights} weights): "
              f"MOSES metrics of {result['n']:,} sampled molecules ({how}; novelty against {result['train']:,} training "
              f"molecules, the rest against {result['test']:,} test molecules)")
        for key, value in result["metrics"].items():
            print(f"  {key:<14} {_fmt(value):>10}")
        n_valid = round(result["metrics"]["valid"] * result["n"])
        for k in (k for k in UNIQUE_AT if k <= result["n"] and f"unique@{k}" not in result["metrics"]):
            print(f"  unique@{k} needs {k:,} valid molecules and {result['n']:,} samples held {n_valid:,}: "
                  f"sample more (MOSES samples 30,000)")
        report["moses"] = result
    sample_asked = [m for m in metrics_asked if m not in LOSS_METRICS + CLASSIFIER_METRICS + PAIR_METRICS + RECON_METRICS
                    + MOLECULE_METRICS + (AUDIO_METRICS if kind == "audio" else ())
                    + (VIDEO_METRICS if kind == "video" else ())]
    if sample_asked:
        from twopaths.eval.sampling import sample_metrics

        result = sample_metrics(run, run.cfg.data, kind, sample_asked, **_sampling(args))
        print(f"{run.cfg.model} on {run.cfg.data.name}, checkpoint step {run.checkpoint.step} ({weights} weights): "
              f"{result['n']:,} samples ({result['sampling']}) vs {result['n']:,} {result['real_split']} items")
        _print_sample_table(result)
        report["samples"] = result
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def _is_video_run(run_dir: Path) -> bool:
    """Whether the run at ``run_dir`` trained on video (read from its config; False when there is none: the
    loader then says what is wrong)."""
    from twopaths.data.registry import dataset_kind
    from twopaths.models import load_run_config

    try:
        return dataset_kind(load_run_config(run_dir).data.name) == "video"
    except TwopathsError:
        return False


def _sampling(args: argparse.Namespace) -> dict[str, Any]:
    """The sample-metric options as keyword arguments of :func:`twopaths.eval.sampling.sample_metrics`."""
    return {"split": args.split, "n": args.n, "seed": args.seed, "sampler": args.sampler, "steps": args.steps,
            "guidance": args.guidance, "batch_size": args.batch_size, "feature_net": args.feature_net}


def _check_metric_kinds(metrics: list[str], kind: str, data_name: str, allow_loss: bool) -> None:
    """One clear line when a metric does not fit the data (FID on points, modes on images, ...)."""
    if kind == "classifier":  # a classifier run (vit) samples nothing: its loss and accuracy
        wrong = [m for m in metrics if m not in CLASSIFIER_METRICS]
        if wrong:
            raise TwopathsError(f"metric(s) {', '.join(wrong)} do not fit a classifier run; available here: "
                                f"{', '.join(CLASSIFIER_METRICS)}")
        return
    fits = {"image": IMAGE_SAMPLE_METRICS, "points": POINT_SAMPLE_METRICS, "pairs": PAIR_METRICS,
            "text": MOLECULE_METRICS, "audio": AUDIO_METRICS, "video": VIDEO_METRICS}.get(kind, ())
    fits = fits + (LOSS_METRICS if allow_loss else ()) + (RECON_METRICS if allow_loss and kind == "image" else ())
    wrong = [m for m in metrics if m not in fits]
    if wrong:
        hint = " (accuracy is for classifier runs, e.g. model 'vit', and audio runs)" if "accuracy" in wrong else ""
        raise TwopathsError(f"metric(s) {', '.join(wrong)} do not fit {kind} data ('{data_name}'){hint}; "
                            f"available here: {', '.join(fits) or 'none'}")


def _print_sample_table(result: dict, real_only: bool = False) -> None:
    """metric | value | real-vs-real floor | n | feature net."""
    print(f"  {'metric':<20} {'value':>12} {'real-vs-real':>14} {'n':>8}  feature net")
    for key, floor in result["floor"].items():
        value = "-" if real_only else _fmt(result["metrics"][key])
        print(f"  {key:<20} {value:>12} {_fmt(floor):>14} {result['n']:>8,}  {result['feature_net']}")


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
