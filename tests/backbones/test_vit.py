"""The ViT backbone: token shapes, the class token at position 0, the patch embedding against a manual
unfold, the shared (bidirectional) transformer blocks, the attention path, and configs that cannot build."""

import pytest
import torch
import torch.nn.functional as F

import twopaths.nn.attention as shared_attention
from twopaths.backbones.transformer import Block
from twopaths.backbones.vit import ViT, ViTConfig
from twopaths.errors import ConfigError
from twopaths.nn.attention import MultiHeadAttention
from twopaths.training.optim import param_groups


def tiny(**kw) -> ViT:
    torch.manual_seed(0)
    cfg = dict(image_size=28, in_channels=1, num_classes=10, patch_size=7, d_model=32, n_layer=2, n_head=4)
    return ViT(ViTConfig(**{**cfg, **kw})).eval()


def images(b=3, c=1, r=28, seed=1):
    return torch.rand(b, c, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("patch, tokens", [(4, 49), (7, 16), (14, 4)])
def test_shapes(patch, tokens):
    vit = tiny(patch_size=patch)
    x = images()
    assert vit.cfg.num_tokens == tokens
    assert vit.embed(x).shape == (3, 1 + tokens, 32)
    assert vit(x).shape == (3, 10)
    assert vit.features(x).shape == (3, 32)


def test_rgb_and_other_sizes():
    vit = tiny(image_size=32, in_channels=3, num_classes=4, patch_size=8)
    assert vit(images(c=3, r=32)).shape == (3, 4)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        vit(images())  # grey 28x28 into an RGB 32x32 model


def test_class_token_is_position_zero_and_image_independent():
    vit = tiny()
    a, b = vit.embed(images(seed=1)), vit.embed(images(seed=2))
    expected = vit.cls_token + vit.pos_embed.weight[0]  # x_class + E_pos[0]
    assert torch.allclose(a[:, 0], expected.expand(3, -1)) and torch.allclose(b[:, 0], a[:, 0])
    assert not torch.allclose(a[:, 1:], b[:, 1:])  # patch tokens depend on the image
    # the head reads the class token's final state only: the logits are head(norm(z_L[:, 0]))
    captured = {}
    vit.blocks[-1].register_forward_hook(lambda m, i, out: captured.setdefault("z", out))
    logits = vit(images())
    assert torch.allclose(logits, vit.head(vit.norm(captured["z"][:, 0])), atol=1e-6)


def test_patch_embedding_is_a_linear_map_of_unfolded_patches():
    vit = tiny(image_size=12, in_channels=3, patch_size=4)
    x = images(c=3, r=12)
    patches = F.unfold(x, kernel_size=4, stride=4).transpose(1, 2)  # (B, 9, 3*4*4), raster order
    w = vit.patch_embed.weight.reshape(32, -1)  # (d, C*p*p), flattened as unfold flattens (C, p, p)
    manual = patches @ w.T + vit.patch_embed.bias  # (B, 9, d)
    tokens = vit.embed(x)[:, 1:] - vit.pos_embed.weight[1:]  # (B, 9, d) without positions
    assert torch.allclose(tokens, manual, atol=1e-5)


def test_uses_the_shared_blocks_bidirectionally(monkeypatch):
    vit = tiny()
    assert len(vit.blocks) == 2 and all(type(b) is Block for b in vit.blocks)
    assert all(type(b.attn) is MultiHeadAttention for b in vit.blocks)
    calls = []
    real = shared_attention.attention

    def counting(q, k, v, mask=None, causal=False, dropout_p=0.0):
        calls.append((tuple(q.shape), mask, causal))
        return real(q, k, v, mask=mask, causal=causal, dropout_p=dropout_p)

    monkeypatch.setattr(shared_attention, "attention", counting)
    vit(images())
    assert calls == [((3, 4, 17, 8), None, False)] * 2  # one shared SDPA call per block, no mask, not causal
    # bidirectional: the class token (position 0) sees the last patch
    x = images()
    y = x.clone()
    y[..., 21:, 21:] += 1.0  # only the last 7x7 patch changes
    assert not torch.allclose(vit.features(x), vit.features(y))  # (the zero-initialised head hides it in logits)


def test_attention_path_gives_the_same_logits_and_the_weights():
    vit = tiny()
    x = images()
    logits, weights = vit(x, return_attention=True)
    assert torch.allclose(logits, vit(x), atol=1e-5)
    assert len(weights) == 2 and weights[0].shape == (3, 4, 17, 17)
    assert torch.allclose(weights[1].sum(-1), torch.ones(3, 4, 17), atol=1e-5)


def test_position_and_class_token_are_not_weight_decayed():
    vit = tiny()
    decayed = {id(p) for p in param_groups(vit, 0.05)[0]["params"]}
    assert id(vit.cls_token) not in decayed and id(vit.pos_embed.weight) not in decayed
    assert id(vit.patch_embed.weight) in decayed and id(vit.blocks[0].attn.c_attn.weight) in decayed


def test_zero_head_starts_at_uniform_predictions():
    assert torch.allclose(tiny()(images()), torch.zeros(3, 10))


def test_bad_configs_are_clear_errors():
    with pytest.raises(ConfigError, match=r"'arch.vit.patch_size' \(5\) must divide the image resolution 28; "
                                          r"choose one of 1, 2, 4, 7, 14, 28"):
        ViT(ViTConfig(image_size=28, patch_size=5))
    with pytest.raises(ConfigError, match=r"'arch.vit.d_model' \(30\) must be divisible by 'arch.vit.n_head' \(4\)"):
        ViT(ViTConfig(d_model=30, n_head=4))
    with pytest.raises(ConfigError, match="'arch.vit.dropout' must be in"):
        ViT(ViTConfig(dropout=1.0))
