"""The Diffusion Transformer: adaLN-Zero identity at init, patches, conditioning (class, text),
the size registry against the paper's parameter and Gflops figures, and a short learning run."""

import pytest
import torch
import torch.nn.functional as F

from twopaths.backbones.dit import (DIT_SIZES, DiT, DiTBlock, DiTConfig, dit_gflops, dit_preset, patchify,
                                    sincos_2d, unpatchify)
from twopaths.backbones.transformer import MLP
from twopaths.errors import ConfigError
from twopaths.nn.attention import MultiHeadAttention
from twopaths.nn.flops import forward_gflops
from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion
from conftest import perturb


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw) -> DiT:
    """Two blocks of width 32 over 4x4 patches of 28x28 grey images (49 tokens)."""
    torch.manual_seed(0)
    cfg = dict(image_size=28, in_channels=1, patch_size=4, d_model=32, n_layer=2, n_head=4, freq_dim=32)
    return DiT(DiTConfig(**{**cfg, **kw}))


def t_of(b: int, value: float = 10.0) -> torch.Tensor:
    return torch.full((b,), value)


def text(b: int = 2, s: int = 5, dim: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random context (b, s, dim) and its key mask, the last two tokens of row 0 padding."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, s, dtype=torch.bool)
    mask[0, -2:] = False
    return torch.randn(b, s, dim, generator=g), mask


# ----------------------------------------------------------------------------- adaLN-Zero at init


def test_every_block_is_exactly_the_identity_at_init():
    model = tiny(num_classes=10, context_dim=24)
    x = torch.randn(3, 49, 32)
    c = model.cond(torch.tensor([1.0, 50.5, 999.0]), torch.tensor([0, 5, 10]))  # (3, d)
    context = model.context_proj(torch.randn(3, 6, 24))
    for block in model.blocks:
        assert isinstance(block, DiTBlock)
        assert torch.equal(block(x, c, context), x)  # every gate is 0: x + 0 * branch = x, bit for bit
        assert block.adaLN_modulation[-1].weight.abs().sum() == 0 and block.adaLN_modulation[-1].bias.abs().sum() == 0
    # the blocks are real ones: with open gates they change the tokens
    block = perturb(model, only="blocks.0.adaLN").blocks[0]
    assert (block(x, c, context) - x).abs().max() > 1e-3


@pytest.mark.parametrize("kw", [{}, {"num_classes": 10}, {"context_dim": 24}, {"positions": "learned", "dropout": 0.1}])
def test_network_outputs_zero_at_init_and_learns_from_the_first_step(kw):
    model = tiny(**kw)
    x = torch.randn(2, 1, 28, 28)
    extra = {"context": text()[0]} if kw.get("context_dim") else {}
    y = torch.tensor([3, 10]) if kw.get("num_classes") else None
    out = model(x, torch.tensor([0.0, 517.3]), y, **extra)
    assert out.shape == x.shape and torch.equal(out, torch.zeros_like(out))  # final layer starts at zero
    (out * torch.randn_like(out)).sum().backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads == {"final_layer.linear.weight", "final_layer.linear.bias"}  # all else sits behind it


def test_zero_gates_pass_gradient_to_the_modulation_but_not_into_the_branches():
    """Once the output layer is non-zero, the zero-initialised adaLN layers get a gradient (d out /
    d gate is the branch's output) while the attention and MLP inside the closed gates get none yet."""
    model = perturb(tiny(), only="final_layer")
    model(torch.randn(2, 1, 28, 28), t_of(2)).square().sum().backward()
    for block in model.blocks:
        assert block.adaLN_modulation[-1].weight.grad.abs().sum() > 0
        assert block.attn.c_attn.weight.grad.abs().sum() == 0 and block.mlp.c_fc.weight.grad.abs().sum() == 0


def test_uses_the_shared_attention_and_mlp():
    block = tiny(context_dim=8).blocks[0]
    assert isinstance(block.attn, MultiHeadAttention) and isinstance(block.cross_attn, MultiHeadAttention)
    assert block.cross_attn.cross and isinstance(block.mlp, MLP)
    assert not any(p.requires_grad for p in block.norm1.parameters())  # LayerNorms without affine params


# ----------------------------------------------------------------------------- patches and positions


@pytest.mark.parametrize("shape, p", [((2, 3, 12, 20), 4), ((1, 1, 28, 28), 7), ((2, 4, 32, 32), 2)])
def test_patchify_and_unpatchify_invert_each_other(shape, p):
    x = torch.randn(shape)
    tokens = patchify(x, p)
    B, C, H, W = shape
    assert tokens.shape == (B, (H // p) * (W // p), p * p * C)
    assert torch.equal(unpatchify(tokens, p, H, W), x)
    other = torch.randn_like(tokens)
    assert torch.equal(patchify(unpatchify(other, p, H, W), p), other)
    # token 1 is the patch right of the top-left one, laid out (row, column, channel)
    assert torch.equal(tokens[:, 1], x[:, :, :p, p:2 * p].permute(0, 2, 3, 1).reshape(B, -1))


def test_patch_embedding_is_the_papers_strided_conv():
    """Linear on patchified pixels = DiT's Conv2d(kernel = stride = p) with the weight rearranged."""
    model = tiny(in_channels=3)
    x = torch.randn(2, 3, 28, 28)
    w = model.x_embedder.weight  # (d, p*p*C) in (row, column, channel) order
    conv_w = w.reshape(32, 4, 4, 3).permute(0, 3, 1, 2)  # (d, C, p, p)
    conv = F.conv2d(x, conv_w, model.x_embedder.bias, stride=4).flatten(2).transpose(1, 2)  # (B, T, d)
    assert torch.allclose(model.x_embedder(patchify(x, 4)), conv, atol=1e-5)


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="does not divide into 4x4 patches"):
        patchify(torch.randn(1, 1, 30, 28), 4)
    with pytest.raises(ValueError, match="not the 4x4 patches of a 28x28 image"):
        unpatchify(torch.randn(1, 50, 16), 4, 28, 28)
    with pytest.raises(ValueError, match="does not divide into 4x4 patches"):
        tiny()(torch.randn(1, 1, 30, 30), t_of(1))


def test_sincos_positions_are_distinct_and_work_at_any_size():
    pos = sincos_2d(7, 7, 32)
    assert pos.shape == (49, 32) and torch.cdist(pos, pos).add(torch.eye(49)).min() > 0.1  # no two alike
    # the row half depends only on the row, the column half only on the column
    assert torch.equal(pos[0, :16], pos[6, :16]) and torch.equal(pos[0, 16:], pos[7, 16:])
    model = perturb(tiny())
    assert model(torch.randn(2, 1, 32, 20), t_of(2)).shape == (2, 1, 32, 20)  # 8x5 patches
    learned = tiny(positions="learned")
    assert learned.pos_embed.requires_grad and learned.pos_embed.shape == (1, 49, 32)
    with pytest.raises(ValueError, match="learned positions exist for 7x7"):
        learned(torch.randn(1, 1, 32, 32), t_of(1))
    assert "pos_embed" not in model.state_dict()  # fixed sin-cos positions are recomputed, not saved


# ----------------------------------------------------------------------------- contract and conditioning


@pytest.mark.parametrize("size, channels, patch", [(28, 1, 4), (28, 1, 7), (32, 3, 4), (32, 3, 8)])
@pytest.mark.parametrize("num_classes", [0, 10])
@pytest.mark.parametrize("learn_sigma", [False, True])
def test_output_shape(size, channels, patch, num_classes, learn_sigma):
    model = perturb(tiny(image_size=size, in_channels=channels, patch_size=patch, num_classes=num_classes,
                         out_channels=2 * channels if learn_sigma else None))
    x = torch.randn(2, channels, size, size)
    y = torch.tensor([3, num_classes]) if num_classes else None  # one real label, one null label
    out = model(x, torch.tensor([0.0, 517.3]), y)
    assert out.shape == (2, 2 * channels if learn_sigma else channels, size, size)
    assert model.cfg.tokens == (size // patch) ** 2


def test_time_embedding_matters():
    model = perturb(tiny()).eval()
    x = torch.randn(2, 1, 28, 28)
    a, b = model(x, t_of(2, 5.0)), model(x, t_of(2, 800.0))
    assert (a - b).abs().max() > 1e-3
    assert torch.isfinite(model(x, t_of(2, 5.5))).all()  # fractional timesteps
    assert torch.allclose(model(x, torch.tensor(5.0)), a)  # a scalar t is broadcast over the batch


def test_class_conditioning_and_the_null_label():
    model = perturb(tiny(num_classes=10)).eval()
    x = torch.randn(2, 1, 28, 28)
    a = model(x, t_of(2), torch.tensor([1, 1]))
    b = model(x, t_of(2), torch.tensor([7, 7]))
    null = model(x, t_of(2), torch.tensor([10, 10]))
    assert (a - b).abs().max() > 1e-3 and (a - null).abs().max() > 1e-3
    assert torch.equal(model(x, t_of(2), None), null)  # no labels = the null label
    with pytest.raises(ValueError, match="unconditional"):
        tiny()(x, t_of(2), torch.tensor([1, 1]))


def test_cross_attention_reads_the_context_and_ignores_padding():
    model = tiny(context_dim=24)
    x = torch.randn(2, 1, 28, 28)
    ctx, mask = text()
    # gates closed (only the output layer trained): the text cannot matter yet
    perturb(model, only="final_layer")
    assert torch.equal(model(x, t_of(2), context=ctx, context_mask=mask),
                       model(x, t_of(2), context=text(seed=1)[0], context_mask=mask))
    perturb(model)  # gates open
    out = model(x, t_of(2), context=ctx, context_mask=mask)
    other = model(x, t_of(2), context=text(seed=1)[0], context_mask=mask)
    assert (out - other).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # each image follows its text
    # the masked-out tokens of row 0 can hold anything
    changed = ctx.clone()
    changed[0, -2:] = 100 * torch.randn(2, 24)
    again = model(x, t_of(2), context=changed, context_mask=mask)
    assert torch.allclose(again, out, atol=1e-6)
    # ... while without the mask they count
    assert (model(x, t_of(2), context=changed) - out)[0].abs().max() > 1e-3
    # a row with no real token at all still gives finite outputs
    assert torch.isfinite(model(x, t_of(2), context=ctx, context_mask=torch.zeros_like(mask))).all()


def test_context_errors():
    x = torch.randn(1, 1, 28, 28)
    with pytest.raises(ValueError, match="needs a context"):
        tiny(context_dim=24)(x, t_of(1))
    with pytest.raises(ValueError, match="no cross-attention"):
        tiny()(x, t_of(1), context=torch.randn(1, 3, 24))
    with pytest.raises(ValueError, match="context width 16 does not match context_dim 24"):
        tiny(context_dim=24)(x, t_of(1), context=torch.randn(1, 3, 16))


# ----------------------------------------------------------------------------- sizes, Gflops


def test_registry_names_resolve():
    for size in ("S", "B", "L", "XL"):
        for p in (2, 4, 8):
            assert f"DiT-{size}/{p}" in DIT_SIZES
    assert {"DiT-T/2", "DiT-T/4"} <= set(DIT_SIZES)
    xl = dit_preset("DiT-XL/2", image_size=32, in_channels=4)
    assert (xl.d_model, xl.n_layer, xl.n_head, xl.patch_size, xl.image_size, xl.in_channels) == (1152, 28, 16, 2, 32, 4)
    s = dit_preset("DiT-S/4")
    assert (s.d_model, s.n_layer, s.n_head) == (384, 12, 6)
    assert dit_preset("DiT-T/4").tokens == 49 and dit_preset("DiT-T/4", image_size=32).tokens == 64
    assert DIT_SIZES["DiT-B/2"].patch_size == 2 and dit_preset("DiT-B/2") is not DIT_SIZES["DiT-B/2"]  # a copy


def test_bad_names_and_sizes_are_config_errors():
    with pytest.raises(ConfigError, match=r"unknown DiT size 'DiT-M/2'; choose one of: DiT-S/2, .*DiT-T/4"):
        dit_preset("DiT-M/2")
    with pytest.raises(ConfigError, match=r"patch size 8 does not divide the 28x28 images.*fit: 1, 2, 4, 7, 14$"):
        DiT(dit_preset("DiT-S/8", image_size=28))
    with pytest.raises(ConfigError, match="d_model 30 is not divisible by n_head 4"):
        tiny(d_model=30)
    with pytest.raises(ConfigError, match="positions must be 'sincos' or 'learned', got 'rope'"):
        tiny(positions="rope")


# the paper's table 4 (ImageNet 256x256: 32x32x4 latents, 1,000 classes, learned variance);
# it counts a multiply-add as one FLOP, we count two
PAPER = {"DiT-S/2": (33e6, 6.06), "DiT-B/2": (130e6, 23.01), "DiT-L/2": (458e6, 80.71), "DiT-XL/2": (675e6, 118.64),
         "DiT-S/8": (33e6, 0.36), "DiT-B/4": (130e6, 5.56)}


@pytest.mark.parametrize("name", list(PAPER))
def test_sizes_match_the_papers_parameters_and_gflops(name):
    cfg = dit_preset(name, image_size=32, in_channels=4, out_channels=8, num_classes=1000)
    with torch.device("meta"):  # shapes only: no memory for 675M parameters
        model = DiT(cfg, name)
    params, gflops = PAPER[name]
    assert model.num_params() == pytest.approx(params, rel=0.01)
    assert model.gflops() / 2 == pytest.approx(gflops, rel=0.015)


@pytest.mark.parametrize("kw, size", [({}, 28), ({"num_classes": 10, "out_channels": 2}, 32),
                                      ({"context_dim": 24, "mlp_ratio": 2.0}, 28), ({"patch_size": 2}, 16)])
def test_analytic_gflops_equal_the_counted_ones(kw, size):
    model = tiny(image_size=size, **kw)
    extra = {"context": torch.zeros(1, 5, 24), "context_mask": torch.ones(1, 5, dtype=torch.bool)} \
        if kw.get("context_dim") else {}
    counted = forward_gflops(model, torch.zeros(1, 1, size, size), torch.zeros(1), **extra)
    assert counted == pytest.approx(model.gflops(context_len=5 if extra else 0), rel=1e-9)
    # non-square inputs too, and the function of the config alone
    assert forward_gflops(model, torch.zeros(1, 1, size, 2 * size), torch.zeros(1), **extra) == \
        pytest.approx(dit_gflops(model.cfg, size, 2 * size, 5 if extra else 0), rel=1e-9)


def test_smaller_patches_cost_more_at_the_same_parameters():
    """The paper's knob: patch 2 has 4x the tokens of patch 4, ~4x the Gflops, ~the same parameters."""
    t2, t4 = DiT(dit_preset("DiT-T/2")), DiT(dit_preset("DiT-T/4"))
    assert t2.num_params() == pytest.approx(t4.num_params(), rel=0.01)
    assert 4 < t2.gflops() / t4.gflops() < 5


# ----------------------------------------------------------------------------- it learns


def test_a_tiny_dit_learns_a_few_images_under_gaussian_diffusion():
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    images = torch.stack([((xx - cx) ** 2 + (yy - cy) ** 2 < r**2).float() * 2 - 1  # 8 discs
                          for cx, cy, r in torch.rand(8, 3).mul(torch.tensor([1.0, 1.0, 0.4])).add(
                              torch.tensor([-0.5, -0.5, 0.3])).tolist()])[:, None]  # (8, 1, 16, 16)
    net = DiT(DiTConfig(image_size=16, in_channels=1, patch_size=4, d_model=64, n_layer=2, n_head=4, freq_dim=64))
    model = GaussianDiffusion(net, GaussianConfig(timesteps=100), (1, 16, 16))
    batch = {"image": images.repeat(4, 1, 1, 1)}  # 32 rows: each image under 4 noise levels per step

    def held_out_loss() -> float:
        torch.manual_seed(123)  # the same t and noise every time
        with torch.no_grad():
            return sum(float(model.loss(batch)) for _ in range(5)) / 5

    before = held_out_loss()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    torch.manual_seed(0)
    for _ in range(100):
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_out_loss()
    assert before == pytest.approx(1.0, abs=0.1)  # outputs 0 at init: the eps-loss is E[eps^2] = 1
    assert after < 0.5 * before, (before, after)
