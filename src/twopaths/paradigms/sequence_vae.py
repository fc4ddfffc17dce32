"""A variational autoencoder of token sequences: one latent vector per document (a SMILES molecule).

Bowman et al. 2016, "Generating Sentences from a Continuous Space" (CoNLL): an encoder reads the whole
sequence into q(z | x) = N(mu(x), diag sigma^2(x)), a decoder generates the sequence token by token
given z, and both are trained on the evidence lower bound

    log p(x) >= E_{q(z|x)}[ sum_t log p(x_t | x_<t, z) ] - KL(q(z | x) || N(0, I))

with the KL weight warmed up from 0 (their sec. 3.1, "KL cost annealing") so that the decoder, strong
enough to model the sequence alone, does not learn to ignore z before the encoder has learned anything
(posterior collapse). Gomez-Bombarelli et al. 2018 ("Automatic Chemical Design Using a Data-Driven
Continuous Representation of Molecules") applied the idea to SMILES; the MOSES VAE baseline
(Polykovskiy et al. 2020) is one, with a GRU encoder and decoder and the KL weight annealed linearly to
0.05, so its loss is a beta-VAE's (Higgins et al. 2017) rather than the ELBO itself.

Here both halves are the project's transformer (:class:`~twopaths.backbones.transformer.Transformer`),
the same backbone and size as the ``gpt`` and ``mdlm`` contenders:

* the **encoder** is bidirectional over the document (padding masked out); the mean of its final states
  is projected to (mu, log sigma^2);
* the **decoder** is causal, with a cross-attention in every block whose memory is one vector, a linear
  map of z: every position of every layer can read the latent (the "memory" injection of Li et al. 2020,
  "Optimus", sec. 4.2).

Batches are :class:`~twopaths.data.text.DocumentRows`: ``[eot, x_1 .. x_n, eot, pad...]``; the decoder
reads ``[:-1]`` and predicts ``[1:]`` up to and including the closing end token. ``loss`` is the
negative (KL-weighted) bound per predicted token in nats; evaluation always uses the true ELBO. Sampling
draws z ~ N(0, I) and decodes from the end token to the next one, with a KV cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from twopaths.backbones.transformer import Transformer
from twopaths.nn.distributions import gaussian_kl_to_standard
from twopaths.paradigms.autoregressive import sample_logits
from twopaths.paradigms.base import Paradigm, unconditional


@dataclass
class SequenceVAEConfig:
    latent_dim: int = 64  # size of z
    beta: float = 1.0  # KL weight reached after the warm-up (1: the ELBO; MOSES' VAE anneals to 0.05)
    kl_warmup: int = 1000  # training steps over which the KL weight ramps linearly from 0 to beta (0 = off)


class SequenceVAE(Paradigm):
    """``encoder``: bidirectional Transformer; ``decoder``: causal Transformer with cross-attention, same width."""

    item_name = "tokens"

    def __init__(self, encoder: Transformer, decoder: Transformer, cfg: SequenceVAEConfig, eot_id: int):
        super().__init__()
        if encoder.cfg.causal or not decoder.cfg.causal:
            raise ValueError("a sequence VAE needs a bidirectional encoder and a causal decoder")
        d = decoder.cfg.d_model
        self.encoder, self.decoder, self.cfg, self.eot_id = encoder, decoder, cfg, eot_id
        self.context = decoder.cfg.context
        self.to_posterior = nn.Linear(encoder.cfg.d_model, 2 * cfg.latent_dim)  # mean-pooled states -> (mu, logvar)
        self.to_memory = nn.Linear(cfg.latent_dim, d)  # z -> the decoder's one-vector cross-attention memory
        # training steps seen, for the KL warm-up (a buffer: checkpointed, so a resumed run continues the ramp)
        self.register_buffer("kl_steps", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ the two halves

    def _split(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decoder inputs (B, T), targets (B, T) and which targets count (B, T): up to and including the
        first end token after the start (a row with none counts to its end)."""
        inputs, targets = rows[:, :-1], rows[:, 1:]  # (B, T) each
        is_end = (targets == self.eot_id).int()
        keep = (is_end.cumsum(1) - is_end) == 0  # (B, T): before or at the first end token
        return inputs, targets, keep

    def encode(self, inputs: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance (B, latent) of the documents in ``inputs`` (B, T), reading the
        positions ``keep`` (the start token and the document)."""
        h = self.encoder.hidden(inputs, key_mask=keep)  # (B, T, d)
        w = keep.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * w).sum(1) / w.sum(1).clamp(min=1)  # (B, d)
        mu, logvar = self.to_posterior(pooled).float().chunk(2, dim=-1)  # (B, L) each
        return mu, logvar.clamp(-30.0, 20.0)

    def memory(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's cross-attention memory (B, 1, d) for latents (B, latent)."""
        return self.to_memory(z).unsqueeze(1)

    def elbo_terms(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One-sample reconstruction log-likelihood and KL, each (B,) nats, and tokens scored per row (B,)."""
        inputs, targets, keep = self._split(rows)
        mu, logvar = self.encode(inputs, keep)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterisation
        logits = self.decoder(inputs, context=self.memory(z.to(mu.dtype))).float()  # (B, T, V)
        logp = -nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T)
        return (logp * keep).sum(1), gaussian_kl_to_standard(mu, logvar), keep.sum(1)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """-ELBO per predicted token in nats (the KL weighted by the warm-up and ``beta`` while training)."""
        rec, kl, n_tokens = self.elbo_terms(batch["tokens"])
        if not (self.training and torch.is_grad_enabled()):
            return (kl - rec).sum() / n_tokens.sum()
        weight = torch.full((), self.cfg.beta, device=rec.device)
        if self.cfg.kl_warmup > 0:  # on-device arithmetic: no host sync per step
            weight = weight * ((self.kl_steps + 1).float() / self.cfg.kl_warmup).clamp(max=1.0)
        self.kl_steps += 1
        return (weight * kl - rec).sum() / n_tokens.sum()

    def items_in(self, batch: dict[str, Any]) -> int:
        return int(self._split(batch["tokens"])[2].sum())

    @torch.no_grad()
    def elbo_parts(self, rows: torch.Tensor) -> dict[str, float]:
        """Per-token reconstruction and KL (nats) on ``rows``: a KL near 0 means the latent is unused."""
        rec, kl, n_tokens = self.elbo_terms(rows)
        n = n_tokens.sum()
        return {"recon": float(-rec.sum() / n), "kl": float(kl.sum() / n)}

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, generator: torch.Generator | None = None,
               max_tokens: int | None = None, temperature: float = 1.0, z: torch.Tensor | None = None
               ) -> list[list[int]]:
        """``n`` documents as token ids (end tokens not included), each decoded from z ~ N(0, I) (or the
        given ``z`` (n, latent)) from the end token until the next one or ``max_tokens`` (default: the
        context less the start token)."""
        unconditional(self, cond)
        device = next(self.parameters()).device
        steps = min(max_tokens or self.context - 1, self.context - 1)
        if z is None:
            z = torch.randn(n, self.cfg.latent_dim, generator=generator, device=generator.device if generator
                            else device)
        memory = self.memory(z.to(device))  # (n, 1, d)
        cache = self.decoder.new_cache(n, steps + 1, device=device)
        token = torch.full((n, 1), self.eot_id, dtype=torch.long, device=device)
        out = torch.empty(n, steps, dtype=torch.long, device=device)
        for i in range(steps):
            logits = self.decoder(token, cache=cache, context=memory)[:, -1]  # (n, V)
            token = sample_logits(logits.float(), temperature, generator=generator)[:, None]  # (n, 1)
            out[:, i] = token[:, 0]
            if bool((out[:, :i + 1] == self.eot_id).any(1).all()):
                break
        rows = out[:, :i + 1].tolist()
        return [row[:row.index(self.eot_id)] if self.eot_id in row else row for row in rows]


__all__ = ["SequenceVAE", "SequenceVAEConfig"]
