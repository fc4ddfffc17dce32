"""MDLM through the command line: train a few steps, sample with each sampler, infill, eval the bound."""

import pytest

from conftest import run_cli, write_corpus

TINY_MDLM = [
    "--set", "arch.n_layer=1", "--set", "arch.n_head=2", "--set", "arch.d_model=16", "--set", "arch.context=16",
    "--set", "arch.sample_steps=8", "--set", "data.context=16", "--set", "train.batch_size=8",
    "--set", "train.eval_every=0", "--set", "train.progress=false", "--set", "optim.warmup_steps=5",
]


@pytest.fixture(scope="module")
def mdlm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mdlm")
    corpus = write_corpus(tmp / "corpus.txt")
    run = tmp / "run"
    run_cli("train", "mdlm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(run), *TINY_MDLM,
            "--set", "train.max_steps=20", "--set", "train.ckpt_every=20", "--set", "train.sample_every=20")
    return run


def test_train_writes_samples_and_eval_prints_the_bound(mdlm_run):
    text = (mdlm_run / "samples" / "step_00000020.txt").read_text()
    assert text.count("----") == 2
    ev = run_cli("eval", str(mdlm_run), "--split", "test").stdout
    assert "perplexity_bound" in ev and "bits_per_token_bound" in ev


@pytest.mark.parametrize("sampler", ["ancestral", "remask", "block"])
def test_sample_with_each_sampler(mdlm_run, sampler):
    args = ["sample", str(mdlm_run), "--prompt", "the quick", "--max-new-tokens", "6", "--steps", "4",
            "--sampler", sampler, "--n", "2", "--seed", "1"] + (["--block-size", "3"] if sampler == "block" else [])
    out = run_cli(*args)
    rows = out.stdout.split("\n" + "-" * 40 + "\n")
    assert len(rows) == 2 and all(r.startswith("the quick") for r in rows)
    assert all(len(r.rstrip("\n")) == len("the quick") + 6 for r in rows)  # char tokenizer: 6 new characters
    assert f"{sampler}, 4 steps" in out.stderr
    if sampler == "ancestral":
        assert run_cli(*args).stdout == out.stdout  # seeded


def test_infill_keeps_the_given_text(mdlm_run):
    out = run_cli("sample", str(mdlm_run), "--infill", "the ____ fox", "--sampler", "remask", "--seed", "2").stdout
    line = out.rstrip("\n")
    assert line.startswith("the ") and line.endswith(" fox") and len(line) == len("the ____ fox")


def test_bad_sampler_choices_are_one_clear_line(mdlm_run):
    bad = run_cli("sample", str(mdlm_run), "--sampler", "ddim", check=False)
    assert bad.returncode == 2 and "samples with ancestral, remask, block" in bad.stderr
    bad = run_cli("sample", str(mdlm_run), "--block-size", "4", check=False)
    assert bad.returncode == 2 and "--block-size goes with --sampler block" in bad.stderr
    bad = run_cli("sample", str(mdlm_run), "--infill", "no gaps here", check=False)
    assert bad.returncode == 2 and "at least one gap" in bad.stderr
    bad = run_cli("sample", str(mdlm_run), "--sampler", "block", "--block-size", "1", "--steps", "2", check=False)
    assert bad.returncode == 2 and "need at least" in bad.stderr


def test_cli_sampler_names_match_the_paradigms():
    from twopaths import cli
    from twopaths.paradigms import mdlm_sampling, samplers

    assert tuple(cli.MASKED_SAMPLERS) == mdlm_sampling.SAMPLERS
    assert tuple(cli.GAUSSIAN_SAMPLERS) == tuple(samplers.SAMPLERS)
