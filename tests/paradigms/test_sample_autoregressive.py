"""WaveNet over mu-law samples: companding round trip, the loss, and the incremental generator equal to
recomputing over the receptive field at every step (same seed, same clips)."""

from __future__ import annotations

import pytest
import torch

from twopaths.backbones.wavenet import WaveNet, WaveNetConfig
from twopaths.paradigms.sample_autoregressive import SampleAutoregressive, mu_law_decode, mu_law_encode


def test_mu_law_round_trip_is_finest_near_zero():
    x = torch.linspace(-1, 1, 10001)
    ids = mu_law_encode(x)
    assert ids.min() == 0 and ids.max() == 255 and mu_law_encode(torch.zeros(())) in (127, 128)
    err = (mu_law_decode(ids) - x).abs()
    assert err[(x.abs() < 0.01)].max() < 5e-4 and err.max() < 0.035  # companding: small steps near 0
    assert torch.equal(mu_law_encode(mu_law_decode(torch.arange(256))), torch.arange(256))


def _model(num_classes: int = 3) -> SampleAutoregressive:
    torch.manual_seed(0)
    cfg = WaveNetConfig(channels=8, kernel_size=2, n_layers=4, dilation_cycle=4, num_classes=num_classes)
    return SampleAutoregressive(WaveNet(cfg), length=200).eval()


def test_loss_is_next_sample_cross_entropy_and_trains():
    model = _model().train()
    batch = {"audio": torch.sin(torch.linspace(0, 60, 200))[None, None].repeat(4, 1, 1) * 0.5,
             "label": torch.tensor([0, 1, 2, 0])}
    first = model.loss(batch)
    assert abs(first.item() - torch.log(torch.tensor(256.0)).item()) < 0.5  # about uniform at the start
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    assert model.loss(batch).item() < 0.65 * first.item()  # it learns the periodic signal
    assert model.items_in(batch) == 800


@pytest.mark.parametrize("cond", [None, torch.tensor([2, 0])])
def test_incremental_sampling_equals_recomputation(cond):
    model = _model()
    fast = model.sample(2, cond=cond, generator=torch.Generator().manual_seed(3))
    slow = model.sample(2, cond=cond, generator=torch.Generator().manual_seed(3), use_cache=False)
    assert fast.shape == (2, 1, 200) and torch.equal(fast, slow)
    assert model.net.labels is None  # the condition does not outlive the call
    with pytest.raises(ValueError, match="unconditional"):
        _model(0).sample(1, cond=torch.tensor([1]))
