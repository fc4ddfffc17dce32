"""The GAN: shapes, the one-loss gradient split (each player gets exactly its own loss' gradient,
checked against finite differences), and a short training run that covers the 2-D ring of modes."""

import pytest
import torch

from twopaths.backbones.conv import MLP, ConvDown, ConvUp
from twopaths.data.toy import mixture_modes, sample_mixture
from twopaths.paradigms.gan import GAN, GANConfig


def points_gan(width=16, latent=4, r1=1.0, depth=2):
    cfg = GANConfig(latent_dim=latent, r1_gamma=r1, r1_batch=8)
    return GAN(MLP(latent, 2, width, depth), MLP(2, 1, width, depth, "leaky_relu"), cfg, (2,), "x", squash=False)


def test_image_and_point_shapes():
    torch.manual_seed(0)
    gan = GAN(ConvUp(8, 3, 12, width=4), ConvDown(3, 1, 12, width=4), GANConfig(latent_dim=8), (3, 12, 12))
    x = gan.sample(5, generator=torch.Generator().manual_seed(1))
    assert x.shape == (5, 3, 12, 12) and x.abs().max() <= 1.0
    assert torch.equal(x, gan.sample(5, generator=torch.Generator().manual_seed(1)))
    loss = gan.loss({"image": torch.rand(6, 3, 12, 12) * 2 - 1})
    assert loss.ndim == 0 and torch.isfinite(loss) and set(gan.last_metrics) >= {"d_loss", "g_loss", "r1"}
    assert points_gan().sample(7).shape == (7, 2)
    with pytest.raises(ValueError, match="unconditional"):
        gan.sample(2, cond=torch.zeros(2, dtype=torch.long))


def _flat_grad(loss, params):
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params)]


def test_each_player_gets_only_its_own_gradient():
    torch.manual_seed(0)
    gan = points_gan().double()
    batch = {"x": sample_mixture("ring8", 16, seed=0)[0].double()}
    z = torch.randn(16, 4, dtype=torch.float64)
    G, D = list(gan.generator.parameters()), list(gan.discriminator.parameters())

    terms = gan.losses(batch, z)
    # the split: D's loss never reaches G, G's loss never reaches D
    assert all(g.abs().max() == 0 for g in _flat_grad(terms["g_loss"], D))
    assert all(g.abs().max() == 0 for g in _flat_grad(terms["d_loss"], G))
    total_d, total_g = _flat_grad(terms["total"], D), _flat_grad(terms["total"], G)

    # numerically: d total / d theta_D = d L_D / d theta_D (R1 included) and d total / d theta_G =
    # d L_G / d theta_G, where L_G is scored by the *live* D (moving G's weights changes only G's terms)
    def fd(params, idx, key, h=1e-6):
        p, i = params[idx], (0,) * params[idx].ndim
        with torch.no_grad():
            p[i] += h
        plus = gan.losses(batch, z)[key].item()
        with torch.no_grad():
            p[i] -= 2 * h
        minus = gan.losses(batch, z)[key].item()
        with torch.no_grad():
            p[i] += h
        return (plus - minus) / (2 * h)

    for idx in range(len(D)):
        numeric = fd(D, idx, "d_loss")
        assert abs(total_d[idx][(0,) * D[idx].ndim].item() - numeric) < 1e-6 * max(1.0, abs(numeric))
    for idx in range(len(G)):
        numeric = fd(G, idx, "g_loss")
        assert abs(total_g[idx][(0,) * G[idx].ndim].item() - numeric) < 1e-6 * max(1.0, abs(numeric))

    # and the G gradient equals the textbook one: non-saturating loss through a live D, G's part only
    fake = gan.generator(z)
    reference = _flat_grad(torch.nn.functional.softplus(-gan.discriminator(fake)).mean(), G)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(total_g, reference))


def test_r1_is_left_out_without_grad_and_when_off():
    gan = points_gan(r1=10.0)
    batch = {"x": sample_mixture("ring8", 32, seed=0)[0]}
    assert float(gan.losses(batch)["r1"]) > 0
    with torch.no_grad():
        assert float(gan.losses(batch)["r1"]) == 0
    assert float(points_gan(r1=0.0).losses(batch)["r1"]) == 0


def test_short_training_covers_the_ring_of_modes():
    torch.manual_seed(0)
    gan = points_gan(width=64, latent=8, r1=0.1, depth=2)
    data = sample_mixture("ring8", 20_000, seed=0)[0]
    opt = torch.optim.Adam(gan.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for _ in range(700):
        idx = torch.randint(len(data), (128,))
        loss = gan.loss({"x": data[idx]})
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = gan.sample(4000, generator=torch.Generator().manual_seed(0))
    modes, _ = mixture_modes("ring8")
    dist, nearest = torch.cdist(x, modes).min(1)
    near = dist < 0.3
    covered = torch.bincount(nearest[near], minlength=8)
    assert near.float().mean() > 0.45, near.float().mean()
    assert (covered >= 40).sum() >= 6, covered
