"""Masked diffusion (MDLM): the bound is exact for the exact denoiser, the forward process has the
right marginals, the samplers keep given tokens, reduce to left-to-right decoding, cache, and
draw categoricals in float64."""

import itertools
import math

import pytest
import torch
from torch import nn

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.paradigms import mdlm_sampling
from twopaths.paradigms.mdlm import MaskedDiffusion


class ExactDenoiser(nn.Module):
    """The true p(x0^l | x_t) of a known distribution over all V^L sequences, by enumeration."""

    def __init__(self, probs: torch.Tensor, V: int, L: int):
        super().__init__()
        self.V = V
        self.support = torch.tensor(list(itertools.product(range(V), repeat=L)))  # (N, L)
        self.probs = probs  # (N,)
        self.dummy = nn.Parameter(torch.zeros(()))  # so the paradigm has a device

    def forward(self, xt: torch.Tensor) -> torch.Tensor:
        observed = xt != self.V  # (B, L)
        fits = ((self.support[None] == xt[:, None]) | ~observed[:, None]).all(-1)  # (B, N) consistent sequences
        w = fits * self.probs[None]  # (B, N)
        onehot = nn.functional.one_hot(self.support, self.V).double()  # (N, L, V)
        post = torch.einsum("bn,nlv->blv", w, onehot) / w.sum(1)[:, None, None]  # (B, L, V)
        logits = post.clamp_min(1e-300).log()
        return torch.cat([logits, torch.full_like(logits[..., :1], -1e30)], -1)  # mask column (-inf under SUBS)


def toy_source(V=3, L=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.rand(V ** L, generator=g, dtype=torch.float64) ** 3  # a peaked joint: strong correlations
    probs /= probs.sum()
    entropy = float(-(probs * probs.log()).sum())
    return probs, entropy / L


def tiny_mdlm(V=11, context=16, seed=0):
    torch.manual_seed(seed)
    cfg = TransformerConfig(n_layer=2, n_head=2, d_model=32, context=context, causal=False)
    return MaskedDiffusion(Transformer(V + 1, cfg), V, context).eval()


def test_exact_denoiser_bound_equals_entropy():
    V, L = 3, 4
    probs, h_per_token = toy_source(V, L)
    model = MaskedDiffusion(ExactDenoiser(probs, V, L), V, L, eps=1e-4)
    g = torch.Generator().manual_seed(1)
    idx = torch.multinomial(probs, 20000, replacement=True, generator=g)
    data = model.net.support[idx]  # (N, L) samples of the source
    bound = float(model.nll_bound(data, n_time_samples=8, generator=g))
    assert bound == pytest.approx(h_per_token, rel=0.02)
    # the training loss is the same estimator (one low-discrepancy t per row), on (B, T + 1) windows
    torch.manual_seed(0)
    windows = torch.cat([data, torch.zeros(len(data), 1, dtype=torch.long)], 1)
    assert float(model.loss({"tokens": windows})) == pytest.approx(h_per_token, rel=0.02)
    # a worse model scores worse: the uniform predictor's bound is log V exactly
    uniform = MaskedDiffusion(ExactDenoiser(torch.full_like(probs, 1 / len(probs)), V, L), V, L, eps=1e-4)
    assert float(uniform.nll_bound(data[:4000], 8, g)) == pytest.approx(math.log(V), rel=0.02)
    assert math.log(V) > h_per_token * 1.1


def test_masking_marginals():
    model = tiny_mdlm()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 11, (2000, 64), generator=g)
    for t in (0.05, 0.3, 0.5, 0.9):
        xt = model.mask_tokens(x0, torch.full((2000,), t), g)
        masked = xt == model.mask_id
        assert float(masked.float().mean()) == pytest.approx(t, abs=0.005)
        assert torch.equal(xt[~masked], x0[~masked])  # unmasked tokens are the data
    times = model.sample_times(1000, generator=g)  # low-discrepancy: one time per 1/1000 stratum
    assert float(times.min()) >= model.eps and float(times.max()) < 1
    strata = ((times - model.eps) / (1 - model.eps) * 1000).long()
    assert sorted(strata.tolist()) == list(range(1000))


def test_training_loss_drops_on_a_tiny_source():
    model = tiny_mdlm(V=5, context=8).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    base = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3])  # a deterministic source: entropy 0
    batch = {"tokens": base.expand(32, -1)}
    first = model.loss(batch).item()
    for _ in range(40):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    assert first > 1.0 and model.loss(batch).item() < 0.3 * first


def test_block_size_one_is_left_to_right_decoding():
    model = tiny_mdlm()
    n, L = 3, 10
    out = model.sample(n, length=L, steps=L, sampler="block", block_size=1, generator=torch.Generator().manual_seed(5))
    assert model.last_network_calls == L
    # hand-written left-to-right loop: same network, same generator, one position per call
    g = torch.Generator().manual_seed(5)
    x = torch.full((n, L), model.mask_id)
    with torch.no_grad():
        for i in range(L):
            probs = torch.softmax(model.net(x)[:, i, :model.vocab_size].double(), -1)
            x[:, i] = mdlm_sampling.sample_categorical(probs, g)
    assert torch.equal(out, x)


@pytest.mark.parametrize("sampler", ["ancestral", "remask", "block"])
def test_infill_and_prompt_keep_given_tokens(sampler):
    model = tiny_mdlm()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 11, (4, 16), generator=g)
    mask = torch.zeros(16, dtype=torch.bool)
    mask[3:7] = mask[10:13] = True
    out = model.infill(tokens, mask, steps=5, sampler=sampler, block_size=4, generator=g)
    assert torch.equal(out[:, ~mask], tokens[:, ~mask])
    assert int(out.max()) < model.vocab_size and out.shape == tokens.shape
    prompt = torch.tensor([1, 2, 3])
    out = model.sample(4, length=12, steps=6, sampler=sampler, block_size=3, prompt=prompt, generator=g)
    assert torch.equal(out[:, :3], prompt.expand(4, -1)) and int(out.max()) < model.vocab_size
    assert out.shape == (4, 12)


def test_ancestral_caching_skips_calls_without_changing_samples():
    model = tiny_mdlm()
    a = model.sample(2, length=8, steps=200, generator=torch.Generator().manual_seed(3))
    calls = model.last_network_calls
    assert calls <= 2 * 8  # a fresh prediction only after a step that unmasked something (16 positions)
    x = torch.full((2, 8), model.mask_id)
    b = mdlm_sampling.ancestral(model.x0_logits, x, model.mask_id, 200, torch.Generator().manual_seed(3),
                                  cache=False)
    assert torch.equal(a, b)


def test_remask_keeps_the_most_confident_first():
    V, L = 4, 5
    confident = torch.tensor([0.3, 0.9, 0.5, 0.99, 0.6])  # per position: probability of token 0

    def predict(x):
        p = torch.stack([confident, *(((1 - confident) / (V - 1)),) * (V - 1)], -1)  # (L, V)
        return p.log().expand(x.shape[0], L, V)

    seen = []

    def counting(x):
        seen.append(x.clone())
        return predict(x)

    out = mdlm_sampling.remask(counting, torch.full((1, L), V), V, L, temperature=0.0)  # greedy, one per step
    seen.append(out)
    filled = [int(((a == V) & (b != V)).float().argmax()) for a, b in zip(seen, seen[1:])]
    assert filled == [3, 1, 4, 2, 0]  # confidence 0.99, 0.9, 0.6, 0.5, 0.3
    assert torch.equal(out, torch.zeros(1, L, dtype=torch.long))
    empty = mdlm_sampling.remask(predict, torch.full((1, L), V), V, 3, region=torch.zeros(L, dtype=torch.bool))
    assert bool((empty == V).all())  # nothing outside the region is touched


def test_categorical_sampling_is_float64():
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    probs = torch.softmax(torch.randn(50, 9), -1)  # float32 in
    got = mdlm_sampling.sample_categorical(probs, g1)
    u = torch.rand(50, 9, dtype=torch.float64, generator=g2)  # the same uniforms, float64
    assert torch.equal(got, (probs.double().log() - (-u.log()).log()).argmax(-1))
    # float32 uniforms could never give the Gumbel tail that float64 ones reach (Zheng et al. 2024)
    assert -math.log(-math.log(1 - 2 ** -24)) < 16.7
    g = torch.Generator().manual_seed(0)
    draws = mdlm_sampling.sample_categorical(torch.tensor([0.7, 0.2, 0.1]).expand(200000, 3), g)
    freq = torch.bincount(draws, minlength=3).double() / 200000
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64), atol=0.005)


def test_bad_arguments_raise_clear_errors():
    model = tiny_mdlm()
    with pytest.raises(ValueError, match="unknown sampler"):
        model.sample(1, length=4, steps=4, sampler="ddim")
    with pytest.raises(ValueError, match="beyond the model's context"):
        model.sample(1, length=32, steps=4)
    with pytest.raises(ValueError, match="need at least"):
        model.sample(1, length=8, steps=2, sampler="block", block_size=2)


def test_default_steps_are_one_per_token_to_fill():
    model = tiny_mdlm()
    prompt = torch.tensor([1, 2, 3])
    default = model.sample(2, length=12, prompt=prompt, generator=torch.Generator().manual_seed(0))
    explicit = model.sample(2, length=12, steps=9, prompt=prompt, generator=torch.Generator().manual_seed(0))
    assert torch.equal(default, explicit)  # 12 positions less the 3 given
    assert model.default_steps(0) == 1
