"""The WaveNet/DiffWave block: causal outputs see only the past (the receptive field, exactly), the
incremental generator (Fast WaveNet's per-layer queues) equals full recomputation, and the non-causal
denoiser sees both sides and maps a waveform to its shape."""

from __future__ import annotations

import pytest
import torch

from twopaths.backbones.wavenet import WaveNet, WaveNetConfig, WaveNetDenoiser
from twopaths.paradigms.autoregressive import Autoregressive

CFG = WaveNetConfig(channels=16, kernel_size=2, n_layers=6, dilation_cycle=3, num_classes=3)  # R = 1 + 2*(1+2+4)


def test_causal_receptive_field_is_exact():
    torch.manual_seed(0)
    net = WaveNet(CFG).eval()
    assert net.receptive_field == 15
    ids = torch.randint(0, 256, (1, 40))
    x = net.embed(ids).requires_grad_()
    net.embed.weight.requires_grad_(False)

    def output_at(t: int) -> torch.Tensor:  # logits of position t from embedded inputs
        h, skips = x.transpose(1, 2), 0
        for layer in net.layers:
            h, s = layer(h)
            skips = skips + s
        return net.out(skips)[0, :, t].sum()

    (grad,) = torch.autograd.grad(output_at(30), x)
    seen = grad[0].abs().sum(-1).nonzero().flatten().tolist()
    assert seen == list(range(30 - 15 + 1, 31))  # t - R + 1 .. t, nothing later


@pytest.mark.parametrize("labels", [None, torch.tensor([0, 2])])
def test_incremental_generation_equals_full_recomputation(labels):
    torch.manual_seed(0)
    net = WaveNet(CFG).eval()
    net.labels = labels
    ar = Autoregressive(net, context=64)  # the full-recomputation path reads the last 64 ids
    prompt = torch.randint(0, 256, (2, 3))
    fast = ar.generate_batch(prompt, 50, generator=torch.Generator().manual_seed(1))
    slow = ar.generate_batch(prompt, 50, generator=torch.Generator().manual_seed(1), use_cache=False)
    assert torch.equal(fast, slow)
    cache = net.new_cache(2, 64)
    step_by_step = torch.cat([net(prompt[:, i:i + 1], cache=cache) for i in range(3)], dim=1)
    assert torch.allclose(step_by_step, net(prompt), atol=1e-5) and cache.length == 3


def test_padding_masks_are_refused():
    with pytest.raises(ValueError, match="cannot mask padding"):
        WaveNet(CFG)(torch.zeros(1, 4, dtype=torch.long), key_mask=torch.tensor([[False, True, True, True]]))


def test_denoiser_is_non_causal_and_starts_at_zero():
    torch.manual_seed(0)
    cfg = WaveNetConfig(channels=16, kernel_size=3, n_layers=4, dilation_cycle=4, num_classes=10)
    net = WaveNetDenoiser(cfg)
    x, t, y = torch.randn(2, 1, 64), torch.tensor([3.0, 40.0]), torch.tensor([1, 7])
    assert torch.equal(net(x, t, y), torch.zeros(2, 1, 64))  # zero-initialised output
    torch.nn.init.normal_(net.out[-1].weight)
    x.requires_grad_()
    (grad,) = torch.autograd.grad(net(x, t, y)[0, 0, 32], x)
    seen = grad[0, 0].nonzero().flatten()
    assert seen.min() < 32 < seen.max()  # both sides
    assert (seen.max() - seen.min()) == cfg.receptive_field() - 1
    with pytest.raises(ValueError, match="odd kernel"):
        WaveNetDenoiser(WaveNetConfig(kernel_size=2))
