"""Cross-attention in the U-Net (context_dim > 0): the context changes the output, masked-out
context tokens change nothing, and with context_dim = 0 the network is the one it always was."""

import pytest
import torch

import twopaths.nn.attention as shared_attention
from twopaths.backbones.unet import UNet, UNetConfig
from twopaths.nn.blocks import AttentionBlock
from conftest import perturb


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw) -> UNet:
    torch.manual_seed(0)
    cfg = dict(in_channels=3, image_size=16, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
               attention_resolutions=(8,), groups=4, num_heads=2)
    return UNet(UNetConfig(**{**cfg, **kw}))


def inputs(b: int = 2, s: int = 5, d: int = 12):
    torch.manual_seed(2)
    return torch.randn(b, 3, 16, 16), torch.tensor([3.0, 700.0])[:b], torch.randn(b, s, d)


def test_context_dim_zero_keeps_the_network_and_its_parameter_names():
    plain = tiny()
    assert plain.cfg.context_dim == 0
    names = list(plain.state_dict())
    assert not [n for n in names if "cross" in n or "context" in n]
    # the same names and values as a net built with the field left out entirely
    torch.manual_seed(0)
    cfg = UNetConfig(in_channels=3, image_size=16, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
                     attention_resolutions=(8,), groups=4, num_heads=2)
    same = UNet(cfg)
    assert list(same.state_dict()) == names
    x, t, ctx = inputs()
    perturb(plain), perturb(same)
    assert torch.equal(plain(x, t), same(x, t))
    with pytest.raises(ValueError, match="no cross-attention"):
        plain(x, t, context=ctx)


def test_cross_attention_is_the_shared_module_at_every_attention_block_and_starts_at_zero():
    net = tiny(context_dim=12)
    blocks = [m for m in net.modules() if isinstance(m, AttentionBlock)]
    assert len(blocks) == 4  # one down at 8x8, the middle one, two up at 8x8 (num_res_blocks + 1)
    assert all(isinstance(b.cross_attn, shared_attention.MultiHeadAttention) and b.cross_attn.cross
               and not b.cross_attn.fused for b in blocks)
    x, t, ctx = inputs()
    assert torch.equal(net(x, t, context=ctx), torch.zeros_like(x))  # every branch starts as the identity
    assert all(b.cross_attn.c_proj.weight.abs().sum() == 0 for b in blocks)


def test_context_changes_the_output_and_gradients_reach_it():
    net = perturb(tiny(context_dim=12))
    x, t, ctx = inputs()
    a = net(x, t, context=ctx)
    b = net(x, t, context=ctx + torch.randn_like(ctx))
    assert (a - b).abs().max() > 1e-3
    ctx = ctx.clone().requires_grad_(True)
    net(x, t, context=ctx).pow(2).sum().backward()
    assert ctx.grad.abs().sum() > 0  # a text encoder in front trains jointly
    with pytest.raises(ValueError, match="cross-attends to a context"):
        net(x, t)
    with pytest.raises(ValueError, match="does not match context_dim"):
        net(x, t, context=torch.randn(2, 5, 7))


def test_masked_out_context_tokens_have_no_effect():
    net = perturb(tiny(context_dim=12))
    x, t, ctx = inputs(s=6)
    mask = torch.tensor([[True, True, True, False, False, False], [True] * 6])
    out = net(x, t, context=ctx, context_mask=mask)
    garbage = ctx.clone()
    garbage[0, 3:] = 100 * torch.randn(3, 12)  # change only the masked-out tokens of row 0
    torch.testing.assert_close(net(x, t, context=garbage, context_mask=mask), out, atol=1e-6, rtol=0)
    # padding + mask is the same as the shorter context itself
    torch.testing.assert_close(net(x[:1], t[:1], context=ctx[:1, :3]), out[:1], atol=1e-5, rtol=0)
    # and a mask that hides real tokens does change the output
    assert (net(x, t, context=ctx) - out)[0].abs().max() > 1e-3


def test_channels_last_and_class_labels_with_context():
    net = perturb(tiny(context_dim=12, num_classes=3))
    x, t, ctx = inputs()
    y = torch.tensor([0, 3])  # a label and the null label
    ref = net(x, t, y, context=ctx)
    torch.testing.assert_close(net(x.to(memory_format=torch.channels_last), t, y, context=ctx), ref,
                               atol=1e-5, rtol=1e-5)


def test_pooled_context_joins_the_time_embedding_unless_turned_off():
    pooled, plain = perturb(tiny(context_dim=12)), perturb(tiny(context_dim=12, context_pool=False))
    assert hasattr(pooled, "context_embed") and not hasattr(plain, "context_embed")
    x, t, ctx = inputs()
    # without pooling the text still gets in, through cross-attention alone
    assert (plain(x, t, context=ctx) - plain(x, t, context=ctx.flip(1) + 1)).abs().max() > 1e-3
    # the pool is over the real tokens only: one token given, or that token and masked-out others, agree
    mask = torch.tensor([[True, False, False, False, False]] * 2)
    torch.testing.assert_close(pooled(x, t, context=ctx, context_mask=mask), pooled(x, t, context=ctx[:, :1]),
                               atol=1e-5, rtol=0)
