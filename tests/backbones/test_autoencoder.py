"""The KL autoencoder: latent shapes for f = 2 and 4 on 28x28 and 32x32 images, the posterior's KL
and samples against their closed forms, config errors, and a tiny autoencoder that learns to
reconstruct 16 Fashion-MNIST images."""

import pytest
import torch

from twopaths.backbones.autoencoder import Autoencoder, AutoencoderConfig
from twopaths.errors import ConfigError
from twopaths.nn.distributions import DiagonalGaussian


def tiny(channels=1, factor=4, latent=4, mults=(1, 2, 2), base=8):
    torch.manual_seed(0)
    return Autoencoder(AutoencoderConfig(in_channels=channels, latent_channels=latent, base_channels=base,
                                         channel_mults=mults, factor=factor, groups=4))


@pytest.mark.parametrize("side,channels", [(28, 1), (32, 3)])
@pytest.mark.parametrize("factor", [2, 4])
def test_latent_and_output_shapes(side, channels, factor):
    ae = tiny(channels, factor, latent=3)
    x = torch.rand(2, channels, side, side) * 2 - 1
    posterior = ae.encode(x)
    assert posterior.mean.shape == posterior.logvar.shape == (2, 3, side // factor, side // factor)
    assert ae.latent_shape(side) == (3, side // factor, side // factor)
    assert ae.decode(posterior.sample()).shape == x.shape
    recon, _ = ae(x, sample=False)
    assert recon.shape == x.shape and torch.isfinite(recon).all()


def test_fewer_levels_than_mults_keep_the_latent_side():
    """With factor 2 and three levels, the third level works at the latent side (no third halving)."""
    ae = tiny(factor=2, mults=(1, 2, 2))
    assert ae.encode(torch.zeros(1, 1, 28, 28)).mean.shape == (1, 4, 14, 14)
    assert ae.decode(torch.zeros(1, 4, 14, 14)).shape == (1, 1, 28, 28)


def test_kl_of_the_prior_is_zero_and_matches_the_closed_form():
    zeros = torch.zeros(3, 2, 4, 4)
    assert torch.equal(DiagonalGaussian(zeros, zeros).kl(), torch.zeros(3))
    # mean 1, variance e: per dimension 1/2 (1 + e - 1 - 1) = (e - 1) / 2, times 32 dimensions
    kl = DiagonalGaussian(torch.ones(3, 2, 4, 4), torch.ones(3, 2, 4, 4)).kl()
    assert torch.allclose(kl, torch.full((3,), 32 * (torch.e - 1) / 2))


def test_posterior_samples_have_its_mean_and_std_and_follow_the_generator():
    mean, logvar = torch.full((1, 1, 200, 200), 0.5), torch.full((1, 1, 200, 200), 2 * torch.log(torch.tensor(3.0)))
    q = DiagonalGaussian(mean, logvar)
    z = q.sample(torch.Generator().manual_seed(0))
    assert abs(float(z.mean()) - 0.5) < 0.05 and abs(float(z.std()) - 3.0) < 0.05
    assert torch.equal(z, q.sample(torch.Generator().manual_seed(0)))
    assert torch.equal(q.mode(), mean)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="'arch.autoencoder.factor' must be a power of two"):
        AutoencoderConfig(factor=3)
    with pytest.raises(ConfigError, match="needs 3 levels"):
        AutoencoderConfig(factor=4, channel_mults=(1, 2))
    with pytest.raises(ConfigError, match="does not divide by the autoencoder's factor 8"):
        AutoencoderConfig(factor=8, channel_mults=(1, 2, 2, 2)).latent_shape(28)
    with pytest.raises(ValueError, match="does not divide"):
        tiny(factor=4)(torch.zeros(1, 1, 30, 30))


def test_a_tiny_autoencoder_learns_to_reconstruct(fashion):
    """decode(encode(x).mode()) on 16 images: far below the error of predicting their mean image."""
    x = fashion["test"][0][:16]  # (16, 1, 28, 28) in [-1, 1]
    baseline = float((x - x.mean(0, keepdim=True)).pow(2).mean())  # the best image that ignores its input
    ae = tiny(factor=4, latent=4)
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    for _ in range(120):
        loss = (ae.decode(ae.encode(x).mode()) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        mse = float((ae.decode(ae.encode(x).mode()) - x).pow(2).mean())
    assert mse < 0.08 and mse < baseline / 4, (mse, baseline)
