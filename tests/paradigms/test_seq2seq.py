"""The encoder-decoder transformer and its paradigm: learning, decoding, the KV cache, the loss."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
import torch.nn.functional as F

from twopaths.backbones.seq2seq import Seq2Seq, Seq2SeqConfig
from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.data.pairs import pair_tokenizers
from twopaths.paradigms.seq2seq import Transduction, label_smoothed_cross_entropy, length_penalty

SYMBOLS = "0123456789"


def reverse_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """Strings of 3-8 symbols over 10 symbols and their reversal."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = "".join(rng.choice(SYMBOLS) for _ in range(rng.randint(3, 8)))
        out.append((s, s[::-1]))
    return out


def make_model(pairs, seed: int = 0, shared: bool = True, **arch) -> Transduction:
    torch.manual_seed(seed)
    toks = pair_tokenizers(pairs)
    src, tgt = toks["src_tokenizer"], toks["tgt_tokenizer"]
    cfg = Seq2SeqConfig(**{"encoder_layers": 2, "decoder_layers": 2, "n_head": 4, "d_model": 32, "context": 16,
                           "dropout": 0.0, "shared_vocab": shared, **arch})
    if shared:
        assert src.chars == tgt.chars  # reversal: the same symbols on both sides
        tgt = src
    return Transduction(Seq2Seq(src.vocab_size, tgt.vocab_size, cfg), src, tgt, label_smoothing=0.1)


@pytest.fixture(scope="module")
def reverser():
    """A tiny encoder-decoder (2 + 2 layers, 32 wide) trained on CPU to reverse strings, and held-out
    strings to test it on. 400 steps take about 8 s of one core; it reaches 100% at about 300 (seeds 0-4)."""
    train = reverse_pairs(4000, seed=0)
    seen = {s for s, _ in train}
    test = [p for p in reverse_pairs(600, seed=1) if p[0] not in seen][:300]
    model = make_model(train)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, betas=(0.9, 0.98), weight_decay=0.0)
    steps, rng = 400, random.Random(0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=steps, pct_start=0.1)
    model.train()
    for _ in range(steps):
        batch = rng.sample(train, 32)
        loss = model({"src": [s for s, _ in batch], "tgt": [t for _, t in batch]})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    model.eval()
    return model, test


# ----------------------------------------------------------------------------- learning and decoding


def test_reverses_unseen_strings(reverser):
    model, test = reverser
    hyps = model.translate([s for s, _ in test], beam=1)
    exact = sum(h == t for h, (_, t) in zip(hyps, test)) / len(test)
    assert exact >= 0.99, f"exact match {exact:.3f} on {len(test)} unseen strings"
    beam = model.translate([s for s, _ in test], beam=4)
    assert sum(h == t for h, (_, t) in zip(beam, test)) / len(test) >= 0.99


def test_beam_of_one_is_greedy(reverser):
    model, test = reverser
    src, mask = model.encode_sources([s for s, _ in test[:64]] + ["1", "98765432"])
    greedy = model.greedy(src, mask)
    assert model.beam_search(src, mask, beam=1, alpha=0.6) == greedy
    assert model.beam_search(src, mask, beam=1, alpha=0.0, max_len=4) == model.greedy(src, mask, max_len=4)


def test_beam_search_scores_at_least_as_well_as_greedy(reverser):
    """On a trained, label-smoothed model every wrong token keeps about eps / V, so early <eos>
    candidates rank high at the first steps; they must not end the search before the good
    hypothesis finishes (stopping at `beam` finished hypotheses did exactly that)."""
    model, test = reverser
    src, mask = model.encode_sources([s for s, _ in test[:100]])
    greedy = model.greedy(src, mask)
    greedy_ids, greedy_scores = model.beam_search(src, mask, beam=1, return_scores=True)
    assert greedy_ids == greedy
    for beam in (2, 4, 8):
        ids, scores = model.beam_search(src, mask, beam=beam, return_scores=True)
        assert all(s >= g - 1e-4 for s, g in zip(scores, greedy_scores)), beam
        assert sum(model.tgt_tokenizer.decode(i) == t for i, (_, t) in zip(ids, test)) >= 99, beam


def test_early_end_of_sequence_does_not_stop_the_search():
    """A decoder whose every step says: 'a' with p ~ 0.9, <eos> second (as a saturated label-smoothed
    model does). Its final LayerNorm has scale 0, so the head sees a constant vector and the logits
    are the head's column. The best sequence under any length penalty >= 0 is 'a' repeated to the
    length limit, which greedy finds; beam search must too, not stop at early <eos> hypotheses."""
    model = make_model([("ab", "ab")], shared=False, tie_weights=False).eval()
    dec, V = model.net.decoder, model.net.tgt_vocab
    a = model.tgt_tokenizer.encode("a")[0]
    logits = torch.full((V,), -2.0)
    logits[a], logits[model.eos_id] = 2.0, -1.0
    with torch.no_grad():
        dec.transformer.ln_f.weight.zero_()
        dec.transformer.ln_f.bias.zero_()
        dec.transformer.ln_f.bias[0] = 1.0
        dec.lm_head.weight.zero_()
        dec.lm_head.weight[:, 0] = logits
    src, mask = model.encode_sources(["ab", "b"])
    assert model.greedy(src, mask, max_len=8) == [[a] * 8] * 2
    for beam in (2, 4):
        for alpha in (0.0, 0.6):
            assert model.beam_search(src, mask, beam=beam, alpha=alpha, max_len=8) == [[a] * 8] * 2, (beam, alpha)


@pytest.mark.parametrize("beam", [1, 3])
def test_kv_cache_matches_recomputation(reverser, beam):
    model, test = reverser
    src, mask = model.encode_sources([s for s, _ in test[:32]])
    if beam == 1:
        cached, logits_cached = model.greedy(src, mask, return_logits=True)
        fresh, logits_fresh = model.greedy(src, mask, use_cache=False, return_logits=True)
        assert cached == fresh
        assert torch.allclose(logits_cached, logits_fresh, atol=1e-4)
    else:
        cached, s_cached = model.beam_search(src, mask, beam=beam, return_scores=True)
        fresh, s_fresh = model.beam_search(src, mask, beam=beam, use_cache=False, return_scores=True)
        assert cached == fresh
        assert s_cached == pytest.approx(s_fresh, abs=1e-4)


def test_kv_cache_matches_recomputation_untrained():
    """An untrained model runs to the length limit: every cached step, not just the short answers."""
    model = make_model(reverse_pairs(100, seed=3), seed=5).eval()
    src, mask = model.encode_sources(["123", "98765432", "5"])
    cached, a = model.greedy(src, mask, max_len=12, return_logits=True)
    fresh, b = model.greedy(src, mask, max_len=12, use_cache=False, return_logits=True)
    assert cached == fresh and a.shape[1] == 12
    assert torch.allclose(a, b, atol=1e-4)


def test_cross_attention_keys_and_values_are_projected_once(reverser):
    model, test = reverser
    calls = {"cache": 0, "recompute": 0}
    src, mask = model.encode_sources([s for s, _ in test[:4]])
    for mode in calls:
        handles = [block.cross_attn.k_proj.register_forward_hook(lambda *_, m=mode: calls.__setitem__(m, calls[m] + 1))
                   for block in model.net.decoder.transformer.h]
        _, logits = model.greedy(src, mask, use_cache=mode == "cache", return_logits=True)
        for h in handles:
            h.remove()
    steps, layers = logits.shape[1], len(model.net.decoder.transformer.h)
    assert steps > 3
    assert calls == {"cache": layers, "recompute": layers * steps}


def test_beam_search_finds_the_best_sequence_exhaustively():
    """With a beam wider than every candidate, beam search is exhaustive: it must return the sequence
    with the best length-normalised log-probability among all of length <= max_len (oracle: every
    sequence scored by teacher forcing)."""
    pairs = [("abcd", "abcd"), ("dcba", "dcba")]
    model = make_model(pairs, seed=7, d_model=32, encoder_layers=1, decoder_layers=1).eval()
    src, mask = model.encode_sources(["ab", "cadd"])
    V, eos, max_len = model.net.tgt_vocab, model.eos_id, 3
    usable = [i for i in range(V) if i not in (model.pad_id, model.bos_id, eos)]
    # every finished sequence (ending in <eos>) and every sequence cut at max_len: 1 + 5 + 25 + 125
    seqs = [list(body) + ([eos] if n < max_len else []) for n in range(max_len + 1)
            for body in itertools.product(usable, repeat=n)]
    seqs = [s for s in seqs if s]
    tgt_in = torch.tensor([[model.bos_id] + s[:-1] + [model.pad_id] * (max_len - len(s)) for s in seqs])
    tgt_out = torch.tensor([s + [model.pad_id] * (max_len - len(s)) for s in seqs])
    with torch.no_grad():
        logp_rows = []
        for row in range(2):  # log p(seq | source row) by teacher forcing, all sequences at once
            logits = model.net(src[row:row + 1].expand(len(seqs), -1), mask[row:row + 1].expand(len(seqs), -1),
                               tgt_in).float()
            logits[..., [model.pad_id, model.bos_id]] = float("-inf")
            logp = F.log_softmax(logits, -1).gather(-1, tgt_out[..., None]).squeeze(-1)  # (N, max_len)
            logp_rows.append(logp.masked_fill(tgt_out == model.pad_id, 0.0).sum(-1).tolist())
    found = {}
    for alpha in (0.0, 0.6, 4.0):
        ids, scores = model.beam_search(src, mask, beam=256, alpha=alpha, max_len=max_len, return_scores=True)
        found[alpha] = ids
        for row in range(2):
            normalised = [lp / length_penalty(len(s), alpha) for lp, s in zip(logp_rows[row], seqs)]
            best = max(range(len(seqs)), key=normalised.__getitem__)
            assert ids[row] == [i for i in seqs[best] if i != eos], (alpha, row)
            assert scores[row] == pytest.approx(normalised[best], abs=1e-4)
    assert found[0.0] != found[4.0]  # the penalty decides: <eos> at once (alpha 0), all 3 tokens (alpha 4)


def test_length_penalty_is_gnmt_eq_14():
    assert length_penalty(1, 0.6) == pytest.approx(1.0)
    assert length_penalty(10, 0.6) == pytest.approx((5 + 10) ** 0.6 / 6 ** 0.6)
    assert length_penalty(37, 1.0) == pytest.approx(42 / 6)
    assert length_penalty(50, 0.0) == 1.0


# ----------------------------------------------------------------------------- the loss


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_matches_torch(eps):
    torch.manual_seed(0)
    logits = torch.randn(40, 13) * 3
    targets = torch.randint(0, 13, (40,))
    targets[::5] = 2  # padding
    ours = label_smoothed_cross_entropy(logits, targets, eps, ignore_index=2)
    oracle = F.cross_entropy(logits, targets, label_smoothing=eps, ignore_index=2)
    assert ours.item() == pytest.approx(oracle.item(), abs=1e-5)


def test_loss_smooths_in_training_only_and_ignores_padding():
    pairs = reverse_pairs(200, seed=2)
    model = make_model(pairs, seed=1)
    batch = {"src": ["12", "87654321"], "tgt": ["21", "12345678"]}
    src, mask = model.encode_sources(batch["src"])
    tgt_in, tgt_out = model.encode_targets(batch["tgt"])
    assert (tgt_out == model.pad_id).sum() == 6  # the short target is padded
    with torch.no_grad():
        logits = model.net(src, mask, tgt_in).flatten(0, 1)
        model.train()
        smoothed = model.loss(batch)
        model.eval()
        plain = model.loss(batch)
    flat = tgt_out.flatten()
    assert smoothed.item() == pytest.approx(F.cross_entropy(logits, flat, label_smoothing=0.1,
                                                            ignore_index=model.pad_id).item(), abs=1e-5)
    assert plain.item() == pytest.approx(F.cross_entropy(logits, flat, ignore_index=model.pad_id).item(), abs=1e-5)
    assert model.items_in(batch) == 3 + 9  # target characters + end-of-sequence, per row

    # padding changes nothing: the short pair alone gives the same logits at its real positions
    with torch.no_grad():
        alone = model.net(src[:1, :3], mask[:1, :3], tgt_in[:1, :3])
        batched = model.net(src, mask, tgt_in)[:1, :3]
        assert torch.allclose(alone, batched, atol=1e-5)
        # and the batch loss is the token-weighted mean of the two pairs' losses
        one = model.loss({"src": batch["src"][:1], "tgt": batch["tgt"][:1]})
        two = model.loss({"src": batch["src"][1:], "tgt": batch["tgt"][1:]})
    assert plain.item() == pytest.approx((3 * one.item() + 9 * two.item()) / 12, abs=1e-5)


def test_too_long_for_the_context_is_a_clear_error():
    from twopaths.errors import DataError

    model = make_model(reverse_pairs(50, seed=4))
    with pytest.raises(DataError, match="longer than the model's context of 16"):
        model.encode_sources(["1" * 16])


# ----------------------------------------------------------------------------- the backbone


def test_shared_vocabulary_ties_embeddings_and_head():
    cfg = Seq2SeqConfig(encoder_layers=1, decoder_layers=1, n_head=2, d_model=16, context=8)
    shared = Seq2Seq(20, 20, cfg)
    wte = shared.encoder.transformer.wte
    assert shared.decoder.transformer.wte is wte and shared.decoder.lm_head.weight is wte.weight
    assert shared.encoder.lm_head is None
    separate = Seq2Seq(20, 30, Seq2SeqConfig(**{**cfg.__dict__, "shared_vocab": False}))
    assert separate.decoder.transformer.wte is not separate.encoder.transformer.wte
    assert separate.decoder.lm_head.weight is separate.decoder.transformer.wte.weight  # tie_weights
    assert separate.num_params() - shared.num_params() == 30 * 16  # the second embedding matrix
    with pytest.raises(ValueError, match="shared_vocab"):
        Seq2Seq(20, 30, cfg)


def test_encoder_ignores_padding_and_is_bidirectional():
    torch.manual_seed(0)
    net = Seq2Seq(12, 12, Seq2SeqConfig(encoder_layers=2, decoder_layers=1, n_head=2, d_model=16, context=8)).eval()
    ids = torch.tensor([[4, 5, 6, 0, 2, 2], [4, 5, 7, 8, 9, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    memory = net.encode(ids, mask)
    garbage = ids.clone()
    garbage[0, 4:] = 11  # other ids under the padding: row 0's real positions do not change
    assert torch.allclose(net.encode(garbage, mask)[0, :4], memory[0, :4], atol=1e-6)
    changed = ids.clone()
    changed[1, 5] = 3  # the last token changes the first one's vector: not causal
    assert not torch.allclose(net.encode(changed, mask)[1, 0], memory[1, 0], atol=1e-4)


def test_cached_cross_attention_step_by_step_matches_a_full_pass():
    """The shared Transformer with cross=True: decoding one token at a time with a KVCache (which
    projects the context's keys/values once) equals the full causal pass, also after reordering rows."""
    torch.manual_seed(0)
    dec = Transformer(30, TransformerConfig(n_layer=2, n_head=2, d_model=32, context=16), cross=True).eval()
    ids, ctx = torch.randint(0, 30, (3, 7)), torch.randn(3, 5, 32)
    ctx_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    full = dec(ids, context=ctx, context_mask=ctx_mask)  # (3, 7, 30)
    cache = dec.new_cache(3, 7)
    steps = [dec(ids[:, t:t + 1], cache=cache, context=ctx, context_mask=ctx_mask) for t in range(4)]
    assert cache.context_k[0] is not None and cache.context_k[0].shape == (3, 2, 5, 16)
    assert torch.allclose(torch.cat(steps, 1), full[:, :4], atol=1e-5)
    order = torch.tensor([2, 0, 0])  # keep rows 2, 0, 0 (as beam search does)
    cache.reorder(order)
    rest = [dec(ids[order, t:t + 1], cache=cache, context=ctx[order], context_mask=ctx_mask[order])
            for t in range(4, 7)]
    assert torch.allclose(torch.cat(rest, 1), full[order, 4:], atol=1e-5)
