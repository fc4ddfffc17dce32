"""pixel-gpt's paradigm: quantisation round trips, the loss is Autoregressive's loss on the token
sequence, the class token conditions, KV-cache decoding equals recomputation, bits/dim, and a short
training on the 8-Gaussian ring whose samples reach most modes."""

import math

import pytest
import torch

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.data.toy import mixture_modes, sample_mixture
from twopaths.paradigms.quantized import (QuantizedAutoregressive, dequantize_images, dequantize_points,
                                          quantize_images, quantize_points)


pytestmark = pytest.mark.usefixtures("one_thread")


def model(kind="image", shape=(1, 4, 4), levels=16, bins=32, num_classes=3, d=32, layers=2, seed=0, **kw):
    torch.manual_seed(seed)
    vocab = QuantizedAutoregressive.vocab_for(kind, levels, bins, num_classes)
    net = Transformer(vocab, TransformerConfig(n_layer=layers, n_head=2, d_model=d, context=1 + math.prod(shape)))
    return QuantizedAutoregressive(net, kind, shape, levels, bins, num_classes=num_classes, **kw)


def eight_bit_images(n=5, shape=(3, 4, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=g).float() / 127.5 - 1  # exactly what datasets yield


def test_image_round_trip_and_raster_order():
    x = eight_bit_images()
    ids = quantize_images(x, 256)
    assert ids.shape == (5, 4 * 5 * 3) and torch.equal(dequantize_images(ids, 256, (3, 4, 5)), x)
    # (H, W, C) raster: token 0..2 are pixel (0, 0)'s three channels, token 3 is pixel (0, 1)'s red
    k = ((x + 1) * 127.5).round().long()
    assert ids[0, :4].tolist() == [k[0, 0, 0, 0], k[0, 1, 0, 0], k[0, 2, 0, 0], k[0, 0, 0, 1]]
    coarse = dequantize_images(quantize_images(x, 16), 16, (3, 4, 5))
    assert (coarse - x).abs().max() <= 7.5 / 127.5 + 1e-6  # within half a 16-value bin
    assert torch.equal(quantize_images(coarse, 16), quantize_images(x, 16))  # centres map back to their bin
    assert coarse.min() >= -1 and coarse.max() <= 1


def test_point_round_trip_and_clipping():
    x = torch.tensor([[-1.0, 0.99], [0.3, -0.3], [-5.0, 7.0]])
    ids = quantize_points(x, 64, -1.0, 1.0)
    assert ids[2].tolist() == [0, 63]  # outside the range: the end bins
    back = dequantize_points(ids, 64, -1.0, 1.0)
    assert (back[:2] - x[:2]).abs().max() <= 1 / 64 + 1e-6
    assert torch.equal(quantize_points(back, 64, -1.0, 1.0), ids)


def test_loss_is_the_autoregressive_loss_on_the_token_sequence():
    m = model(cond_drop=0.0).eval()
    x, y = eight_bit_images(4, (1, 4, 4)), torch.tensor([0, 2, 1, 0])
    tokens = m.tokens(x, y)
    assert tokens.shape == (4, 17) and tokens[:, 0].tolist() == [16, 18, 17, 16]
    assert torch.allclose(m.loss({"image": x, "label": y}), m.ar.loss({"tokens": tokens}))
    assert m.items_in({"image": x, "label": y}) == 4 and m.tokens_per_item == 16


def test_label_dropout_uses_the_unconditional_token():
    m = model(cond_drop=1.0).train()
    x, y = eight_bit_images(4, (1, 4, 4)), torch.tensor([0, 2, 1, 0])
    assert torch.allclose(m.loss({"image": x, "label": y}), m.ar.loss({"tokens": m.tokens(x, None)}))


def test_class_token_conditions_the_logits():
    m = model().eval()
    x = eight_bit_images(1, (1, 4, 4)).expand(3, -1, -1, -1)
    logits = m.ar.net(m.tokens(x, torch.tensor([0, 1, 2]))[:, :-1])  # (3, 16, V)
    assert not torch.allclose(logits[0], logits[1]) and not torch.allclose(logits[1], logits[2])


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_kv_cache_sampling_equals_recomputation(temperature):
    m = model(shape=(1, 5, 5), levels=8).eval()
    labels = torch.tensor([0, 1, 2, 0, 1])
    cached = m.sample(5, cond=labels, generator=torch.Generator().manual_seed(3), temperature=temperature)
    full = m.sample(5, cond=labels, generator=torch.Generator().manual_seed(3), temperature=temperature, use_cache=False)
    chunked = m.sample(5, cond=labels, generator=torch.Generator().manual_seed(3), temperature=temperature, chunk=2)
    assert cached.shape == (5, 1, 5, 5) and torch.equal(cached, full)
    if temperature == 0:
        assert torch.equal(cached, chunked)  # greedy rows do not depend on the chunking
    # only value tokens are drawn: every pixel is a level centre in [-1, 1]
    assert set(quantize_images(cached, 8).unique().tolist()) <= set(range(8))


def test_greedy_batch_decoding_equals_generate():
    m = model(num_classes=0).eval()
    prompts = torch.full((3, 1), m.null_id)
    fast = m.ar.generate_batch(prompts, 16, temperature=0)
    slow = m.ar.generate(prompts.tolist(), 16, temperature=0)
    assert fast.tolist() == slow


def test_bits_per_dim():
    m = model(levels=16).eval()
    x, y = eight_bit_images(4, (1, 4, 4)), torch.tensor([0, 2, 1, 0])
    out = m.nll_bits_per_dim(x, y)
    assert out["bits_per_dim"].shape == (4,)
    assert torch.allclose(out["bits_per_dim"], out["bits_per_token"] + 4.0)  # + log2(256 / 16)
    # the value-restricted NLL never exceeds the training loss (full-vocabulary softmax)
    with torch.no_grad():
        loss = float(m.loss({"image": x, "label": y}))
    assert float(out["bits_per_token"].mean()) <= loss / math.log(2) + 1e-5
    # an untrained model is close to uniform over the 16 levels: ~4 bits per token
    assert abs(float(out["bits_per_token"].mean()) - 4.0) < 0.5


def test_short_training_on_the_ring_covers_most_modes():
    modes, std = mixture_modes("ring8")
    m = model("points", shape=(2,), bins=64, num_classes=0, d=64, layers=2).train()
    m.low, m.high = -2.6, 2.6
    x, _ = sample_mixture("ring8", 4096, seed=0)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        batch = x[torch.randint(0, len(x), (256,), generator=g)]
        loss = m.loss({"x": batch})
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    samples = m.sample(1000, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (1000, 2)
    dist = torch.cdist(samples, modes)  # (1000, 8)
    near = dist.min(1).values < 0.1 + 3 * std  # within a bin or so of a mode
    covered = dist.argmin(1)[near].bincount(minlength=8)
    assert near.float().mean() > 0.8 and int((covered >= 20).sum()) >= 6, (near.float().mean(), covered)
    assert float(m.nll_bits_per_dim(x[:512])["bits_per_dim"].mean()) < 0  # a density sharper than 1 per unit^2
