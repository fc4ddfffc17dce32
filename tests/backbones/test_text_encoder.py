"""The caption tokenizer and text encoder: every shapes caption round-trips, unknown words are a
clear error, the null caption is [CLS] alone, and padding never changes an encoding."""

import pytest
import torch

from twopaths.backbones.transformer import Transformer
from twopaths.data.shapes import make_shapes
from twopaths.errors import TwopathsError
from twopaths.backbones.text_encoder import (CLS, NULL_CAPTION, PAD, CaptionTokenizer, TextEncoder, TextEncoderConfig,
                                      caption_words, shapes_vocabulary, vocabulary_from_captions)


pytestmark = pytest.mark.usefixtures("one_thread")


def small_encoder(**kw) -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder(TextEncoderConfig(**{"n_layer": 2, "n_head": 2, "d_model": 32, **kw}))


def test_every_shapes_caption_round_trips():
    captions = make_shapes(2000, seed=3).captions
    tok = CaptionTokenizer(shapes_vocabulary())
    assert vocabulary_from_captions(captions, base=shapes_vocabulary()) == shapes_vocabulary()  # no word missing
    for caption in captions[:300]:
        ids = tok.encode(caption)
        assert ids[0] == tok.cls_id and len(ids) == len(caption.split()) + 1
        assert tok.decode(ids) == caption
    assert tok.tokens[:2] == (PAD, CLS) and tok.vocab_size == 2 + 19


def test_words_are_normalised_and_vocabulary_is_deterministic():
    assert caption_words("  A Small, red circle. ") == ["a", "small", "red", "circle"]
    a = vocabulary_from_captions(["a red circle", "a blue square above a red circle"])
    b = vocabulary_from_captions(["a blue square above a red circle", "a red circle"])
    assert a == b == ("a", "above", "blue", "circle", "red", "square")
    with pytest.raises(TwopathsError, match="distinct"):
        CaptionTokenizer(["red", "red"])


def test_unknown_words_name_them_and_list_the_known_words():
    tok = CaptionTokenizer(shapes_vocabulary())
    with pytest.raises(TwopathsError) as exc:
        tok.encode("a purple hexagon left of a red circle")
    message = str(exc.value)
    assert "'purple', 'hexagon'" in message and "knows: a above below blue circle" in message
    with pytest.raises(TwopathsError, match="unknown word"):
        tok.encode("a [PAD] circle")  # special tokens are not words


def test_null_caption_is_cls_alone_and_batches_are_padded_with_a_mask():
    tok = CaptionTokenizer(shapes_vocabulary())
    assert tok.encode(NULL_CAPTION) == [tok.cls_id]
    ids, mask = tok.batch(["a red circle", NULL_CAPTION, "a small blue square below a large red circle"], 16)
    assert ids.shape == mask.shape == (3, 10)
    assert mask.sum(1).tolist() == [4, 1, 10]
    assert (ids[~mask] == tok.pad_id).all() and (ids[:, 0] == tok.cls_id).all()
    with pytest.raises(TwopathsError, match="longer than the text encoder takes"):
        tok.batch(["a red circle " * 6], 16)


def test_encoding_does_not_depend_on_padding_and_null_caption_is_one_token():
    enc = small_encoder().eval()
    alone, mask_alone = enc(["a large green triangle"])
    batched, mask = enc(["a large green triangle", NULL_CAPTION, "a small red circle right of a large blue square"])
    assert batched.shape == (3, 11, 32) and mask_alone.shape == (1, 5)
    torch.testing.assert_close(batched[0, :5], alone[0], atol=1e-5, rtol=0)
    null_alone, null_mask = enc([NULL_CAPTION])
    assert null_alone.shape == (1, 1, 32) and null_mask.tolist() == [[True]]
    torch.testing.assert_close(batched[1, :1], null_alone[0], atol=1e-5, rtol=0)


def test_encoder_is_the_shared_bidirectional_transformer_and_learns():
    enc = small_encoder()
    assert isinstance(enc.transformer, Transformer) and not enc.transformer.cfg.causal
    a, _ = enc(["a red circle left of a blue square"])
    b, _ = enc(["a red circle left of a blue triangle"])
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-4  # the first token sees the last word: bidirectional
    out, mask = enc(["a red circle", NULL_CAPTION])
    (out * mask[..., None] * torch.randn_like(out)).sum().backward()  # a random readout (LN outputs sum to a constant)
    grads = [p.grad for p in enc.parameters()]
    assert all(g is not None for g in grads) and enc.transformer.transformer.wte.weight.grad.abs().sum() > 0
