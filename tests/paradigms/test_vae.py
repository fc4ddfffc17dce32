"""The VAE: shapes; the KL term; its bounds against exact log-likelihoods (a linear-Gaussian model in
closed form, a discretised image model by quadrature over a 1-D latent); a short training run on
the 2-D ring whose samples match the data's mean and covariance."""

import math

import pytest
import torch
from torch import nn

from twopaths.backbones.conv import MLP, ConvDown, ConvUp
from twopaths.data.toy import sample_mixture
from twopaths.nn.distributions import gaussian_kl_to_standard
from twopaths.paradigms.vae import VAE, VAEConfig


def image_vae(latent=4, side=8, channels=1):
    torch.manual_seed(0)
    return VAE(ConvDown(channels, 2 * latent, side, width=4), ConvUp(latent, 2 * channels, side, width=4, norm="none"),
               VAEConfig(latent_dim=latent), (channels, side, side))


def grid_images(n, side=8, channels=1, seed=0):
    """Images on the 256 levels of [-1, 1], with some pixels at the edge bins."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(0, 256, (n, channels, side, side), generator=g)
    levels[:, :, 0] = 0
    return levels.float() / 127.5 - 1


def test_shapes_and_finite_bits_per_dim():
    vae = image_vae(channels=3)
    x = grid_images(5, channels=3)
    s = vae.sample(6, generator=torch.Generator().manual_seed(0))
    assert s.shape == (6, 3, 8, 8) and s.abs().max() <= 1
    out = vae.nll_bits_per_dim(x, k=4)
    assert set(out) == {"bits_per_dim", "elbo_bits_per_dim", "prior_bits_per_dim"}
    assert all(v.shape == (5,) and torch.isfinite(v).all() for v in out.values())
    assert (out["bits_per_dim"] > 0).all() and (out["prior_bits_per_dim"] >= 0).all()
    loss = vae.loss({"image": x})
    assert loss.ndim == 0 and torch.isfinite(loss)
    points = VAE(MLP(2, 4, 8, 1), MLP(2, 4, 8, 1), VAEConfig(latent_dim=2), (2,), "x", discrete=False)
    assert points.sample(7).shape == (7, 2)
    with pytest.raises(ValueError, match="unconditional"):
        points.sample(2, cond=torch.zeros(2))


def test_kl_is_nonnegative_and_zero_only_at_the_prior():
    torch.manual_seed(0)
    mu, logvar = torch.randn(100, 6) * 2, torch.randn(100, 6) * 2
    assert (gaussian_kl_to_standard(mu, logvar) > 0).all()
    assert torch.allclose(gaussian_kl_to_standard(torch.zeros(3, 6), torch.zeros(3, 6)), torch.zeros(3))
    # matches torch.distributions
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(gaussian_kl_to_standard(mu, logvar), ref, atol=1e-4)


def linear_gaussian_vae(exact_posterior: bool):
    """z ~ N(0, 1), x | z ~ N(w z + b, diag s^2): p(x) = N(b, w w^T + diag s^2) in closed form; its
    posterior is N(m(x), v) with v = 1 / (1 + w^T S^-1 w), m = v w^T S^-1 (x - b), exactly linear."""
    w, b, log_s = torch.tensor([1.5, -0.7]), torch.tensor([0.3, 0.1]), torch.tensor([-0.5, 0.2])
    enc, dec = nn.Linear(2, 2).double(), nn.Linear(1, 4).double()
    with torch.no_grad():
        dec.weight.copy_(torch.cat([w, torch.zeros(2)]).view(4, 1))
        dec.bias.copy_(torch.cat([b, log_s]))
        s_inv = (-2 * log_s).exp()
        v = 1 / (1 + (w * w * s_inv).sum())
        gain = v * w * s_inv  # m = gain . (x - b)
        enc.weight.copy_(torch.stack([gain, torch.zeros(2)]))
        enc.bias.copy_(torch.stack([-(gain * b).sum(), v.log()]))
        if not exact_posterior:
            enc.weight[0] *= 0.6
            enc.bias[1] += 0.8
    vae = VAE(enc, dec, VAEConfig(latent_dim=1, min_log_scale=-20), (2,), "x", discrete=False)
    cov = torch.outer(w, w) + torch.diag((2 * log_s).exp())
    exact = torch.distributions.MultivariateNormal(b.double(), cov.double())
    return vae, exact


def test_bounds_against_an_exact_gaussian_likelihood():
    torch.manual_seed(0)
    x = torch.randn(6, 2, dtype=torch.float64) * 1.5
    vae, exact = linear_gaussian_vae(exact_posterior=True)
    log_p = exact.log_prob(x)
    # with the true posterior every importance weight equals p(x): the bound is exact for any K
    assert torch.allclose(vae.iw_bound(x, 1), log_p, atol=1e-10)
    assert torch.allclose(vae.iw_bound(x, 7), log_p, atol=1e-10)

    vae, _ = linear_gaussian_vae(exact_posterior=False)
    reps = x.repeat(4000, 1)
    rec, kl = vae.elbo_terms(reps)
    elbo = (rec - kl).view(4000, 6).mean(0)  # E_q[log p(x|z)] - KL, averaged over many z
    iw = vae.iw_bound(reps, 64).view(4000, 6).mean(0)
    assert (elbo < log_p - 1e-3).all()  # a loose posterior gives a strict bound
    assert (elbo < iw).all() and (iw <= log_p + 1e-3).all()  # IWAE is tighter, still a bound
    bits = vae.nll_bits_per_dim(x)["bits_per_dim"]
    assert bits.shape == (6,) and torch.isfinite(bits).all()


def test_discretised_bound_is_above_the_exact_nll_by_quadrature():
    torch.manual_seed(0)
    side = 4
    vae = VAE(ConvDown(1, 2, side, width=4), ConvUp(1, 2, side, width=4, norm="none"),
              VAEConfig(latent_dim=1), (1, side, side)).double().eval()
    x = grid_images(3, side=side).double()
    # log P(x) = log int P(x|z) N(z) dz on a fine grid (the integrand is smooth in z)
    z = torch.linspace(-9, 9, 1201, dtype=torch.float64).view(-1, 1)
    mean, log_scale = vae.decode(z)  # (Z, 1, 4, 4)
    log_px_z = torch.stack([vae.log_likelihood(xi.expand_as(mean), mean, log_scale) for xi in x])  # (3, Z)
    log_pz = -0.5 * z.view(-1) ** 2 - 0.5 * math.log(2 * math.pi)
    exact = torch.logsumexp(log_px_z + log_pz, dim=1) + math.log(float(z[1] - z[0]))
    to_bits = 1 / (side * side * math.log(2))

    reps = x.repeat(1000, 1, 1, 1)
    with torch.no_grad():
        elbo_bits = vae.nll_bits_per_dim(reps)["bits_per_dim"].view(1000, 3).mean(0)
        iw_bits = vae.nll_bits_per_dim(reps, k=32)["bits_per_dim"].view(1000, 3).mean(0)
    exact_bits = -exact * to_bits
    assert (exact_bits > 0).all()
    assert (elbo_bits >= exact_bits - 1e-3).all() and (iw_bits >= exact_bits - 1e-3).all()
    assert (iw_bits <= elbo_bits).all()


def test_short_training_matches_the_ring_mean_and_covariance():
    torch.manual_seed(0)
    vae = VAE(MLP(2, 4, 64, 2, "leaky_relu"), MLP(2, 4, 64, 2), VAEConfig(latent_dim=2, kl_warmup=300), (2,), "x",
              discrete=False)
    data = sample_mixture("ring8", 20_000, seed=0)[0]
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    for _ in range(600):
        loss = vae.loss({"x": data[torch.randint(len(data), (128,))]})
        opt.zero_grad()
        loss.backward()
        opt.step()
    vae.eval()
    x = vae.sample(4000, generator=torch.Generator().manual_seed(0))
    assert x.mean(0).abs().max() < 0.25, x.mean(0)
    cov = torch.cov(x.T)  # the ring's covariance is 2 I (radius 2)
    assert (cov.diagonal() - 2).abs().max() < 0.6 and cov[0, 1].abs() < 0.4, cov
    radius = x.norm(dim=1)
    assert ((radius > 1.4) & (radius < 2.6)).float().mean() > 0.6
    held_out = sample_mixture("ring8", 500, seed=1)[0]
    assert vae.nll_bits_per_dim(held_out)["bits_per_dim"].mean() < 1.9  # a N(0, 2I) fit would be 2.05
    assert int(vae.kl_steps) == 600
