"""benchmarks/gpu_check.sh cannot rot: its dry run checks every option of its plan against the scripts."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _dry_run(script: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PY": sys.executable})


def test_the_plan_uses_only_options_the_scripts_have():
    """Fails (exit 2, naming the script and option) as soon as a script renames an option the plan uses."""
    out = _dry_run(SCRIPT)
    assert out.returncode == 0, out.stderr
    assert {"gpt", "diffusion", "quality_per_flop"} <= {line.split(" ")[0] for line in out.stdout.splitlines()}

