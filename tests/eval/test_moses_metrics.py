"""MOSES metrics (Polykovskiy et al. 2020): hand-checked cases with known answers, and each metric
recomputed directly with RDKit (BulkTanimotoSimilarity, BRICS, MurckoScaffold, descriptors)."""

from __future__ import annotations

import csv
import importlib.util
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rdkit")

from rdkit import Chem, DataStructs  # noqa: E402
from rdkit.Chem import BRICS, Crippen, Descriptors, rdFingerprintGenerator  # noqa: E402
from rdkit.Chem.QED import qed  # noqa: E402
from rdkit.Chem.Scaffolds import MurckoScaffold  # noqa: E402

from twopaths.errors import DataError  # noqa: E402
from twopaths.eval.chemnet import fcd  # noqa: E402
from twopaths.eval import molecules as M  # noqa: E402
from twopaths.eval.molecules import (  # noqa: E402
    canonical,
    fraction_passes_filters,
    fraction_unique,
    fraction_valid,
    fragment_similarity,
    internal_diversity,
    moses_metrics,
    novelty,
    property_distances,
    scaffold_similarity,
    snn,
)

HAS_MOLSETS = importlib.util.find_spec("moses") is not None
needs_molsets = pytest.mark.skipif(
    not HAS_MOLSETS, reason="MOSES filter files (mcf.csv, wehi_pains.csv) need molsets: pip install --no-deps molsets")

# 30 distinct drug-like molecules: aspirin, paracetamol, ibuprofen, caffeine, nicotine, diazepam, fluoxetine,
# sertraline, metformin, atenolol, propranolol, lidocaine, naproxen, diclofenac, omeprazole, sildenafil,
# celecoxib, loratadine, haloperidol, imatinib, warfarin, theophylline, salbutamol, chlorpromazine,
# carbamazepine, ciprofloxacin, tamoxifen, morphine, penicillin G, metoprolol
DRUGS = [
    "CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "CN1CCC[C@H]1c1cccnc1", "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21", "CNCCC(Oc1ccc(cc1)C(F)(F)F)c1ccccc1",
    "CN[C@H]1CC[C@@H](c2ccc(Cl)c(Cl)c2)c2ccccc21", "CN(C)C(=N)NC(=N)N", "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1",
    "CC(C)NCC(O)COc1cccc2ccccc12", "CCN(CC)CC(=O)Nc1c(C)cccc1C", "COc1ccc2cc(ccc2c1)[C@H](C)C(=O)O",
    "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl", "COc1ccc2[nH]c(nc2c1)S(=O)Cc1ncc(C)c(OC)c1C",
    "CCCc1nn(C)c2c1nc([nH]c2=O)-c1cc(ccc1OCC)S(=O)(=O)N1CCN(C)CC1",
    "Cc1ccc(cc1)-c1cc(nn1-c1ccc(cc1)S(N)(=O)=O)C(F)(F)F", "CCOC(=O)N1CCC(=C2c3ccc(Cl)cc3CCc3cccnc23)CC1",
    "OC1(CCN(CCCC(=O)c2ccc(F)cc2)CC1)c1ccc(Cl)cc1", "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(n1)-c1cccnc1",
    "CC(=O)CC(c1ccccc1)c1c(O)c2ccccc2oc1=O", "Cn1c2nc[nH]c2c(=O)n(C)c1=O", "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1",
    "CN(C)CCCN1c2ccccc2Sc2ccc(Cl)cc21", "NC(=O)N1c2ccccc2C=Cc2ccccc21",
    "OC(=O)c1cn(C2CC2)c2cc(N3CCNCC3)c(F)cc2c1=O", "CC/C(=C(\\c1ccccc1)c1ccc(OCCN(C)C)cc1)c1ccccc1",
    "CN1CC[C@]23c4c5ccc(O)c4O[C@H]2[C@@H](O)C=C[C@H]3[C@H]1C5",
    "CC1(C)S[C@@H]2[C@H](NC(=O)Cc3ccccc3)C(=O)N2[C@H]1C(=O)O", "COCCc1ccc(OCC(O)CNC(C)C)cc1",
]
GEN, REF = DRUGS[:15], DRUGS[15:]
RHODANINE = "O=C1NC(=S)SC1=Cc1ccccc1"  # 5-benzylidene rhodanine: PAINS ene_rhod_A


# ------------------------------------------------------------------------------------------------
# oracles computed directly with RDKit


def _similarity_matrix(a: list[str], b: list[str]) -> np.ndarray:
    """T[i, j] = Tanimoto(a[i], b[j]) with RDKit's ExplicitBitVect and BulkTanimotoSimilarity."""
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fa = [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in a]
    fb = [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in b]
    return np.array([DataStructs.BulkTanimotoSimilarity(f, fb) for f in fa])


def _cosine(a: Counter, b: Counter) -> float:
    keys = sorted(set(a) | set(b))
    u, v = np.array([a[k] for k in keys], float), np.array([b[k] for k in keys], float)
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


def _brics_counts(smiles: list[str]) -> Counter:
    return Counter(f for s in smiles for f in Chem.MolToSmiles(BRICS.BreakBRICSBonds(Chem.MolFromSmiles(s))).split("."))


def _scaffold_counts(smiles: list[str], min_rings: int) -> Counter:
    out = Counter()
    for s in smiles:
        scaf = MurckoScaffold.GetScaffoldForMol(Chem.MolFromSmiles(s))
        if scaf.GetNumAtoms() and scaf.GetRingInfo().NumRings() >= min_rings:
            out[Chem.MolToSmiles(scaf)] += 1
    return out


def _w1_equal_size(a: list[float], b: list[float]) -> float:
    """Wasserstein-1 of two equal-size samples: mean gap between their sorted values."""
    return float(np.mean(np.abs(np.sort(a) - np.sort(b))))


# ------------------------------------------------------------------------------------------------
# validity, uniqueness, novelty


def test_canonical_and_validity_of_known_smiles():
    assert canonical("CCO") == "CCO" and canonical("OCC") == "CCO"
    assert canonical("c1ccccc1") == canonical("C1=CC=CC=C1") == "c1ccccc1"
    for bad in ("C1CC", "", "C(C)(C)(C)(C)C", "not a smiles"):  # open ring, empty, pentavalent C, garbage
        assert canonical(bad) is None, bad
    assert fraction_valid(["CCO", "C1CC", "", "c1ccccc1"]) == 0.5
    assert fraction_valid(DRUGS) == 1.0
    with pytest.raises(ValueError, match="empty"):
        fraction_valid([])
    with pytest.raises(TypeError, match="list"):
        fraction_valid("CCO")


def test_unique_counts_one_molecule_written_two_ways_once():
    gen = ["CCO", "OCC", "C1CC", "c1ccccc1", "C1=CC=CC=C1", "CCN"]  # valid: CCO, CCO, benzene, benzene, CCN
    assert fraction_unique(gen) == pytest.approx(3 / 5)
    assert fraction_unique(gen, k=2) == 0.5  # first two valid: CCO and OCC
    assert fraction_unique(gen, k=3) == pytest.approx(2 / 3)  # the invalid C1CC is skipped, not counted
    with pytest.raises(ValueError, match="unique@6 needs at least 6 valid"):
        fraction_unique(gen, k=6)
    # oracle: 30 distinct drugs, each repeated in a second, random but seeded, spelling
    respelled = [Chem.MolToRandomSmilesVect(Chem.MolFromSmiles(s), 1, randomSeed=7)[0] for s in DRUGS]
    assert not set(respelled) & set(DRUGS)  # only canonicalization can match them up
    doubled = DRUGS + respelled
    assert fraction_unique(doubled) == pytest.approx(
        len({Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in doubled}) / len(doubled)) == 0.5


def test_novelty_against_a_small_train_set():
    gen = ["CCO", "c1ccccc1", "CCN", "C1CC", "NCC"]  # unique valid: ethanol, benzene, ethylamine
    assert novelty(gen, ["OCC", "C1=CC=CC=C1"]) == pytest.approx(1 / 3)  # train written differently
    assert novelty(gen, []) == 1.0
    assert novelty(gen, gen) == 0.0
    assert novelty(DRUGS, REF) == pytest.approx(0.5)


# ------------------------------------------------------------------------------------------------
# similarity metrics


def test_internal_diversity_of_identical_molecules_is_zero():
    for p in (1, 2):
        for root in ("per_molecule", "global"):
            assert internal_diversity(["CCO", "OCC", "CCO"], p=p, root=root) == pytest.approx(0.0, abs=1e-12)


def test_internal_diversity_counts_self_pairs_as_moses():
    t = _similarity_matrix(["CCO"], ["CCN"])[0, 0]
    assert 0 < t < 1
    # |G| = 2: pairs (a,a), (b,b) with T = 1 and (a,b), (b,a) with T = t
    assert internal_diversity(["CCO", "CCN"]) == pytest.approx(1 - (2 + 2 * t) / 4)
    assert internal_diversity(["CCO", "CCN"], p=2, root="global") == pytest.approx(1 - math.sqrt((2 + 2 * t * t) / 4))


def test_internal_diversity_matches_bulk_tanimoto():
    t = _similarity_matrix(DRUGS, DRUGS)
    int1 = internal_diversity(DRUGS)
    assert 0 < int1 < 1
    assert int1 == pytest.approx(1 - t.mean(), abs=1e-12)
    per_molecule = internal_diversity(DRUGS, p=2)  # MOSES code: root per molecule, then mean
    global_ = internal_diversity(DRUGS, p=2, root="global")  # paper: root of the mean over all pairs
    assert per_molecule == pytest.approx(1 - np.sqrt((t ** 2).mean(0)).mean(), abs=1e-12)
    assert global_ == pytest.approx(1 - np.sqrt((t ** 2).mean()), abs=1e-12)
    assert per_molecule > global_  # Jensen, strict for these unequal rows
    assert internal_diversity(DRUGS + ["C1CC", ""]) == int1  # invalid SMILES are ignored
    with pytest.raises(ValueError, match="root"):
        internal_diversity(DRUGS, p=2, root="paper")


def test_snn_of_a_set_with_itself_is_one_and_matches_bulk_tanimoto():
    assert snn(DRUGS, DRUGS) == pytest.approx(1.0)
    expected = _similarity_matrix(GEN, REF).max(1).mean()
    assert snn(GEN, REF) == pytest.approx(expected, abs=1e-12)
    assert snn(GEN + ["C1CC"], REF + [""]) == pytest.approx(expected, abs=1e-12)
    assert snn(GEN, REF) < 1
    assert snn(GEN + GEN[:1], REF) == pytest.approx(np.r_[_similarity_matrix(GEN, REF).max(1),
                                                          _similarity_matrix(GEN[:1], REF).max(1)].mean())


def test_chunked_tanimoto_equals_one_block(monkeypatch):
    """Ragged 7-row blocks (30 = 4 x 7 + 2) must give what one 30 x 30 block gives."""
    t = _similarity_matrix(DRUGS, DRUGS)
    monkeypatch.setattr(M, "_CHUNK", 7)
    assert internal_diversity(DRUGS) == pytest.approx(1 - t.mean(), abs=1e-12)
    assert internal_diversity(DRUGS, p=2) == pytest.approx(1 - np.sqrt((t ** 2).mean(0)).mean(), abs=1e-12)
    assert snn(DRUGS[:20], DRUGS[20:]) == pytest.approx(t[:20, 20:].max(1).mean(), abs=1e-12)


def test_a_thousand_molecules_against_themselves():
    """1,000 x 1,000 similarity matrices (their speed is a benchmark's business, not a test's)."""
    gen = [f"{d}.{'C' * (k + 1)}" for d in DRUGS for k in range(34)][:1000]  # 1,000 distinct molecules
    assert fraction_unique(gen) == 1.0
    assert snn(gen, gen[::-1]) == pytest.approx(1.0) and 0 < internal_diversity(gen, p=2) < 1


def test_fragment_similarity_matches_brics_counts():
    assert fragment_similarity(DRUGS, DRUGS) == pytest.approx(1.0)
    assert fragment_similarity(["c1ccccc1"], ["C1CCCCC1"]) == 0.0  # no shared fragment
    expected = _cosine(_brics_counts(GEN), _brics_counts(REF))
    assert 0 < expected < 1
    assert fragment_similarity(GEN, REF) == pytest.approx(expected, abs=1e-12)
    assert fragment_similarity(GEN + GEN[:3], REF) == pytest.approx(
        _cosine(_brics_counts(GEN + GEN[:3]), _brics_counts(REF)), abs=1e-12)  # duplicates count


def test_scaffold_similarity_matches_murcko_counts():
    assert scaffold_similarity(DRUGS, DRUGS) == pytest.approx(1.0)
    assert scaffold_similarity(["c1ccccc1"], ["C1CCCCC1"], min_rings=1) == 0.0
    assert scaffold_similarity(["c1ccccc1", "Cc1ccccc1"], ["C1CCCCC1", "c1ccccc1"], min_rings=1) == pytest.approx(
        2 / (2 * math.sqrt(2)))  # (benzene: 2) vs (benzene: 1, cyclohexane: 1)
    assert math.isnan(scaffold_similarity(["c1ccccc1"], ["C1CCCCC1"]))  # MOSES drops 1-ring scaffolds
    assert scaffold_similarity(["c1ccc2ccccc2c1"], ["C1CCC2CCCCC2C1"]) == 0.0  # naphthalene vs decalin
    for min_rings in (1, 2):
        expected = _cosine(_scaffold_counts(GEN, min_rings), _scaffold_counts(REF, min_rings))
        assert 0 < expected < 1
        assert scaffold_similarity(GEN, REF, min_rings=min_rings) == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------------------------------
# filters


@needs_molsets
def test_pains_hit_fails_and_ethanol_passes():
    folder = Path(importlib.util.find_spec("moses").submodule_search_locations[0]) / "metrics"
    with open(folder / "wehi_pains.csv", newline="") as f:
        ene_rhod_a = next(row[0].strip() for row in csv.reader(f) if "ene_rhod_A(" in row[1])
    assert Chem.AddHs(Chem.MolFromSmiles(RHODANINE)).HasSubstructMatch(Chem.MolFromSmarts(ene_rhod_a))
    assert fraction_passes_filters([RHODANINE]) == 0.0
    assert fraction_passes_filters(["CCO"]) == 1.0
    for bad in ("C[N+](C)(C)C", "CCI", "C1CCCCCCC1", "CC[Si](C)C"):  # charge, iodine, 8-ring, silicon
        assert fraction_passes_filters([bad]) == 0.0, bad
    assert fraction_passes_filters(["CCO", RHODANINE, "C1CC", "c1ccccc1"]) == pytest.approx(2 / 3)  # over valid


def test_missing_molsets_is_one_clear_data_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "moses" else real(name, *a))
    M._filter_patterns.cache_clear()
    try:
        with pytest.raises(DataError, match=r"pip install --no-deps molsets"):
            fraction_passes_filters(["CCO"])
    finally:
        M._filter_patterns.cache_clear()


# ------------------------------------------------------------------------------------------------
# property distributions


def test_property_distances_of_a_set_with_itself_are_zero():
    assert property_distances(DRUGS, DRUGS) == {"logP": 0.0, "SA": 0.0, "QED": 0.0, "weight": 0.0}


def test_property_distances_match_rdkit_descriptors():
    from rdkit.Contrib.SA_Score import sascorer

    fns = {"logP": Crippen.MolLogP, "SA": sascorer.calculateScore, "QED": qed, "weight": Descriptors.MolWt}
    got = property_distances(GEN, REF + ["C1CC"])
    assert set(got) == set(fns)
    for name, fn in fns.items():
        a = [fn(Chem.MolFromSmiles(s)) for s in GEN]
        b = [fn(Chem.MolFromSmiles(s)) for s in REF]
        assert got[name] == pytest.approx(_w1_equal_size(a, b), abs=1e-9), name
        assert got[name] > 0, name
    w = property_distances(["C"], ["CC"])["weight"]
    assert w == pytest.approx(Descriptors.MolWt(Chem.MolFromSmiles("CC")) - Descriptors.MolWt(Chem.MolFromSmiles("C")))


# ------------------------------------------------------------------------------------------------
# all of them


@needs_molsets
def test_moses_metrics_agrees_with_the_single_metrics():
    gen = GEN + GEN[:5] + ["C1CC", ""]  # 20 valid (5 duplicates), 2 invalid
    train = REF[:5] + GEN[:3]
    out = moses_metrics(gen, train, REF, n_unique=(10, 1000), test_scaffolds=DRUGS)
    assert list(out) == ["valid", "unique@10", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "FCD/TestSF",
                         "SNN/TestSF", "Frag/TestSF", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "logP", "SA", "QED", "weight", "Novelty"]
    assert out["valid"] == pytest.approx(20 / 22)
    assert out["unique@10"] == 1.0  # unique@1000 is omitted: only 20 valid molecules
    assert out["Novelty"] == pytest.approx(12 / 15)
    assert out["SNN/Test"] == pytest.approx(snn(gen, REF))
    assert out["Frag/Test"] == pytest.approx(fragment_similarity(gen, REF))
    assert out["Scaf/Test"] == pytest.approx(scaffold_similarity(gen, REF))
    assert out["SNN/TestSF"] == pytest.approx(1.0)
    assert out["FCD/Test"] == pytest.approx(fcd([s for s in gen if canonical(s)], REF))
    assert out["FCD/Test"] > out["FCD/TestSF"] > 0  # gen holds some of DRUGS, none of REF
    assert out["Frag/TestSF"] == pytest.approx(fragment_similarity(gen, DRUGS))
    assert out["IntDiv"] == pytest.approx(internal_diversity(gen))
    assert out["IntDiv2"] == pytest.approx(internal_diversity(gen, p=2))
    assert out["Filters"] == pytest.approx(fraction_passes_filters(gen))
    for name, value in property_distances(gen, REF).items():
        assert out[name] == pytest.approx(value)
    assert "Novelty" not in moses_metrics(gen, None, REF)
    assert "FCD/Test" not in moses_metrics(gen, train, REF, fcd=False)
