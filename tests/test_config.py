from dataclasses import dataclass
from pathlib import Path

import pytest

from twopaths.config import RunConfig, apply_overrides, build_config, parse_override, save_config, to_dict
from twopaths.errors import ConfigError
from twopaths.models import load_run_config, resolve_config


def test_overrides_are_typed():
    cfg = resolve_config("mlp-lm", overrides=["train.max_steps=7", "optim.lr=3e-4", "optim.betas=[0.8,0.99]",
                                              "arch.hidden=16", "train.compile=true", "data.path=/x"])
    assert cfg.train.max_steps == 7 and cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.optim.betas == (0.8, 0.99) and cfg.arch.hidden == 16 and cfg.train.compile is True
    assert cfg.data.path == "/x"


def test_float_field_accepts_int():
    assert resolve_config("mlp-lm", overrides=["optim.lr=1"]).optim.lr == 1.0


@pytest.mark.parametrize("override, expected", [
    ("train.max_stepz=3", "unknown config key 'train.max_stepz'; allowed keys under 'train': max_steps"),
    ("trian.max_steps=3", "unknown config key 'trian.max_steps'; allowed keys: model, data, optim, train, arch"),
    ("arch.hiden=3", "unknown config key 'arch.hiden'; allowed keys under 'arch': window, embed_dim, hidden"),
    ("train.max_steps=many", "config key 'train.max_steps': expected int, got 'many' (str)"),
    ("train.compile=1", "config key 'train.compile': expected bool, got 1 (int)"),
    ("train.precision=fp16", "config key 'train.precision': 'fp16' is not allowed; allowed values: 'auto', 'fp32', 'bf16'"),
    ("optim.betas=[0.9]", "config key 'optim.betas': expected 2 values, got 1"),
    ("train.batch_size=0", "config key 'train.batch_size' must be >= 1, got 0"),
    ("optim.betas=[2,3]", "config key 'optim.betas' must hold two values in [0, 1), got [2.0, 3.0]"),
    ("optim.eps=-1", "config key 'optim.eps' must be > 0, got -1.0"),
    ("optim.grad_clip=.nan", "config key 'optim.grad_clip': expected a finite number, got nan"),
    ("optim.lr=.inf", "config key 'optim.lr': expected a finite number, got inf"),
    ("train.eval_batches=0", "config key 'train.eval_batches' must be >= 1, got 0"),
    ("train.ckpt_minutes=-1", "config key 'train.ckpt_minutes' must be >= 0, got -1.0"),
    ("train.max_steps.x=1", "'train.max_steps' has no sub-keys"),
    ("noequals", "must look like key=value"),
])
def test_bad_overrides_name_the_key(override, expected):
    with pytest.raises(ConfigError) as err:
        resolve_config("mlp-lm", overrides=[override])
    assert expected in str(err.value)
    assert "\n" not in str(err.value)  # one line


def test_yaml_file_is_checked(tmp_path: Path):
    good = tmp_path / "good.yaml"
    good.write_text("train:\n  max_steps: 12\noptim:\n  lr: 5e-4\n")
    cfg = resolve_config("mlp-lm", config_file=str(good), overrides=["train.max_steps=13"])
    assert cfg.train.max_steps == 13 and cfg.optim.lr == pytest.approx(5e-4)  # --set wins over the file
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batchsize: 12\n")
    with pytest.raises(ConfigError, match="unknown config key 'train.batchsize'"):
        resolve_config("mlp-lm", config_file=str(bad))
    with pytest.raises(ConfigError, match="config file not found"):
        resolve_config("mlp-lm", config_file=str(tmp_path / "missing.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        resolve_config("mlp-lm", config_file=str(tmp_path / "list.yaml"))


def test_unknown_model_and_wrong_data_kind():
    with pytest.raises(ConfigError, match="unknown model .gpt-9.; available models: gpt, gpt-nano, gpt-char, gpt2-124m, mlp-lm"):
        resolve_config("gpt-9")
    with pytest.raises(ConfigError, match="trains on text data; dataset 'shapes' is image data"):
        resolve_config("mlp-lm", data="shapes")


def test_saved_config_round_trips(tmp_path: Path):
    cfg = resolve_config("mlp-lm", overrides=["arch.hidden=17", "optim.betas=[0.5,0.6]"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_run_config(tmp_path)
    assert to_dict(again) == to_dict(cfg)


def test_parse_override_values():
    assert parse_override("a=3e-4") == ("a", 3e-4)
    assert parse_override("a=-1.5E+2") == ("a", -150.0)
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("a=null") == ("a", None)


@dataclass
class _Arch:
    width: int = 4


def test_cross_field_validation():
    with pytest.raises(ConfigError, match="must be divisible by train.grad_accum"):
        build_config("x", _Arch, overrides=["train.batch_size=10", "train.grad_accum=3"])
    with pytest.raises(ConfigError, match="'optim.min_lr_ratio' must be in"):
        build_config("x", _Arch, overrides=["optim.min_lr_ratio=2"])


def test_apply_overrides_dict():
    cfg = RunConfig(model="x", arch=_Arch())
    apply_overrides(cfg, {"arch.width": 9, "train.seed": 3})
    assert cfg.arch.width == 9 and cfg.train.seed == 3


def test_cpu_and_gpu_presets():
    """A model sized for a GPU has a CPU preset that a CPU run gets by default; --set still wins over it."""
    from twopaths.models import device_preset, preset_note

    gpu = resolve_config("ddpm", data="fashion-mnist", preset="gpu")
    cpu = resolve_config("ddpm", data="fashion-mnist", preset="cpu")
    assert gpu.train.max_steps == 20_000 and gpu.arch.unet.base_channels == 64
    assert cpu.train.max_steps == 3_000 and cpu.arch.unet.base_channels == 16 and cpu.arch.diffusion.prediction == "v"
    assert resolve_config("ddpm", data="fashion-mnist", preset="cpu",
                          overrides=["train.max_steps=77"]).train.max_steps == 77
    # on 2-D points ddpm has one (small) preset, whatever the device
    assert resolve_config("ddpm", data="mixture2d", preset="cpu") == resolve_config("ddpm", data="mixture2d")
    on_cpu = resolve_config("ddpm", data="fashion-mnist", preset="auto", overrides=["train.device=cpu"])
    assert device_preset(on_cpu) == "cpu" and on_cpu == resolve_config(
        "ddpm", data="fashion-mnist", preset="cpu", overrides=["train.device=cpu"])
    assert "preset: cpu" in preset_note(cpu, "cpu") and "20,000 steps" in preset_note(cpu, "cpu")
    assert "one preset" in preset_note(resolve_config("gpt-nano"), "auto")
    with pytest.raises(ConfigError, match="unknown preset 'tpu'"):
        resolve_config("ddpm", preset="tpu")


def test_molecule_datasets_default_to_smiles_tokens():
    assert resolve_config("gpt-nano", data="moses-small").data.tokenizer == "smiles"
    assert resolve_config("mdlm", data="moses").data.tokenizer == "smiles"
    assert resolve_config("gpt-nano", data="moses", overrides=["data.tokenizer=char"]).data.tokenizer == "char"
    assert resolve_config("gpt-nano").data.tokenizer == "char"  # fortunes
