"""The published MOSES baselines, to print beside our own molecule models.

Polykovskiy et al. 2020, "Molecular Sets (MOSES): A Benchmarking Platform for Molecular Generation
Models", Front. Pharmacol. 11:565644, table of metrics (as kept in the README of
github.com/molecularsets/moses): each baseline trained on MOSES' full train split on a GPU, 30,000
molecules sampled, the mean over 3 runs (the standard deviations are left out here). ``Train`` is the
training set itself scored as if it had been generated. Keys are :func:`twopaths.eval.molecules.moses_metrics`'
names; the test sets are MOSES' whole test (176k) and scaffold-test sets.
"""

from __future__ import annotations

COLUMNS = ("valid", "unique@1000", "unique@10000", "FCD/Test", "FCD/TestSF", "SNN/Test", "SNN/TestSF", "Frag/Test",
           "Frag/TestSF", "Scaf/Test", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "Novelty")

_ROWS = {
    "Train": (1.0, 1.0, 1.0, 0.008, 0.4755, 0.6419, 0.5859, 1.0, 0.9986, 0.9907, 0.0, 0.8567, 0.8508, 1.0, 1.0),
    "HMM": (0.076, 0.623, 0.5671, 24.4661, 25.4312, 0.3876, 0.3795, 0.5754, 0.5681, 0.2065, 0.049, 0.8466, 0.8104,
            0.9024, 0.9994),
    "NGram": (0.2376, 0.974, 0.9217, 5.5069, 6.2306, 0.5209, 0.4997, 0.9846, 0.9815, 0.5302, 0.0977, 0.8738, 0.8644,
              0.9582, 0.9694),
    "Combinatorial": (1.0, 0.9983, 0.9909, 4.2375, 4.5113, 0.4514, 0.4388, 0.9912, 0.9904, 0.4445, 0.0865, 0.8732,
                      0.8666, 0.9557, 0.9878),
    "CharRNN": (0.9748, 1.0, 0.9994, 0.0732, 0.5204, 0.6015, 0.5649, 0.9998, 0.9983, 0.9242, 0.1101, 0.8562, 0.8503,
                0.9943, 0.8419),
    "AAE": (0.9368, 1.0, 0.9973, 0.5555, 1.0572, 0.6081, 0.5677, 0.991, 0.9905, 0.9022, 0.0789, 0.8557, 0.8499, 0.996,
            0.7931),
    "VAE": (0.9767, 1.0, 0.9984, 0.099, 0.567, 0.6257, 0.5783, 0.9994, 0.9984, 0.9386, 0.0588, 0.8558, 0.8498, 0.997,
            0.6949),
    "JTN-VAE": (1.0, 1.0, 0.9996, 0.3954, 0.9382, 0.5477, 0.5194, 0.9965, 0.9947, 0.8964, 0.1009, 0.8551, 0.8493,
                0.976, 0.9143),
    "LatentGAN": (0.8966, 1.0, 0.9968, 0.2968, 0.8281, 0.5371, 0.5132, 0.9986, 0.9972, 0.8867, 0.1072, 0.8565,
                  0.8505, 0.9735, 0.9498),
}

#: model -> {metric: published mean}
PUBLISHED: dict[str, dict[str, float]] = {model: dict(zip(COLUMNS, values, strict=True))
                                          for model, values in _ROWS.items()}

__all__ = ["COLUMNS", "PUBLISHED"]
