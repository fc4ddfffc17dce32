"""``conv-lm``: next-token prediction on a causal dilated convolution stack (WaveNet / ByteNet).

The same :class:`~twopaths.paradigms.autoregressive.Autoregressive` paradigm as ``gpt`` and
``mlp-lm`` on :class:`~twopaths.backbones.causal_conv.CausalConvLM`: no attention, no recurrence,
a finite receptive field (64 tokens with the defaults). It is the convolution-only baseline of the
arena's ``sequence`` suite. Generation recomputes over the newest ``R`` tokens, which is exact:
nothing older reaches the output.
"""

from __future__ import annotations

from typing import Any

from twopaths.backbones.causal_conv import CausalConvConfig, CausalConvLM
from twopaths.config import RunConfig
from twopaths.models.spec import ModelSpec
from twopaths.models.text import language_model_report, sample_text, text_sample_hook
from twopaths.paradigms.autoregressive import Autoregressive
from twopaths.paradigms.base import Paradigm


def _build_conv_lm(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    net = CausalConvLM(meta["tokenizer"].vocab_size, cfg.arch)
    return Autoregressive(net, context=net.receptive_field)


CONV_MODELS = [
    ModelSpec(name="conv-lm", paradigm="autoregressive", backbones=("causal-conv",),
              summary="causal dilated convolution LM (WaveNet/ByteNet style), receptive field "
                      "1 + (k-1) * sum(dilations) = 64 tokens by default; no attention",
              data_kinds=("text",), arch_cls=CausalConvConfig, build=_build_conv_lm,
              preset={"data": {"name": "fortunes", "context": 128},
                      "optim": {"lr": 1e-3, "warmup_steps": 100, "betas": [0.9, 0.99], "weight_decay": 0.1},
                      "train": {"batch_size": 32, "max_steps": 2000, "eval_every": 250, "ckpt_every": 500,
                                "sample_every": 1000}},
              report=language_model_report, sample_hook=text_sample_hook, sample=sample_text),
]

__all__ = ["CONV_MODELS"]
