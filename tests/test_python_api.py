"""Every python block of docs/python-api.md and of the README's Python API section runs, in order."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_the_python_api_docs_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = _blocks(ROOT / "docs" / "python-api.md") + _blocks(ROOT / "README.md")
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "python-api.md", "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["points"].shape == (512, 2)
    assert namespace["lm"].step == 60
