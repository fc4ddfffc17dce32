"""Molecules as SMILES: the tokenizer's split, reading SMILES files, and the MOSES splits."""

from __future__ import annotations

import gzip
import importlib.util

import pytest

from conftest import run_cli
from twopaths.data.molecules import molecule_documents, read_smiles
from twopaths.data.tokenizers import SmilesTokenizer, load_tokenizer, train_tokenizer
from twopaths.errors import DataError, TwopathsError

DRUGS = ["CC(=O)Oc1ccccc1C(=O)O",  # aspirin
         "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",  # caffeine
         "C[C@@H](C(=O)O)c1ccc(cc1)CC(C)C",  # (S)-ibuprofen
         "Clc1ccc(cc1)C(c1ccc(Cl)cc1)C(Cl)(Cl)Cl",  # DDT
         "O=C([O-])c1ccccc1[N+](=O)[O-]", "C1CC%10CC1.Br[nH]"]
#: a model of one tiny layer on 300 molecules, quiet: what the CLI tests below train
TINY = ["--set", "data.size=300", "--set", "arch.n_layer=1", "--set", "arch.d_model=16", "--set", "arch.n_head=2",
        "--set", "train.batch_size=8", "--set", "train.eval_every=0", "--set", "train.sample_every=0",
        "--set", "train.progress=false", "--set", "optim.warmup_steps=1"]
needs_moses = pytest.mark.skipif(importlib.util.find_spec("moses") is None,
                                 reason="the MOSES data (pip install --no-deps molsets) is not installed")


def test_smiles_tokens_keep_atoms_whole_and_round_trip():
    tok = train_tokenizer("smiles", DRUGS)
    assert isinstance(tok, SmilesTokenizer)
    assert SmilesTokenizer.split("C[C@@H](Cl)c1ccc(Br)cc1%12") == [
        "C", "[C@@H]", "(", "Cl", ")", "c", "1", "c", "c", "c", "(", "Br", ")", "c", "c", "1", "%12"]
    assert {"Cl", "Br", "[C@@H]", "[O-]", "[N+]", "[nH]", "%10"} <= set(tok.chars)
    for smiles in DRUGS:
        assert tok.decode(tok.encode(smiles)) == smiles
        assert len(tok.encode(smiles)) < len(smiles) or "[" not in smiles and "Cl" not in smiles
    assert tok.encode("CI") == [tok.encode("C")[0], tok.unk_id]  # I: a SMILES token training never saw


def test_a_string_that_is_not_smiles_is_refused_where_it_breaks():
    with pytest.raises(DataError, match=r"'&C' at offset 2"):
        SmilesTokenizer.split("CC&C")
    with pytest.raises(DataError, match="not a SMILES string"):
        train_tokenizer("smiles", ["CCO", "hello world"])
    with pytest.raises(DataError, match="not one SMILES token"):
        SmilesTokenizer(["C", "CC"])


def test_saved_and_loaded_as_smiles(tmp_path):
    tok = train_tokenizer("smiles", DRUGS)
    tok.save(tmp_path / "t.json")
    again = load_tokenizer(tmp_path / "t.json")
    assert isinstance(again, SmilesTokenizer) and again.chars == tok.chars
    assert again.encode(DRUGS[3]) == tok.encode(DRUGS[3])


def test_read_smiles_from_csv_gz_and_smi(tmp_path):
    (tmp_path / "a.csv").write_text("SMILES,SPLIT\nCCO,train\n\nc1ccccc1,test\n")
    (tmp_path / "b.smi").write_text("CCO ethanol\n\nc1ccccc1\tbenzene\n")
    (tmp_path / "c.csv.gz").write_bytes(gzip.compress(b"SMILES\nCCO\nc1ccccc1\n"))
    for name in ("a.csv", "b.smi", "c.csv.gz"):
        assert read_smiles(tmp_path / name) == ["CCO", "c1ccccc1"], name
    (tmp_path / "empty.smi").write_text("\n\n")
    (tmp_path / "bad.csv").write_text("name,weight\nx,1\n")
    (tmp_path / "latin1.smi").write_bytes("CC\xe9".encode("latin-1"))
    for name, message in (("empty.smi", "holds no SMILES"), ("bad.csv", "needs a SMILES column"),
                          ("latin1.smi", "not UTF-8"), ("missing.smi", "not found")):
        with pytest.raises(DataError, match=message):
            read_smiles(tmp_path / name)


@needs_moses
def test_moses_small_is_a_fixed_subset_with_moses_own_test_set():
    a, source = molecule_documents("moses-small", None, 1000, 0, 0.05, 0.05)
    b, _ = molecule_documents("moses-small", None, 1000, 0, 0.05, 0.05)
    c, _ = molecule_documents("moses-small", None, 1000, 1, 0.05, 0.05)
    assert a == b and a != c and source.endswith("data")
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (950, 50, 100)
    assert not set(a["train"]) & set(a["val"])
    assert all(SmilesTokenizer.split(s) for s in a["train"][:200])  # every MOSES SMILES tokenizes


@needs_moses
def test_a_gpt_trains_and_samples_on_moses_small(tmp_path, capsys):
    from twopaths.cli import main

    run = tmp_path / "run"
    run_cli("train", "gpt-nano", "--data", "moses-small", "--out", str(run), *TINY, "--set", "data.context=32",
            "--set", "train.max_steps=4")
    assert load_tokenizer(run / "tokenizer.json").kind == "smiles"  # the dataset's default, not characters
    out = run_cli("sample", str(run), "--n", "2", "--seed", "0")
    assert out.returncode == 0 and len(out.stdout.strip().splitlines()) == 2  # one molecule per line
    smi = tmp_path / "mols" / "m.smi"  # the rest in this process (a subprocess costs seconds of imports)
    assert main(["sample", str(run), "--n", "5", "--out", str(smi)]) == 0
    assert len(smi.read_text().splitlines()) == 5 and capsys.readouterr().out.startswith("5 molecules, ")
    for bad, message in ((["--out", str(tmp_path / "m.txt")], "molecules are written as .smi"),
                         (["--prompt", "CC"], "molecule runs sample whole molecules"),
                         (["--infill", "CC__"], "--infill are for masked diffusion")):
        assert main(["sample", str(run), "--n", "2", *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1], err
    # MOSES metrics of its samples: 4 steps teach it little, but every number is computed and printed
    report = run_cli("eval", str(run), "--metrics", "moses", "--n", "16", "--json", str(tmp_path / "m.json")).stdout
    assert "MOSES metrics of 16 sampled molecules" in report and "Novelty" in report
    import json

    metrics = json.loads((tmp_path / "m.json").read_text())["moses"]["metrics"]
    assert 0 <= metrics["valid"] <= 1 and set(metrics) >= {"valid", "IntDiv", "Filters", "logP"}
    # --temperature is moses' alone: elsewhere one line, before the run is even read
    assert main(["eval", str(run), "--metrics", "loss", "--temperature", "0.5"]) == 2
    assert "--temperature is the sampling temperature of --metrics moses" in capsys.readouterr().err
    assert main(["eval", str(run), "--metrics", "moses", "--n", "4", "--steps", "8"]) == 2
    assert "'gpt-nano' samples a molecule token by token" in capsys.readouterr().err
    # unique@1000 of 1,000 samples that are not all valid: not computed on fewer, and the table says so
    assert main(["eval", str(run), "--metrics", "moses", "--n", "1000"]) == 0
    rows = [line.strip() for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["unique@1000"]]
    assert len(rows) == 1 and rows[0].startswith("unique@1000 needs 1,000 valid molecules and 1,000 samples held")
    # token by token, each row writes a burn-in molecule and keeps the one after that molecule's tail
    from twopaths.eval.smiles_sampling import BURN_IN_TAIL, sample_smiles
    from twopaths.runs import load_run

    loaded = load_run(run, device="cpu", with_data=False)
    calls, generate = [], loaded.model.generate

    def recorded(prompts, *args, **kwargs):  # the model's own generate, its prompts and outputs noted
        out = generate(prompts, *args, **kwargs)
        calls.append((prompts, out))
        return out

    loaded.model.generate = recorded
    tokenizer = loaded.meta["tokenizer"]
    eot = tokenizer.eot_id
    kept = sample_smiles(loaded, 6, batch_size=3)
    assert len(calls) == 4 and calls[0][0] == [[eot]] * 3
    assert calls[1][0] == [[eot, *ids, eot][-BURN_IN_TAIL:] for ids in calls[0][1]]
    assert kept[:3] == [tokenizer.decode(ids) for ids in calls[1][1]]


def test_moses_metrics_on_a_run_of_other_text_is_one_line(tmp_path):
    from conftest import TINY_LM, write_corpus

    corpus = write_corpus(tmp_path / "c.txt")
    run = tmp_path / "lm"
    run_cli("train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(run), *TINY_LM,
            "--set", "train.max_steps=2")
    proc = run_cli("eval", str(run), "--metrics", "moses", "--n", "4", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "error: --metrics moses scores molecules"), proc.stderr


def test_a_user_smiles_file_trains_and_a_bad_one_is_one_line(tmp_path):
    good = tmp_path / "mols.smi"
    good.write_text("\n".join(DRUGS * 10) + "\n")
    common = ["--set", "data.tokenizer=smiles", "--set", "data.context=16", "--set", "arch.n_layer=1",
              "--set", "arch.d_model=16", "--set", "arch.n_head=2", "--set", "train.max_steps=2",
              "--set", "train.batch_size=4", "--set", "train.eval_every=0", "--set", "train.sample_every=0",
              "--set", "train.progress=false", "--set", "optim.warmup_steps=1"]
    run_cli("train", "gpt-nano", "--data", "moses", "--set", f"data.path={good}", "--out", str(tmp_path / "r"),
            *common)
    bad = tmp_path / "bad.smi"
    bad.write_text("CCO\nC&C\n" * 20)
    proc = run_cli("train", "gpt-nano", "--data", "moses", "--set", f"data.path={bad}",
                   "--out", str(tmp_path / "r2"), *common, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and lines[-1].startswith("error: not a SMILES string: 'C&C'"), proc.stderr
    assert not (tmp_path / "r2").exists()


@needs_moses
def test_mdlm_samples_molecules_and_fills_a_scaffold(tmp_path, capsys):
    from twopaths.cli import main

    run = tmp_path / "mdlm"
    run_cli("train", "mdlm", "--data", "moses-small", "--out", str(run), *TINY, "--set", "data.context=24",
            "--set", "arch.context=24", "--set", "train.max_steps=3")
    smi = tmp_path / "m.smi"  # the rest in this process (a subprocess costs seconds of imports)
    assert main(["sample", str(run), "--n", "4", "--steps", "8", "--out", str(smi)]) == 0
    assert len(smi.read_text().splitlines()) == 4
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "3", "--infill", "c1ccc(__)cc1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all(m.startswith("c1ccc(") and m.endswith(")cc1") for m in out), out
    assert main(["eval", str(run), "--metrics", "moses", "--n", "8"]) == 0
    assert "MOSES metrics of 8 sampled molecules (temperature 1;" in capsys.readouterr().out
    # eval's --steps and --temperature reach the sampler: its molecules are sample's at the same options
    import json

    from twopaths.eval.smiles_sampling import sample_smiles
    from twopaths.runs import load_run

    assert main(["eval", str(run), "--metrics", "moses", "--n", "8", "--steps", "2", "--temperature", "0.5",
                 "--json", str(tmp_path / "m.json")]) == 0
    assert "(temperature 0.5, 2 steps;" in capsys.readouterr().out
    report = json.loads((tmp_path / "m.json").read_text())["moses"]
    assert (report["temperature"], report["steps"]) == (0.5, 2)
    loaded = load_run(run, None, use_ema=True)
    assert report["examples"] == sample_smiles(loaded, 8, temperature=0.5, steps=2)[:5]
    assert report["examples"] != sample_smiles(loaded, 8, temperature=0.5)[:5]


def test_molecules_drawn_and_written(tmp_path):
    from twopaths.eval.smiles_sampling import write_molecules

    assert write_molecules(DRUGS[:5] + ["C1CC"], tmp_path / "m.png").startswith("6 molecules, 5 valid")
    from PIL import Image

    assert Image.open(tmp_path / "m.png").size[0] >= 5 * 200
    with pytest.raises(TwopathsError, match="none of the 1 sampled molecules is valid"):
        write_molecules(["C1CC"], tmp_path / "n.png")
    write_molecules(["CCO", "C1CC"], tmp_path / "m.smi")
    assert (tmp_path / "m.smi").read_text() == "CCO\nC1CC\n"


@needs_moses
def test_seq_vae_trains_samples_and_scores_molecules(tmp_path, capsys):
    from twopaths.cli import main

    run = tmp_path / "vae"
    run_cli("train", "seq-vae", "--data", "moses-small", "--out", str(run), *TINY, "--set", "train.max_steps=3")
    smi = tmp_path / "v.smi"  # the rest in this process (a subprocess costs seconds of imports)
    assert main(["sample", str(run), "--n", "4", "--out", str(smi)]) == 0
    assert len(smi.read_text().splitlines()) == 4
    assert main(["eval", str(run), "--metrics", "moses", "--n", "8"]) == 0
    assert "MOSES metrics of 8 sampled molecules (temperature 1;" in capsys.readouterr().out
    assert main(["train", "seq-vae", "--data", "moses-small", "--out", str(tmp_path / "w"), "--set", "data.size=300",
                 "--set", "data.rows=windows", "--set", "train.max_steps=1"]) == 2
    assert "'data.rows' must be 'documents'" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "w").exists()
