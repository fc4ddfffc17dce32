"""seq2seq through the command line: train on numbers-fr and on a user TSV, translate, eval BLEU/chrF/exact."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_LM, run_cli, write_corpus

TINY_S2S = [
    "--set", "data.max_number=999", "--set", "arch.d_model=16", "--set", "arch.n_head=2",
    "--set", "arch.encoder_layers=1", "--set", "arch.decoder_layers=1", "--set", "arch.context=40",
    "--set", "train.batch_size=16", "--set", "train.eval_every=0", "--set", "train.progress=false",
    "--set", "optim.warmup_steps=2",
]


@pytest.fixture(scope="module")
def fr_run(tmp_path_factory):
    """A tiny seq2seq run on numbers-fr (0..999), trained by the real CLI in a subprocess."""
    run = tmp_path_factory.mktemp("s2s") / "run"
    run_cli("train", "seq2seq", "--data", "numbers-fr", "--out", str(run), *TINY_S2S,
            "--set", "train.max_steps=12", "--set", "train.ckpt_every=12", "--set", "train.sample_every=12")
    return run


def cli(*args: str) -> int:
    from twopaths.cli import main  # in-process: the run is already trained

    return main(list(args))


def test_training_writes_tokenizers_and_translation_samples(fr_run):
    assert (fr_run / "tokenizer_src.json").is_file() and (fr_run / "tokenizer_tgt.json").is_file()
    src = json.loads((fr_run / "tokenizer_src.json").read_text())
    assert src["chars"] == list("0123456789") and "<pad>" in src["specials"] and "<bos>" in src["specials"]
    lines = (fr_run / "samples" / "step_00000012.txt").read_text().splitlines()
    assert len(lines) == 10 and all("  ->  " in line and line[:3] in ("ok ", "NO ") for line in lines)
    records = [json.loads(line) for line in (fr_run / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("split") == "samples" and 0 <= r["exact_match"] <= 1 for r in records)


def test_translate(fr_run, tmp_path, capsys):
    assert cli("translate", str(fr_run), "4321", "17", "--greedy", "--max-len", "12") == 0
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 2 and "2 source(s), greedy" in out.err
    sources = tmp_path / "in.txt"
    sources.write_text("80\n\n7\n", encoding="utf-8")
    assert cli("translate", str(fr_run), "5", "--file", str(sources), "--beam", "2", "--length-penalty", "1",
               "--show-source", "--max-len", "12") == 0
    out = capsys.readouterr()
    rows = out.out.splitlines()
    assert [r.split("\t")[0] for r in rows] == ["5", "80", "7"] and "beam 2, length penalty 1" in out.err
    assert cli("translate", str(fr_run), "4#", "--greedy", "--max-len", "4") == 0
    assert "never saw the character(s) '#'" in capsys.readouterr().err


def test_eval_bleu_chrf_exact_and_perplexity(fr_run, tmp_path, capsys):
    out_json = tmp_path / "m.json"
    assert cli("eval", str(fr_run), "--metrics", "loss,bleu,chrf,exact", "--n", "12", "--beam", "2",
               "--json", str(out_json)) == 0
    out = capsys.readouterr().out
    assert "perplexity" in out and "12 pairs, beam 2" in out and "numbers-fr/test" in out
    report = json.loads(out_json.read_text())
    tr = report["translation"]
    assert tr["pairs"] == 12 and tr["split"] == "test"
    assert all(0 <= tr[m] <= 100 for m in ("bleu", "chrf", "exact"))
    assert report["perplexity"] > 1


def test_user_tsv_reversed(tmp_path, capsys):
    words = [("cat", "chat"), ("dog", "chien"), ("bird", "oiseau"), ("fish", "poisson"), ("horse", "cheval")]
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{a} {i}\t{b} {i}\n" for i in range(12) for a, b in words), encoding="utf-8")
    run = tmp_path / "run"
    assert cli("train", "seq2seq", "--data", "pairs", "--set", f"data.path={tsv}", "--set", "data.reverse=true",
               "--out", str(run), *TINY_S2S, "--set", "train.max_steps=3") == 0
    src_chars = json.loads((run / "tokenizer_src.json").read_text())["chars"]
    assert "v" in src_chars and "g" not in src_chars  # reversed: French ("cheval", not "dog") is the source
    capsys.readouterr()
    assert cli("translate", str(run), "chat 3", "--max-len", "6") == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_bad_input_is_one_clear_line(fr_run, tmp_path, capsys):
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n\n", encoding="utf-8")
    corpus = write_corpus(tmp_path / "corpus.txt")
    lm = tmp_path / "lm"
    assert cli("train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(lm), *TINY_LM,
               "--set", "train.max_steps=2") == 0
    cases = [
        (["train", "seq2seq", "--data", "pairs", "--set", f"data.path={empty}", "--out", str(tmp_path / "a")],
         "no tab-separated pairs found"),
        (["train", "seq2seq", "--data", "pairs", "--set", f"data.path={tmp_path / 'missing.tsv'}",
          "--out", str(tmp_path / "b")], "missing.tsv"),
        (["train", "seq2seq", "--data", "pairs", "--out", str(tmp_path / "c")], "needs a tab-separated file"),
        (["train", "seq2seq", "--data", "fortunes", "--out", str(tmp_path / "d")], "trains on pairs data"),
        (["translate", str(lm), "4321"], "need a sequence-to-sequence run"),
        (["translate", str(fr_run)], "nothing to translate"),
        (["translate", str(fr_run), "--file", str(tmp_path / "nope.txt")], "nope.txt: no such file"),
        (["translate", str(fr_run), "1", "--beam", "0"], "argument --beam: must be at least 1"),
        (["eval", str(lm), "--metrics", "bleu"], "do not fit text data"),
        (["sample", str(fr_run)], "twopaths translate"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert cli(*args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (args, err)
        assert "Traceback" not in err


def test_a_deleted_pair_tokenizer_is_refused_not_rebuilt(fr_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(fr_run, run)
    (run / "tokenizer_tgt.json").unlink()
    capsys.readouterr()
    assert cli("translate", str(run), "12") == 2
    err = capsys.readouterr().err
    assert "tokenizer_tgt.json is missing" in err and "holds trained checkpoints" in err
    assert not (run / "tokenizer_tgt.json").exists()
