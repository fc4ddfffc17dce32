"""Contrived arena results: the report and its verdicts are tested on numbers chosen by the test."""

from __future__ import annotations


def _run(seed: int, final: float | None, diverged: str | None = None) -> dict:
    return {"seed": seed, "params": 1_000_000, "steps": 100, "train_seconds": 10.0, "item_name": "items",
            "items_per_s": 500.0, "total_flops": 2e12, "peak_memory_bytes": 2**28, "final_train_loss": final,
            "diverged": diverged, "loss_curve": [[10, 1.0, 1.0], [100, 10.0, final or 1.0]]}


def _image(fid: float, sps: float, calls: int, entropy: float = 0.99, flops: float = 1e9) -> dict:
    return {"fid": fid, "fid_floor": 1.0, "kid": 0.01, "precision": 0.7, "recall": 0.6,
            "class_entropy_norm": entropy, "samples_per_s": sps, "latency_s": 1 / sps,
            "sequential_calls": calls, "flops_per_sample": flops}


def results(ddpm_fid=20.0, ar_fid=40.0, ddpm_sps=50.0, ar_sps=5.0, gan_sps=5000.0, gan_entropy=0.99,
            ddpm_finals=(0.10, 0.101, 0.099), gan_finals=(1.0, 1.5, 0.6), ar_diverged=False) -> dict:
    ar_runs = [_run(0, 2.0), _run(1, 2.01), _run(2, None, "loss became nan") if ar_diverged else _run(2, 2.0)]
    return {"suite": "test", "created": "now", "arena_seconds": 1.0, "environment": {"device": "cpu"}, "suites": {
        "fashion-mnist": {"data": "fashion-mnist", "kind": "image", "budget_s": 10, "seeds": 3, "n_eval": 100,
                          "n_curve": 0, "param_match_factor": 2.0, "budget_kind": "equal wall-clock", "contenders": {
            "ddpm": {"family": "diffusion", "runs": [_run(i, f) for i, f in enumerate(ddpm_finals)],
                     "quality": {"main_nfe": "20", "by_nfe": {"10": _image(ddpm_fid * 2, ddpm_sps * 2, 10),
                                                              "20": _image(ddpm_fid, ddpm_sps, 20)}}},
            "pixel-gpt": {"family": "autoregressive", "runs": ar_runs,
                          "quality": {"main_nfe": "single", "by_nfe": {"single": _image(ar_fid, ar_sps, 784)}}},
            "gan": {"family": "gan", "runs": [_run(i, f) for i, f in enumerate(gan_finals)],
                    "quality": {"main_nfe": "single",
                                "by_nfe": {"single": _image(30.0, gan_sps, 1, entropy=gan_entropy)}}},
        }},
        "mixture2d": {"data": "mixture2d", "kind": "points", "budget_s": 5, "seeds": 1, "n_eval": 100, "n_curve": 0,
                      "param_match_factor": 2.0, "budget_kind": "equal wall-clock", "contenders": {
            "ddpm": {"family": "diffusion", "runs": [_run(0, 1.0)], "quality": {"main_nfe": "20", "by_nfe": {
                "20": {"modes_covered": 8, "modes": 8, "high_quality": 0.9, "samples_per_s": 1e4,
                       "latency_s": 0.01, "sequential_calls": 20}}}},
            "gan": {"family": "gan", "runs": [_run(0, 1.0)], "quality": {"main_nfe": "single", "by_nfe": {
                "single": {"modes_covered": 8, "modes": 8, "high_quality": 0.9, "samples_per_s": 1e5,
                           "latency_s": 0.001, "sequential_calls": 1}}}},
        }}}}

