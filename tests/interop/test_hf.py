"""GPT-2 interop against the real ``transformers`` as the oracle: logits and token ids must agree.

Nothing is trained or downloaded: runs are built with random weights, HF models with random init.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast  # noqa: E402

from conftest import run_cli  # noqa: E402
from twopaths.config import save_config  # noqa: E402
from twopaths.data.tokenizers import BPETokenizer, CharTokenizer, load_tokenizer  # noqa: E402
from twopaths.errors import CheckpointError, ConfigError, DataError, TwopathsError  # noqa: E402
from twopaths.interop.hf import export_hf, import_hf  # noqa: E402
from twopaths.models import get_spec, resolve_config  # noqa: E402
from twopaths.runs import load_run  # noqa: E402
from twopaths.training.checkpoint import latest_checkpoint, save_checkpoint  # noqa: E402
from twopaths.training.optim import build_adamw  # noqa: E402

transformers.logging.set_verbosity_error()
TOL = 1e-4
TEXTS = [f"the quick brown fox jumps over {w} lazy dog {i} times, said the wizard."
         for i in range(60) for w in ("a", "the", "one")]
SMALL = ["arch.n_layer=2", "arch.n_head=2", "arch.d_model=64", "arch.context=32", "data.context=32",
         "data.name=text"]


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(TEXTS, vocab_size=300)


def make_run(root: Path, tokenizer, overrides: list[str] = (), seed: int = 0) -> Path:
    """A twopaths run dir with random weights and an EMA that differs from them (so we can tell which was used)."""
    kind = "bpe" if isinstance(tokenizer, BPETokenizer) else "char"
    cfg = resolve_config("gpt-nano", overrides=SMALL + [f"data.tokenizer={kind}", *overrides])
    torch.manual_seed(seed)
    model = get_spec("gpt-nano").build(cfg, {"tokenizer": tokenizer})
    with torch.no_grad():  # non-zero biases and norm gains, so a mix-up of any tensor shows in the logits
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    ema = {n: p.detach() + 0.05 * torch.randn_like(p) for n, p in model.named_parameters()}
    root.mkdir(parents=True)
    save_config(cfg, root / "config.yaml")
    tokenizer.save(root / "tokenizer.json")
    save_checkpoint(root / "checkpoints", 3, model, build_adamw(model, cfg.optim, torch.device("cpu")), ema, {}, 3)
    return root


def random_ids(vocab: int, context: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab, (3, context), generator=torch.Generator().manual_seed(seed))


def hf_logits(folder: Path, ids: torch.Tensor) -> torch.Tensor:
    model, info = GPT2LMHeadModel.from_pretrained(folder, output_loading_info=True, dtype=torch.float32)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    with torch.no_grad():
        return model.eval()(ids).logits


def our_logits(run: Path, ids: torch.Tensor, use_ema: bool = True) -> torch.Tensor:
    with torch.no_grad():
        return load_run(run, use_ema=use_ema).model.net(ids)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


# ----------------------------------------------------------------------------- export


@pytest.mark.parametrize("use_ema", [True, False])
def test_export_logits_match_transformers(tmp_path, bpe, use_ema):
    run = make_run(tmp_path / "run", bpe)
    out = export_hf(run, tmp_path / "hf", use_ema=use_ema)
    ids = random_ids(bpe.vocab_size, 32)
    ours = our_logits(run, ids, use_ema)
    assert max_diff(ours, hf_logits(out, ids)) <= TOL
    assert max_diff(ours, our_logits(run, ids, not use_ema)) > 1e-2  # the EMA choice matters here

    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["architectures"] == ["GPT2LMHeadModel"]
    assert (config["n_layer"], config["n_head"], config["n_embd"], config["n_positions"], config["n_ctx"],
            config["n_inner"], config["vocab_size"]) == (2, 2, 64, 32, 32, 256, bpe.vocab_size)
    assert config["activation_function"] == "gelu_new" and config["tie_word_embeddings"] is True
    assert config["bos_token_id"] == config["eos_token_id"] == bpe.eot_id
    with safe_open(out / "model.safetensors", "pt") as f:
        keys = set(f.keys())
        assert f.get_tensor("transformer.h.0.attn.c_attn.weight").shape == (64, 192)  # Conv1D: (in, out)
    assert "lm_head.weight" not in keys and "transformer.wte.weight" in keys
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_exported_tokenizer_matches_ours(tmp_path, bpe):
    out = export_hf(make_run(tmp_path / "run", bpe), tmp_path / "hf")
    theirs = PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
    auto = transformers.AutoTokenizer.from_pretrained(out)
    for text in ["the lazy wizard jumps, 42 times!", " leading space and ünïcode ✓", "a<|endoftext|>b"]:
        ids = bpe.encode(text)
        assert theirs.encode(text) == ids and auto.encode(text) == ids
        assert theirs.decode(ids) == text
    assert auto.eos_token_id == bpe.eot_id


def test_export_untied_exact_gelu_and_odd_mlp_width(tmp_path, bpe):
    run = make_run(tmp_path / "run", bpe, ["arch.tie_weights=false", "arch.activation=gelu", "arch.mlp_ratio=2.5"])
    out = export_hf(run, tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert (config["tie_word_embeddings"], config["activation_function"], config["n_inner"]) == (False, "gelu", 160)
    ids = random_ids(bpe.vocab_size, 32)
    assert max_diff(our_logits(run, ids), hf_logits(out, ids)) <= TOL


def test_export_char_run_keeps_tokenizer_under_own_name(tmp_path):
    chars = CharTokenizer.train(TEXTS)
    run = make_run(tmp_path / "run", chars)
    out = export_hf(run, tmp_path / "hf")
    assert not (out / "tokenizer.json").exists()
    assert load_tokenizer(out / "twopaths_tokenizer.json").encode("the fox") == chars.encode("the fox")
    assert "no tokenizer class" in (out / "README.md").read_text()
    ids = random_ids(chars.vocab_size, 32)
    assert max_diff(our_logits(run, ids), hf_logits(out, ids)) <= TOL
    # and it comes back: import reads our own tokenizer file
    back = import_hf(out, tmp_path / "back")
    assert load_tokenizer(back / "tokenizer.json").encode("the fox") == chars.encode("the fox")
    assert max_diff(our_logits(back, ids), hf_logits(out, ids)) <= TOL


# ----------------------------------------------------------------------------- import


def save_hf(folder: Path, bpe: BPETokenizer, seed: int = 0, **config) -> GPT2LMHeadModel:
    """A random GPT2LMHeadModel saved as safetensors with our BPE as its tokenizer.json."""
    torch.manual_seed(seed)
    conf = dict(n_layer=2, n_head=2, n_embd=64, n_positions=64, vocab_size=bpe.vocab_size,
                bos_token_id=bpe.eot_id, eos_token_id=bpe.eot_id)
    model = GPT2LMHeadModel(GPT2Config(**{**conf, **config})).eval()
    with torch.no_grad():  # random init leaves biases 0 and norm gains 1; make every tensor count
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(folder, safe_serialization=True)
    bpe.save(folder / "tokenizer.json")
    return model


def test_import_logits_match_and_round_trip(tmp_path, bpe):
    original = save_hf(tmp_path / "hf", bpe)
    run = import_hf(tmp_path / "hf", tmp_path / "run")

    loaded = load_run(run)  # reads only the run dir: no dataset
    assert loaded.cfg.model == "gpt" and loaded.cfg.data.tokenizer == "bpe"
    assert (loaded.cfg.arch.d_model, loaded.cfg.arch.context, loaded.cfg.data.context) == (64, 64, 64)
    assert loaded.checkpoint.step == 0 and loaded.checkpoint.has_ema
    assert loaded.meta["tokenizer"].encode("the fox") == bpe.encode("the fox")
    ids = random_ids(bpe.vocab_size, 64)
    with torch.no_grad():
        expected = original(ids).logits
        assert max_diff(loaded.model.net(ids), expected) <= TOL

    out = export_hf(run, tmp_path / "back")
    again = GPT2LMHeadModel.from_pretrained(out, dtype=torch.float32).eval()
    theirs, ours = original.state_dict(), again.state_dict()
    assert set(theirs) == set(ours)
    assert all(torch.equal(theirs[k], ours[k]) for k in theirs)
    with torch.no_grad():
        assert max_diff(again(ids).logits, expected) <= TOL


def test_import_legacy_keys_and_vocab_merges_tokenizer(tmp_path, bpe):
    """An old-style file (no ``transformer.`` prefix, causal-mask buffers) and a vocab.json + merges.txt tokenizer."""
    folder = tmp_path / "hf"
    original = save_hf(folder, bpe, activation_function="gelu_pytorch_tanh", n_inner=96)
    weights = load_file(folder / "model.safetensors")
    legacy = {k.removeprefix("transformer."): v for k, v in weights.items()}
    legacy["h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64))
    save_file(legacy, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "tokenizer.json").unlink()
    bpe.backend.model.save(str(folder))  # vocab.json + merges.txt

    run = import_hf(folder, tmp_path / "run")
    loaded = load_run(run)
    text = "the quick wizard said 42 times"
    assert loaded.meta["tokenizer"].encode(text) == bpe.encode(text)
    assert loaded.meta["tokenizer"].eot_id == bpe.eot_id
    ids = random_ids(bpe.vocab_size, 64)
    with torch.no_grad():
        assert max_diff(loaded.model.net(ids), original(ids).logits) <= TOL


def test_import_tied_config_with_different_head_follows_transformers(tmp_path, bpe):
    """transformers 5 keeps a stored lm_head that differs from wte untied (with a warning); so do we."""
    folder = tmp_path / "hf"
    save_hf(folder, bpe)
    weights = load_file(folder / "model.safetensors")
    weights["lm_head.weight"] = torch.randn_like(weights["transformer.wte.weight"])
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    run = import_hf(folder, tmp_path / "run")
    assert load_run(run).cfg.arch.tie_weights is False
    ids = random_ids(bpe.vocab_size, 64)
    assert max_diff(our_logits(run, ids), hf_logits(folder, ids)) <= TOL


def test_sample_cli_after_import(tmp_path, bpe):
    save_hf(tmp_path / "hf", bpe)
    run = import_hf(tmp_path / "hf", tmp_path / "run")
    proc = run_cli("sample", str(run), "--prompt", "the quick", "--max-new-tokens", "5", "--seed", "0")
    assert proc.stdout.startswith("the quick")


# ----------------------------------------------------------------------------- errors


def test_export_refuses_incompatible_arch_naming_each_key(tmp_path, bpe):
    run = make_run(tmp_path / "run", bpe, ["arch.positional=rope", "arch.causal=false"])
    with pytest.raises(ConfigError) as err:
        export_hf(run, tmp_path / "hf")
    assert "arch.positional='rope'" in str(err.value) and "arch.causal=False" in str(err.value)
    assert not (tmp_path / "hf").exists()


def test_refuses_pickled_weights(tmp_path, bpe):
    folder = tmp_path / "hf"
    save_hf(folder, bpe)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin.*unpickl.*safetensors"):
        import_hf(folder, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_refuses_non_empty_out_dir_and_leaves_it_alone(tmp_path, bpe):
    run = make_run(tmp_path / "run", bpe)
    for target in (tmp_path / "hf", tmp_path / "imported"):
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    with pytest.raises(TwopathsError, match="not empty"):
        export_hf(run, tmp_path / "hf")
    save_hf(tmp_path / "src", bpe)
    with pytest.raises(TwopathsError, match="not empty"):
        import_hf(tmp_path / "src", tmp_path / "imported")
    for target in (tmp_path / "hf", tmp_path / "imported"):
        assert [p.name for p in target.iterdir()] == ["keep.txt"]
    export_hf(run, tmp_path / "empty-is-fine")
    (tmp_path / "empty").mkdir()
    assert (export_hf(run, tmp_path / "empty") / "config.json").is_file()


def test_failed_export_leaves_nothing(tmp_path, bpe, monkeypatch):
    import twopaths.interop.hf as hf

    def broken(*args, **kwargs):
        raise OSError("disk full")

    run = make_run(tmp_path / "run", bpe)
    monkeypatch.setattr(hf, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        export_hf(run, tmp_path / "hf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_import_errors_name_the_file(tmp_path, bpe):
    folder = tmp_path / "hf"
    save_hf(folder, bpe)
    config = json.loads((folder / "config.json").read_text())

    (folder / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    with pytest.raises(ConfigError, match=r"config\.json.*'llama'"):
        import_hf(folder, tmp_path / "run")
    (folder / "config.json").write_text(json.dumps({**config, "activation_function": "relu"}))
    with pytest.raises(ConfigError, match=r"config\.json.*activation_function='relu'"):
        import_hf(folder, tmp_path / "run")

    (folder / "config.json").write_text(json.dumps({**config, "n_positions": 128}))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor transformer\.wpe\.weight has shape"):
        import_hf(folder, tmp_path / "run")

    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": bpe.vocab_size + 4}))
    with pytest.raises(DataError, match=r"tokenizer\.json.*vocab_size"):
        import_hf(folder, tmp_path / "run")

    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").unlink()
    with pytest.raises(DataError, match="no tokenizer"):
        import_hf(folder, tmp_path / "run")
    (folder / "config.json").unlink()
    with pytest.raises(ConfigError, match="config.json is missing"):
        import_hf(folder, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_import_result_is_a_resumable_checkpoint(tmp_path, bpe):
    save_hf(tmp_path / "hf", bpe)
    run = import_hf(tmp_path / "hf", tmp_path / "run")
    ckpt = latest_checkpoint(run)
    model = load_run(run, use_ema=False).model
    optimizer = build_adamw(model, load_run(run).cfg.optim, torch.device("cpu"))
    ckpt.load_optimizer(optimizer)  # a fresh AdamW state that fits the model
    ema = ckpt.read_ema()
    assert all(torch.equal(ema[n], p) for n, p in model.named_parameters())
    assert ckpt.state["source_format"] == "huggingface-gpt2"
    assert os.path.isabs(ckpt.state["imported_from"])
