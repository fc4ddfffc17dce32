"""Attention rollout (Abnar & Zuidema 2020, eq. 1) and the attention weights it reads: rows stay
distributions, identity attention rolls out to the identity, the product order, the shared attention's
returned weights against softmax(QK^T / sqrt(d)), and the heat maps of a ViT."""

import math

import pytest
import torch
from PIL import Image

from twopaths.backbones.vit import ViT, ViTConfig
from twopaths.eval.attention_rollout import attention_rollout, class_token_heatmaps, save_rollout_figure
from twopaths.nn.attention import AttentionConfig, MultiHeadAttention, attention_reference


def random_weights(layers=3, b=2, h=4, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.softmax(torch.randn(b, h, t, t, generator=g) * 2, dim=-1) for _ in range(layers)]


@pytest.mark.parametrize("residual", [True, False])
def test_rows_sum_to_one(residual):
    r = attention_rollout(random_weights(), residual=residual)
    assert r.shape == (2, 6, 6) and bool((r >= 0).all())
    assert torch.allclose(r.sum(-1), torch.ones(2, 6), atol=1e-5)


def test_identity_attention_rolls_out_to_identity():
    eye = torch.eye(5).expand(2, 3, 5, 5)  # every token attends only to itself, in every head and layer
    for residual in (True, False):
        assert torch.allclose(attention_rollout([eye] * 4, residual=residual), torch.eye(5).expand(2, 5, 5))


def test_later_layers_multiply_from_the_left():
    w1, w2 = random_weights(layers=2, b=1, h=2, t=4, seed=3)

    def step(w):  # heads averaged, half identity, rows renormalised (they already sum to 1)
        a = 0.5 * w.mean(1) + 0.5 * torch.eye(4)
        return a / a.sum(-1, keepdim=True)

    expected = step(w2) @ step(w1)  # eq. 1: A~(l2) = A(l2) A~(l1)
    assert torch.allclose(attention_rollout([w1, w2]), expected, atol=1e-6)
    assert not torch.allclose(attention_rollout([w1, w2]), step(w1) @ step(w2), atol=1e-3)
    with pytest.raises(ValueError, match="at least one layer"):
        attention_rollout([])


def test_returned_weights_are_the_softmax_of_the_reference():
    torch.manual_seed(0)
    mha = MultiHeadAttention(AttentionConfig(d_model=16, n_heads=4)).eval()
    x = torch.randn(2, 7, 16)
    y, w = mha(x, need_weights=True)
    assert torch.allclose(y, mha(x), atol=1e-5)  # same output as the fused SDPA path
    q, k, _ = mha.c_attn(x).split(16, dim=2)
    q, k = mha._heads(q), mha._heads(k)  # (B, H, T, 4)
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(4), dim=-1)  # (B, H, T, T)
    assert w.shape == (2, 4, 7, 7) and torch.allclose(w, expected, atol=1e-6)
    # causal: the weights above the diagonal are zero
    _, wc = mha(x, causal=True, need_weights=True)
    assert torch.all(wc.triu(1) == 0) and torch.allclose(wc.sum(-1), torch.ones(2, 4, 7), atol=1e-6)
    # attention_reference: the output is unchanged by asking for the weights
    qq, kk, vv = (torch.randn(1, 2, 3, 4) for _ in range(3))
    out, probs = attention_reference(qq, kk, vv, return_weights=True)
    assert torch.equal(out, attention_reference(qq, kk, vv)) and torch.allclose(probs @ vv, out)


def test_heatmaps_of_a_vit():
    torch.manual_seed(0)
    vit = ViT(ViTConfig(image_size=28, patch_size=7, d_model=32, n_layer=2, n_head=2))
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    maps, logits = class_token_heatmaps(vit, images)
    assert maps.shape == (3, 4, 4) and logits.shape == (3, 10)
    assert torch.allclose(maps.flatten(1).amax(1), torch.ones(3)) and bool((maps >= 0).all())
    big, _ = class_token_heatmaps(vit, images, size=28)
    assert big.shape == (3, 28, 28)
    assert vit.training  # restored to the mode it was in


def test_figure(tmp_path):
    images = torch.rand(5, 1, 28, 28) * 2 - 1
    maps = torch.rand(5, 7, 7)
    path = save_rollout_figure(images, maps, [0, 1, 2, 3, 4], [0, 1, 2, 0, 0], [f"class {i}" for i in range(5)],
                               tmp_path / "a.png", title="test", columns=3)
    with Image.open(path) as im:
        assert im.size[0] > 200 and im.size[1] > 300  # 2 rows of 3 columns, each an image above its map
