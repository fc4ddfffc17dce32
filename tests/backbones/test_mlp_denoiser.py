import pytest
import torch

from twopaths.backbones.mlp import MLPDenoiser, MLPDenoiserConfig
from conftest import perturb


pytestmark = pytest.mark.usefixtures("one_thread")


def make(**kw) -> MLPDenoiser:
    torch.manual_seed(0)
    return MLPDenoiser(MLPDenoiserConfig(width=64, num_blocks=2, **kw))


@pytest.mark.parametrize("num_classes", [0, 8])
@pytest.mark.parametrize("out_dim", [None, 4])
def test_shapes_and_zero_init(num_classes, out_dim):
    model = make(num_classes=num_classes, out_dim=out_dim)
    x = torch.randn(5, 2)
    y = torch.randint(0, num_classes + 1, (5,)) if num_classes else None
    out = model(x, torch.rand(5) * 999, y)
    assert out.shape == (5, out_dim or 2)
    assert torch.equal(out, torch.zeros_like(out))  # the last layer of every branch starts at 0


def test_default_size():
    model = MLPDenoiser(MLPDenoiserConfig())
    assert len(model.blocks) == 4 and model.cfg.width == 256
    assert 1_000_000 < model.num_params() < 2_000_000  # 1,680,642


def test_time_dependence():
    model = perturb(make()).eval()
    x = torch.randn(4, 2)
    a, b = model(x, torch.full((4,), 3.0)), model(x, torch.full((4,), 700.0))
    assert (a - b).abs().max() > 1e-3
    assert torch.allclose(model(x, torch.tensor(3.0)), a)  # scalar t broadcasts


def test_class_conditioning():
    model = perturb(make(num_classes=8)).eval()
    x = torch.randn(4, 2)
    t = torch.full((4,), 50.0)
    a, b = model(x, t, torch.full((4,), 1)), model(x, t, torch.full((4,), 6))
    null = model(x, t, torch.full((4,), 8))
    assert (a - b).abs().max() > 1e-3 and (a - null).abs().max() > 1e-3
    assert torch.equal(model(x, t), null)  # no labels = the null label
    with pytest.raises(ValueError, match="unconditional"):
        make()(x, t, torch.zeros(4, dtype=torch.long))


def test_bad_shape():
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        make()(torch.randn(4, 3), torch.zeros(4))


def test_learns_to_denoise_a_mixture():
    """eps-prediction on ring8 under a linear schedule (Ho et al. 2020, eq. 14), written out here."""
    from twopaths.data.toy import sample_mixture

    torch.manual_seed(0)
    x0, label = sample_mixture("ring8", 256)
    T = 100
    abar = torch.cumprod(1 - torch.linspace(1e-3, 0.2, T), 0)  # (T,)
    model = make(num_classes=8)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(150):
        t = torch.randint(0, T, (len(x0),))
        noise = torch.randn_like(x0)
        a = abar[t][:, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = (model(x_t, t.float(), label) - noise).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # the untrained output is 0, so the loss starts at E[eps^2] = 1; a denoiser does clearly better
    assert sum(losses[:5]) / 5 > 0.8 and sum(losses[-20:]) / 20 < 0.6, (losses[:5], losses[-20:])
