"""The comparison table's verdicts follow the numbers: contrived results in, verdicts checked."""

from __future__ import annotations

import copy

import pytest
from contrived import results

from twopaths.arena.report import build_blocks, to_html, to_markdown
from twopaths.arena.verdicts import comparison_rows


def verdict(res: dict, aspect: str) -> str:
    rows = [r for table in comparison_rows(res) for r in table]
    return next(r.verdict for r in rows if r.aspect == aspect)


def test_quality_verdict_follows_fid():
    assert "ddpm (diffusion, NFE 20) generates better" in verdict(results(ddpm_fid=20, ar_fid=40), "Generation quality")
    assert "pixel-gpt (autoregressive) generates better" in verdict(results(ddpm_fid=40, ar_fid=20), "Generation quality")
    assert verdict(results(ddpm_fid=20, ar_fid=21), "Generation quality").startswith("tie")


def test_speed_verdict_follows_samples_per_second():
    assert "ddpm is 10.0x better" in verdict(results(ddpm_sps=50, ar_sps=5), "Sampling speed")
    assert "pixel-gpt is 2.0x better" in verdict(results(ddpm_sps=5, ar_sps=10), "Sampling speed")
    assert "about the same" in verdict(results(ddpm_sps=10, ar_sps=11), "Sampling speed")


def test_stability_verdict_follows_spread_and_divergence():
    assert "diffusion is more stable" in verdict(results(ar_diverged=True), "Training stability")
    assert verdict(results(), "Training stability").startswith("equally stable")
    assert "diffusion is more stable: final loss varies less" in verdict(results(), "Training stability (vs GAN/VAE)")
    assert "gan is more stable" in verdict(results(ddpm_finals=(1.0, 2.0, 0.5), gan_finals=(1.0, 1.0, 1.0)),
                                            "Training stability (vs GAN/VAE)")


def test_mode_collapse_and_single_pass_speed():
    assert verdict(results(), "Mode collapse").startswith("no collapse")
    assert "gan (fashion-mnist)" in verdict(results(gan_entropy=0.3), "Mode collapse")
    assert "gan is" in verdict(results(gan_sps=5000), "Single-pass speed (GAN/VAE vs diffusion)")
    assert "ddpm is" in verdict(results(gan_sps=1), "Single-pass speed (GAN/VAE vs diffusion)")


def test_missing_evidence_is_said_not_guessed():
    res = results()
    del res["suites"]["fashion-mnist"]["contenders"]["pixel-gpt"]
    assert verdict(res, "Generation quality").startswith("evidence missing")
    assert verdict(res, "Long-range dependencies").startswith("evidence missing")
    single = copy.deepcopy(results())
    for e in single["suites"]["fashion-mnist"]["contenders"].values():
        e["runs"] = e["runs"][:1]
    assert verdict(single, "Training stability").startswith("evidence missing")


@pytest.mark.parametrize("renderer", ["md", "html"])
def test_report_renders_every_table(tmp_path, renderer):
    blocks = build_blocks(results(), tmp_path)
    text = to_markdown(blocks) if renderer == "md" else to_html(blocks, tmp_path)
    for needle in ("Generation quality", "Mode collapse", "pixel-gpt", "Training throughput"):
        assert needle in text
    if renderer == "html":
        assert text.count("<table>") >= 6 and "data:image/png;base64," in text  # plots embedded


def _text(gen_ppl: float, entropy: float, tps: float) -> dict:
    return {"gen_ppl": gen_ppl, "entropy_per_sample": entropy, "tokens_per_s": tps, "sequential_calls": 1}


def with_text(ar=(10.0, 3.0, 1000.0), mdlm=None) -> dict:
    res = results()
    mdlm = mdlm or {"16": (30.0, 3.0, 4000.0), "64": (11.0, 2.9, 1500.0), "256": (10.0, 3.0, 400.0)}
    res["suites"]["fortunes"] = {"data": "fortunes", "kind": "text", "budget_s": 5, "seeds": 1, "n_eval": 8,
                                 "n_curve": 0, "budget_kind": "equal", "contenders": {
        "gpt": {"family": "autoregressive", "runs": [], "quality": {"main_nfe": "single",
                                                                      "by_nfe": {"single": _text(*ar)}}},
        "mdlm": {"family": "diffusion", "runs": [], "quality": {"main_nfe": "64", "by_nfe": {
            k: _text(*v) for k, v in mdlm.items()}}}}}
    return res


def test_text_verdict_finds_the_fewest_steps_at_equal_quality():
    aspect = "Text generation: speed at equal quality"
    assert verdict(with_text(), aspect).startswith("mdlm matches gpt's quality from T = 64; there mdlm is 1.5x")
    slow = with_text(mdlm={"64": (11.0, 2.9, 500.0)})
    assert "gpt is 2.0x better on tokens per second" in verdict(slow, aspect)
    low_entropy = with_text(mdlm={"64": (5.0, 1.0, 5000.0)})  # a good gen-PPL from repetitive text does not count
    assert verdict(low_entropy, aspect).startswith("gpt wins")
    assert verdict(results(), aspect).startswith("evidence missing")


def test_denoiser_backbone_verdict_compares_diffusion_contenders():
    aspect = "Denoiser: U-Net vs DiT vs latent (same diffusion objective)"
    assert verdict(results(), aspect).startswith("evidence missing")  # one diffusion denoiser only
    res = results(ddpm_fid=20)
    entries = res["suites"]["fashion-mnist"]["contenders"]
    entries["dit"] = copy.deepcopy(entries["ddpm"])
    entries["dit"]["quality"]["by_nfe"]["20"]["fid"] = 40.0
    assert "ddpm generates better images (FID 20 vs 40 for dit)" in verdict(res, aspect)
    row = next(r for r in comparison_rows(res)[1] if r.aspect == aspect)
    assert "0.05 GFLOP per call" in row.evidence  # 1e9 FLOPs per sample over 20 calls
    entries["dit"]["quality"]["by_nfe"]["20"]["fid"] = 21.0
    assert verdict(res, aspect).startswith("tie")
