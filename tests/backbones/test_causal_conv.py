"""The causal dilated convolution LM: causal, and its receptive field is exactly the stated formula."""

from __future__ import annotations

import pytest
import torch

from twopaths.backbones.causal_conv import CausalConvConfig, CausalConvLM


def _net(**kw) -> CausalConvLM:
    torch.manual_seed(0)
    return CausalConvLM(30, CausalConvConfig(channels=16, **kw)).eval()


def _changed_positions(net: CausalConvLM, ids: torch.Tensor, j: int) -> torch.Tensor:
    """Positions t whose logits change when token j changes (in float64: the influence of the
    furthest token passes through every layer's oldest tap and can be ~1e-7, but is never 0)."""
    other = ids.clone()
    other[:, j] = (other[:, j] + 7) % 30
    net = net.double()
    with torch.no_grad():
        diff = (net(ids) - net(other)).abs().amax(dim=(0, 2))  # (T,)
    return torch.nonzero(diff > 1e-13).flatten()


@pytest.mark.parametrize("kw, field", [
    (dict(kernel_size=2, n_layers=6, dilation_cycle=6), 64),  # the default stack: 1 + (1+2+...+32)
    (dict(kernel_size=3, n_layers=4, dilation_cycle=4), 31),  # 1 + 2 * (1+2+4+8)
    (dict(kernel_size=2, n_layers=6, dilation_cycle=3), 15),  # 1 + 2 * (1+2+4): dilations restart
])
def test_receptive_field_formula_checked_by_perturbation(kw, field):
    cfg = CausalConvConfig(channels=16, **kw)
    assert cfg.receptive_field() == field == 1 + (cfg.kernel_size - 1) * sum(cfg.dilations())
    net = _net(**kw)
    assert net.receptive_field == field
    T, j = field + 40, 10
    ids = torch.randint(0, 30, (2, T))
    changed = _changed_positions(net, ids, j)
    # causal: nothing before j moves; finite reach: exactly j .. j + R - 1 move
    assert changed.tolist() == list(range(j, j + field))


def test_output_at_t_is_independent_of_later_inputs():
    net = _net()
    ids = torch.randint(0, 30, (3, 50))
    with torch.no_grad():
        full = net(ids)
        for t in (0, 17, 49):
            assert torch.allclose(net(ids[:, :t + 1])[:, t], full[:, t], atol=1e-5)
            future = ids.clone()
            future[:, t + 1:] = torch.randint(0, 30, future[:, t + 1:].shape)
            assert torch.allclose(net(future)[:, :t + 1], full[:, :t + 1], atol=1e-5)


def test_shapes_and_training_step_reduces_loss():
    from twopaths.paradigms.autoregressive import Autoregressive

    torch.manual_seed(0)
    model = Autoregressive(CausalConvLM(30, CausalConvConfig(channels=16, n_layers=3)), context=8)
    assert model.net(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 5, 30)
    batch = {"tokens": torch.arange(33).remainder(30).repeat(4, 1)}  # a periodic sequence: learnable
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(batch).item()
    for _ in range(30):
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    # generation recomputes over the receptive field only, which is exact for this backbone
    out = model.generate_batch(torch.arange(10)[None], 5, temperature=0.0)
    assert out.tolist() == [[10, 11, 12, 13, 14]]


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="kernel_size"):
        CausalConvLM(10, CausalConvConfig(kernel_size=1))
