"""The arena's video suite: a tiny joint video diffusion vs frame-by-frame suite on moving-fashion runs end to
end (frame FID, motion, identity drift, cost per clip, prediction from held-out clips) into a report with
animated samples, and the video verdicts follow contrived numbers."""

from __future__ import annotations

import re

import pytest

from twopaths.arena.suites import Contender, Suite, select
from twopaths.arena.verdicts import learned, video_cost, video_frame_quality, video_motion, video_prediction

_TINY_UNET = ("arch.unet.base_channels=8", "arch.unet.channel_mults=[1,2]", "arch.unet.num_res_blocks=1",
              "arch.unet.attention_resolutions=[]", "arch.unet.groups=4", "arch.unet.head_channels=null",
              "arch.unet.num_heads=2")


def test_suite_selection():
    (suite,) = select("video")
    assert suite.kind == "video" and [c.name for c in suite.contenders] == ["video-ddpm", "video-ar"]
    assert [c.family for c in suite.contenders] == ["diffusion", "autoregressive"]
    assert "moving-fashion" in {s.name for s in select("full")}


def test_tiny_video_suite_end_to_end(tmp_path):
    from twopaths.arena.report import write_report
    from twopaths.arena.runner import PREDICT_CONTEXT, run_arena
    from twopaths.arena.verdicts import comparison_rows

    tiny = ("train.progress=false", "train.eval_every=0", "train.sample_every=0", "train.batch_size=4",
            "data.size=64", "optim.warmup_steps=1")
    suite = Suite("moving-fashion", "moving-fashion", "video", budget_flops=2e9, n_eval=4, n_curve=4, overrides=tiny,
                  contenders=(
                      Contender("video-ddpm", "video-ddpm", "diffusion",
                                (*_TINY_UNET, "arch.unet.temporal_attention_resolutions=[16]"), nfe=(2, 3)),
                      Contender("video-ar", "video-ar", "autoregressive", _TINY_UNET, nfe=(2,)),
                  ))
    results = run_arena([suite], tmp_path, "test", "cpu", log=lambda _: None)
    entry = results["suites"]["moving-fashion"]
    assert set(entry["contenders"]["video-ddpm"]["quality"]["by_nfe"]) == {"2", "3"}
    calls = {}
    for name in ("video-ddpm", "video-ar"):
        q = entry["contenders"][name]["quality"]
        for m in q["by_nfe"].values():
            assert m["frame_fid"] > 0 and m["frame_fid_floor"] > 0 and m["frame_fid_std"] > 0 and m["n"] == 4
            assert m["temporal_consistency_px"] >= 0 and m["temporal_consistency_px_floor"] < 1  # real motion
            assert m["identity_drift"] >= 0 and m["flops_per_sample"] > 0
        calls[name] = q["by_nfe"][q["main_nfe"]]["sequential_calls"]
        assert q["grid"].endswith(".gif") and (tmp_path / q["grid"]).is_file() and (tmp_path / q["strip"]).is_file()
        p = q["prediction"]
        assert p["context_frames"] == PREDICT_CONTEXT and p["n"] == 4 and p["position_error_px"] >= 0
        assert p["tracker_error_px"] < 1 and (tmp_path / p["strip"]).is_file()  # the tracker on true frames
        assert q["curve"][-1]["frame_fid"] is not None
    assert calls == {"video-ddpm": 3, "video-ar": 8 * 2}  # one call per step per clip vs per step per frame
    md, page = write_report(results, tmp_path)
    text = md.read_text()
    assert "| contender | frame FID ↓ | floor | motion residual px ↓ |" in text
    assert "Prediction: continuing held-out clips from their first 4 frames" in text
    assert len(re.findall(r"data:image/gif;base64", page.read_text())) == 2  # both animations embedded
    rows = {r.aspect: r for r in comparison_rows(results)[0]}
    assert rows["Video: sampling cost per clip"].status == "inconclusive"  # nothing learned in 2 GFLOP


def _contrived(fid: dict[str, float], motion: dict[str, float], se: float = 0.05, floor: float = 2.0,
               predicted: dict[str, float] | None = None) -> dict:
    families = {"video-ddpm": "diffusion", "video-ar": "autoregressive"}
    calls = {"video-ddpm": 20, "video-ar": 160}
    predicted = predicted or {"video-ddpm": 10.0, "video-ar": 3.0}
    return {"suites": {"moving-fashion": {"kind": "video", "budget_flops": 10e12, "contenders": {
        name: {"family": families[name], "quality": {"main_nfe": "20", "prediction": {
            "context_frames": 4, "n": 100, "position_error_px": predicted[name], "position_error_se": 0.4,
            "tracker_error_px": 0.16}, "by_nfe": {"20": {
            "frame_fid": fid[name], "frame_fid_floor": floor, "frame_fid_std": 0.2, "n": 200,
            "temporal_consistency_px": motion[name], "temporal_consistency_se": se,
            "temporal_consistency_px_floor": 0.08, "sequential_calls": calls[name], "latency_s": 1.0,
            "flops_per_sample": 1e9}}}} for name in families}}}}


def test_video_verdicts_follow_the_numbers():
    res = _contrived({"video-ddpm": 5.0, "video-ar": 8.0}, {"video-ddpm": 0.5, "video-ar": 1.5})
    row = video_frame_quality(res)
    assert row.status == "winner" and row.winner == "video-ddpm" and row.metric == "frame FID"
    row = video_motion(res)
    assert row.status == "winner" and row.winner == "video-ddpm" and row.ratio == pytest.approx(3.0)
    row = video_cost(res)
    assert row.status == "winner" and row.winner == "video-ddpm" and row.ratio == pytest.approx(8.0)
    assert "8.0x fewer sequential network calls" in row.verdict
    row = video_prediction(res)
    assert row.status == "winner" and row.winner == "video-ar" and row.aspect.endswith("from 4 given frames")
    assert row.interval[0] > 0 and "(3 vs 10 px)" in row.verdict and "tracker's own error" in row.evidence
    row = video_prediction(_contrived({"video-ddpm": 5.0, "video-ar": 8.0}, {"video-ddpm": 0.5, "video-ar": 1.5},
                                      predicted={"video-ddpm": 3.5, "video-ar": 3.0}))
    assert row.status == "inconclusive" and "includes 0" in row.verdict  # 0.5 apart, 1.1 of noise
    row = video_motion(_contrived({"video-ddpm": 5.0, "video-ar": 8.0}, {"video-ddpm": 0.5, "video-ar": 0.55}))
    assert row.status == "inconclusive" and "includes 0" in row.verdict
    res = _contrived({"video-ddpm": 5.0, "video-ar": 30.0}, {"video-ddpm": 0.5, "video-ar": 1.5})
    assert video_motion(res).status == "inconclusive" and "not learned: video-ar (frame FID 30" in video_motion(res).verdict
    assert video_frame_quality(res).status == "inconclusive"  # only one model learned
    ok, why = learned("video", res["suites"]["moving-fashion"]["contenders"]["video-ddpm"])
    assert ok and "frame FID 5 = 2.5x the floor 2" in why
    assert video_motion({"suites": {}}).missing
