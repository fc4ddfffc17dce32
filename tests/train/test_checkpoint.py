import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from twopaths.errors import CheckpointError
from twopaths.training.checkpoint import (capture_rng, latest_checkpoint, list_checkpoints, open_checkpoint,
                                       restore_rng, save_checkpoint)
from twopaths.training.ema import EMA


class Net(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.embed = nn.Embedding(5, width)
        self.body = nn.Linear(width, width)
        self.head = nn.Linear(width, 5, bias=False)
        self.head.weight = self.embed.weight  # tied weights must survive safetensors


def _save(root: Path, step: int, model: nn.Module, keep_last: int = 3, every: int = 1) -> Path:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model.head(model.body(model.embed(torch.tensor([1, 2])))).sum()
    loss.backward()
    opt.step()
    return save_checkpoint(root, step, model, opt, EMA(model, 0.9).state_dict(),
                           {"rng": [capture_rng()], "world_size": 1}, keep_last, every)


def test_round_trip_with_tied_weights(tmp_path):
    torch.manual_seed(0)
    a = Net()
    path = _save(tmp_path / "ckpt", 10, a)
    b = Net()
    ckpt = latest_checkpoint_at(tmp_path / "ckpt")
    ckpt.load_model(b)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    assert b.head.weight is b.embed.weight  # still tied after loading
    opt = torch.optim.AdamW(b.parameters(), lr=1e-3)
    ckpt.load_optimizer(opt)
    assert opt.state_dict()["state"][0]["step"] == 1
    assert ckpt.step == 10 and ckpt.has_ema and path.name == "step_00000010"


def latest_checkpoint_at(root: Path):
    return open_checkpoint(list_checkpoints(root)[-1])


def test_keep_last_prunes_oldest(tmp_path):
    net = Net()
    for step in (1, 2, 3, 4, 5):
        _save(tmp_path / "ckpt", step, net, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path / "ckpt")] == ["step_00000004", "step_00000005"]


def test_checkpoints_off_the_schedule_do_not_push_scheduled_ones_out(tmp_path):
    """Every 10 steps, the last 3 kept; 13, 17, 24 were written for time (a slow run): each goes once a newer
    one exists, and the scheduled 10, 20, 30 all stay (the arena's quality curve reads them)."""
    net, root = Net(), tmp_path / "ckpt"
    for step in (10, 13, 17, 20, 24, 30):
        _save(root, step, net, keep_last=3, every=10)
    assert [p.name for p in list_checkpoints(root)] == ["step_00000010", "step_00000020", "step_00000030"]
    _save(root, 33, net, keep_last=3, every=10)  # the newest is kept whatever its step
    assert [p.name for p in list_checkpoints(root)] == ["step_00000020", "step_00000030", "step_00000033"]


def test_rng_round_trip():
    import random

    import numpy as np

    state = json.loads(json.dumps(capture_rng()))  # must survive JSON
    a = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng(state)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_corrupt_file_is_named(tmp_path):
    path = _save(tmp_path / "ckpt", 1, Net())
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # same size, different content
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"checkpoint file {weights} is corrupt"):
        open_checkpoint(path)


def test_truncated_file_is_named(tmp_path):
    path = _save(tmp_path / "ckpt", 1, Net())
    opt = path / "optimizer.pt"
    opt.write_bytes(opt.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=f"checkpoint file {opt} is truncated or corrupt: 50 bytes"):
        open_checkpoint(path)


def test_foreign_checkpoints(tmp_path):
    path = _save(tmp_path / "ckpt", 1, Net(width=8))
    with pytest.raises(CheckpointError, match="does not match this model"):
        open_checkpoint(path).load_model(Net(width=16))  # same names, other shapes

    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.other = nn.Linear(2, 2)

    with pytest.raises(CheckpointError, match=r"does not match this model .*missing 2 keys \['other.bias'"):
        open_checkpoint(path).load_model(Other())

    not_ours = tmp_path / "random"
    not_ours.mkdir()
    (not_ours / "model.safetensors").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="is not a twopaths checkpoint: state.json is missing"):
        open_checkpoint(not_ours)
    (not_ours / "state.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="no 'twopaths-checkpoint' format marker"):
        open_checkpoint(not_ours)
    (not_ours / "state.json").write_text('{"format": "twopaths-ch')
    with pytest.raises(CheckpointError, match=f"checkpoint file {not_ours / 'state.json'} is corrupt"):
        open_checkpoint(not_ours)


def test_missing_run_and_empty_run(tmp_path):
    with pytest.raises(CheckpointError, match="run directory not found"):
        latest_checkpoint(tmp_path / "nope")
    (tmp_path / "run").mkdir()
    with pytest.raises(CheckpointError, match="has no checkpoint yet"):
        latest_checkpoint(tmp_path / "run")


WRITER = textwrap.dedent("""
    import sys, torch
    from torch import nn
    from twopaths.training.checkpoint import save_checkpoint
    root = sys.argv[1]
    torch.manual_seed(0)
    big = nn.Linear(4096, 4096)  # 64 MiB of weights: slow enough to be caught mid-write
    opt = torch.optim.AdamW(big.parameters())
    big(torch.ones(1, 4096)).sum().backward()
    opt.step()
    step = 1
    while True:
        save_checkpoint(__import__("pathlib").Path(root), step, big, opt, None, {}, keep_last=100)
        print(step, flush=True)
        step += 1
""")


def test_writer_killed_mid_write_leaves_previous_checkpoint_loadable(tmp_path):
    root = tmp_path / "ckpt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "1"  # first checkpoint complete
        deadline = time.time() + 60
        while time.time() < deadline:  # wait until a second checkpoint is half written
            partial = [p for p in root.iterdir() if p.name.startswith(".tmp-step_00000002")]
            if partial and any(f.stat().st_size > 0 for f in partial[0].iterdir()):
                break
            time.sleep(0.001)
        else:
            pytest.fail("never caught the writer mid-write")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert any(p.name.startswith(".tmp-") for p in root.iterdir())  # the half-written one is there...
    complete = list_checkpoints(root)
    assert [p.name for p in complete] == ["step_00000001"]  # ...but never looks like a checkpoint
    ckpt = open_checkpoint(complete[-1])  # checksums verified
    fresh = nn.Linear(4096, 4096)
    ckpt.load_model(fresh)
    torch.manual_seed(0)  # redo what the writer did before its first save
    expected = nn.Linear(4096, 4096)
    opt = torch.optim.AdamW(expected.parameters())
    expected(torch.ones(1, 4096)).sum().backward()
    opt.step()
    assert torch.equal(fresh.weight, expected.weight) and torch.equal(fresh.bias, expected.bias)
    # the next save cleans the debris of the killed writer
    save_checkpoint(root, 3, fresh, opt, None, {}, keep_last=5)
    assert not any(p.name.startswith(".tmp-") for p in root.iterdir())


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s.update(step="abc"), "'step' must be a whole number >= 0, got 'abc'"),
    (lambda s: s.update(step=-20), "'step' must be a whole number >= 0, got -20"),
    (lambda s: s.pop("step"), "'step' must be a whole number >= 0, got None"),
    (lambda s: s.pop("files"), "'files' must list model.safetensors"),
    (lambda s: s.update(version="1"), "'version' must be an integer"),
    (lambda s: s["files"]["model.safetensors"].pop("sha256"), "needs 'bytes' (an integer) and 'sha256'"),
    (lambda s: s["files"].update({"../escape": {"bytes": 1, "sha256": "x"}}), "the entry for file '../escape'"),
    (lambda s: s.update(rng="x"), "'rng' must be a list"),
])
def test_edited_state_json_is_one_clear_error(tmp_path, edit, expected):
    path = _save(tmp_path / "ckpt", 3, Net())
    state = json.loads((path / "state.json").read_text())
    edit(state)
    (path / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        open_checkpoint(path)


def test_optimizer_state_with_python_objects_is_refused_without_suggesting_unpickling(tmp_path):
    path = _save(tmp_path / "ckpt", 3, Net())
    torch.save({"state": {}, "param_groups": [], "evil": Path("x")}, path / "optimizer.pt")  # a pickled object
    state = json.loads((path / "state.json").read_text())  # with checksums that match, as an attacker would
    data = (path / "optimizer.pt").read_bytes()
    state["files"]["optimizer.pt"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (path / "state.json").write_text(json.dumps(state))
    model = Net()
    with pytest.raises(CheckpointError, match="never unpickles") as err:
        open_checkpoint(path).load_optimizer(torch.optim.AdamW(model.parameters()))
    assert "weights_only" not in str(err.value)


def test_metrics_reader_skips_junk_and_a_fresh_start_drops_a_killed_attempts_lines(tmp_path):
    from twopaths.training.metrics import MetricsLog, read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\njunk\n[1, 2]\n"abc"\n{"loss": 1}\n'
                                            '{"step": "x"}\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo')
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    MetricsLog(tmp_path, resume_step=1).close()  # resume from checkpoint 1
    assert [r["step"] for r in read_metrics(tmp_path)] == [1]
    MetricsLog(tmp_path, resume_step=0).close()  # a fresh start: nothing of the killed attempt stays
    assert read_metrics(tmp_path) == []
