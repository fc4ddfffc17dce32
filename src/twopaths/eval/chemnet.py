"""ChemNet features and the Fréchet ChemNet Distance (FCD) between two sets of molecules.

Preuer et al. 2018, "Fréchet ChemNet Distance: A Metric for Generative Models for Molecules in Drug
Discovery", J. Chem. Inf. Model. 58(9):1736. ChemNet was trained to predict ~6,000 biological
activities from SMILES; the FCD is the Fréchet distance (Heusel et al. 2017, eq. 6) between Gaussians
fitted to its penultimate activations (512 per molecule) on two sets of molecules. MOSES reports it as
``FCD/Test`` (generated vs the test set, lower is better) using ``fcd_torch``, the PyTorch port of
ChemNet whose weights file (``fcd_torch/ChemNet_v0.13_pretrained.pt``, 5.6 MB) ships in its wheel.

The network is written out here, and the weights are read from that file with
``torch.load(weights_only=True)`` (tensors and plain containers only: no code is unpickled). The
package is never imported. What the MOSES numbers depend on, as ``fcd_torch`` computes them:

* each SMILES is made canonical by RDKit, split into ChemNet's 35 symbols (two letters when the second
  is ``r``, ``i`` or ``l``, as in ``Br``, ``Si``, ``Cl``; anything outside the vocabulary is ``X``),
  followed by the end symbol ``.``, one-hot encoded, zero-padded to 350 positions and divided by 35;
* two 1-D convolutions (kernel 4, stride 2, TensorFlow "same" padding, no bias) with SELU;
* two LSTMs (128 then 512 units) that each read their input in reverse order (Keras' ``go_backwards``:
  the first one's output sequence is left reversed, so the second reads it in the original order);
  the feature is the second LSTM's last output.

:func:`chemnet_features` computes the features, :func:`fcd` the distance; ``tests/eval/test_fcd.py``
checks both against ``fcd_torch`` itself.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rdkit import Chem, rdBase
from torch import nn

from twopaths.errors import DataError, TwopathsError
from twopaths.eval.fid import feature_statistics, frechet_distance

__all__ = ["CHEMNET_LENGTH", "CHEMNET_VOCAB", "ChemNet", "chemnet_features", "chemnet_one_hot", "chemnet_weights_path",
           "fcd", "load_chemnet"]

#: ChemNet's input symbols, in the order of its one-hot columns (``X``: any other symbol; ``.``: end)
CHEMNET_VOCAB = ("C", "N", "O", "H", "F", "Cl", "P", "B", "Br", "S", "I", "Si", "#", "(", ")", "+", "-", "1",
                 "2", "3", "4", "5", "6", "7", "8", "=", "[", "]", "@", "c", "n", "o", "s", "X", ".")
CHEMNET_LENGTH = 350  # positions of the one-hot input; longer SMILES are cut (their last position is the end)
_INDEX = {symbol: i for i, symbol in enumerate(CHEMNET_VOCAB)}
_SECOND_LETTERS = frozenset("ril")
WEIGHTS_FILE = "ChemNet_v0.13_pretrained.pt"
INSTALL_HINT = "pip install fcd_torch (a dependency of twopaths: 'make test' and 'make demo' install it)"


def _symbols(smiles: str) -> list[str]:
    """ChemNet's reading of ``smiles``: symbols up to the first ``.`` (a second fragment is not read)."""
    out, i, text = [], 0, smiles + "."
    while text[i] != ".":
        width = 2 if text[i + 1] in _SECOND_LETTERS else 1
        out.append(text[i:i + width])
        i += width
    return out


def chemnet_one_hot(smiles: Sequence[str], length: int = CHEMNET_LENGTH) -> torch.Tensor:
    """(B, length, 35) float32 inputs of ChemNet for SMILES strings taken as they are (not canonicalised):
    one row per symbol then the end symbol, zero rows after it, all divided by 35 as ChemNet was trained."""
    x = torch.zeros(len(smiles), length, len(CHEMNET_VOCAB))
    unknown, end = _INDEX["X"], _INDEX["."]
    for row, s in enumerate(smiles):
        idx = [_INDEX.get(sym, unknown) for sym in _symbols(s)][:length - 1] + [end]
        x[row, torch.arange(len(idx)), torch.tensor(idx)] = 1.0
    return x / len(CHEMNET_VOCAB)


def _same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of a 1-D convolution: the output has ceil(length / stride) positions,
    the total padding is split with the extra position on the right."""
    total = max((math.ceil(length / stride) - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


class ChemNet(nn.Module):
    """ChemNet up to its penultimate layer (Preuer et al. 2018): conv-conv-LSTM-LSTM, 512 features."""

    def __init__(self, vocab: int = len(CHEMNET_VOCAB), channels: int = 32, kernel: int = 4, stride: int = 2,
                 hidden: tuple[int, int] = (128, 512)):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv1 = nn.Conv1d(vocab, channels, kernel, stride, bias=False)
        self.conv2 = nn.Conv1d(channels, channels, kernel, stride, bias=False)
        self.lstm1 = nn.LSTM(channels, hidden[0], batch_first=True)
        self.lstm2 = nn.LSTM(hidden[0], hidden[1], batch_first=True)

    def _conv(self, conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
        return F.selu(conv(F.pad(x, _same_padding(x.shape[-1], self.kernel, self.stride))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, L, 35) one-hot / 35
        h = self._conv(self.conv2, self._conv(self.conv1, x.transpose(1, 2)))  # (B, 32, L/4)
        h, _ = self.lstm1(h.transpose(1, 2).flip(1))  # (B, L/4, 128), in reversed order
        h, _ = self.lstm2(h.flip(1))  # (B, L/4, 512)
        return h[:, -1]  # (B, 512)


def chemnet_weights_path() -> Path:
    """Where ``fcd_torch``'s ChemNet weights are, found without importing the package."""
    spec = importlib.util.find_spec("fcd_torch")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"FCD needs ChemNet's weights from the fcd_torch package, which is not installed: "
                        f"{INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE
    if not path.is_file():
        raise DataError(f"FCD needs ChemNet's weights, but {path} is missing: reinstall fcd_torch")
    return path


@lru_cache(maxsize=1)
def load_chemnet() -> ChemNet:
    """ChemNet with ``fcd_torch``'s weights, on the CPU, in eval mode (read once per process).

    The file holds a list of (layer type, (state dict, constructor arguments, notes)) for conv, conv,
    LSTM, LSTM; the shapes and the options this network assumes (same padding, SELU, reversed LSTMs,
    last output) are checked, so a different file is refused rather than misread."""
    path = chemnet_weights_path()
    try:
        layers = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same error for the user
        raise DataError(f"cannot read ChemNet's weights {path}: {exc}") from None
    net = ChemNet()
    expected = [("Conv1d", net.conv1, {"activation": "selu", "padding": "same"}),
                ("Conv1d", net.conv2, {"activation": "selu", "padding": "same"}),
                ("LSTM", net.lstm1, {"reverse": True, "last": False}),
                ("LSTM", net.lstm2, {"reverse": True, "last": True})]
    if not isinstance(layers, list) or len(layers) != len(expected):
        raise DataError(f"{path} is not ChemNet v0.13 as fcd_torch ships it (expected 4 layers)")
    for (kind, (state, _kwargs, notes)), (want_kind, module, want_notes) in zip(layers, expected):
        if kind != want_kind or any(notes.get(k) != v for k, v in want_notes.items()):
            raise DataError(f"{path} is not ChemNet v0.13 as fcd_torch ships it ({kind} {notes})")
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise DataError(f"{path}: ChemNet's {kind} weights do not fit: {exc}") from None
    return net.eval()


def chemnet_features(smiles: Sequence[str], batch_size: int = 512, canonicalize: bool = True,
                     device: str | torch.device = "cpu") -> np.ndarray:
    """(N, 512) float32 ChemNet activations of ``smiles``; each is made canonical by RDKit first (as MOSES),
    so an invalid SMILES is a :class:`TwopathsError` naming it (drop invalid molecules before)."""
    if isinstance(smiles, str):
        raise TwopathsError("chemnet_features takes a list of SMILES, not one string")
    if canonicalize:
        canon = []
        with rdBase.BlockLogs():
            for s in smiles:
                mol = Chem.MolFromSmiles(s)
                if mol is None:
                    raise TwopathsError(f"ChemNet features: invalid SMILES {s!r}; drop invalid molecules first")
                canon.append(Chem.MolToSmiles(mol))
        smiles = canon
    net = load_chemnet().to(device)
    out = []
    with torch.no_grad():
        for i in range(0, len(smiles), batch_size):
            out.append(net(chemnet_one_hot(smiles[i:i + batch_size]).to(device)).float().cpu())
    net.to("cpu")
    return torch.cat(out).numpy() if out else np.zeros((0, 512), np.float32)


def fcd(gen: Sequence[str] | tuple[np.ndarray, np.ndarray], ref: Sequence[str] | tuple[np.ndarray, np.ndarray],
        batch_size: int = 512) -> float:
    """Fréchet ChemNet Distance between two sets of valid SMILES (each at least 2 molecules), or between
    their precomputed ``(mean, covariance)`` of ChemNet features (:func:`twopaths.eval.fid.feature_statistics`)."""
    def stats(x):
        return x if isinstance(x, tuple) else feature_statistics(chemnet_features(x, batch_size=batch_size))
    return frechet_distance(*stats(gen), *stats(ref))
