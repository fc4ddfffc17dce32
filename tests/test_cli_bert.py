"""bert through the command line: train a few steps (probe fills written), eval prints masked-token
perplexity and accuracy, `twopaths fill` lists predictions per [MASK]; clear errors."""

import pytest

from conftest import TINY_LM, run_cli, write_corpus

TINY_BERT = [
    "--set", "arch.n_layer=1", "--set", "arch.n_head=2", "--set", "arch.d_model=16", "--set", "arch.context=64",
    "--set", "data.context=32", "--set", "data.vocab_size=300", "--set", "train.batch_size=8",
    "--set", "train.eval_every=0", "--set", "train.eval_batches=2", "--set", "train.progress=false",
    "--set", "optim.warmup_steps=5",
]


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bert")
    corpus = write_corpus(tmp / "corpus.txt")
    run = tmp / "run"
    run_cli("train", "bert", "--data", "text", "--set", f"data.path={corpus}", "--out", str(run), *TINY_BERT,
            "--set", "train.max_steps=10", "--set", "train.ckpt_every=10", "--set", "train.sample_every=10")
    return run


def test_train_fills_the_probes_and_eval_reports_accuracy(bert_run):
    text = (bert_run / "samples" / "step_00000010.txt").read_text()
    assert "the [MASK] of the matter\n  -> the" in text and text.count("->") == 5
    assert "masked_accuracy" in (bert_run / "metrics.jsonl").read_text()
    ev = run_cli("eval", str(bert_run), "--split", "test").stdout
    assert "masked_perplexity" in ev and "masked_accuracy" in ev
    accuracy = float(ev.split("masked_accuracy")[1].split()[0])
    assert 0 <= accuracy <= 1


def test_fill_prints_top_k_per_mask_and_the_filled_text(bert_run):
    out = run_cli("fill", str(bert_run), "the [MASK] fox jumps over the [MASK] dog", "--top-k", "3").stdout
    lines = out.splitlines()
    assert lines[0] == "[MASK] 1:" and lines[4] == "[MASK] 2:" and len(lines) == 9
    probs = [float(line.split()[-1]) for line in lines[1:4]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    filled = lines[-1].removeprefix("filled: ")
    assert filled.startswith("the") and " fox jumps over the" in filled and filled.endswith(" dog")
    assert "[MASK]" not in filled


def test_errors_are_one_clear_line(bert_run, tmp_path, capsys):
    from twopaths.cli import main  # in-process: these never get as far as a forward pass

    def error(*args):
        capsys.readouterr()
        assert main(list(args)) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        return err

    assert "no [MASK] in the text" in error("fill", str(bert_run), "nothing to fill here")
    assert "argument --top-k: must be at least 1" in error("fill", str(bert_run), "the [MASK]", "--top-k", "0")
    assert "twopaths fill" in error("sample", str(bert_run))
    assert "run directory not found" in error("fill", str(tmp_path / "nope"), "the [MASK]")

    corpus = write_corpus(tmp_path / "corpus.txt")
    mlp = tmp_path / "mlp"
    assert main(["train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(mlp), *TINY_LM,
                 "--set", "train.max_steps=2"]) == 0
    assert "needs a masked language model" in error("fill", str(mlp), "the [MASK] fox")


def test_fill_help_has_examples(capsys):
    from twopaths.cli import main

    assert main(["fill", "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "twopaths fill runs/bert" in out and "--top-k" in out
