"""The sequence VAE (Bowman et al. 2016): one document per row, the bound's parts, the KL warm-up, cached
decoding equal to recomputation, and a small model that learns to reconstruct its documents through z."""

from __future__ import annotations

import pytest
import torch

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.data.text import DocumentRows
from twopaths.data.tokenizers import SmilesTokenizer
from twopaths.errors import DataError
from twopaths.paradigms.sequence_vae import SequenceVAE, SequenceVAEConfig

DOCS = ["CCO", "c1ccccc1", "CC(=O)O", "CN1CCCC1", "OCC(O)CO", "C1CCNCC1", "CCCl", "O=C=O"]


def _vae(tokenizer, context: int = 12, kl_warmup: int = 0, beta: float = 1.0, d: int = 32) -> SequenceVAE:
    cfg = TransformerConfig(n_layer=1, n_head=2, d_model=d, context=context)
    enc = Transformer(tokenizer.vocab_size, TransformerConfig(n_layer=1, n_head=2, d_model=d, context=context,
                                                              causal=False, tie_weights=False))
    return SequenceVAE(enc, Transformer(tokenizer.vocab_size, cfg, cross=True),
                       SequenceVAEConfig(latent_dim=8, beta=beta, kl_warmup=kl_warmup), tokenizer.eot_id)


@pytest.fixture
def tok() -> SmilesTokenizer:
    return SmilesTokenizer.train(DOCS)


def test_document_rows_hold_one_document_between_end_tokens(tok):
    rows = DocumentRows(tok, DOCS, context=10)
    eot = tok.eot_id
    row = rows[0]["tokens"]
    assert row.shape == (11,) and row[0] == eot and tok.decode(row[1:4].tolist()) == "CCO"
    assert (row[4:] == eot).all()
    with pytest.raises(DataError, match=r"4 of 8 documents are longer than data.context - 1 = 7 tokens .*"
                                        r"data.context=9"):
        DocumentRows(tok, DOCS, context=8)


def test_loss_is_the_elbo_per_token_and_the_kl_warms_up(tok):
    torch.manual_seed(0)
    vae = _vae(tok, kl_warmup=4)
    batch = {"tokens": torch.stack([DocumentRows(tok, DOCS, 12)[i]["tokens"] for i in range(8)])}
    assert vae.items_in(batch) == sum(len(tok.encode(d)) + 1 for d in DOCS)  # each document and its end token
    torch.manual_seed(1)
    rec, kl, n = vae.elbo_terms(batch["tokens"])
    assert (kl > 0).all() and (rec < 0).all() and n.tolist() == [len(tok.encode(d)) + 1 for d in DOCS]
    vae.eval()
    torch.manual_seed(1)
    with torch.no_grad():
        eval_loss = vae.loss(batch)
    assert eval_loss.item() == pytest.approx(float((kl - rec).detach().sum() / n.sum()), rel=1e-5)
    vae.train()
    torch.manual_seed(1)
    first = vae.loss(batch)  # KL weight 1/4 on the first step
    assert first.detach().item() == pytest.approx(float((kl / 4 - rec).detach().sum() / n.sum()), rel=1e-5)
    first.backward()
    assert vae.encoder.transformer.wte.weight.grad.abs().sum() > 0  # the encoder learns through z
    assert int(vae.kl_steps) == 1


def test_cached_decoding_equals_recomputing_the_prefix(tok):
    torch.manual_seed(0)
    vae = _vae(tok).eval()
    z = torch.randn(3, 8)
    fast = vae.sample(3, z=z, temperature=0)  # greedy, with the KV cache
    memory = vae.memory(z)
    seq = torch.full((3, 1), tok.eot_id)
    for _ in range(vae.context - 1):  # greedy without a cache: the whole prefix every step
        nxt = vae.decoder(seq, context=memory)[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
    slow = [row[:row.index(tok.eot_id)] if tok.eot_id in row else row for row in seq[:, 1:].tolist()]
    assert fast == slow


def test_a_small_vae_reconstructs_its_documents_through_z(tok):
    torch.manual_seed(0)
    vae = _vae(tok, kl_warmup=100, beta=0.1, d=48)
    rows = torch.stack([DocumentRows(tok, DOCS, 12)[i]["tokens"] for i in range(8)])
    opt = torch.optim.AdamW(vae.parameters(), lr=3e-3)
    for _ in range(250):
        opt.zero_grad()
        vae.loss({"tokens": rows}).backward()
        opt.step()
    vae.eval()
    inputs, _, keep = vae._split(rows)
    mu, _ = vae.encode(inputs, keep)
    decoded = [tok.decode(ids) for ids in vae.sample(8, z=mu, temperature=0)]
    assert sum(a == b for a, b in zip(decoded, DOCS)) >= 7, decoded  # the latent carries the document
    assert vae.elbo_parts(rows)["kl"] > 0.05  # and is used (no posterior collapse)
