"""Two gloo processes under torchrun train the same parameters as one process with their combined batch."""

import subprocess
import sys

import torch
from safetensors.torch import load_file

from conftest import TINY_LM, run_cli


def test_two_processes_equal_one_with_double_batch(corpus, tmp_path):
    common = ["train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", *TINY_LM,
              "--set", "train.max_steps=30", "--set", "train.batch_size=16", "--set", "train.device=cpu", "--set", "train.ckpt_every=10"]
    run_cli(*common, "--out", str(tmp_path / "single"))
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "twopaths", *common, "--out", str(tmp_path / "ddp")],
                         capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    for step in ("00000010", "00000030"):
        single = load_file(str(tmp_path / "single" / "checkpoints" / f"step_{step}" / "model.safetensors"))
        double = load_file(str(tmp_path / "ddp" / "checkpoints" / f"step_{step}" / "model.safetensors"))
        assert single.keys() == double.keys()
        for name in single:
            assert torch.allclose(single[name], double[name], atol=1e-6, rtol=0), (step, name)
    # training moved the weights, so the equality above is not between two untouched copies
    early = load_file(str(tmp_path / "single" / "checkpoints" / "step_00000010" / "model.safetensors"))
    assert any((early[n] - single[n]).abs().max() > 1e-3 for n in single)
