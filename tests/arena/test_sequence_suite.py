"""The arena's sequence suite: recall accuracy is measured right (hand-made oracle models), a tiny
suite runs end to end into a report with the accuracy-vs-distance table, and the verdict reads it."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from twopaths.arena.suites import Contender, Suite, select
from twopaths.data.recall import eval_set, recall_tokenizer
from twopaths.eval.recall import accuracy_by_distance
from twopaths.paradigms.autoregressive import Autoregressive
from twopaths.paradigms.mdlm import MaskedDiffusion

TOK = recall_tokenizer()
V = TOK.vocab_size
FILLER = TOK.encode(".")[0]


class RecallOracle(nn.Module):
    """Solves recall by lookup, seeing only tokens ``t - reach + 1 .. t`` at position t.

    ``masked=False`` (autoregressive): position t holds the query key and predicts the token after
    the latest earlier occurrence of it. ``masked=True`` (MDLM): a [MASK] at t is the answer, the
    key is at t - 1. No match in reach: predict the filler (always wrong).
    """

    def __init__(self, reach: int = 10**9, masked: bool = False):
        super().__init__()
        self.reach, self.masked = reach, masked
        self.dummy = nn.Parameter(torch.zeros(()))  # gives the model a device

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        B, T = ids.shape
        out = torch.full((B, T, V + int(self.masked)), -10.0)
        for b in range(B):
            for t in range(T):
                key_at = t - 1 if self.masked else t
                if key_at < 1 or (self.masked and ids[b, t] != V):
                    continue
                answer = FILLER
                for s in range(key_at - 1, max(t - self.reach, -1), -1):  # s and s + 1 within reach
                    if ids[b, s] == ids[b, key_at]:
                        answer = int(ids[b, s + 1])
                        break
                out[b, t, answer] = 10.0
        return out


def test_accuracy_of_oracles_autoregressive_and_masked():
    tokens, dist = eval_set(68, n_per_distance=6, seed=0)  # distances 4 .. 64
    ar = Autoregressive(RecallOracle(), context=68)
    assert accuracy_by_distance(ar, tokens, dist) == {4: 1.0, 8: 1.0, 16: 1.0, 32: 1.0, 64: 1.0}
    mdlm = MaskedDiffusion(RecallOracle(masked=True), V, context=68)
    assert accuracy_by_distance(mdlm, tokens, dist, batch_size=7) == {4: 1.0, 8: 1.0, 16: 1.0, 32: 1.0, 64: 1.0}
    # a reach of 20 tokens holds the queried pair (d + 2 tokens back to its key) up to d = 18 only
    near = Autoregressive(RecallOracle(reach=20), context=68)
    assert accuracy_by_distance(near, tokens, dist) == {4: 1.0, 8: 1.0, 16: 1.0, 32: 0.0, 64: 0.0}
    near_masked = MaskedDiffusion(RecallOracle(reach=20, masked=True), V, context=68)
    assert accuracy_by_distance(near_masked, tokens, dist) == {4: 1.0, 8: 1.0, 16: 1.0, 32: 0.0, 64: 0.0}


def test_suite_selection():
    (suite,) = select("sequence")
    assert suite.kind == "sequence" and [c.name for c in suite.contenders] == ["gpt", "mdlm", "conv-lm"]
    assert "recall" in {s.name for s in select("full")} and "recall" not in {s.name for s in select("quick")}
    assert [c.name for c in select("sequence", ["recall/conv-lm"])[0].contenders] == ["conv-lm"]


def test_tiny_sequence_suite_end_to_end(tmp_path):
    from twopaths.arena.report import write_report
    from twopaths.arena.runner import run_arena
    from twopaths.arena.verdicts import comparison_rows

    tiny = ("train.progress=false", "train.eval_every=0", "train.sample_every=0", "train.batch_size=8",
            "data.context=36", "data.size=1000")
    small_gpt = ("arch.context=36", "arch.n_layer=1", "arch.n_head=2", "arch.d_model=16")
    suite = Suite("recall", "recall", "sequence", budget_flops=2e9, n_eval=3, overrides=tiny, contenders=(
        Contender("gpt", "gpt-nano", "autoregressive", small_gpt),
        Contender("mdlm", "mdlm", "diffusion", small_gpt),
        Contender("conv-lm", "conv-lm", "autoregressive", ("arch.channels=12", "arch.n_layers=3")),
    ))
    results = run_arena([suite], tmp_path, "test", "cpu", log=lambda _: None)
    entry = results["suites"]["recall"]
    for name in ("gpt", "mdlm", "conv-lm"):
        rec = entry["contenders"][name]["quality"]["recall"]
        assert set(rec["accuracy"]) == {"4", "8", "16", "32"}
        assert all(0.0 <= a <= 1.0 for a in rec["accuracy"].values())
        assert rec["n_per_distance"] == 3 and rec["chance"] == 0.1
    assert entry["contenders"]["conv-lm"]["quality"]["recall"]["receptive_field"] == 8  # 1 + 1 + 2 + 4
    assert entry["contenders"]["gpt"]["quality"]["recall"]["receptive_field"] is None
    md, page = write_report(results, tmp_path)
    text = md.read_text()
    assert "### Accuracy vs distance" in text
    assert "| contender | sees | d = 4 | d = 8 | d = 16 | d = 32 |" in text
    assert "| conv-lm | receptive field 8 |" in text
    assert (tmp_path / "images" / "recall-recall-vs-distance.png").is_file()
    row = next(r for r in comparison_rows(results)[0] if r.aspect == "Long-range dependencies")
    assert not row.missing and "gpt: d=4" in row.evidence


def _contrived(gpt: dict, mdlm: dict, conv: dict, n: int = 200) -> dict:
    def entry(family, acc, rf=None):
        return {"family": family, "quality": {"recall": {"accuracy": {str(d): a for d, a in acc.items()},
                                                         "chance": 0.1, "receptive_field": rf, "n_per_distance": n}}}
    return {"suites": {"recall": {"kind": "sequence", "contenders": {
        "gpt": entry("autoregressive", gpt), "mdlm": entry("diffusion", mdlm),
        "conv-lm": entry("autoregressive", conv, rf=64)}}}}


def test_long_range_verdict_follows_the_numbers():
    from twopaths.arena.verdicts import long_range

    conv = {4: 0.9, 32: 0.8, 64: 0.1, 128: 0.12}
    row = long_range(_contrived({4: 1.0, 32: 0.9, 64: 0.8, 128: 0.7}, {4: 0.9, 32: 0.6, 64: 0.3, 128: 0.1}, conv))
    assert row.verdict.startswith("gpt recalls further: up to d = 128 vs d = 32 for mdlm")
    assert "conv-lm beyond its receptive field of 64: mean accuracy 0.11" in row.verdict
    row = long_range(_contrived({4: 0.2, 128: 0.1}, {4: 0.7, 128: 0.1}, conv))
    assert row.verdict.startswith("mdlm recalls further: up to d = 4 vs no distance for gpt")
    row = long_range(_contrived({4: 0.9, 128: 0.9}, {4: 0.92, 128: 0.9}, conv))
    assert row.verdict.startswith("inconclusive: both recall up to d = 128") and row.status == "inconclusive"
    row = long_range(_contrived({4: 0.95, 128: 0.9}, {4: 0.7, 128: 0.6}, conv))
    assert row.verdict.startswith("both recall up to d = 128; gpt is more accurate") and row.winner == "gpt"
    assert row.interval[0] > 0  # the interval of the gap excludes no difference
    row = long_range(_contrived({4: 0.1}, {4: 0.2}, conv))
    assert row.verdict.startswith("inconclusive: neither gpt nor mdlm")
    # 0.6 over 10 items is not surely above 0.5: too few items to claim a recalled distance
    row = long_range(_contrived({4: 0.6, 128: 0.1}, {4: 0.1, 128: 0.1}, conv, n=10))
    assert row.verdict.startswith("inconclusive: neither")
    assert long_range({"suites": {}}).missing
    assert replace(select("sequence")[0], budget_flops=1e12).budget_flops == 1e12
