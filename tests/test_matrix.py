"""The paradigm x backbone matrix is data, and every named model sits in one of its cells."""

import importlib.util
from pathlib import Path

from twopaths.backbones import BACKBONES, CONTRACTS
from twopaths.cli import main
from twopaths.cli.models import markdown_matrix
from twopaths.models import MODELS, matrix
from twopaths.paradigms import PARADIGMS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_every_model_names_a_paradigm_and_backbones_that_fit_it():
    for name, spec in MODELS.items():
        assert spec.paradigm in PARADIGMS, name
        assert spec.backbones, name
        for backbone in spec.backbones:
            assert BACKBONES[backbone].contract in PARADIGMS[spec.paradigm].contracts, (name, backbone)


def test_the_tables_point_at_real_modules_and_every_backbone_is_used():
    for entry in BACKBONES.values():
        assert entry.contract in CONTRACTS
        assert importlib.util.find_spec(f"twopaths.backbones.{entry.module}") is not None, entry
    for entry in PARADIGMS.values():
        assert importlib.util.find_spec(f"twopaths.paradigms.{entry.module}") is not None, entry
    cells = matrix()
    assert all(cells[b] for b in BACKBONES), "a backbone no model uses"
    assert cells["transformer"]["autoregressive"][:2] == ["gpt", "gpt-nano"]
    assert "ldm" in cells["dit"]["latent"] and "ddpm" in cells["mlp"]["gaussian"]


def test_twopaths_models_prints_every_model_and_the_docs_hold_its_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MODELS)
    assert markdown_matrix() in DOCS.read_text(encoding="utf-8"), "regenerate docs/architecture.md's table"
