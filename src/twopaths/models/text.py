"""Text models: next-token prediction over a transformer (GPT) or a fixed-window MLP, and masked
diffusion (MDLM) over the same transformer used bidirectionally."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.backbones.window_mlp import WindowMLP, WindowMLPConfig
from twopaths.config import RunConfig
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.spec import HookFn, ModelSpec
from twopaths.paradigms.autoregressive import Autoregressive, generate_text
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.mdlm import MaskedDiffusion
from twopaths.paradigms.mdlm_sampling import SAMPLERS as MASKED_SAMPLERS
from twopaths.paradigms.mdlm_sampling import MDLMSamplerName


def language_model_report(loss: float, meta: dict[str, Any]) -> dict[str, float]:
    """Perplexity exp(loss) and bits per token loss / ln 2 (nats -> bits)."""
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "bits_per_token": loss / math.log(2)}


def text_sample_hook(meta: dict[str, Any]) -> HookFn:
    """Write 3 samples (EMA weights, fixed seed) to ``RUN/samples/step_XXXXXXXX.txt`` during training."""
    tokenizer = meta["tokenizer"]

    def hook(trainer: Any, step: int) -> dict[str, float]:
        generator = torch.Generator().manual_seed(0)
        texts = [generate_text(trainer.model, tokenizer, max_new_tokens=200, temperature=0.8, generator=generator)
                 for _ in range(3)]
        out = Path(trainer.run_dir) / "samples" / f"step_{step:08d}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n\n----\n\n".join(texts) + "\n", encoding="utf-8")
        return {"mean_chars": sum(map(len, texts)) / len(texts)}

    return hook


def sample_text(run: Any, *, n: int, seed: int, prompt: str, max_new_tokens: int, temperature: float,
                top_k: int | None, top_p: float | None, stop: list[str], **_: Any) -> int:
    """``twopaths sample`` for language models: stream ``n`` continuations of ``prompt`` to stdout."""
    if top_p is not None and not 0 < top_p <= 1:
        raise TwopathsError("--top-p must be in (0, 1]")
    tokenizer = run.meta["tokenizer"]
    generator = torch.Generator().manual_seed(seed)
    for i in range(n):
        if i:
            print("\n" + "-" * 40)
        sys.stdout.write(prompt)
        generate_text(run.model, tokenizer, prompt, max_new_tokens, temperature, top_k,
                      top_p, stop, generator,
                      on_text=lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
    print()
    return 0


def _build_mlp_lm(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    return Autoregressive(WindowMLP(meta["tokenizer"].vocab_size, cfg.arch), context=cfg.arch.window)


def _build_gpt(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    if cfg.data.context > cfg.arch.context:
        raise ConfigError(f"config key 'data.context' ({cfg.data.context}) must not exceed 'arch.context' "
                          f"({cfg.arch.context}): the model has no positions beyond its context")
    return Autoregressive(Transformer(meta["tokenizer"].vocab_size, cfg.arch), context=cfg.arch.context)


def _text_model(name: str, summary: str, arch_cls: type, build, preset: dict[str, Any],
                backbone: str = "transformer", cpu: dict[str, Any] | None = None) -> ModelSpec:
    return ModelSpec(name=name, summary=summary, paradigm="autoregressive", backbones=(backbone,),
                     data_kinds=("text",), arch_cls=arch_cls, build=build,
                     preset=preset, cpu_presets={"text": cpu} if cpu else {}, report=language_model_report,
                     sample_hook=text_sample_hook, sample=sample_text)


def _gpt(name: str, summary: str, arch: dict[str, Any], data: dict[str, Any], optim: dict[str, Any],
         train: dict[str, Any], cpu: dict[str, Any] | None = None) -> ModelSpec:
    return _text_model(name, summary, TransformerConfig, _build_gpt,
                       {"arch": arch, "data": {"name": "fortunes", "context": arch["context"], **data},
                        "optim": optim, "train": train}, cpu=cpu)


_NANO = dict(n_layer=4, n_head=4, d_model=128, context=128, dropout=0.0)
_NANO_TRAIN = dict(optim={"lr": 1e-3, "warmup_steps": 100, "betas": [0.9, 0.99], "weight_decay": 0.1},
                   train={"batch_size": 32, "max_steps": 2000, "eval_every": 250, "ckpt_every": 500,
                          "sample_every": 1000})

TEXT_MODELS = [
    _gpt("gpt", "decoder-only transformer (GPT); same as gpt-nano, choose sizes with --set arch.*",
         _NANO, {}, **_NANO_TRAIN),
    _gpt("gpt-nano", "GPT with 4 layers, 4 heads, 128 wide, context 128 (~0.8M params): trains on a CPU",
         _NANO, {}, **_NANO_TRAIN),
    _gpt("gpt-char", "character-level GPT: 6 layers, 6 heads, 384 wide, context 256 (~10.7M params)",
         dict(n_layer=6, n_head=6, d_model=384, context=256, dropout=0.2), {"tokenizer": "char"},
         optim={"lr": 1e-3, "warmup_steps": 100, "betas": [0.9, 0.99], "weight_decay": 0.1, "min_lr_ratio": 0.1},
         train={"batch_size": 64, "max_steps": 5000, "eval_every": 250, "ckpt_every": 500, "sample_every": 1000},
         # on CPU: nanoGPT's recipe for a laptop CPU (its README, "I only have a macbook"): 4 layers, 4 heads,
         # 128 wide, context 64, batches of 12, 2,000 steps, no dropout
         cpu={"arch": dict(n_layer=4, n_head=4, d_model=128, context=64, dropout=0.0), "data": {"context": 64},
              "train": {"batch_size": 12, "max_steps": 2000, "eval_every": 250, "ckpt_every": 500,
                        "sample_every": 1000}}),
    _gpt("gpt2-124m", "GPT-2 small: 12 layers, 12 heads, 768 wide, context 1024, BPE (124M params)",
         dict(n_layer=12, n_head=12, d_model=768, context=1024, dropout=0.0), {"tokenizer": "bpe", "vocab_size": 50257},
         optim={"lr": 6e-4, "warmup_steps": 700, "betas": [0.9, 0.95], "weight_decay": 0.1, "min_lr_ratio": 0.1},
         train={"batch_size": 16, "max_steps": 20000, "eval_every": 500, "ckpt_every": 1000, "sample_every": 2000},
         # on CPU: the same 124M network (the size is the model: it must match GPT-2's weights), on windows
         # of 64 tokens, 8 per step, for 150 steps: a look at the model training, not a GPT-2
         cpu={"data": {"context": 64}, "optim": {"warmup_steps": 15},
              "train": {"batch_size": 8, "max_steps": 150, "eval_every": 50, "eval_batches": 5, "ckpt_every": 50,
                        "sample_every": 150}}),
    _text_model("mlp-lm", "fixed-window MLP language model (Bengio et al. 2003): the smallest honest text model",
                WindowMLPConfig, _build_mlp_lm,
                {"data": {"name": "fortunes", "context": 64},
                 "optim": {"lr": 3e-3, "warmup_steps": 20, "weight_decay": 0.01},
                 "train": {"batch_size": 64, "max_steps": 1000, "eval_every": 250, "ckpt_every": 250,
                           "sample_every": 500}}, backbone="window-mlp"),
]


# ------------------------------------------------------------------------------------------ MDLM


@dataclass
class MDLMConfig(TransformerConfig):
    """The GPT's transformer, bidirectional, plus what masked diffusion adds (MDLM, Sahoo et al. 2024)."""

    causal: bool = False  # the denoiser sees the whole sequence; must stay False
    eps: float = 1e-3  # smallest training time: t ~ U(eps, 1)
    sampler: MDLMSamplerName = "ancestral"  # used by the training sample hook
    sample_steps: int = 128  # steps of that sampler


def mdlm_report(loss: float, meta: dict[str, Any]) -> dict[str, float]:
    """MDLM's loss is itself the per-token NELBO (nats), so its mean bounds the NLL: exp() bounds perplexity."""
    return {"loss": loss, "perplexity_bound": math.exp(min(loss, 700.0)), "bits_per_token_bound": loss / math.log(2)}


def _decode(tokenizer: Any, ids: torch.Tensor) -> str:
    return tokenizer.decode(ids.tolist())


def masked_text_sample_hook(meta: dict[str, Any]) -> HookFn:
    """Write 3 samples (EMA weights, seed 0, the arch's sampler and steps, full context) to
    ``RUN/samples/step_XXXXXXXX.txt`` during training."""
    tokenizer = meta["tokenizer"]

    def hook(trainer: Any, step: int) -> dict[str, float]:
        model: MaskedDiffusion = trainer.model
        arch = trainer.cfg.arch
        out = model.sample(3, sampler=arch.sampler, steps=arch.sample_steps, generator=torch.Generator().manual_seed(0),
                           length=model.context, block_size=max(1, model.context // 4), temperature=1.0)
        texts = [_decode(tokenizer, row) for row in out]
        path = Path(trainer.run_dir) / "samples" / f"step_{step:08d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n----\n\n".join(texts) + "\n", encoding="utf-8")
        return {"mean_chars": sum(map(len, texts)) / len(texts), "network_calls": float(model.last_network_calls)}

    return hook


def infill_template(text: str, tokenizer: Any) -> tuple[list[int], list[bool]]:
    """Token ids and a fill mask from text with gaps: every run of two or more ``_`` is a gap of
    that many tokens ("one underscore per token"); the text between gaps is encoded as given."""
    ids: list[int] = []
    mask: list[bool] = []
    for i, piece in enumerate(re.split(r"(_{2,})", text)):
        if i % 2:  # a gap
            ids += [0] * len(piece)
            mask += [True] * len(piece)
        elif piece:
            encoded = tokenizer.encode(piece)
            ids += encoded
            mask += [False] * len(encoded)
    if not any(mask):
        raise TwopathsError("--infill needs at least one gap: a run of two or more '_' (one per token to fill)")
    return ids, mask


def sample_masked_text(run: Any, *, n: int, seed: int, prompt: str, infill: str | None, max_new_tokens: int,
                       steps: int | None, sampler: str, block_size: int | None, temperature: float, **_: Any) -> int:
    """``twopaths sample`` for MDLM: ``n`` sequences to stdout, continuing ``prompt`` or filling ``infill``'s gaps.

    A sample is one fixed-length window: the prompt plus ``--max-new-tokens``, at most the context.
    ``--steps`` defaults to the number of tokens to fill (one per step on average).
    """
    model: MaskedDiffusion = run.model
    tokenizer = run.meta["tokenizer"]
    generator = torch.Generator().manual_seed(seed)
    if block_size is not None and block_size < 1:
        raise TwopathsError("--block-size must be >= 1")
    if infill is not None:
        if prompt:
            raise TwopathsError("--prompt and --infill do not combine: put the prompt into the --infill text")
        ids, mask = infill_template(infill, tokenizer)
        if len(ids) > model.context:
            raise TwopathsError(f"the --infill text is {len(ids)} tokens; the model's context is {model.context}")
        tokens = torch.tensor(ids).expand(n, -1)
        steps = steps or model.default_steps(sum(mask))
        call = lambda: model.infill(tokens, torch.tensor(mask), sampler=sampler, steps=steps,  # noqa: E731
                                    generator=generator, block_size=block_size, temperature=temperature)
    else:
        prompt_ids = tokenizer.encode(prompt) if prompt else []
        if len(prompt_ids) >= model.context:
            raise TwopathsError(f"the prompt is {len(prompt_ids)} tokens; the model's context is {model.context}")
        length = min(model.context, len(prompt_ids) + max_new_tokens)
        steps = steps or model.default_steps(length - len(prompt_ids))
        call = lambda: model.sample(n, sampler=sampler, steps=steps, generator=generator,  # noqa: E731
                                    length=length, block_size=block_size, prompt=prompt_ids or None,
                                    temperature=temperature)
    try:
        out = call()
    except ValueError as exc:  # e.g. fewer steps than blocks
        raise TwopathsError(str(exc)) from None
    for i, row in enumerate(out):
        if i:
            print("\n" + "-" * 40)
        print(_decode(tokenizer, row))
    print(f"({n} samples, {sampler}, {steps} steps, {model.last_network_calls} network calls)",
          file=sys.stderr)
    return 0


def _build_mdlm(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    if cfg.arch.causal:
        raise ConfigError("mdlm denoises with a bidirectional transformer: config key 'arch.causal' must be false")
    if cfg.data.context > cfg.arch.context:
        raise ConfigError(f"config key 'data.context' ({cfg.data.context}) must not exceed 'arch.context' "
                          f"({cfg.arch.context}): the model has no positions beyond its context")
    vocab = meta["tokenizer"].vocab_size
    return MaskedDiffusion(Transformer(vocab + 1, cfg.arch), vocab, cfg.arch.context, cfg.arch.eps)


MASKED_TEXT_MODELS = [
    ModelSpec(name="mdlm", paradigm="mdlm", backbones=("transformer",),
              summary="masked diffusion language model (MDLM) on the gpt-nano transformer, "
                      "bidirectional; eval prints a perplexity bound",
              data_kinds=("text",), arch_cls=MDLMConfig, build=_build_mdlm,
              preset={"arch": _NANO, "data": {"name": "fortunes", "context": _NANO["context"]}, **_NANO_TRAIN},
              report=mdlm_report, sample_hook=masked_text_sample_hook, sample=sample_masked_text,
              samplers=MASKED_SAMPLERS),
]
