#!/usr/bin/env python
"""GPT benchmark: twopaths' Transformer against Hugging Face ``GPT2LMHeadModel``, in the same run.

Three measurements, each reported as a ratio against its peer measured by this same process:

1. ``train``      training throughput (tokens/s, MFU) of one optimizer step: forward, next-token
                  cross-entropy, backward, grad clipping, AdamW. Ours (``torch.compile`` on GPU by
                  default) against HF eager (and HF compiled with ``--hf-compile``).
2. ``generate``   greedy generation tokens/s at batch 1 and 32: ours with its KV cache against HF
                  ``generate`` with its default cache. Both models hold the *same* weights
                  (ours copied into HF), so the greedy tokens should agree; the agreement is reported.
3. ``kv-speedup`` ours only: greedy generation with the KV cache against recomputing the whole
                  window at every step (``use_cache=False``), batch 1, ``gpt-char`` by default.

Both models are built from the same config with random weights (nothing is downloaded); dropout
is 0. HF is a peer installed at benchmark time (``pip install transformers``), never a runtime
dependency of twopaths.

    python benchmarks/gpt.py                       # everything, at a size that suits the device
    python benchmarks/gpt.py --size gpt2-124m      # the GPU configuration (batch 16 x 1024, bf16)
    python benchmarks/gpt.py --only kv-speedup     # the CPU KV-cache goal only
    python benchmarks/gpt.py --json gpt.json       # also write machine-readable results
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

try:  # run from a checkout without installing: python benchmarks/gpt.py
    import twopaths  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (H100_BF16_DENSE, Timer, _graph_breaks, device_name, new_report, pick_device,  # noqa: E402
                    print_load, run_parts)
from twopaths.backbones.transformer import Transformer, TransformerConfig  # noqa: E402
from twopaths.config import OptimConfig  # noqa: E402
from twopaths.paradigms.autoregressive import Autoregressive  # noqa: E402
from twopaths.training.optim import build_adamw  # noqa: E402

SIZES: dict[str, dict[str, int]] = {
    "gpt2-124m": dict(n_layer=12, n_head=12, d_model=768, context=1024, vocab=50257),
    "gpt-char": dict(n_layer=6, n_head=6, d_model=384, context=256, vocab=65),
    "gpt-nano": dict(n_layer=4, n_head=4, d_model=128, context=128, vocab=65),
}
PARTS = ("train", "generate", "kv-speedup")


# ----------------------------------------------------------------------------- models


def our_model(size: dict[str, int], context: int) -> Transformer:
    cfg = TransformerConfig(n_layer=size["n_layer"], n_head=size["n_head"], d_model=size["d_model"],
                            context=context, dropout=0.0, bias=True, activation="gelu-tanh",
                            positional="learned", tie_weights=True, fused_qkv=True, norm_eps=1e-5)
    return Transformer(size["vocab"], cfg)


def hf_model(size: dict[str, int], context: int, special_id: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=size["vocab"], n_positions=context, n_embd=size["d_model"],
                     n_layer=size["n_layer"], n_head=size["n_head"], n_inner=None,
                     activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
                     bos_token_id=special_id, eos_token_id=special_id, pad_token_id=special_id)
    return GPT2LMHeadModel(cfg)


def copy_weights_to_hf(ours: Transformer, hf: torch.nn.Module) -> None:
    """Put our weights into the HF model: same names, HF's Conv1D stores Linear weights transposed."""
    src = ours.state_dict()
    dst = hf.state_dict()
    new = {}
    for name, value in dst.items():
        if name not in src:
            continue
        w = src[name]
        if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            w = w.t()  # Conv1D (in, out) vs Linear (out, in); attn.c_proj is square, so never guess by shape
        if w.shape != value.shape:
            raise RuntimeError(f"cannot map {name}: ours {tuple(src[name].shape)}, HF {tuple(value.shape)}")
        new[name] = w.contiguous()
    missing = [k for k in dst if k not in new]
    if any(not k.endswith(("attn.bias", "attn.masked_bias")) for k in missing):
        raise RuntimeError(f"HF parameters with no counterpart in ours: {missing}")
    hf.load_state_dict(new, strict=False)


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# ----------------------------------------------------------------------------- 1. training


def bench_train(args: argparse.Namespace, device: torch.device, size: dict[str, int]) -> dict[str, Any]:
    """Time optimizer steps of each model. After every model's warm-up (which includes compilation),
    the measured steps are interleaved in rounds (a few steps of each model in turn), so a slow
    patch of a shared machine hits all models alike; tokens/s comes from the median step time."""
    B, T = args.batch, args.seq
    use_bf16 = args.dtype == "bf16"

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()

    gen = torch.Generator().manual_seed(args.seed)
    batches = [torch.randint(0, size["vocab"], (B, T + 1), generator=gen).to(device) for _ in range(4)]
    optim_cfg = OptimConfig()  # lr 3e-4, betas (0.9, 0.95), wd 0.1, grad_clip 1.0; fused AdamW on CUDA

    torch.manual_seed(args.seed)
    ours_net = our_model(size, size["context"]).to(device)
    flops_per_token = ours_net.flops_per_token(T)
    ours = Autoregressive(ours_net, context=size["context"]).train()

    def hf_loss_fn(hf: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        def loss(tokens: torch.Tensor) -> torch.Tensor:  # the same loss as ours, on HF's logits
            logits = hf(input_ids=tokens[:, :-1]).logits
            return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())
        return loss

    specs: list[tuple[str, torch.nn.Module, Callable[[torch.Tensor], torch.Tensor], bool]] = [
        ("ours", ours, lambda tokens: ours.loss({"tokens": tokens}), args.compile)]
    names = ["hf-eager"] + (["hf-compiled"] if args.hf_compile else [])
    for name in names:
        torch.manual_seed(args.seed)
        hf = hf_model(size, size["context"], size["vocab"] - 1).to(device).train()
        specs.append((name, hf, hf_loss_fn(hf), name == "hf-compiled"))

    runs = []
    for name, module, loss_fn, compiled in specs:
        breaks_before = _graph_breaks()
        run = {"name": name, "module": module, "opt": build_adamw(module, optim_cfg, device),
               "fn": torch.compile(loss_fn) if compiled else loss_fn, "compiled": compiled,
               "times": [], "losses": [], "i": 0}
        with Timer(device) as t:
            for _ in range(args.warmup):
                _train_step(run, batches, autocast, optim_cfg.grad_clip)
        run["warmup_s"] = t.seconds
        run["graph_breaks"] = _graph_breaks() - breaks_before if compiled else None
        runs.append(run)
        print(f"  train {name:12s} warm-up {args.warmup} steps: {t.seconds:.1f} s"
              + (f", graph breaks {run['graph_breaks']}" if compiled else ""), flush=True)

    per_round = max(1, min(args.steps, 5))
    while runs[0]["i"] - args.warmup < args.steps:
        for run in runs:
            for _ in range(min(per_round, args.steps - (run["i"] - args.warmup))):
                with Timer(device) as t:
                    loss = _train_step(run, batches, autocast, optim_cfg.grad_clip)
                run["times"].append(t.seconds)
                run["losses"].append(loss)

    results: dict[str, Any] = {}
    for run in runs:
        times, losses = run["times"], [float(x) for x in run["losses"]]
        median = statistics.median(times)
        tok_s = B * T / median
        results[run["name"]] = {
            "compiled": run["compiled"], "graph_breaks": run["graph_breaks"], "warmup_s": run["warmup_s"],
            "tokens_per_s": tok_s, "tokens_per_s_mean": B * T * len(times) / sum(times),
            "step_ms_median": 1e3 * median, "step_ms_mean": 1e3 * sum(times) / len(times),
            "step_ms_min": 1e3 * min(times), "step_ms_max": 1e3 * max(times),
            "mfu": flops_per_token * tok_s / args.peak_flops if args.peak_flops else None,
            "first_loss": losses[0], "last_loss": losses[-1], "params": param_count(run["module"]),
            "step_ms": [round(1e3 * x, 3) for x in times],
        }
        if not all(math.isfinite(v) for v in losses):
            results[run["name"]]["warning"] = "non-finite loss"
        print(f"  train {run['name']:12s} {tok_s:12,.0f} tok/s  median step {1e3 * median:8.1f} ms"
              f"  loss {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True)
    base = results["hf-eager"]["tokens_per_s"]
    for r in results.values():
        r["x_vs_hf_eager"] = r["tokens_per_s"] / base
    return {"batch": B, "seq": T, "dtype": "bf16 autocast" if use_bf16 else "fp32",
            "flops_per_token": flops_per_token, "peak_flops": args.peak_flops,
            "warmup_steps": args.warmup, "measured_steps": args.steps, "steps_per_round": per_round,
            "optimizer": f"AdamW lr={optim_cfg.lr} betas={tuple(optim_cfg.betas)} wd={optim_cfg.weight_decay} "
                         f"fused={device.type == 'cuda'} grad_clip={optim_cfg.grad_clip}",
            "models": results}


def _train_step(run: dict[str, Any], batches: list[torch.Tensor], autocast: Callable[[], Any],
                clip: float) -> torch.Tensor:
    tokens = batches[run["i"] % len(batches)]
    run["i"] += 1
    with autocast():
        loss = run["fn"](tokens)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run["module"].parameters(), clip)
    run["opt"].step()
    run["opt"].zero_grad(set_to_none=True)
    return loss.detach()


# ----------------------------------------------------------------------------- 2. generation


def _prompts(batch: int, length: int, vocab: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab - 1, (batch, length), generator=gen)  # the last id is HF's pad/eos


def _ours_generate(ar: Autoregressive, prompts: torch.Tensor, new: int, use_cache: bool) -> list[list[int]]:
    return ar.generate(prompts.tolist(), max_new_tokens=new, temperature=0.0, use_cache=use_cache)


def _hf_generate(hf: torch.nn.Module, prompts: torch.Tensor, new: int, special_id: int) -> torch.Tensor:
    ids = prompts.to(next(hf.parameters()).device)
    out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                      do_sample=False, pad_token_id=special_id, eos_token_id=special_id)
    return out[:, ids.shape[1]:].cpu()


def _timed_pair(device: torch.device, a: Callable[[], Any], b: Callable[[], Any], repeats_a: int,
                repeats_b: int) -> tuple[float, Any, float, Any]:
    """Best wall time of each of two functions, runs interleaved (a, b, a, b, ...) so that load from
    elsewhere on the machine hits both alike; the minimum is the least noisy estimate."""
    best = [float("inf"), float("inf")]
    outs: list[Any] = [None, None]
    for i in range(max(repeats_a, repeats_b)):
        for j, (fn, n) in enumerate(((a, repeats_a), (b, repeats_b))):
            if i < n:
                with Timer(device) as t:
                    outs[j] = fn()
                best[j] = min(best[j], t.seconds)
    return best[0], outs[0], best[1], outs[1]


def bench_generate(args: argparse.Namespace, device: torch.device, size: dict[str, int]) -> dict[str, Any]:
    new, P = args.new_tokens, args.prompt_len
    # HF GPT-2 cannot go past n_positions, and ours would slide its window: give both models a
    # position table long enough for prompt + new tokens so both decode the same sequence.
    context = max(size["context"], P + new)
    special = size["vocab"] - 1
    dtype = torch.bfloat16 if args.gen_dtype == "bf16" else torch.float32
    torch.manual_seed(args.seed)
    ours_net = our_model(size, context).eval()
    hf = hf_model(size, context, special).eval()
    copy_weights_to_hf(ours_net, hf)
    ours_net.to(device=device, dtype=dtype)
    hf.to(device=device, dtype=dtype)
    ar = Autoregressive(ours_net, context=context).eval()
    results: dict[str, Any] = {"new_tokens": new, "prompt_len": P, "context": context,
                               "dtype": args.gen_dtype, "repeats": args.gen_repeats,
                               "hf_attn_implementation": getattr(hf.config, "_attn_implementation", None),
                               "batches": {}}
    with torch.no_grad():
        for B in args.gen_batches:
            prompts = _prompts(B, P, size["vocab"], args.seed + B)
            _ours_generate(ar, prompts, 8, True)  # warm-up (allocator, kernels, autotuning)
            _hf_generate(hf, prompts, 8, special)
            t_ours, ours_out, t_hf, hf_out = _timed_pair(
                device, lambda: _ours_generate(ar, prompts, new, True),
                lambda: _hf_generate(hf, prompts, new, special), args.gen_repeats, args.gen_repeats)
            lengths = [len(row) for row in ours_out]
            ours_out = torch.tensor(ours_out) if len(set(lengths)) == 1 else torch.zeros(B, 0, dtype=torch.long)
            shapes_ok = tuple(ours_out.shape) == (B, new) and tuple(hf_out.shape) == (B, new)
            if not shapes_ok:
                print(f"  WARNING: expected {B} x {new} new tokens; ours gave row lengths {sorted(set(lengths))}, "
                      f"HF {tuple(hf_out.shape)}", flush=True)
            agree = float((ours_out == hf_out).float().mean()) if shapes_ok else None
            # tokens until the first disagreement, averaged over rows (bf16 ties can flip an argmax)
            prefix, at_eos = None, None
            if shapes_ok:
                diff = (ours_out != hf_out)
                first = torch.where(diff.any(1), diff.float().argmax(1), torch.full((B,), new))
                prefix = float(first.float().mean())
                # min_new_tokens makes HF mask its eos id; ours has no eos here and may pick that id
                at_eos = sum(int(ours_out[i, int(first[i])]) == special for i in range(B) if int(first[i]) < new)
            r = {"ours_tokens_per_s": B * new / t_ours, "hf_tokens_per_s": B * new / t_hf,
                 "ours_s": t_ours, "hf_s": t_hf, "x_vs_hf": t_hf / t_ours,
                 "ours_row_lengths": sorted(set(lengths)), "hf_shape": list(hf_out.shape),
                 "token_agreement": agree, "mean_tokens_before_first_disagreement": prefix,
                 "rows_diverging": int(sum(1 for row in (ours_out != hf_out) if row.any())) if shapes_ok else None,
                 "rows_diverging_where_ours_picked_hf_eos_id": at_eos}
            results["batches"][str(B)] = r
            print(f"  generate batch {B:3d}: ours {r['ours_tokens_per_s']:10,.1f} tok/s  "
                  f"HF {r['hf_tokens_per_s']:10,.1f} tok/s  x{r['x_vs_hf']:.2f}  "
                  f"agreement {agree if agree is None else f'{agree:.3f}'}", flush=True)
    return results


# ----------------------------------------------------------------------------- 3. KV cache vs recompute


def bench_kv(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    size = SIZES[args.kv_size]
    new, P = args.new_tokens, args.prompt_len
    torch.manual_seed(args.seed)
    net = our_model(size, size["context"]).to(device).eval()  # the real context: may slide the window
    ar = Autoregressive(net, context=size["context"]).eval()
    prompts = _prompts(1, P, size["vocab"], args.seed)
    with torch.no_grad():
        _ours_generate(ar, prompts, 8, True)
        _ours_generate(ar, prompts, 8, False)
        t_cache, out_cache, t_full, out_full = _timed_pair(
            device, lambda: _ours_generate(ar, prompts, new, True), lambda: _ours_generate(ar, prompts, new, False),
            max(2, args.gen_repeats), 2)
    a, b = out_cache[0], out_full[0]
    # Past the context the cache is rebuilt from the newest half-context while recomputation sees
    # the full window, so tokens may legitimately differ there; compare inside the context only.
    inside = max(0, min(len(a), len(b), size["context"] - P))
    agree = sum(x == y for x, y in zip(a[:inside], b[:inside])) / inside if inside else None
    r = {"size": args.kv_size, "context": size["context"], "batch": 1, "prompt_len": P, "new_tokens": new,
         "cache_s": t_cache, "recompute_s": t_full, "cache_repeats": max(2, args.gen_repeats), "recompute_repeats": 2,
         "cache_tokens_per_s": new / t_cache, "recompute_tokens_per_s": new / t_full,
         "speedup": t_full / t_cache, "goal": 5.0, "meets_goal": t_full / t_cache >= 5.0,
         "output_lengths": [len(a), len(b)], "tokens_compared": inside, "token_agreement": agree,
         "window_slides": P + new > size["context"]}
    print(f"  kv-speedup {args.kv_size}: cache {r['cache_tokens_per_s']:,.1f} tok/s, recompute "
          f"{r['recompute_tokens_per_s']:,.1f} tok/s, speedup x{r['speedup']:.2f} (goal >= 5)", flush=True)
    return r


# ----------------------------------------------------------------------------- report


def print_table(report: dict[str, Any]) -> None:
    s = report["settings"]
    print("\n" + "=" * 78)
    print(f"GPT benchmark  {report['date']}")
    print(f"device   {report['device']} ({report['device_type']}), torch {report['torch']}, "
          f"transformers {report['transformers']}, threads {report['threads']}")
    print(f"size     {s['size']} {SIZES[s['size']]}")
    print_load(report)
    tr = report.get("train")
    if tr:
        print(f"\nTraining: batch {tr['batch']} x {tr['seq']}, {tr['dtype']}, {tr['warmup_steps']} warm-up + "
              f"{tr['measured_steps']} measured steps, {tr['flops_per_token'] / 1e6:.1f} MFLOP/token")
        print(f"  {tr['optimizer']}")
        print(f"  {'model':14s} {'compiled':>8s} {'tokens/s':>14s} {'median ms':>10s} {'MFU':>8s} "
              f"{'vs HF eager':>12s}")
        for name, r in tr["models"].items():
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
            print(f"  {name:14s} {str(r['compiled']):>8s} {r['tokens_per_s']:14,.0f} {r['step_ms_median']:10.1f} "
                  f"{mfu:>8s} {r['x_vs_hf_eager']:11.2f}x")
            if r["graph_breaks"]:
                print(f"  {'':14s} torch.compile hit {r['graph_breaks']} graph break(s)")
        if tr["peak_flops"] is None:
            print("  MFU: n/a (no peak known for this device; pass --peak-tflops)")
        else:
            print(f"  MFU against {tr['peak_flops'] / 1e12:.0f} TFLOP/s")
    g = report.get("generate")
    if g:
        print(f"\nGeneration: greedy, prompt {g['prompt_len']} random tokens + {g['new_tokens']} new, "
              f"{g['dtype']}, best of {g['repeats']}, position table {g['context']}; "
              f"ours: KV cache; HF: generate() default cache, attn={g['hf_attn_implementation']}")
        print(f"  {'batch':>5s} {'ours tok/s':>12s} {'HF tok/s':>12s} {'vs HF':>8s} {'same tokens':>12s}  rows diverging")
        for B, r in g["batches"].items():
            agree = "n/a" if r["token_agreement"] is None else f"{100 * r['token_agreement']:.1f}%"
            div = "n/a" if r["rows_diverging"] is None else (
                f"{r['rows_diverging']} ({r['rows_diverging_where_ours_picked_hf_eos_id']} at HF's masked eos id)")
            print(f"  {B:>5s} {r['ours_tokens_per_s']:12,.1f} {r['hf_tokens_per_s']:12,.1f} "
                  f"{r['x_vs_hf']:7.2f}x {agree:>12s}  {div}")
    k = report.get("kv-speedup")
    if k:
        print(f"\nKV cache vs recomputation: {k['size']} (context {k['context']}), batch 1, prompt {k['prompt_len']} "
              f"+ {k['new_tokens']} new, greedy")
        print(f"  cache      {k['cache_tokens_per_s']:10,.1f} tok/s  ({k['cache_s']:.2f} s)")
        print(f"  recompute  {k['recompute_tokens_per_s']:10,.1f} tok/s  ({k['recompute_s']:.2f} s)")
        verdict = "meets" if k["meets_goal"] else "MISSES"
        agree = "n/a" if k["token_agreement"] is None else f"{100 * k['token_agreement']:.1f}%"
        print(f"  speedup x{k['speedup']:.2f} ({verdict} the >= 5x goal); same tokens over the first "
              f"{k['tokens_compared']}: {agree}")
        if k["window_slides"]:
            print(f"  note: prompt + new tokens exceed the context, so the cached run rebuilds its cache once "
                  f"(newest half-context) and the recomputation crops to the last {k['context']} tokens")
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None)
    p.add_argument("--only", default=",".join(PARTS),
                   help=f"comma-separated parts to run, from: {', '.join(PARTS)} (default: all)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="(default: auto: CUDA if visible)")
    p.add_argument("--size", choices=list(SIZES), default=None,
                   help="model size for train and generate (default: gpt2-124m on CUDA, gpt-nano on CPU)")
    p.add_argument("--batch", type=int, default=None, help="training batch (default: 16 on CUDA, 8 on CPU)")
    p.add_argument("--seq", type=int, default=None, help="training sequence length (default: the size's context)")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default=None,
                   help="training precision (default: bf16 autocast on CUDA, fp32 on CPU)")
    p.add_argument("--steps", type=int, default=None, help="measured training steps per model (default: 20)")
    p.add_argument("--warmup", type=int, default=None, help="training steps excluded from timing "
                   "(default: 10 CUDA (includes compilation), 5 CPU)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile our training step (default: on for CUDA, off for CPU)")
    p.add_argument("--hf-compile", action="store_true", help="also time HF with torch.compile")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="peak FLOP/s for MFU in TFLOP/s (default: 989 on an H100, else MFU is n/a)")
    p.add_argument("--new-tokens", type=int, default=256, help="tokens generated per row (default: 256)")
    p.add_argument("--prompt-len", type=int, default=16, help="random prompt tokens per row (default: 16)")
    p.add_argument("--gen-batches", default="1,32", help="comma-separated generation batch sizes (default: 1,32)")
    p.add_argument("--gen-dtype", choices=["bf16", "fp32"], default=None,
                   help="weights for generation, both models (default: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--gen-repeats", type=int, default=None, help="timed generation runs per model, "
                   "interleaved, best kept (default: 3; kv-speedup recomputes twice)")
    p.add_argument("--kv-size", choices=list(SIZES), default="gpt-char", help="model for kv-speedup (default: gpt-char)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0, help="weights, batches and prompts (default: 0)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    args = p.parse_args(argv)
    args.parts = [x.strip() for x in args.only.split(",") if x.strip()]
    bad = [x for x in args.parts if x not in PARTS]
    if bad:
        p.error(f"--only: unknown part(s) {bad}; choose from {', '.join(PARTS)}")
    args.gen_batches = [int(x) for x in args.gen_batches.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = pick_device(args)
    cuda = device.type == "cuda"
    name = device_name(device)
    args.size = args.size or ("gpt2-124m" if cuda else "gpt-nano")
    size = SIZES[args.size]
    args.batch = args.batch or (16 if cuda else 8)
    args.seq = args.seq or size["context"]
    if args.seq > size["context"]:
        raise SystemExit(f"--seq {args.seq} is beyond the context of {args.size} ({size['context']})")
    args.dtype = args.dtype or ("bf16" if cuda else "fp32")
    args.gen_dtype = args.gen_dtype or ("bf16" if cuda else "fp32")
    args.steps = args.steps or 20
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 5)
    args.compile = cuda if args.compile is None else args.compile
    args.gen_repeats = args.gen_repeats or 3
    if args.peak_tflops is not None:
        args.peak_flops = args.peak_tflops * 1e12
    elif cuda and "H100" in name:
        args.peak_flops = H100_BF16_DENSE
    else:
        args.peak_flops = None
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    import transformers
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", module="transformers")

    report = new_report(args, argv, device, name, {"transformers": transformers.__version__})
    print(f"device {name} ({device.type}), torch {torch.__version__}, transformers {transformers.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"size {args.size}, train batch {args.batch} x {args.seq}, {args.dtype}, compile ours={args.compile} "
          f"HF eager{' + compiled' if args.hf_compile else ''}; generation {args.gen_dtype}, batches "
          f"{args.gen_batches}; kv-speedup {args.kv_size}; parts: {', '.join(args.parts)}", flush=True)
    parts = {"train": lambda: bench_train(args, device, size), "generate": lambda: bench_generate(args, device, size),
             "kv-speedup": lambda: bench_kv(args, device)}
    return run_parts(report, device, {k: v for k, v in parts.items() if k in args.parts}, print_table, args.json)


if __name__ == "__main__":
    main()
