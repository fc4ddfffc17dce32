"""Contrived arena results: the report and its verdicts are tested on numbers chosen by the test.

By default every image contender has learned the data (FID within 5x of the floor 10) and carries a
bootstrap spread ``fid_std``; the arguments move them across the rules.
"""

from __future__ import annotations


def _run(seed: int, final: float | None, diverged: str | None = None) -> dict:
    return {"seed": seed, "params": 1_000_000, "steps": 100, "train_seconds": 10.0, "item_name": "items",
            "items_per_s": 500.0, "flops_per_step": 2e10, "total_flops": 2e12, "peak_memory_bytes": 2**28,
            "final_train_loss": final, "diverged": diverged, "loss_curve": [[10, 1.0, 1.0], [100, 10.0, final or 1.0]]}


def _image(fid: float, sps: float, calls: int, entropy: float = 0.99, flops: float = 1e9, floor: float = 10.0,
           fid_std: float = 1.0, spread: float = 0.05) -> dict:
    latency = 1 / sps
    return {"fid": fid, "fid_floor": floor, "fid_std": fid_std, "kid": 0.01, "precision": 0.7, "recall": 0.6,
            "class_entropy_norm": entropy, "samples_per_s": sps, "latency_s": latency,
            "latency_min": latency * (1 - spread), "latency_max": latency * (1 + spread),
            "sequential_calls": calls, "flops_per_sample": flops}


def curve(*fids: float, floor: float = 10.0) -> list[dict]:
    """A quality curve at 1/8, 1/4, 1/2 and all of a 2-TFLOP budget (the last FID is the final model's)."""
    steps = [13, 25, 50, 100][-len(fids):]
    return [{"step": s, "flops": s * 2e10, "train_seconds": s / 10, "fid": f, "fid_floor": floor, "n": 100}
            for s, f in zip(steps, fids)]


def results(ddpm_fid=20.0, ar_fid=40.0, ddpm_sps=50.0, ar_sps=5.0, gan_sps=5000.0, gan_entropy=0.99,
            ddpm_finals=(0.10, 0.101, 0.099), gan_finals=(1.0, 1.5, 0.6), ar_diverged=False, floor=10.0,
            fid_std=1.0, ddpm_curve=None) -> dict:
    ar_runs = [_run(0, 2.0), _run(1, 2.01), _run(2, None, "loss became nan") if ar_diverged else _run(2, 2.0)]
    image = {"floor": floor, "fid_std": fid_std}
    return {"suite": "test", "created": "now", "arena_seconds": 1.0, "environment": {"device": "cpu"}, "suites": {
        "fashion-mnist": {"data": "fashion-mnist", "kind": "image", "budget_flops": 2e12, "budget_s": None,
                          "seeds": 3, "n_eval": 100, "n_curve": 100, "curve_metric": "fid", "param_match_factor": 2.0,
                          "budget_kind": "equal training FLOPs", "contenders": {
            "ddpm": {"family": "diffusion", "runs": [_run(i, f) for i, f in enumerate(ddpm_finals)],
                     "quality": {"main_nfe": "20", "curve": ddpm_curve or curve(ddpm_fid, ddpm_fid, floor=floor),
                                 "by_nfe": {"10": _image(ddpm_fid * 2, ddpm_sps * 2, 10, **image),
                                            "20": _image(ddpm_fid, ddpm_sps, 20, **image)}}},
            "pixel-gpt": {"family": "autoregressive", "runs": ar_runs,
                          "quality": {"main_nfe": "single", "curve": curve(ar_fid, ar_fid, floor=floor),
                                      "by_nfe": {"single": _image(ar_fid, ar_sps, 784, **image)}}},
            "gan": {"family": "gan", "runs": [_run(i, f) for i, f in enumerate(gan_finals)],
                    "quality": {"main_nfe": "single",
                                "by_nfe": {"single": _image(30.0, gan_sps, 1, entropy=gan_entropy, **image)}}},
        }},
        "mixture2d": {"data": "mixture2d", "kind": "points", "budget_flops": 1e11, "budget_s": None, "seeds": 1,
                      "n_eval": 100, "n_curve": 100, "curve_metric": "high_quality", "param_match_factor": 2.0,
                      "budget_kind": "equal training FLOPs", "contenders": {
            "ddpm": {"family": "diffusion", "runs": [_run(0, 1.0)], "quality": {"main_nfe": "20", "by_nfe": {
                "20": {"modes_covered": 8, "modes": 8, "high_quality": 0.9, "samples_per_s": 1e4,
                       "latency_s": 0.01, "sequential_calls": 20}}}},
            "gan": {"family": "gan", "runs": [_run(0, 1.0)], "quality": {"main_nfe": "single", "by_nfe": {
                "single": {"modes_covered": 8, "modes": 8, "high_quality": 0.9, "samples_per_s": 1e5,
                           "latency_s": 0.001, "sequential_calls": 1}}}},
        }}}}
