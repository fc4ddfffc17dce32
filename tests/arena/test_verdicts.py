"""The comparison table's verdicts follow the numbers: contrived results in, verdicts checked."""

from __future__ import annotations

import copy

import pytest
from contrived import curve, results

from twopaths.arena.report import build_blocks, to_html, to_markdown
from twopaths.arena.verdicts import comparison_rows


def verdict(res: dict, aspect: str) -> str:
    rows = [r for table in comparison_rows(res) for r in table]
    return next(r.verdict for r in rows if r.aspect == aspect)


def row(res: dict, aspect: str):
    return next(r for table in comparison_rows(res) for r in table if r.aspect == aspect)


def test_quality_verdict_names_a_winner_only_with_a_clear_gap_between_learned_models():
    # clear gap, both within 5x of the floor: a winner, with its ratio and the interval of the gap
    r = row(results(ddpm_fid=20, ar_fid=40), "Generation quality")
    assert r.status == "winner" and r.winner == "ddpm" and r.ratio == pytest.approx(2.0)
    assert r.interval[0] > 0 and "ddpm generates better images (FID 20 vs 40 for pixel-gpt" in r.verdict
    assert row(results(ddpm_fid=40, ar_fid=20), "Generation quality").winner == "pixel-gpt"
    # overlapping intervals: a gap of 10 with a bootstrap spread of 5 on each side is not evidence
    r = row(results(ddpm_fid=20, ar_fid=30, fid_std=5.0), "Generation quality")
    assert r.status == "inconclusive" and r.winner is None and "includes 0" in r.verdict
    assert verdict(results(ddpm_fid=20, ar_fid=21), "Generation quality").startswith("inconclusive")


def test_quality_verdict_abstains_when_models_have_not_learned():
    # both far from the floor (20x and 40x of 1): inconclusive, however large the gap
    r = row(results(ddpm_fid=20, ar_fid=40, floor=1.0), "Generation quality")
    assert r.status == "inconclusive" and "no image model within 5x of the floor" in r.verdict
    # one learned, one not: still no ranking
    r = row(results(ddpm_fid=20, ar_fid=400), "Generation quality")
    assert r.status == "inconclusive" and "only ddpm has learned" in r.verdict and "pixel-gpt (FID 400" in r.verdict
    assert row(results(ddpm_fid=20, ar_fid=40, floor=1.0), "Quality: diffusion vs GAN vs VAE").status == "inconclusive"


def test_a_winner_on_still_falling_curves_says_so():
    falling = curve(60.0, 40.0, 28.0, 20.0)
    r = row(results(ddpm_fid=20, ar_fid=40, ddpm_curve=falling), "Generation quality")
    assert r.winner == "ddpm" and r.qualifier == "at 2 TFLOP; ddpm still improving 29% per doubling"
    assert r.verdict.endswith("(at 2 TFLOP; ddpm still improving 29% per doubling)")
    assert row(results(), "Generation quality").qualifier == ""  # flat curves: no qualifier


def test_speed_verdicts_need_learned_models_and_latency_ranges_that_exclude_one():
    r = row(results(ddpm_sps=50, ar_sps=5), "Sampling speed")
    assert r.winner == "ddpm" and "ddpm is 10.0x faster per sample" in r.verdict and r.interval[0] > 1
    assert row(results(ddpm_sps=5, ar_sps=10), "Sampling speed").winner == "pixel-gpt"
    r = row(results(ddpm_sps=10, ar_sps=10.5), "Sampling speed")  # ranges 0.95-1.05x overlap
    assert r.status == "inconclusive" and "includes 1" in r.verdict
    r = row(results(ddpm_sps=50, ar_sps=5, floor=1.0), "Sampling speed")
    assert r.status == "inconclusive" and "not learned" in r.verdict
    r = row(results(), "Computational cost")  # 1e9 FLOPs per image for both: exact counts, no winner
    assert r.status == "measured" and "about the same" in r.verdict


def test_stability_verdict_needs_seeds_learned_models_and_a_significant_difference():
    # the F-test: 3 seeds each, spreads 1% vs 40%: the variance ratio is far beyond the 95% bound (39)
    r = row(results(), "Training stability (vs GAN/VAE)")
    assert r.winner == "diffusion" and "varies less across seeds" in r.verdict
    r = row(results(ddpm_finals=(1.0, 1.3, 0.8), gan_finals=(1.0, 1.5, 0.6)), "Training stability (vs GAN/VAE)")
    assert r.status == "inconclusive" and "F bound" in r.verdict
    # one diverged run out of 3 against none is within chance
    r = row(results(ar_diverged=True), "Training stability")
    assert r.status == "inconclusive" and "Fisher" in r.verdict
    assert row(results(floor=1.0), "Training stability").status == "inconclusive"


def test_mode_collapse_and_single_pass_speed():
    assert verdict(results(), "Mode collapse").startswith("no collapse")
    assert "gan (fashion-mnist)" in verdict(results(gan_entropy=0.3), "Mode collapse")
    assert "not judged on fashion-mnist (not learned)" in verdict(results(gan_entropy=0.3, floor=1.0), "Mode collapse")
    assert row(results(gan_sps=5000), "Single-pass speed (GAN/VAE vs diffusion)").winner == "gan"
    assert row(results(gan_sps=1), "Single-pass speed (GAN/VAE vs diffusion)").winner == "ddpm"


def test_missing_evidence_is_said_not_guessed():
    res = results()
    del res["suites"]["fashion-mnist"]["contenders"]["pixel-gpt"]
    assert verdict(res, "Generation quality").startswith("evidence missing")
    assert verdict(res, "Long-range dependencies").startswith("evidence missing")
    single = copy.deepcopy(results())
    for e in single["suites"]["fashion-mnist"]["contenders"].values():
        e["runs"] = e["runs"][:1]
    assert verdict(single, "Training stability").startswith("evidence missing")
    # rows about a domain's own suite (molecules, audio, video) appear only where that suite ran
    aspects = [r.aspect for r in comparison_rows(res)[0]]
    assert "Long-range dependencies" in aspects and not [a for a in aspects if a.startswith(("Molecules", "Audio",
                                                                                             "Video"))]


def test_every_verdict_names_a_winner_with_an_interval_or_says_why_not():
    for res in (results(), results(floor=1.0), results(ddpm_fid=20, ar_fid=30, fid_std=5.0)):
        for r in (r for table in comparison_rows(res) for r in table):
            assert r.status in ("winner", "inconclusive", "measured", "missing"), r
            if r.status == "winner":
                assert r.winner and r.metric, r
            if r.status == "inconclusive":
                assert r.verdict.startswith("inconclusive: ") and len(r.verdict) > 20, r


@pytest.mark.parametrize("renderer", ["md", "html"])
def test_report_renders_every_table(tmp_path, renderer):
    blocks = build_blocks(results(), tmp_path)
    text = to_markdown(blocks) if renderer == "md" else to_html(blocks, tmp_path)
    for needle in ("Generation quality", "Mode collapse", "pixel-gpt", "Training throughput"):
        assert needle in text
    if renderer == "html":
        assert text.count("<table>") >= 6 and "data:image/png;base64," in text  # plots embedded


def test_curve_table_puts_each_point_under_its_fraction_of_the_budget(tmp_path):
    """A checkpoint that was not kept (here the first of ddpm's) leaves its column empty; the later points
    stay under their own fractions."""
    text = to_markdown(build_blocks(results(ddpm_curve=curve(60.0, 40.0, 20.0)), tmp_path))
    assert "| contender | budget TFLOP | 0.125 of the budget | 0.25 of the budget | 0.5 of the budget | 1 of the " \
           "budget |" in text
    assert "| ddpm | 2 | — | 60 | 40 | 20 |" in text


def _text(gen_ppl: float, entropy: float, calls: int) -> dict:
    return {"gen_ppl": gen_ppl, "entropy_per_sample": entropy, "tokens_per_s": 1000.0, "sequential_calls": calls}


def with_text(ar=(10.0, 3.0, 128), mdlm=None, ppl=(5.0, 6.0), unigram=25.0) -> dict:
    res = results()
    mdlm = mdlm or {"16": (30.0, 3.0, 16), "64": (11.0, 2.9, 64), "256": (10.0, 3.0, 256)}
    res["suites"]["fortunes"] = {"data": "fortunes", "kind": "text", "budget_flops": 1e12, "seeds": 1, "n_eval": 8,
                                 "n_curve": 8, "budget_kind": "equal", "contenders": {
        "gpt": {"family": "autoregressive", "runs": [], "quality": {
            "main_nfe": "single", "val": {"perplexity": ppl[0]}, "unigram_perplexity": unigram,
            "by_nfe": {"single": _text(*ar)}}},
        "mdlm": {"family": "diffusion", "runs": [], "quality": {
            "main_nfe": "64", "val": {"perplexity_bound": ppl[1]}, "unigram_perplexity": unigram,
            "by_nfe": {k: _text(*v) for k, v in mdlm.items()}}}}}
    return res


def test_text_verdict_finds_the_fewest_steps_at_equal_quality():
    aspect = "Text generation: speed at equal quality"
    r = row(with_text(), aspect)
    assert r.verdict.startswith("mdlm matches gpt's quality from T = 64; there mdlm makes 2.0x fewer sequential")
    assert r.winner == "mdlm"
    slow = with_text(mdlm={"256": (10.0, 3.0, 256)})
    assert "gpt makes 2.0x fewer sequential network calls" in verdict(slow, aspect)
    low_entropy = with_text(mdlm={"64": (5.0, 1.0, 64)})  # a good gen-PPL from repetitive text does not count
    assert verdict(low_entropy, aspect).startswith("gpt wins")
    assert verdict(results(), aspect).startswith("evidence missing")
    # perplexity 20 against a unigram perplexity of 25: that model learned the letter frequencies, little more
    r = row(with_text(ppl=(5.0, 20.0)), aspect)
    assert r.status == "inconclusive" and "mdlm (perplexity 20 vs unigram 25" in r.verdict


def test_denoiser_backbone_verdict_compares_diffusion_contenders():
    aspect = "Denoiser: U-Net vs DiT vs latent (same diffusion objective)"
    assert verdict(results(), aspect).startswith("evidence missing")  # one diffusion denoiser only
    res = results(ddpm_fid=20)
    entries = res["suites"]["fashion-mnist"]["contenders"]
    entries["dit"] = copy.deepcopy(entries["ddpm"])
    entries["dit"]["quality"]["by_nfe"]["20"]["fid"] = 40.0
    assert "ddpm generates better images (FID 20 vs 40 for dit" in verdict(res, aspect)
    assert "0.05 GFLOP per call" in row(res, aspect).evidence  # 1e9 FLOPs per sample over 20 calls
    entries["dit"]["quality"]["by_nfe"]["20"]["fid"] = 21.0
    assert verdict(res, aspect).startswith("inconclusive")
