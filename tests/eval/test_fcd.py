"""Fréchet ChemNet Distance: our ChemNet against fcd_torch's (the implementation MOSES reports with),
on the same weights and molecules, plus ChemNet's input encoding and the errors of a missing or
damaged weights file."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rdkit")
fcd_torch = pytest.importorskip("fcd_torch", reason="fcd_torch (a dependency: ChemNet's weights) is not installed")

from twopaths.errors import DataError, TwopathsError  # noqa: E402
from twopaths.eval import chemnet  # noqa: E402
from twopaths.eval.chemnet import CHEMNET_VOCAB, chemnet_features, chemnet_one_hot, fcd  # noqa: E402

# 24 drug-like molecules with two-letter atoms, charges, stereo, aromatic S/N/O, bracket atoms
SET_A = [
    "CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "CN1CCC[C@H]1c1cccnc1", "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21", "CNCCC(Oc1ccc(cc1)C(F)(F)F)c1ccccc1",
    "CN[C@H]1CC[C@@H](c2ccc(Cl)c(Cl)c2)c2ccccc21", "CN(C)C(=N)NC(=N)N", "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1",
    "O=C(O)c1ccccc1O", "Clc1ccc(Br)cc1", "C[Si](C)(C)OCC", "[NH3+]CC(=O)[O-]",
]
SET_B = [
    "COc1ccc2[nH]cc(CCN)c2c1", "Nc1nc(N)c2nc(-c3ccccc3)c(N)nc2n1", "CC1=CC(=O)c2ccccc2C1=O",
    "O=C1CN=C(c2ccccc2)c2cc([N+](=O)[O-])ccc2N1", "CCOC(=O)c1ccc(N)cc1", "c1ccc2sc(N)nc2c1",
    "OC[C@H]1O[C@@H](O)[C@H](O)[C@@H](O)[C@@H]1O", "CC(=O)N[C@@H](CS)C(=O)O", "Ic1ccccc1", "c1ccoc1",
]


def test_one_hot_reads_two_letter_atoms_unknown_symbols_and_the_end_symbol():
    x = chemnet_one_hot(["CCl", "[Si]Br", "C%10"], length=8) * len(CHEMNET_VOCAB)  # (3, 8, 35)
    read = [[CHEMNET_VOCAB[i] for i in row.argmax(-1)[row.sum(-1) > 0]] for row in x]
    assert read == [["C", "Cl", "."], ["[", "Si", "]", "Br", "."], ["C", "X", "1", "X", "."]]  # "%" and "0" are not in ChemNet's vocabulary
    assert x.sum(-1).tolist()[0] == [1, 1, 1, 0, 0, 0, 0, 0]  # one symbol per position, zeros after the end
    long = chemnet_one_hot(["C" * 400])[0]
    assert long.shape == (350, 35) and long[-1].argmax() == CHEMNET_VOCAB.index(".")  # cut, still ended


def test_features_equal_fcd_torch():
    ours = chemnet_features(SET_A + SET_B, batch_size=7)  # batches of 7: padding per batch must not matter
    theirs = fcd_torch.FCD(device="cpu", n_jobs=1).get_predictions(SET_A + SET_B)
    assert ours.shape == (len(SET_A + SET_B), 512)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_fcd_equals_fcd_torch_and_is_zero_on_the_same_set():
    theirs = fcd_torch.FCD(device="cpu", n_jobs=1)(SET_A, SET_B)
    assert fcd(SET_A, SET_B) == pytest.approx(theirs, rel=1e-5)
    assert theirs > 1.0
    assert abs(fcd(SET_A, SET_A)) < 1e-4
    assert fcd(SET_A[::-1], SET_B) == pytest.approx(theirs, rel=1e-5)  # a set, not a sequence


def test_invalid_smiles_is_one_clear_error():
    with pytest.raises(TwopathsError, match="invalid SMILES 'C1CC'"):
        chemnet_features(["CCO", "C1CC"])
    with pytest.raises(TwopathsError, match="list of SMILES"):
        chemnet_features("CCO")


def test_missing_or_damaged_weights_are_one_clear_error(monkeypatch, tmp_path):
    chemnet.load_chemnet.cache_clear()
    monkeypatch.setattr(chemnet.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install fcd_torch"):
        chemnet.load_chemnet()
    monkeypatch.undo()
    bad = tmp_path / "ChemNet_v0.13_pretrained.pt"
    bad.write_bytes(b"not a torch file")
    monkeypatch.setattr(chemnet, "chemnet_weights_path", lambda: bad)
    with pytest.raises(DataError, match="cannot read ChemNet's weights"):
        chemnet.load_chemnet()
    monkeypatch.undo()
    chemnet.load_chemnet.cache_clear()
    assert chemnet.load_chemnet().lstm2.hidden_size == 512
