"""``bert``: a BERT-style encoder trained by masked-token prediction (Devlin et al. 2019, sec. 3.1),
on the GPT's transformer used bidirectionally. ``twopaths fill`` (:mod:`twopaths.cli.text`) asks it for
the tokens behind each ``[MASK]`` of a sentence.

The default tokenizer is byte-level BPE with 4,096 ids, trained on the run's training split
(about 2 s on fortunes): a [MASK] stands for one token, and with BPE a token is mostly a word
(" heart", " bird"), so "the [MASK] of the matter" asks for a word; with characters it would ask
for a letter. ``--set data.tokenizer=char`` still works.

Use a trained run as a text encoder (hidden states and a pooled vector) with
``twopaths.runs.load_run(RUN).model.encode(ids, key_mask)`` or ``.encode_texts(texts)``; see
:mod:`twopaths.paradigms.bert`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.config import RunConfig
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.spec import HookFn, ModelSpec
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.bert import MaskedLM

#: sentences the training hook fills (RUN/samples/step_N.txt): proverbs a fortunes model may know
PROBES = (
    "the [MASK] of the matter",
    "A bird in the [MASK] is worth two in the bush.",
    "Money is the root of all [MASK].",
    "The [MASK] is mightier than the sword.",
    "Never put off till tomorrow what you can do [MASK].",
)


@dataclass
class BertConfig(TransformerConfig):
    """The GPT's transformer, bidirectional, plus BERT's masking recipe (Devlin et al. 2019, sec. 3.1)."""

    causal: bool = False  # an encoder: every token sees every other; must stay False
    mask_prob: float = 0.15  # fraction of each sequence's positions chosen for prediction
    mask_token_prob: float = 0.8  # of the chosen: replaced by [MASK]
    random_token_prob: float = 0.1  # of the chosen: replaced by a random token (the rest stay unchanged)


def bert_report(loss: float, meta: dict[str, Any]) -> dict[str, float]:
    """Masked-token perplexity exp(loss) and, after an evaluation pass, masked-token accuracy.

    The accuracy (argmax == original token, over the chosen positions) is counted by the model
    during the eval-mode ``loss`` calls that produced ``loss``; the model's tally is in ``meta``
    (put there by the build), and reading it starts a fresh count.
    """
    out = {"loss": loss, "masked_perplexity": math.exp(min(loss, 700.0))}
    tally = meta.get("masked_lm_tally")
    accuracy = tally.take() if tally is not None else None
    if accuracy is not None:
        out["masked_accuracy"] = accuracy
    return out


def bert_sample_hook(meta: dict[str, Any]) -> HookFn:
    """Write the top-5 fills of :data:`PROBES` (EMA weights) to ``RUN/samples/step_XXXXXXXX.txt``,
    and log masked-token accuracy and perplexity on ``train.eval_batches`` validation batches."""

    def hook(trainer: Any, step: int) -> dict[str, float]:
        from twopaths.training.trainer import mean_loss

        model: MaskedLM = trainer.model
        lines = []
        for probe in PROBES:
            try:
                result = model.fill(probe, top_k=5)
            except TwopathsError as exc:  # a probe longer than a small model's context
                lines.append(f"{probe}\n  ({exc})")
                continue
            lines.append(f"{probe}\n  -> {result.text}\n  " + "\n  ".join(
                " | ".join(f"{json.dumps(w, ensure_ascii=False)} {p:.3f}" for w, p in c) for c in result.candidates))
        path = Path(trainer.run_dir) / "samples" / f"step_{step:08d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
        if trainer.val_set is None or len(trainer.val_set) == 0:
            return {}
        model.tally.take()
        loss = mean_loss(model, trainer.val_set, trainer.micro_batch, trainer.device, trainer.autocast,
                         max_batches=trainer.cfg.train.eval_batches)
        accuracy = model.tally.take()
        out = {"masked_perplexity": math.exp(min(loss, 700.0))}
        return out if accuracy is None else {**out, "masked_accuracy": accuracy}

    return hook


def _no_sample(run: Any, **_: Any) -> int:
    raise TwopathsError(f"'{run.cfg.model}' does not generate text; it fills gaps: "
                        f"twopaths fill {run.run_dir} \"the [MASK] of the matter\"")


def _special_ids(tokenizer: Any) -> list[int]:
    """The tokenizer's special tokens: never chosen for prediction, never drawn as random tokens."""
    return [tokenizer.eot_id] + ([tokenizer.unk_id] if hasattr(tokenizer, "unk_id") else [])


def _build_bert(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a = cfg.arch
    if a.causal:
        raise ConfigError("bert is a bidirectional encoder: config key 'arch.causal' must be false")
    if cfg.data.context > a.context:
        raise ConfigError(f"config key 'data.context' ({cfg.data.context}) must not exceed 'arch.context' "
                          f"({a.context}): the model has no positions beyond its context")
    if not 0 < a.mask_prob < 1:
        raise ConfigError(f"config key 'arch.mask_prob' must be in (0, 1), got {a.mask_prob}")
    if a.mask_token_prob < 0 or a.random_token_prob < 0 or a.mask_token_prob + a.random_token_prob > 1:
        raise ConfigError(f"config keys 'arch.mask_token_prob' ({a.mask_token_prob}) and 'arch.random_token_prob' "
                          f"({a.random_token_prob}) must be >= 0 and add up to at most 1")
    tokenizer = meta["tokenizer"]
    vocab = tokenizer.vocab_size
    model = MaskedLM(Transformer(vocab + 1, a), vocab, a.context, _special_ids(tokenizer), a.mask_prob,
                     a.mask_token_prob, a.random_token_prob, tokenizer=tokenizer)
    meta["masked_lm_tally"] = model.tally  # bert_report reads the accuracy counted by eval passes
    return model


_ARCH = dict(n_layer=4, n_head=4, d_model=128, context=128, dropout=0.0)

BERT_MODELS = [
    ModelSpec(name="bert", paradigm="bert", backbones=("transformer",),
              summary="BERT-style encoder (masked-token prediction) on the gpt-nano transformer, "
                      "bidirectional, BPE 4096; 'twopaths fill' fills [MASK]s",
              data_kinds=("text",), arch_cls=BertConfig, build=_build_bert,
              preset={"arch": _ARCH,
                      "data": {"name": "fortunes", "tokenizer": "bpe", "vocab_size": 4096,
                               "context": _ARCH["context"]},
                      "optim": {"lr": 3e-3, "warmup_steps": 50, "betas": [0.9, 0.99], "weight_decay": 0.01},
                      "train": {"batch_size": 32, "max_steps": 3000, "eval_every": 250, "ckpt_every": 500,
                                "sample_every": 500}},
              report=bert_report, sample_hook=bert_sample_hook, sample=_no_sample),
]
