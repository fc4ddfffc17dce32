"""``seq-vae``: a variational autoencoder of whole documents (a SMILES molecule each) on the gpt-nano
transformer: a bidirectional encoder to one latent, a causal decoder reading it by cross-attention
(:mod:`twopaths.paradigms.sequence_vae`; Bowman et al. 2016). It is the VAE contender of the molecule
comparison (MOSES' VAE baseline, Polykovskiy et al. 2020), on the same tokens and backbone size as
``gpt`` and ``mdlm``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.config import RunConfig
from twopaths.errors import ConfigError
from twopaths.models.spec import HookFn, ModelSpec
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.sequence_vae import SequenceVAE, SequenceVAEConfig


@dataclass
class SequenceVAEArch(TransformerConfig):
    """The gpt-nano transformer for the decoder (causal, with cross-attention to z) and a shallower
    bidirectional encoder of the same width (``encoder_layers``: with both at full depth the VAE would
    carry 2.4x the parameters of the language models it is compared with), plus the latent and its KL
    schedule (:class:`~twopaths.paradigms.sequence_vae.SequenceVAEConfig`)."""

    encoder_layers: int = 2  # depth of the bidirectional encoder q(z | x)
    latent_dim: int = 64  # size of z
    beta: float = 1.0  # KL weight after the warm-up (1: the ELBO)
    kl_warmup: int = 1000  # steps of the linear KL warm-up from 0 (Bowman et al. 2016, sec. 3.1); at most
    # half of train.max_steps, so a short run (an arena budget) still trains the ELBO for its second half


def _build(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    arch = cfg.arch
    if cfg.data.rows != "documents":
        raise ConfigError("seq-vae encodes one document per row: config key 'data.rows' must be 'documents'")
    if not arch.causal:
        raise ConfigError("seq-vae's arch.causal describes its decoder, which must be causal (the encoder is "
                          "always bidirectional)")
    if cfg.data.context > arch.context:
        raise ConfigError(f"config key 'data.context' ({cfg.data.context}) must not exceed 'arch.context' "
                          f"({arch.context}): the model has no positions beyond its context")
    if arch.encoder_layers < 1 or arch.latent_dim < 1 or arch.beta < 0 or arch.kl_warmup < 0:
        raise ConfigError("seq-vae needs arch.encoder_layers >= 1, arch.latent_dim >= 1, arch.beta >= 0 and "
                          "arch.kl_warmup >= 0")
    vocab, tcfg = meta["tokenizer"].vocab_size, TransformerConfig(**{
        k: getattr(arch, k) for k in TransformerConfig.__dataclass_fields__})
    warmup = min(arch.kl_warmup, cfg.train.max_steps // 2) if cfg.train.max_steps else arch.kl_warmup
    return SequenceVAE(Transformer(vocab, replace(tcfg, n_layer=arch.encoder_layers, causal=False, tie_weights=False)),
                       Transformer(vocab, tcfg, cross=True),
                       SequenceVAEConfig(arch.latent_dim, arch.beta, warmup), meta["tokenizer"].eot_id)


def sample_documents(run: Any, *, n: int, seed: int, temperature: float, **_: Any) -> int:
    """``twopaths sample`` for a sequence VAE on text other than molecules: ``n`` documents to stdout,
    each decoded from its own z ~ N(0, I)."""
    generator = torch.Generator().manual_seed(seed)
    for i, ids in enumerate(run.model.sample(n, temperature=temperature, generator=generator)):
        if i:
            print("\n" + "-" * 40)
        print(run.meta["tokenizer"].decode(ids))
    return 0


def _sample_hook(meta: dict[str, Any]) -> HookFn:
    """Write 8 documents (seed 0, temperature 1) to ``RUN/samples/step_XXXXXXXX.txt`` during training."""
    tokenizer = meta["tokenizer"]

    def hook(trainer: Any, step: int) -> dict[str, float]:
        docs = [tokenizer.decode(ids) for ids in trainer.model.sample(8, generator=torch.Generator().manual_seed(0))]
        out = Path(trainer.run_dir) / "samples" / f"step_{step:08d}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(docs) + "\n", encoding="utf-8")
        return {"mean_chars": sum(map(len, docs)) / len(docs)}

    return hook


_ARCH = dict(n_layer=4, n_head=4, d_model=128, context=64, dropout=0.0)  # gpt-nano at the molecules' context

SEQUENCE_VAE_MODELS = [
    ModelSpec(name="seq-vae", paradigm="sequence-vae", backbones=("transformer",),
              summary="sequence VAE (Bowman et al. 2016): one latent per document (a molecule), transformer "
                      "decoder of gpt-nano's size, 2-layer encoder; trains on moses-small",
              data_kinds=("text",), arch_cls=SequenceVAEArch, build=_build,
              preset={"arch": _ARCH, "data": {"name": "moses-small", "context": 64, "rows": "documents"},
                      "optim": {"lr": 1e-3, "warmup_steps": 100, "betas": [0.9, 0.99], "weight_decay": 0.1},
                      "train": {"batch_size": 64, "max_steps": 2000, "eval_every": 250, "ckpt_every": 500,
                                "sample_every": 1000}},
              sample_hook=_sample_hook, sample=sample_documents),
]

__all__ = ["SEQUENCE_VAE_MODELS", "SequenceVAEArch", "sample_documents"]
