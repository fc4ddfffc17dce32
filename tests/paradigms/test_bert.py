"""BERT's masked LM: the 15% / 80-10-10 recipe measured on a big batch, the loss reads the chosen
positions only, padding and special tokens are never chosen, masks are reproducible from the torch
RNG, the bidirectional encoder uses right context (a causal one cannot), fill and encode."""

import pytest
import torch

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.data.tokenizers import BPETokenizer, CharTokenizer
from twopaths.errors import TwopathsError
from twopaths.paradigms.bert import MaskedLM, split_masked_text

EOT = 0


def tiny_bert(V=11, context=16, causal=False, seed=0, tokenizer=None, n_layer=1, d_model=16):
    torch.manual_seed(seed)
    cfg = TransformerConfig(n_layer=n_layer, n_head=2, d_model=d_model, context=context, causal=causal)
    return MaskedLM(Transformer(V + 1, cfg), V, context, special_ids=[EOT], tokenizer=tokenizer)


def test_selection_is_15_percent_and_the_split_is_80_10_10():
    V, B, T = 1000, 2048, 128
    model = tiny_bert(V, context=T)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, V, (B, T), generator=g)
    ids[torch.rand(B, T, generator=g) < 0.05] = EOT  # document separators: special
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    key_mask = torch.arange(T)[None] < lengths[:, None]  # right padding of random length
    inputs, selected = model.corrupt(ids, key_mask, g)

    candidates = key_mask & (ids != EOT)
    assert not (selected & ~candidates).any()  # never padding, never a special token
    n = candidates.sum(1)
    assert torch.equal(selected.sum(1), (n * 0.15).round().long().clamp(min=1))  # BERT's exact count per row
    assert float(selected.sum() / candidates.sum()) == pytest.approx(0.15, abs=0.002)
    first_half = (selected & (torch.arange(T) < lengths[:, None] // 2)).sum() / selected.sum()
    assert float(first_half) == pytest.approx(0.5, abs=0.02)  # uniform over positions

    assert torch.equal(inputs[~selected], ids[~selected])  # untouched outside the chosen positions
    s_in, s_ids = inputs[selected], ids[selected]
    N = s_in.numel()  # ~24k chosen positions: the 3-sigma band of a 10% share is +-0.6%
    masked = s_in == model.mask_id
    changed = ~masked & (s_in != s_ids)
    pool = V - 1  # the random replacement is uniform over the non-special tokens (may equal the original)
    assert float(masked.float().mean()) == pytest.approx(0.8, abs=4 * (0.16 / N) ** 0.5)
    assert float(changed.float().mean()) == pytest.approx(0.1 * (1 - 1 / pool), abs=4 * (0.09 / N) ** 0.5)
    assert float((s_in == s_ids).float().mean()) == pytest.approx(0.1 * (1 + 1 / pool), abs=4 * (0.09 / N) ** 0.5)
    assert not (inputs == EOT)[selected].any() and int(s_in.max()) <= model.mask_id


def _batch(B=4, T=16, V=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"tokens": torch.randint(1, V, (B, T + 1), generator=g)}


@torch.no_grad()
def test_loss_reads_only_the_chosen_positions():
    model = tiny_bert()
    batch = _batch()
    loss = model.loss(batch, torch.Generator().manual_seed(5))
    inputs, selected = model.corrupt(batch["tokens"][:, :-1], None, torch.Generator().manual_seed(5))
    logits = model.logits(inputs)  # (B, T, V)
    manual = torch.nn.functional.cross_entropy(logits[selected], batch["tokens"][:, :-1][selected])
    assert float(loss) == pytest.approx(float(manual), rel=1e-5)

    def scramble(where):  # replace the final hidden states (hence the logits) at `where` with noise
        def hook(module, args, out):
            return torch.where(where[..., None], torch.randn_like(out) * 10, out)
        return model.net.transformer.ln_f.register_forward_hook(hook)

    handle = scramble(~selected)
    elsewhere = model.loss(batch, torch.Generator().manual_seed(5))
    handle.remove()
    assert float(elsewhere) == pytest.approx(float(loss), rel=1e-6)
    handle = scramble(selected)  # the control: the same change at the chosen positions does move it
    there = model.loss(batch, torch.Generator().manual_seed(5))
    handle.remove()
    assert abs(float(there) - float(loss)) > 0.1


@torch.no_grad()
def test_padding_is_never_chosen_nor_seen():
    model = tiny_bert()
    batch = _batch(B=3)
    key_mask = torch.ones_like(batch["tokens"], dtype=torch.bool)
    key_mask[0, 10:] = False
    key_mask[2] = False  # a row of padding only: nothing to predict there
    batch["key_mask"] = key_mask
    _, selected = model.corrupt(batch["tokens"][:, :-1], key_mask[:, :-1], torch.Generator().manual_seed(1))
    assert not selected[0, 10:].any() and not selected[2].any() and selected[1].sum() == 2  # round(0.15 * 16)
    loss = model.loss(batch, torch.Generator().manual_seed(1))
    other = dict(batch, tokens=batch["tokens"].masked_fill(~key_mask, 7))  # different ids under the padding
    assert float(model.loss(other, torch.Generator().manual_seed(1))) == pytest.approx(float(loss), rel=1e-5)
    empty = {"tokens": batch["tokens"], "key_mask": torch.zeros_like(key_mask)}
    assert float(model.loss(empty)) == 0.0


@torch.no_grad()
def test_masks_come_from_the_torch_rng():
    model = tiny_bert()
    batch = _batch()
    torch.manual_seed(3)
    a = model.loss(batch)
    torch.manual_seed(3)
    assert float(model.loss(batch)) == float(a)
    assert float(model.loss(batch)) != float(a)  # the RNG moved on: other masks


def _copy_from_the_right(B, T, V, g):
    """Rows of pairs (b, b): token 2j is a copy of token 2j + 1, which is uniform; the left
    neighbour of token 2j (the previous pair) says nothing about it."""
    right = torch.randint(1, V, (B, T // 2), generator=g)
    return right.repeat_interleave(2, dim=1)  # (B, T)


def _right_context_accuracy(causal: bool) -> float:
    V, T = 16, 16
    model = tiny_bert(V, context=T, causal=causal, n_layer=2, d_model=32)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    for _ in range(150):
        x = _copy_from_the_right(32, T, V, g)
        loss = model.loss({"tokens": torch.cat([x, x[:, :1]], 1)})
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x = _copy_from_the_right(512, T, V, g)
    j = 2 * torch.randint(0, T // 2, (512,), generator=g)  # the left copy of a pair
    inputs = x.clone()
    inputs[torch.arange(512), j] = model.mask_id
    with torch.no_grad():
        pred = model.logits(inputs)[torch.arange(512), j].argmax(-1)
    return float((pred == x[torch.arange(512), j]).float().mean())


def test_the_encoder_reads_right_context():
    assert _right_context_accuracy(causal=False) > 0.95
    assert _right_context_accuracy(causal=True) < 0.25  # the same network, causal: chance is 1/15


def test_mask_text_maps_to_the_mask_token():
    char = CharTokenizer.train(["the heart of the matter"])
    ids, took = split_masked_text("the [MASK]eart", char, 99)
    assert ids == char.encode("the ") + [99] + char.encode("eart") and took == [False]
    bpe = BPETokenizer.train(["the heart of the matter"] * 20, vocab_size=300)
    ids, took = split_masked_text("the [MASK] of the [MASK]", bpe, 999)
    # the space before a gap belongs to the word in it (byte-level BPE: " heart")
    assert ids == bpe.encode("the") + [999] + bpe.encode(" of the") + [999] and took == [True, True]
    assert bpe.encode("the heart of the matter") == \
        bpe.encode("the") + bpe.encode(" heart") + bpe.encode(" of the") + bpe.encode(" matter")
    with pytest.raises(TwopathsError, match=r"no \[MASK\]"):
        split_masked_text("no gap here", bpe, 999)


def test_fill_lists_top_k_and_fills_the_text():
    tok = CharTokenizer.train(["abcdefgh xyz"])
    model = tiny_bert(tok.vocab_size, tokenizer=tok).eval()
    out = model.fill("ab[MASK]d[MASK]", top_k=3)
    assert len(out.candidates) == 2 and all(len(c) == 3 for c in out.candidates)
    for cands in out.candidates:
        probs = [p for _, p in cands]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
        assert all(w not in ("<|endoftext|>", "<unk>") for w, _ in cands)
    assert out.text == "ab" + out.candidates[0][0][0] + "d" + out.candidates[1][0][0]
    with pytest.raises(TwopathsError, match="context"):
        model.fill("a" * 20 + "[MASK]")


def test_encode_pools_over_real_tokens_only():
    tok = CharTokenizer.train(["abcdefgh xyz"])
    model = tiny_bert(tok.vocab_size, tokenizer=tok).eval()
    hidden, key_mask, pooled = model.encode_texts(["abc", "abcdefgh xy"])
    assert hidden.shape == (2, 11, 16) and pooled.shape == (2, 16) and key_mask.sum(1).tolist() == [3, 11]
    alone_hidden, _, alone = model.encode_texts(["abc"])
    torch.testing.assert_close(pooled[0], alone[0], rtol=1e-5, atol=1e-5)  # padding is invisible
    torch.testing.assert_close(hidden[0, :3], alone_hidden[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alone[0], alone_hidden[0].mean(0))
