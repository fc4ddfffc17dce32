"""Written-out attention vs PyTorch's SDPA, masks, multi-head plumbing and the KV cache."""

import pytest
import torch

from twopaths.nn.attention import (AttentionConfig, KVCache, MultiHeadAttention, attention, attention_reference,
                                   causal_mask, combine_masks)


def qkv(b=2, h=3, tq=5, tk=5, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, tq, d, generator=g), torch.randn(b, h, tk, d, generator=g),
            torch.randn(b, h, tk, d, generator=g))


def test_causal_mask_is_bottom_right_aligned():
    assert causal_mask(3, 3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    # 2 new queries after 3 cached keys: they are positions 3 and 4
    assert causal_mask(2, 5).tolist() == [[True, True, True, True, False], [True] * 5]


@pytest.mark.parametrize("tq, tk", [(5, 5), (1, 7), (3, 7)])
def test_causal_matches_sdpa(tq, tk):
    q, k, v = qkv(tq=tq, tk=tk)
    ref = attention_reference(q, k, v, causal=True)
    assert torch.allclose(attention(q, k, v, causal=True), ref, atol=1e-5)


def test_padding_mask_matches_sdpa_and_hides_padding():
    q, k, v = qkv(tq=6, tk=6)
    key_mask = torch.tensor([[False, False, True, True, True, True], [True] * 6])  # row 0 left-padded by 2
    mask = combine_masks(6, 6, True, key_mask, q.device)
    ref = attention_reference(q, k, v, mask=mask)
    fast = attention(q, k, v, mask=mask)
    assert torch.allclose(fast, ref, atol=1e-5)
    assert torch.all(ref[0, :, :2] == 0)  # padding queries see nothing and output zeros, not NaN
    # changing padded keys/values changes nothing for real queries
    k2, v2 = k.clone(), v.clone()
    k2[0, :, :2] += 100
    v2[0, :, :2] -= 100
    assert torch.allclose(attention(q, k2, v2, mask=mask)[0, :, 2:], fast[0, :, 2:], atol=1e-5)


def test_cross_attention_mask_matches_sdpa():
    q, k, v = qkv(tq=4, tk=9)
    mask = torch.rand(2, 1, 4, 9, generator=torch.Generator().manual_seed(1)) > 0.3
    assert torch.allclose(attention(q, k, v, mask=mask), attention_reference(q, k, v, mask=mask), atol=1e-5)
    assert torch.allclose(attention(q, k, v), attention_reference(q, k, v), atol=1e-5)


def test_reference_is_softmax_weighted_values():
    q, k, v = qkv(b=1, h=1, tq=1, tk=3, d=2)
    w = torch.softmax((q @ k.transpose(-2, -1)) / 2 ** 0.5, dim=-1)
    assert torch.allclose(attention_reference(q, k, v), w @ v, atol=1e-6)


def _mha(fused, cross=False, seed=0):
    torch.manual_seed(seed)
    return MultiHeadAttention(AttentionConfig(d_model=16, n_heads=4, fused_qkv=fused, cross=cross)).eval()


def test_fused_and_separate_projections_agree():
    fused, separate = _mha(True), _mha(False)
    with torch.no_grad():
        wq, wk, wv = fused.c_attn.weight.split(16)
        bq, bk, bv = fused.c_attn.bias.split(16)
        for proj, w, b in ((separate.q_proj, wq, bq), (separate.k_proj, wk, bk), (separate.v_proj, wv, bv)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        separate.c_proj.load_state_dict(fused.c_proj.state_dict())
    x = torch.randn(2, 7, 16)
    assert torch.allclose(fused(x, causal=True), separate(x, causal=True), atol=1e-6)


def test_mha_reference_path_equals_sdpa_path_and_is_causal():
    m = _mha(True)
    x = torch.randn(2, 6, 16)
    out = m(x, causal=True)
    assert torch.allclose(out, m(x, causal=True, reference=True), atol=1e-5)
    x2 = x.clone()
    x2[:, 4:] += 1.0  # the future changes...
    assert torch.allclose(m(x2, causal=True)[:, :4], out[:, :4], atol=1e-6)  # ...the past does not see it
    assert not torch.allclose(m(x2, causal=False)[:, :4], m(x, causal=False)[:, :4], atol=1e-3)


def test_cross_attention_reads_the_context():
    m = _mha(False, cross=True)
    x, ctx = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    out = m(x, context=ctx)
    assert out.shape == (2, 3, 16)
    assert not torch.allclose(m(x, context=ctx + 1), out, atol=1e-3)
    assert torch.allclose(m(x, context=ctx, reference=True), out, atol=1e-5)


def test_kv_cache_chunks_equal_full_pass():
    m = _mha(True)
    x = torch.randn(2, 8, 16)
    full = m(x, causal=True)
    cache = KVCache(1, 2, 4, 4, max_len=8, device=x.device, dtype=x.dtype)
    pieces = []
    for lo, hi in ((0, 3), (3, 4), (4, 8)):
        pieces.append(m(x[:, lo:hi], causal=True, cache=cache, layer=0))
        cache.advance(hi - lo)
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)
    with pytest.raises(ValueError, match="KV cache is full"):
        m(x[:, :1], causal=True, cache=cache, layer=0)
