"""MOSES metrics for sets of generated molecules, written as SMILES strings, computed with RDKit.

Polykovskiy et al. 2020, "Molecular Sets (MOSES): A Benchmarking Platform for Molecular
Generation Models", Frontiers in Pharmacology 11:565644, section "Metrics". For a generated set
G and a reference set R (the MOSES test set), with T(a, b) the Tanimoto similarity of Morgan
fingerprints (radius 2, 1024 bits):

    valid        fraction of generated SMILES that RDKit parses and sanitizes
    unique@k     |set(first k valid)| / k, on canonical SMILES
    Novelty      fraction of the unique valid generated molecules absent from the training set
    IntDiv_p(G)  1 - (1/|G|^2 sum_{m1, m2 in G} T(m1, m2)^p)^(1/p)           (self-pairs included)
    Filters      fraction of valid generated molecules that pass the MCF and PAINS filters
    Frag(G, R)   cos(f_G, f_R), f = counts of BRICS fragments (Degen et al. 2008)
    Scaf(G, R)   cos(s_G, s_R), s = counts of Bemis-Murcko scaffolds (Bemis & Murcko 1996)
    SNN(G, R)    1/|G| sum_{m in G} max_{r in R} T(m, r)
    logP, SA, QED, weight
                 Wasserstein-1 distance between the property's distribution on G and on R

FCD is computed by :mod:`twopaths.eval.chemnet`. Where the paper's text and the reference code (the ``molsets`` package,
``moses/metrics``) differ, these functions follow the code, because the published tables were
made with it, and say so in their docstrings: IntDiv_2 takes the root per molecule, Scaf ignores
scaffolds with fewer than two rings, and an all-zero fingerprint pair has similarity 1.

Every metric over the generated molecules uses its valid ones, in input order, duplicates kept
(as MOSES, which drops the invalid SMILES first). An empty input list raises ``ValueError``; a
list with no valid molecule gives ``nan`` for every metric that is an average over valid
molecules. The MCF/PAINS patterns are read from the data files that ship with ``molsets``
(``pip install --no-deps molsets``); nothing else of that package is used or imported.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import Crippen, Descriptors, rdFingerprintGenerator
from rdkit.Chem.QED import qed as _qed
from rdkit.Chem.Scaffolds import MurckoScaffold

from twopaths.data.molecules import INSTALL_HINT, molsets_folder
from twopaths.errors import DataError, TwopathsError

__all__ = [
    "FINGERPRINT_BITS",
    "FINGERPRINT_RADIUS",
    "PROPERTIES",
    "UNIQUE_AT",
    "canonical",
    "fraction_passes_filters",
    "fraction_unique",
    "fraction_valid",
    "fragment_similarity",
    "internal_diversity",
    "moses_metrics",
    "novelty",
    "property_distances",
    "scaffold_similarity",
    "snn",
]

FINGERPRINT_RADIUS = 2  # Morgan radius of the similarity metrics (SNN, IntDiv), as MOSES
FINGERPRINT_BITS = 1024  # and its folded length
PROPERTIES = ("logP", "SA", "QED", "weight")  # the distributions compared by property_distances
UNIQUE_AT = (1000, 10000)  # the k of unique@k, each reported only when at least k molecules are valid
ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})  # MOSES filters' atom set
_CHUNK = 2048  # rows per block of the pairwise Tanimoto matrix (2048 x 2048 float64 = 32 MiB)


# ----------------------------------------------------------------------------------------------
# parsing


def _mol(smiles: str) -> Chem.Mol | None:
    """RDKit molecule of one SMILES, or None if it does not parse or sanitize, or has no atoms.

    RDKit's error log is blocked while parsing (invalid SMILES are expected from a generator).
    ``Chem.MolFromSmiles("")`` is an empty molecule, not None; like MOSES we count it as
    invalid, and so any SMILES that parses to zero atoms (e.g. whitespace).
    """
    if not isinstance(smiles, str) or not smiles:
        return None
    with rdBase.BlockLogs():  # restores the previous log state on exit
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


def canonical(smiles: str) -> str | None:
    """RDKit canonical (isomeric) SMILES of ``smiles``, or None if it is invalid or empty."""
    mol = _mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def _check_not_str(smiles: Sequence[str], name: str) -> None:
    if isinstance(smiles, str):  # iterating it would give one "SMILES" per character
        raise TypeError(f"{name} must be a list of SMILES strings, not one string")


def _check_list(smiles: Sequence[str], name: str) -> None:
    _check_not_str(smiles, name)
    if len(smiles) == 0:
        raise ValueError(f"{name} is empty")


@dataclass
class _MolSet:
    """The valid molecules of one list of SMILES, parsed once, with per-call caches.

    ``smiles[i]`` is the canonical SMILES of the i-th valid input, duplicates kept, in input
    order; ``unique`` holds each distinct canonical SMILES once with its molecule, and
    ``index[i]`` is the row of ``smiles[i]`` in ``unique``. Anything computed per molecule
    (fingerprints, properties, filters) is computed once per distinct molecule.
    """

    n_input: int
    smiles: list[str]
    unique: dict[str, Chem.Mol]
    index: np.ndarray
    _fps: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, smiles: Sequence[str], name: str) -> _MolSet:
        _check_list(smiles, name)
        canon_of: dict[str, str | None] = {}  # raw string -> canonical SMILES (parse each once)
        unique: dict[str, Chem.Mol] = {}
        valid: list[str] = []
        for s in smiles:
            if s not in canon_of:
                mol = _mol(s)
                canon_of[s] = None if mol is None else Chem.MolToSmiles(mol)
                if mol is not None:
                    unique.setdefault(canon_of[s], mol)
            if canon_of[s] is not None:
                valid.append(canon_of[s])
        row = {s: i for i, s in enumerate(unique)}
        return cls(len(smiles), valid, unique, np.array([row[s] for s in valid], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.smiles)

    def per_molecule(self, fn: Callable[[Chem.Mol], float]) -> np.ndarray:
        """fn of every valid molecule (duplicates included), evaluated once per distinct one."""
        values = np.array([fn(m) for m in self.unique.values()], dtype=np.float64)
        return values[self.index] if len(values) else values

    def fingerprints(self) -> np.ndarray:
        """(len(self), FINGERPRINT_BITS) uint8 Morgan bits, computed once per distinct molecule."""
        if self._fps is None:
            gen = rdFingerprintGenerator.GetMorganGenerator(radius=FINGERPRINT_RADIUS,
                                                            fpSize=FINGERPRINT_BITS)
            rows = [gen.GetFingerprintAsNumPy(m) for m in self.unique.values()]
            fps = np.stack(rows) if rows else np.zeros((0, FINGERPRINT_BITS), np.uint8)
            self._fps = fps.astype(np.uint8)[self.index]
        return self._fps


# ----------------------------------------------------------------------------------------------
# Tanimoto similarity on bit matrices


def _tanimoto_blocks(a: np.ndarray, b: np.ndarray, chunk: int | None = None
                     ) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (columns, T) with T[i, j] = Tanimoto(a[i], b[columns][j]) for blocks of the matrix.

    T = |a & b| / (|a| + |b| - |a & b|), with the intersections counted by a float32 matrix
    product (exact for counts below 2^24), ``chunk`` (default ``_CHUNK``) rows and columns at a
    time; the caller reduces each yielded block over axis 0 (the rows of ``a``). A pair of
    all-zero fingerprints has 0/0; MOSES (``average_agg_tanimoto``) sets it to 1, and so do we.
    """
    chunk = chunk or _CHUNK
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    na, nb = a32.sum(1, dtype=np.float64), b32.sum(1, dtype=np.float64)
    for j in range(0, len(b32), chunk):
        cols = slice(j, min(j + chunk, len(b32)))
        for i in range(0, len(a32), chunk):
            inter = (a32[i:i + chunk] @ b32[cols].T).astype(np.float64)
            union = na[i:i + chunk, None] + nb[None, cols] - inter
            yield cols, np.divide(inter, union, out=np.ones_like(inter), where=union > 0)


def _max_similarity(ref_fps: np.ndarray, gen_fps: np.ndarray) -> np.ndarray:
    """For each generated fingerprint, its largest Tanimoto similarity to any reference one."""
    best = np.zeros(len(gen_fps))
    for cols, t in _tanimoto_blocks(ref_fps, gen_fps):
        best[cols] = np.maximum(best[cols], t.max(0))
    return best


def _intdiv(fps: np.ndarray, powers: Sequence[int], root: str) -> dict[int, float]:
    """IntDiv_p for each p in ``powers`` from one pass over the |G| x |G| similarity matrix."""
    if root not in ("per_molecule", "global"):
        raise ValueError(f"root must be 'per_molecule' or 'global', got {root!r}")
    if len(fps) == 0:
        return {p: math.nan for p in powers}
    sums = {p: np.zeros(len(fps)) for p in powers}  # sums[p][j] = sum_i T(i, j)^p
    for cols, t in _tanimoto_blocks(fps, fps):
        for p in powers:
            sums[p][cols] += (t if p == 1 else t ** p).sum(0)
    n = len(fps)
    if root == "per_molecule":  # MOSES code: mean_j (mean_i T_ij^p)^(1/p)
        return {p: float(1.0 - np.mean((sums[p] / n) ** (1.0 / p))) for p in powers}
    return {p: float(1.0 - (sums[p].sum() / n ** 2) ** (1.0 / p)) for p in powers}  # paper


# ----------------------------------------------------------------------------------------------
# validity, uniqueness, novelty


def fraction_valid(gen: Sequence[str]) -> float:
    """Fraction of ``gen`` that RDKit parses and sanitizes (MOSES "Valid"); "" is invalid."""
    return len(_MolSet.parse(gen, "gen")) / len(gen)


def _unique_at(valid_smiles: list[str], k: int | None) -> float:
    if k is not None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if len(valid_smiles) < k:
            raise ValueError(f"unique@{k} needs at least {k} valid molecules, got {len(valid_smiles)}")
        valid_smiles = valid_smiles[:k]
    return len(set(valid_smiles)) / len(valid_smiles) if valid_smiles else math.nan


def fraction_unique(gen: Sequence[str], k: int | None = None) -> float:
    """unique@k: distinct canonical SMILES among the first ``k`` valid molecules, divided by k.

    Invalid SMILES are dropped first, as ``get_all_metrics`` in MOSES does, so ``"CCO"`` and
    ``"OCC"`` count once. MOSES only warns when there are fewer than k valid molecules and then
    reports the ratio over all of them under the name unique@k; we raise ``ValueError`` instead,
    so a number labelled unique@10000 is always one over 10,000 molecules. ``k=None`` uses all
    valid molecules (``nan`` if there are none).
    """
    return _unique_at(_MolSet.parse(gen, "gen").smiles, k)


def _canonical_set(smiles: Sequence[str]) -> set[str]:
    out = {canonical(s) for s in set(smiles)}
    out.discard(None)
    return out


def _novelty(gen: _MolSet, train_canon: set[str]) -> float:
    unique = set(gen.unique)
    return len(unique - train_canon) / len(unique) if unique else math.nan


def novelty(gen: Sequence[str], train: Sequence[str]) -> float:
    """Fraction of the unique valid generated molecules whose canonical SMILES is not in train.

    Both sides are canonicalized with the installed RDKit (MOSES compares with ``set(train)``
    as given, which assumes train was canonicalized by the same RDKit version). Canonicalizing
    a large train set (MOSES': 1.6M SMILES) takes minutes; each distinct string is parsed once.
    """
    _check_not_str(train, "train")
    return _novelty(_MolSet.parse(gen, "gen"), _canonical_set(train))


# ----------------------------------------------------------------------------------------------
# similarity-based metrics


def internal_diversity(gen: Sequence[str], p: int = 1,
                       root: Literal["per_molecule", "global"] = "per_molecule") -> float:
    """IntDiv_p(G) = 1 - (1/|G|^2 sum_{m1, m2 in G} T(m1, m2)^p)^(1/p) (MOSES paper, "Metrics").

    T is the Tanimoto similarity of Morgan fingerprints (radius 2, 1024 bits); the sum runs over
    all ordered pairs of valid molecules, the |G| self-pairs (T = 1) and duplicates included, as
    MOSES' ``internal_diversity``. So a set of one molecule repeated has IntDiv 0, and n distinct
    molecules can reach at most 1 - 1/n for p = 1.

    ``root`` matters only for p != 1. The paper takes the p-th root of the mean over all pairs
    (``"global"``); the MOSES code, which produced the published IntDiv2 column, takes it per
    molecule, 1 - mean_j (mean_i T_ij^p)^(1/p) (``"per_molecule"``, the default). By Jensen the
    code's value is never below the paper's.
    """
    if p < 1:
        raise ValueError(f"p must be a positive integer, got {p}")
    return _intdiv(_MolSet.parse(gen, "gen").fingerprints(), (p,), root)[p]


def _snn(gen: _MolSet, ref: _MolSet) -> float:
    if len(gen) == 0 or len(ref) == 0:
        return math.nan
    return float(_max_similarity(ref.fingerprints(), gen.fingerprints()).mean())


def snn(gen: Sequence[str], ref: Sequence[str]) -> float:
    """SNN(G, R) = 1/|G| sum_{m in G} max_{r in R} T(m, r) (MOSES paper, "Metrics").

    T: Tanimoto similarity of Morgan fingerprints, radius 2, 1024 bits. Averaged over all valid
    generated molecules (duplicates kept); invalid reference SMILES are ignored.
    """
    return _snn(_MolSet.parse(gen, "gen"), _MolSet.parse(ref, "ref"))


def _cosine(a: Counter, b: Counter) -> float:
    """cos(a, b) = <a, b> / (||a|| ||b||) of two sparse count vectors; nan if either is empty."""
    if not a or not b:
        return math.nan  # as MOSES' cos_similarity
    dot = sum(float(v) * b[k] for k, v in a.items() if k in b)
    norms = math.sqrt(sum(float(v) ** 2 for v in a.values())) * math.sqrt(sum(float(v) ** 2 for v in b.values()))
    return min(1.0, dot / norms)  # clip the round-off above 1 of identical vectors


def _fragments(mol: Chem.Mol) -> list[str]:
    """BRICS fragments of mol (Degen et al. 2008) as SMILES, broken-bond dummies labelled."""
    return Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split(".")


def _fragment_counts(mols: _MolSet) -> Counter:
    per_mol = {s: _fragments(m) for s, m in mols.unique.items()}
    counts: Counter = Counter()
    for s in mols.smiles:
        counts.update(per_mol[s])
    return counts


def fragment_similarity(gen: Sequence[str], ref: Sequence[str]) -> float:
    """Frag(G, R) = cos(f_G, f_R) (MOSES paper, "Metrics").

    f_X[k] counts how often BRICS fragment k (``Chem.FragmentOnBRICSBonds``, fragments written
    as canonical SMILES with labelled attachment points) appears over all valid molecules of X,
    duplicates included. 1 for identical fragment frequencies, 0 for no shared fragment; nan if
    either set has no valid molecule.
    """
    return _cosine(_fragment_counts(_MolSet.parse(gen, "gen")),
                   _fragment_counts(_MolSet.parse(ref, "ref")))


def _scaffold(mol: Chem.Mol, min_rings: int) -> str | None:
    """Bemis-Murcko scaffold SMILES, None if it has fewer than ``min_rings`` rings."""
    try:
        scaffold = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    smiles = Chem.MolToSmiles(scaffold)
    if not smiles or scaffold.GetRingInfo().NumRings() < min_rings:
        return None
    return smiles


def _scaffold_counts(mols: _MolSet, min_rings: int) -> Counter:
    per_mol = {s: _scaffold(m, min_rings) for s, m in mols.unique.items()}
    counts = Counter(per_mol[s] for s in mols.smiles)
    counts.pop(None, None)
    return counts


def scaffold_similarity(gen: Sequence[str], ref: Sequence[str], min_rings: int = 2) -> float:
    """Scaf(G, R) = cos(s_G, s_R) (MOSES paper, "Metrics").

    s_X[k] counts the valid molecules of X whose Bemis-Murcko scaffold (``MurckoScaffold.
    GetScaffoldForMol``) is k. The paper does not mention it, but the MOSES code
    (``compute_scaffolds``, used by ``ScafMetric``) drops scaffolds with fewer than
    ``min_rings = 2`` rings, and acyclic molecules (empty scaffold) always; the default here
    matches the published numbers, ``min_rings=1`` keeps single-ring scaffolds such as benzene.
    nan if either set has no counted scaffold (as MOSES).
    """
    return _cosine(_scaffold_counts(_MolSet.parse(gen, "gen"), min_rings),
                   _scaffold_counts(_MolSet.parse(ref, "ref"), min_rings))


# ----------------------------------------------------------------------------------------------
# filters


def _moses_metrics_dir() -> Path:
    return molsets_folder("the MOSES filters (MCF and PAINS patterns)") / "metrics"


@lru_cache(maxsize=1)
def _filter_patterns() -> tuple[Chem.Mol, ...]:
    """The MCF (mcf.csv: header ``names,smarts``) and PAINS (wehi_pains.csv: ``smarts,name``
    rows, no header) SMARTS patterns shipped with molsets, compiled once per process."""
    folder = _moses_metrics_dir()
    smarts: list[str] = []
    try:
        with open(folder / "mcf.csv", newline="") as f:
            smarts += [row["smarts"] for row in csv.DictReader(f)]
        with open(folder / "wehi_pains.csv", newline="") as f:
            smarts += [row[0] for row in csv.reader(f) if row]
    except (OSError, KeyError, csv.Error) as e:
        raise DataError(f"cannot read the MOSES filter files in {folder} ({e}); "
                        f"reinstall them: {INSTALL_HINT}") from None
    patterns = []
    for s in smarts:
        pattern = Chem.MolFromSmarts(s.strip())
        if pattern is None:
            raise DataError(f"unparsable SMARTS {s.strip()!r} in {folder}; reinstall: {INSTALL_HINT}")
        patterns.append(pattern)
    return tuple(patterns)


def _passes_filters(mol: Chem.Mol, patterns: tuple[Chem.Mol, ...]) -> bool:
    """MOSES' ``mol_passes_filters``: the rules used to build the MOSES dataset.

    A molecule passes if it has no ring of 8 or more atoms, no charged atom, only the atoms
    C, N, S, O, F, Cl, Br, H, matches none of the MCF and PAINS patterns (matched with explicit
    hydrogens, since some patterns name [#1]), and its non-isomeric SMILES parses back.
    """
    if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
        return False
    if any(atom.GetFormalCharge() != 0 for atom in mol.GetAtoms()):
        return False
    if any(atom.GetSymbol() not in ALLOWED_ATOMS for atom in mol.GetAtoms()):
        return False
    with_h = Chem.AddHs(mol)
    if any(with_h.HasSubstructMatch(p) for p in patterns):
        return False
    return _mol(Chem.MolToSmiles(mol, isomericSmiles=False)) is not None


def _fraction_passes(gen: _MolSet) -> float:
    if len(gen) == 0:
        return math.nan
    patterns = _filter_patterns()
    return float(gen.per_molecule(lambda m: _passes_filters(m, patterns)).mean())


def fraction_passes_filters(gen: Sequence[str]) -> float:
    """Fraction of the valid generated molecules that pass MOSES' filters (MOSES "Filters").

    The denominator is the valid molecules, as in MOSES' ``get_all_metrics`` (which removes the
    invalid ones first). Needs the molsets data files (``DataError`` otherwise).
    """
    return _fraction_passes(_MolSet.parse(gen, "gen"))


# ----------------------------------------------------------------------------------------------
# property distributions


@lru_cache(maxsize=1)
def _sa_scorer() -> Callable[[Chem.Mol], float]:
    """RDKit Contrib's SA_Score (Ertl & Schuffenhauer 2009), the score MOSES ships a copy of."""
    try:
        from rdkit.Contrib.SA_Score import sascorer
    except ImportError:  # conda builds keep Contrib outside the package
        from rdkit import RDConfig
        path = Path(RDConfig.RDContribDir) / "SA_Score" / "sascorer.py"
        spec = importlib.util.spec_from_file_location("_twopaths_sascorer", path)
        if spec is None or not path.exists():
            raise TwopathsError(f"RDKit's SA_Score is missing ({path}); reinstall rdkit") from None
        sascorer = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sascorer)
    return sascorer.calculateScore


def _property_functions() -> dict[str, Callable[[Chem.Mol], float]]:
    return {"logP": Crippen.MolLogP,  # Wildman & Crippen 1999
            "SA": _sa_scorer(),
            "QED": _qed,  # Bickerton et al. 2012
            "weight": Descriptors.MolWt}


def _property_distances(gen: _MolSet, ref: _MolSet) -> dict[str, float]:
    from scipy.stats import wasserstein_distance

    out = {}
    for name, fn in _property_functions().items():
        if len(gen) == 0 or len(ref) == 0:
            out[name] = math.nan
        else:
            out[name] = float(wasserstein_distance(ref.per_molecule(fn), gen.per_molecule(fn)))
    return out


def property_distances(gen: Sequence[str], ref: Sequence[str]) -> dict[str, float]:
    """Wasserstein-1 distances between property distributions of gen and ref (MOSES "Metrics").

    W1(P, Q) = integral |F_P(x) - F_Q(x)| dx over the empirical distributions of each property
    on the valid molecules (duplicates kept): keys ``logP`` (Crippen), ``SA`` (synthetic
    accessibility), ``QED`` (drug-likeness) and ``weight`` (average molecular weight, Da).
    """
    return _property_distances(_MolSet.parse(gen, "gen"), _MolSet.parse(ref, "ref"))


# ----------------------------------------------------------------------------------------------
# all of them


def _fcd(gen: _MolSet, ref: _MolSet) -> float:
    from twopaths.eval.chemnet import fcd  # torch and ChemNet's weights only when FCD is asked for

    return fcd(gen.smiles, ref.smiles) if len(gen) >= 2 and len(ref) >= 2 else math.nan


def moses_metrics(gen: Sequence[str], train: Sequence[str] | None, test: Sequence[str],
                  n_unique: Sequence[int] = UNIQUE_AT,
                  test_scaffolds: Sequence[str] | None = None, fcd: bool = True) -> dict[str, float]:
    """The MOSES metrics, keyed as MOSES' ``get_all_metrics`` names them.

    Keys, in this order: ``valid``; ``unique@k`` for each k in ``n_unique`` that is at most the
    number of valid molecules (omitted otherwise: MOSES would report a smaller sample under that
    name); ``FCD/Test`` (:func:`twopaths.eval.chemnet.fcd` on the valid molecules; ``nan`` with
    fewer than two; left out with ``fcd=False``), ``SNN/Test``, ``Frag/Test``, ``Scaf/Test``; the
    same against ``test_scaffolds`` as ``.../TestSF`` if given; ``IntDiv`` and ``IntDiv2``
    (per-molecule root, as MOSES' code);
    ``Filters`` (needs the molsets data files); ``logP``, ``SA``, ``QED``, ``weight``
    (Wasserstein-1 to test); ``Novelty`` unless ``train`` is None. Each set is parsed once and
    each molecule's fingerprint computed once.
    """
    g = _MolSet.parse(gen, "gen")
    t = _MolSet.parse(test, "test")
    out: dict[str, float] = {"valid": len(g) / g.n_input}
    for k in n_unique:
        if len(g) >= k:
            out[f"unique@{k}"] = _unique_at(g.smiles, k)
    refs = [("Test", t)] + ([("TestSF", _MolSet.parse(test_scaffolds, "test_scaffolds"))]
                            if test_scaffolds is not None else [])
    g_frags, g_scafs = _fragment_counts(g), _scaffold_counts(g, 2)
    for suffix, ref in refs:
        if fcd:
            out[f"FCD/{suffix}"] = _fcd(g, ref)
        out[f"SNN/{suffix}"] = _snn(g, ref)
        out[f"Frag/{suffix}"] = _cosine(g_frags, _fragment_counts(ref))
        out[f"Scaf/{suffix}"] = _cosine(g_scafs, _scaffold_counts(ref, 2))
    intdiv = _intdiv(g.fingerprints(), (1, 2), "per_molecule")
    out["IntDiv"], out["IntDiv2"] = intdiv[1], intdiv[2]
    out["Filters"] = _fraction_passes(g)
    out.update(_property_distances(g, t))
    if train is not None:
        _check_not_str(train, "train")
        out["Novelty"] = _novelty(g, _canonical_set(train))
    return out
