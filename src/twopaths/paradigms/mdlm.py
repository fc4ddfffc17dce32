"""Masked (absorbing-state) discrete diffusion: MDLM (Sahoo et al. 2024, "Simple and Effective
Masked Diffusion Language Models").

Forward process: each token is independently replaced by a [MASK] token with probability
1 - alpha_t. With the log-linear schedule alpha_t = 1 - t (MDLM sec. 3.5), a position is masked
with probability exactly t, t in [0, 1]. The [MASK] id is ``vocab_size``: the backbone has
``vocab_size + 1`` embedding rows and output logits.

Denoiser, the SUBS parameterisation (MDLM sec. 3.2.3): the mask logit is forced to -inf (a clean
token is never [MASK]) and unmasked positions carry their input token over, so only masked
positions are predicted and scored.

Loss, the continuous-time NELBO (MDLM eq. 10/11)::

    L = E_{t ~ U(0,1)} [ alpha'_t / (1 - alpha_t) * sum_{l: x_t^l = MASK} log p_theta(x0^l | x_t) ]
      = E_t [ (1/t) * sum_{masked l} CE_l ]            (alpha'_t = -1, 1 - alpha_t = t)

divided by the sequence length, so it is an upper bound on the per-token NLL in nats and
exp(L) bounds the perplexity. t is drawn from U(eps, 1) (the integrand near t = 0 has unbounded
variance; the missing [0, eps] stretch is extrapolated by the mean, an O(eps) effect) with
MDLM's low-discrepancy sampler: one uniform offset per batch, t_b = (u + b / B) mod 1, so every
batch covers [0, 1] evenly (a stratified, antithetic-like estimate).

Training batches are TokenWindows' ``{"tokens": (B, T + 1)}`` (built for next-token
prediction, consecutive windows share one token): the model reads ``tokens[:, :T]``, so every
token of the stream is modelled exactly once and the sequence fits a context of T positions.

Time conditioning: none. For the absorbing process the exact posterior p(x0 | x_t) does not
depend on t given x_t (the masked positions already say everything; MDLM sec. 3.2 and Zheng et
al. 2024 "time-agnostic"), and MDLM trains without it. The backbone is
:class:`~twopaths.backbones.transformer.Transformer` with ``causal=False``, the same stack as the GPT.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.paradigms import mdlm_sampling
from twopaths.paradigms.base import Paradigm, unconditional


class MaskedDiffusion(Paradigm):
    """MDLM on a bidirectional backbone mapping ids (B, L) over ``vocab_size + 1`` -> logits (B, L, vocab_size + 1).

    Args:
        net: the denoiser; id ``vocab_size`` is [MASK].
        vocab_size: real tokens (the [MASK] id comes after them).
        context: the longest sequence the backbone takes (sampling length limit).
        eps: smallest training time, t ~ U(eps, 1).
    """

    item_name = "tokens"

    def __init__(self, net: nn.Module, vocab_size: int, context: int, eps: float = 1e-3):
        super().__init__()
        self.net = net
        self.vocab_size = vocab_size
        self.mask_id = vocab_size
        self.context = context
        self.eps = eps
        self.last_network_calls = 0  # network evaluations of the last sample()/infill()

    # ------------------------------------------------------------------ forward process

    def sample_times(self, batch: int, device: torch.device | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) times in [eps, 1): MDLM's low-discrepancy sampler, one stratum of [0, 1) per row."""
        u = torch.rand((), generator=generator, dtype=torch.float64)
        t = (u + torch.arange(batch, dtype=torch.float64) / batch) % 1.0  # (B,) one per stratum, shuffled offset
        return (self.eps + (1 - self.eps) * t).float().to(device)

    def mask_tokens(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_t ~ q(x_t | x0): each token independently becomes [MASK] with probability 1 - alpha_t = t.

        x0 (B, L) ids, t (B,) -> x_t (B, L).
        """
        device = generator.device if generator is not None else x0.device
        u = torch.rand(x0.shape, generator=generator, device=device).to(x0.device)  # (B, L)
        return torch.where(u < t[:, None].to(x0.device), torch.full_like(x0, self.mask_id), x0)

    # ------------------------------------------------------------------ denoiser (SUBS)

    def x0_logits(self, xt: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, V) of p_theta(x0 | x_t) over the real vocabulary: SUBS' mask logit = -inf
        means the [MASK] column is dropped before any softmax. (Carry-over of unmasked positions
        is done by the callers, which only read masked positions.)"""
        return self.net(xt)[..., : self.vocab_size]

    def _weighted_masked_ce(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None
                            ) -> torch.Tensor:
        """(B,) (1/t) * sum over masked positions of -log p_theta(x0^l | x_t), for x0 (B, L), t (B,)."""
        xt = self.mask_tokens(x0, t, generator)  # (B, L)
        masked = xt == self.mask_id  # (B, L); unmasked positions carry over: loss exactly 0
        logits = self.x0_logits(xt)  # (B, L, V)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), x0.flatten(), reduction="none").view_as(x0)  # (B, L)
        return (ce * masked).sum(1) / t.to(ce.dtype)  # MDLM eq. 11 with alpha_t = 1 - t

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The per-token NELBO in nats (MDLM eq. 11): a Monte-Carlo upper bound on -log p(x) / L."""
        x0 = batch["tokens"][:, :-1]  # (B, T): see the module docstring
        B, L = x0.shape
        t = self.sample_times(B, x0.device)  # (B,)
        return self._weighted_masked_ce(x0, t).sum() / (B * L)

    def items_in(self, batch: dict[str, Any]) -> int:
        tokens = batch["tokens"]
        return int(tokens.shape[0] * (tokens.shape[1] - 1))

    @torch.no_grad()
    def nll_bound(self, batch_tokens: torch.Tensor, n_time_samples: int = 16,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-token NLL upper bound in nats of sequences ``batch_tokens`` (B, L) (no extra target token).

        Each sequence is scored at ``n_time_samples`` stratified times t_k = eps + (1 - eps)(k + u_k)/K,
        one per stratum of [eps, 1] (u_k ~ U(0, 1) independent), with fresh masks each; the mean over
        k and sequences estimates MDLM eq. 11. exp(result) bounds the perplexity. Returns a scalar.
        """
        B, L = batch_tokens.shape
        K = n_time_samples
        u = torch.rand(B, K, generator=generator, dtype=torch.float64,
                       device=generator.device if generator is not None else batch_tokens.device)
        t = self.eps + (1 - self.eps) * (torch.arange(K, dtype=torch.float64, device=u.device) + u) / K  # (B, K)
        x0 = batch_tokens.repeat_interleave(K, dim=0)  # (B * K, L)
        total = self._weighted_masked_ce(x0, t.flatten().float().to(x0.device), generator)  # (B * K,)
        return total.sum() / (B * K * L)

    # ------------------------------------------------------------------ sampling

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        self.last_network_calls += 1
        return self.x0_logits(x)

    @staticmethod
    def default_steps(masked: int) -> int:
        """The steps a sampler takes when none are asked for, for every caller: one per token to fill
        (the most [MASK] tokens of a row), so that each step unmasks one token on average."""
        return max(1, masked)

    @torch.no_grad()
    def denoise(self, x: torch.Tensor, steps: int | None = None, sampler: str = "ancestral",
                block_size: int | None = None, generator: torch.Generator | None = None,
                temperature: float = 1.0) -> torch.Tensor:
        """Fill every [MASK] of ``x`` (B, L) with a sampler of :mod:`mdlm_sampling`; other tokens never change.
        ``steps`` defaults to :meth:`default_steps`."""
        steps = steps or self.default_steps(int((x == self.mask_id).sum(1).max()))
        if sampler not in mdlm_sampling.SAMPLERS:
            raise ValueError(f"unknown sampler '{sampler}'; choose from {', '.join(mdlm_sampling.SAMPLERS)}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if x.shape[1] > self.context:
            raise ValueError(f"length {x.shape[1]} is beyond the model's context of {self.context}")
        self.last_network_calls = 0
        if sampler == "ancestral":
            out = mdlm_sampling.ancestral(self._predict, x, self.mask_id, steps, generator, temperature)
        elif sampler == "remask":
            out = mdlm_sampling.remask(self._predict, x, self.mask_id, steps, generator, temperature)
        else:
            out = mdlm_sampling.block(self._predict, x, self.mask_id, steps, block_size or x.shape[1],
                                        generator, temperature)
        assert not bool((out == self.mask_id).any()), "a sampler left a [MASK] behind"
        return out

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, sampler: str | None = None, steps: int | None = None,
               generator: torch.Generator | None = None, length: int | None = None, block_size: int | None = None,
               prompt: torch.Tensor | list[int] | None = None, temperature: float = 1.0) -> torch.Tensor:
        """``n`` sequences of ``length`` (default the context) token ids, (n, length), never [MASK].

        ``prompt`` (P,) or (n, P) ids are fixed at the start and returned unchanged; ``steps``
        defaults to :meth:`default_steps` (one per generated token). ``block_size`` is for
        ``sampler="block"`` (default: one block).
        """
        unconditional(self, cond)
        device = next(self.parameters()).device
        length = self.context if length is None else length
        x = torch.full((n, length), self.mask_id, dtype=torch.long, device=device)
        if prompt is not None:
            prompt = torch.as_tensor(prompt, dtype=torch.long, device=device)
            prompt = prompt.expand(n, -1) if prompt.ndim == 1 else prompt
            if prompt.shape[1] > length:
                raise ValueError(f"prompt of {prompt.shape[1]} tokens does not fit a length of {length}")
            x[:, : prompt.shape[1]] = prompt
        return self.denoise(x, steps, sampler or "ancestral", block_size, generator, temperature)

    @torch.no_grad()
    def infill(self, tokens: torch.Tensor, mask: torch.Tensor, *, sampler: str | None = None,
               steps: int | None = None, generator: torch.Generator | None = None, block_size: int | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Fill the positions where ``mask`` (bool, (B, L) or (L,)) is True; every other token of
        ``tokens`` (B, L) is returned unchanged. ``steps`` defaults to :meth:`default_steps`."""
        mask = mask.to(tokens.device).bool().expand_as(tokens)
        x = torch.where(mask, torch.full_like(tokens, self.mask_id), tokens)
        return self.denoise(x, steps, sampler or "ancestral", block_size, generator, temperature)
