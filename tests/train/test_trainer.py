"""The trainer on small real networks made here: it learns, accumulates, averages, stops on NaN,
refuses a too-small dataset, and resumes exactly (in process; the SIGKILL test is test_resume.py)."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from twopaths.config import RunConfig, apply_overrides
from twopaths.errors import DataError, TrainingDiverged
from twopaths.paradigms.base import Paradigm
from twopaths.training.checkpoint import list_checkpoints, open_checkpoint
from twopaths.training.clock import WARMUP_STEPS
from twopaths.training.metrics import read_metrics
from twopaths.training.sampler import ResumableBatchSampler
from twopaths.training.trainer import Hook, Trainer


class Points(Dataset):
    """y = sin(3 x0) + x1^2 + noise; a real regression problem."""

    def __init__(self, n=256, seed=0, poison_at=None):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 2, generator=g) * 2 - 1
        self.y = torch.sin(3 * self.x[:, :1]) + self.x[:, 1:] ** 2 + 0.01 * torch.randn(n, 1, generator=g)
        if poison_at is not None:
            self.x[poison_at, 0] = float("nan")

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


class Regression(Paradigm):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.GELU(), nn.Dropout(dropout), nn.Linear(32, 1))

    def loss(self, batch):
        return F.mse_loss(self.net(batch["x"]), batch["y"])


def make_cfg(**overrides) -> RunConfig:
    cfg = RunConfig(model="regression")
    base = {"train.max_steps": 60, "train.batch_size": 16, "train.log_every": 1, "train.eval_every": 0,
            "train.ckpt_every": 20, "train.progress": False, "optim.lr": 1e-2, "optim.warmup_steps": 5}
    apply_overrides(cfg, {**base, **overrides})
    return cfg


def train(tmp_path, name="run", dataset=None, resume=False, dropout=0.0, hooks=(), **overrides):
    torch.manual_seed(0)
    model = Regression(dropout)
    trainer = Trainer(model, dataset or Points(), make_cfg(**overrides), tmp_path / name, val_set=Points(64, seed=1),
                      hooks=hooks)
    result = trainer.fit(resume=resume)
    return trainer, result


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run_dir) if "split" not in r]


def test_it_learns_and_logs(tmp_path):
    trainer, result = train(tmp_path, **{"train.max_steps": 200, "train.eval_every": 100})
    seq = losses(tmp_path / "run")
    assert len(seq) == 200 and result["step"] == 200
    assert sum(seq[-20:]) / 20 < 0.3 * sum(seq[:5]) / 5  # from ~0.75 to ~0.15
    records = read_metrics(tmp_path / "run")
    val = [r for r in records if r.get("split") == "val"]
    assert [r["step"] for r in val] == [100, 200] and val[-1]["loss"] < val[0]["loss"] * 1.5
    assert {"lr", "grad_norm", "items_per_s", "time"} <= set(records[0])
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents*"))  # tensorboard is a test dependency


def test_grad_accumulation_matches_one_big_batch(tmp_path):
    a, _ = train(tmp_path, "a", **{"train.grad_accum": 1, "train.max_steps": 10})
    b, _ = train(tmp_path, "b", **{"train.grad_accum": 4, "train.max_steps": 10})
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6)
    assert losses(tmp_path / "a") == pytest.approx(losses(tmp_path / "b"), abs=1e-6)


class Interrupt(Exception):
    pass


def _interrupt_at(step):
    def fn(trainer, s):
        if s == step:
            raise Interrupt
    return Hook("crash", 1, fn)


def test_in_process_resume_is_exact(tmp_path):
    train(tmp_path, "full", dropout=0.2, **{"train.max_steps": 60})
    with pytest.raises(Interrupt):  # dies at step 47; the newest checkpoint is step 40
        train(tmp_path, "split", dropout=0.2, hooks=[_interrupt_at(47)], **{"train.max_steps": 60})
    assert losses(tmp_path / "split")[-1] == losses(tmp_path / "full")[46]
    train(tmp_path, "split", dropout=0.2, resume=True, **{"train.max_steps": 60})
    assert losses(tmp_path / "split") == losses(tmp_path / "full")  # bit for bit, dropout included


def test_evaluation_and_hooks_do_not_change_training(tmp_path):
    seen = []
    hook = Hook("samples", 7, lambda trainer, step: seen.append(step) or {"drawn": float(torch.rand(()))})
    train(tmp_path, "quiet", dropout=0.2)
    train(tmp_path, "busy", dropout=0.2, hooks=[hook], **{"train.eval_every": 5})
    assert losses(tmp_path / "busy") == losses(tmp_path / "quiet")
    assert seen == list(range(7, 61, 7))
    assert [r["step"] for r in read_metrics(tmp_path / "busy") if r.get("split") == "samples"] == seen


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    # one poisoned example, placed in the 7th batch of the (deterministic) first epoch
    first_epoch = next(iter(ResumableBatchSampler(256, 16 * 8, seed=0)))  # 8 batches of 16
    data = Points(poison_at=first_epoch[16 * 6 + 3])
    with pytest.raises(TrainingDiverged) as err:
        train(tmp_path, dataset=data, **{"train.ckpt_every": 5, "train.max_steps": 100})
    message = str(err.value)
    assert "the training loss became nan at step 7; training stopped without saving" in message
    assert "The last good checkpoint is kept" in message and "--set optim.lr" in message
    kept = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in kept] == ["step_00000005"]
    ckpt = open_checkpoint(kept[-1])  # loads, checksums pass
    model = Regression()
    ckpt.load_model(model)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_before_any_checkpoint_says_so(tmp_path):
    with pytest.raises(TrainingDiverged, match="No checkpoint had been written yet"):
        train(tmp_path, **{"optim.lr": 1e30, "optim.warmup_steps": 0, "optim.grad_clip": 0.0,
                           "train.ckpt_every": 1000, "train.max_steps": 500})


def test_dataset_smaller_than_one_batch(tmp_path):
    with pytest.raises(DataError, match="the training split has 10 items but one batch needs 16"):
        train(tmp_path, dataset=Points(10))
    assert not (tmp_path / "run").exists()  # nothing written


def test_checkpoint_holds_data_position_and_rng(tmp_path):
    train(tmp_path, **{"train.grad_accum": 2, "train.max_steps": 20, "train.ckpt_every": 20})
    state = json.loads((tmp_path / "run" / "checkpoints" / "step_00000020" / "state.json").read_text())
    # 20 steps x 2 micro-batches of 8 = 40 micro-batches; 256 items / 8 = 32 per epoch
    assert state["data"] == {"micro_batches": 40, "epoch": 1, "batch_in_epoch": 8}
    assert len(state["rng"]) == 1 and {"python", "numpy", "torch"} <= set(state["rng"][0])


def test_generate_text_streams_what_it_returns(corpus, tmp_path):
    from twopaths.data.tokenizers import BPETokenizer
    from twopaths.paradigms.autoregressive import Autoregressive, generate_text
    from twopaths.backbones.window_mlp import WindowMLP, WindowMLPConfig

    tok = BPETokenizer.train([corpus.read_text() + " é ü 😀"], vocab_size=300)
    torch.manual_seed(0)
    model = Autoregressive(WindowMLP(tok.vocab_size, WindowMLPConfig(window=3, hidden=16)), context=3).eval()
    pieces = []
    text = generate_text(model, tok, "the", max_new_tokens=40, generator=torch.Generator().manual_seed(1),
                         on_text=pieces.append)
    assert "".join(pieces) == text and len(pieces) > 1


def test_compiled_training_matches_eager(tmp_path):
    """train.compile=true goes through torch.compile (inductor, ~20 s on CPU) and changes no numbers that matter."""
    train(tmp_path, "eager", **{"train.max_steps": 20})
    trainer, _ = train(tmp_path, "compiled", **{"train.max_steps": 20, "train.compile": True})
    assert losses(tmp_path / "compiled") == pytest.approx(losses(tmp_path / "eager"), abs=1e-5)
    # the checkpoint holds the plain module's names, not torch.compile's "_orig_mod." wrapper
    ckpt = open_checkpoint(list_checkpoints(tmp_path / "compiled" / "checkpoints")[-1])
    ckpt.load_model(Regression())


def test_max_time_ends_the_run_with_a_checkpoint_and_the_schedule_fitted(tmp_path):
    """A wall-clock limit far below what max_steps needs: the run stops by itself, saves its last step,
    and the cosine schedule has decayed to its floor exactly there (not cut off at full learning rate)."""
    slow = Hook("slow", 1, lambda trainer, step: __import__("time").sleep(0.01) or None)  # >= 10 ms per step
    trainer, result = train(tmp_path, hooks=(slow,), **{"train.max_steps": 100_000, "train.max_time": "1.5s",
                                                        "train.ckpt_every": 100_000, "optim.min_lr_ratio": 0.1})
    # the step count depends on the machine's load (>= 10 ms a step: at most 150); the time used does not
    # much: the run ends where its measured speed says the limit falls, less a 2% reserve
    assert result["stopped_by_time"] and WARMUP_STEPS < result["step"] < 150
    assert trainer.last_checkpoint.name == f"step_{result['step']:08d}"
    last = [r for r in read_metrics(tmp_path / "run") if "split" not in r][-1]
    assert last["step"] == result["step"] and last["lr"] == pytest.approx(1e-3)  # lr * min_lr_ratio
    assert 1.0 < last["time"] < 3.0


def test_max_time_is_checked_as_a_duration():
    from twopaths.errors import ConfigError

    for good, seconds in (("10m", 600), ("1.5h", 5400), (90, 90), ("45s", 45)):
        cfg = make_cfg(**{"train.max_time": good})
        from twopaths.config import duration_seconds

        assert duration_seconds(cfg.train.max_time) == seconds
    for bad in ("ten minutes", "-5", "1d", ".nan"):
        with pytest.raises(ConfigError, match="train.max_time"):
            from twopaths.config import validate

            validate(make_cfg(**{"train.max_time": bad}))
