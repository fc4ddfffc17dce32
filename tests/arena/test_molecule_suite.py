"""The arena's molecules suite: a tiny MOSES suite (gpt, mdlm, seq-vae) runs end to end into a report
with the MOSES table next to the published rows, and the molecule verdict follows contrived numbers."""

from __future__ import annotations

import importlib.util

import pytest

from twopaths.arena.suites import Contender, Suite, select
from twopaths.arena.verdicts import LEARNED_VALIDITY, learned, molecule_generation

needs_moses = pytest.mark.skipif(importlib.util.find_spec("moses") is None,
                                 reason="the MOSES data (pip install --no-deps molsets) is not installed")


def test_suite_selection():
    (suite,) = select("molecules")
    assert suite.kind == "molecules" and [c.name for c in suite.contenders] == ["gpt", "mdlm", "vae"]
    assert suite.n_eval >= 30000  # as MOSES samples: unique@10k needs 10,000 valid molecules
    assert "moses" in {s.name for s in select("full")} and "moses" not in {s.name for s in select("standard")}


@needs_moses
def test_tiny_molecule_suite_end_to_end(tmp_path):
    from twopaths.arena.report import write_report
    from twopaths.arena.runner import run_arena
    from twopaths.arena.verdicts import comparison_rows

    tiny = ("train.progress=false", "train.eval_every=0", "train.sample_every=0", "train.batch_size=8",
            "data.size=300", "data.context=64", "arch.context=64", "arch.n_layer=1", "arch.n_head=2",
            "arch.d_model=16")
    suite = Suite("moses", "moses-small", "molecules", budget_flops=2e9, n_eval=12, overrides=tiny, contenders=(
        Contender("gpt", "gpt-nano", "autoregressive"),
        Contender("mdlm", "mdlm", "diffusion", nfe=(4, 8), sampler="ancestral"),
        Contender("vae", "seq-vae", "vae"),
    ))
    results = run_arena([suite], tmp_path, "test", "cpu", log=lambda _: None)
    entry = results["suites"]["moses"]
    assert set(entry["contenders"]["mdlm"]["quality"]["by_nfe"]) == {"4", "8"}
    for name in ("gpt", "mdlm", "vae"):
        q = entry["contenders"][name]["quality"]
        for m in q["by_nfe"].values():
            assert 0 <= m["valid"] <= 1 and m["n"] == 12 and m["samples_per_s"] > 0 and m["sequential_calls"] >= 1
        assert len((tmp_path / f"images/moses-{name}.smi").read_text().splitlines()) == 12
    md, _ = write_report(results, tmp_path)
    text = md.read_text()
    assert "| contender | valid | unique@1000 | unique@10000 | FCD/Test |" in text
    assert "| CharRNN | 0.975 |" in text  # the published rows, same columns
    assert (tmp_path / "images" / "moses-quality-vs-nfe.png").is_file()  # validity vs sequential calls
    row = next(r for r in comparison_rows(results)[0] if r.aspect.startswith("Molecules"))
    assert not row.missing and "gpt: valid" in row.evidence


def _contrived(valid: dict[str, float], n: int = 10000) -> dict:
    families = {"gpt": "autoregressive", "mdlm": "diffusion", "vae": "vae"}
    return {"suites": {"moses": {"kind": "molecules", "budget_flops": 24e12, "contenders": {
        name: {"family": families[name], "quality": {"main_nfe": "single", "by_nfe": {
            "single": {"valid": v, "n": n, "FCD/Test": 1.0, "Novelty": 0.9, "samples_per_s": 100.0}}}}
        for name, v in valid.items()}}}}


def test_molecule_verdict_follows_the_numbers():
    row = molecule_generation(_contrived({"gpt": 0.95, "mdlm": 0.85, "vae": 0.9}))
    assert row.status == "winner" and row.winner == "gpt" and row.ratio == pytest.approx(2.0)
    assert row.interval[0] > 0.9 and "at 24 TFLOP" in row.verdict
    row = molecule_generation(_contrived({"gpt": 0.95, "mdlm": 0.948, "vae": 0.9}))
    assert row.status == "inconclusive" and "overlap" in row.verdict  # 0.950 vs 0.948 at n = 10,000
    row = molecule_generation(_contrived({"gpt": 0.95, "mdlm": 0.5, "vae": 0.9}))
    assert row.status == "inconclusive" and "not learned: mdlm (valid 0.5" in row.verdict
    assert molecule_generation(_contrived({"gpt": 0.95})).missing
    ok, why = learned("molecules", _contrived({"gpt": LEARNED_VALIDITY})["suites"]["moses"]["contenders"]["gpt"])
    assert ok and "rule: >= 0.8" in why
