"""The FLOP counter: exact on a Linear, a conv and attention (CPU included), linear in the batch,
and harmless to the module it measures."""

import pytest
import torch
from torch import nn

from twopaths.backbones.unet import UNet, UNetConfig
from twopaths.nn.attention import attention, attention_reference
from twopaths.nn.flops import count_flops, forward_gflops


def test_linear_is_two_flops_per_multiply_add():
    layer = nn.Linear(7, 5)
    assert count_flops(layer, torch.zeros(3, 7)) == 2 * 3 * 7 * 5  # 2 * in * out per row; the bias is not counted
    assert forward_gflops(layer, torch.zeros(3, 7)) == 2 * 3 * 7 * 5 / 1e9
    assert count_flops(nn.Linear(7, 5, bias=False), torch.zeros(2, 4, 7)) == 2 * 8 * 7 * 5  # any leading dims


def test_conv_is_two_flops_per_multiply_add():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, stride=2)
    # output 8 x 5 x 5, each from 3 * 3 * 3 inputs
    assert count_flops(conv, torch.zeros(1, 3, 10, 10)) == 2 * (8 * 5 * 5) * (3 * 3 * 3)


@pytest.mark.parametrize("masked", [False, True])
def test_attention_is_counted_on_the_cpu_like_the_written_out_matmuls(masked):
    q = torch.randn(2, 3, 5, 8)
    k, v = torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    mask = torch.rand(2, 1, 5, 7) > 0.3 if masked else None
    expected = 2 * (2 * 3 * 5 * 7 * 8) * 2  # Q K^T and weights @ V, 2 FLOPs per multiply-add each
    fused = nn.Module()
    fused.forward = lambda: attention(q, k, v, mask)  # SDPA's CPU kernel, which PyTorch's counter misses
    written = nn.Module()
    written.forward = lambda: attention_reference(q, k, v, mask)  # two matmuls
    assert count_flops(fused) == count_flops(written) == expected


def test_counts_scale_with_the_batch_and_work_on_the_unet():
    unet = UNet(UNetConfig(in_channels=1, image_size=16, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                           attention_resolutions=(8,), groups=4, num_classes=3))
    one = forward_gflops(unet, torch.zeros(1, 1, 16, 16), torch.zeros(1))
    two = forward_gflops(unet, torch.zeros(2, 1, 16, 16), torch.zeros(2), torch.tensor([0, 3]))
    assert one > 0 and two == pytest.approx(2 * one, rel=1e-9)
    assert one * 1e9 > count_flops(unet.conv_in, torch.zeros(1, 1, 16, 16))  # more than its first conv alone


def test_leaves_the_module_mode_and_random_state_alone():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2)).train()
    state = torch.random.get_rng_state()
    count_flops(model, torch.zeros(3, 4))
    assert model.training and all(m.training for m in model)
    assert torch.equal(torch.random.get_rng_state(), state)  # counted in eval mode: dropout drew nothing
    model.eval()
    count_flops(model, torch.zeros(3, 4))
    assert not model.training
