import pytest
import torch

import twopaths.nn.attention as shared_attention
from twopaths.backbones.unet import UNET_PRESETS, UNet, UNetConfig, unet_preset
from twopaths.nn.blocks import AttentionBlock, ResBlock
from conftest import perturb

DDPM_CIFAR10_PARAMS = 35_746_307  # diffusers UNet2DModel in the DDPM CIFAR-10 config (see the test below)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw) -> UNet:
    """Two levels, one block each, attention at the lower one: fast on CPU."""
    torch.manual_seed(0)
    cfg = dict(in_channels=1, image_size=28, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
               attention_resolutions=(14,), groups=4, num_heads=2)
    return UNet(UNetConfig(**{**cfg, **kw}))


def t_of(b: int, value: float = 10.0) -> torch.Tensor:
    return torch.full((b,), value)


@pytest.mark.parametrize("size, channels, mults, attn", [(28, 1, (1, 2, 2), (14,)), (32, 3, (1, 2, 2), (16, 8))])
@pytest.mark.parametrize("num_classes", [0, 10])
@pytest.mark.parametrize("learn_sigma", [False, True])
def test_output_shape(size, channels, mults, attn, num_classes, learn_sigma):
    model = tiny(in_channels=channels, image_size=size, channel_mults=mults, attention_resolutions=attn,
                 num_classes=num_classes, out_channels=2 * channels if learn_sigma else None)
    x = torch.randn(2, channels, size, size)
    y = torch.tensor([3, num_classes]) if num_classes else None  # one real label, one null label
    out = model(x, torch.tensor([0.0, 517.3]), y)
    assert out.shape == (2, 2 * channels if learn_sigma else channels, size, size)


@pytest.mark.parametrize("variant", [{}, {"scale_shift_norm": True}, {"resblock_updown": True},
                                     {"head_channels": 8, "dropout": 0.1}])
def test_zero_output_at_init_and_gradients_flow(variant):
    model = tiny(num_classes=10, **variant)
    x = torch.randn(3, 1, 28, 28)
    out = model(x, torch.tensor([1.0, 50.5, 999.0]), torch.tensor([0, 5, 10]))
    assert out.shape == x.shape
    assert torch.equal(out, torch.zeros_like(out))  # every residual branch and the output conv start at 0
    (out * torch.randn_like(out)).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert "conv_out.weight" in grads  # the zero output conv still learns from the first step


def test_zero_initialised_layers():
    model = tiny()
    for m in model.modules():
        if isinstance(m, ResBlock):
            assert m.conv2.weight.abs().sum() == 0 and m.conv2.bias.abs().sum() == 0
        if isinstance(m, AttentionBlock):
            assert m.proj.weight.abs().sum() == 0
    assert model.conv_out.weight.abs().sum() == 0


def test_time_embedding_matters():
    model = perturb(tiny()).eval()
    x = torch.randn(2, 1, 28, 28)
    a, b = model(x, t_of(2, 5.0)), model(x, t_of(2, 800.0))
    assert (a - b).abs().max() > 1e-3
    # fractional timesteps are valid and land in between
    assert torch.isfinite(model(x, t_of(2, 5.5))).all()
    # a scalar t is broadcast over the batch
    assert torch.allclose(model(x, torch.tensor(5.0)), a)


def test_class_conditioning_matters():
    model = perturb(tiny(num_classes=10)).eval()
    x = torch.randn(2, 1, 28, 28)
    a = model(x, t_of(2), torch.tensor([1, 1]))
    b = model(x, t_of(2), torch.tensor([7, 7]))
    null = model(x, t_of(2), torch.tensor([10, 10]))
    assert (a - b).abs().max() > 1e-3 and (a - null).abs().max() > 1e-3
    assert torch.equal(model(x, t_of(2), None), null)  # no labels = the null label
    with pytest.raises(ValueError, match="unconditional"):
        tiny()(x, t_of(2), torch.tensor([1, 1]))


def test_skip_connections_carry_gradient():
    """Cut the main path after the first block: its output still reaches the loss through its skip."""
    model = perturb(tiny())
    saved = {}

    def keep(module, args, output):
        output.retain_grad()
        saved["h"] = output

    model.down[0].register_forward_hook(keep)
    model.down[1].register_forward_pre_hook(lambda module, args: (args[0].detach(), *args[1:]))
    model(torch.randn(2, 1, 28, 28), t_of(2)).square().sum().backward()
    assert saved["h"].grad is not None and saved["h"].grad.abs().sum() > 0


def test_every_skip_is_consumed():
    cfg = unet_preset("unet-tiny", channel_mults=(1, 2, 2, 2), num_res_blocks=2, image_size=32,
                      attention_resolutions=(16,))
    model = UNet(cfg)
    # one saved output per down step plus the stem; one up block per saved output
    assert len(model.down) == 4 * 2 + 3
    assert len(model.up) == len(model.down) + 1 == 4 * (2 + 1)


def test_bad_sizes_raise_clear_errors():
    model = tiny(channel_mults=(1, 2, 2))  # divides by 4
    with pytest.raises(ValueError, match=r"does not divide by 4"):
        model(torch.randn(1, 1, 30, 30), t_of(1))
    with pytest.raises(ValueError, match=r"match no level.*\(28, 14, 7\)"):
        UNet(UNetConfig(in_channels=1, image_size=28, attention_resolutions=(16,)))
    with pytest.raises(ValueError, match="does not divide"):
        UNet(UNetConfig(image_size=30, attention_resolutions=()))
    with pytest.raises(ValueError, match="unknown U-Net preset"):
        unet_preset("unet-huge")


def test_other_sizes_and_channels_last():
    model = perturb(tiny()).eval()
    x = torch.randn(2, 1, 16, 20)  # any size that divides by 2 works; attention stays on level 1
    out = model(x, t_of(2))
    assert out.shape == x.shape
    out_cl = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last), t_of(2))
    assert torch.allclose(out, out_cl, atol=1e-5)


def test_attention_uses_the_shared_function(monkeypatch):
    calls = []
    original = shared_attention.attention

    def spy(q, k, v, *args, **kwargs):
        calls.append(q.shape)
        return original(q, k, v, *args, **kwargs)

    monkeypatch.setattr(shared_attention, "attention", spy)
    model = tiny()
    model(torch.randn(2, 1, 28, 28), t_of(2))
    n_blocks = sum(isinstance(m, AttentionBlock) for m in model.modules())
    assert n_blocks == 4  # one down block and two up blocks at 14x14, one in the middle
    assert len(calls) == n_blocks
    assert calls[0] == (2, 2, 14 * 14, 16)  # (B, heads, H*W, head width)


def test_presets_build():
    counts = {name: UNet(cfg).num_params() for name, cfg in UNET_PRESETS.items() if name != "ddpm-cifar10"}
    print(counts)
    assert counts["unet-small"] < 10_000_000
    cfg = unet_preset("unet-small", num_classes=10, out_channels=2)
    assert cfg.num_classes == 10 and UNET_PRESETS["unet-small"].num_classes == 0


def test_ddpm_cifar10_parameter_count_matches_diffusers():
    ours = UNet(UNET_PRESETS["ddpm-cifar10"]).num_params()
    diffusers = pytest.importorskip("diffusers")
    peer = diffusers.UNet2DModel(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(128, 256, 256, 256), layers_per_block=2,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"))
    theirs = sum(p.numel() for p in peer.parameters())
    print(f"ddpm-cifar10: twopaths UNet {ours:,} parameters, diffusers UNet2DModel {theirs:,}")
    assert abs(ours - theirs) / theirs < 0.03
    assert ours == DDPM_CIFAR10_PARAMS  # in fact the same architecture, to the parameter


def test_tiny_unet_overfits_one_batch():
    torch.manual_seed(0)
    model = UNet(UNetConfig(in_channels=1, image_size=16, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
                            attention_resolutions=(8,), groups=4, num_classes=2))
    x0 = torch.randn(4, 1, 16, 16)
    t = torch.tensor([10.0, 200.0, 500.0, 900.0])
    y = torch.tensor([0, 1, 0, 2])
    noise = torch.randn_like(x0)
    x_t = 0.7 * x0 + 0.7 * noise
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        loss = (model(x_t, t, y) - noise).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])

