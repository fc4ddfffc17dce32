"""Feature networks for image metrics: small CNN classifiers trained in-project.

FID (Heusel et al. 2017), KID (Binkowski et al. 2018) and precision/recall (Kynkäänniemi et al.
2019) compare two sets of images through the penultimate features of a classifier. The papers
use Inception-v3 trained on ImageNet; its weights cannot be downloaded here and it knows nothing
of 28x28 grey clothes, so twopaths trains its own classifier per dataset
(``scripts/train_feature_net.py``, a fixed recipe and seed) and ships the weights as
safetensors with a JSON card. Numbers computed with them are comparable with each other, not
with published Inception FIDs; every metric is printed with :attr:`FeatureNet.identity` so a
reader knows which network produced it.

A card (``NAME.json`` beside ``NAME.safetensors``) holds ``arch`` (the constructor arguments
of :class:`FeatureNet`), ``test_accuracy``, ``sha256`` of the weights file, the recipe, date and
torch version. :func:`load_feature_net` checks the hash, so a stale or corrupt file is reported,
never silently used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from twopaths.errors import TwopathsError

__all__ = ["SHIPPED", "WEIGHTS_DIR", "FeatureNet", "extract", "file_sha256", "load_feature_net", "load_verified",
           "read_card", "verified_card", "vgg_blocks"]

WEIGHTS_DIR = Path(__file__).parent / "weights"
#: names of the feature networks that ship with the package (``WEIGHTS_DIR/NAME.safetensors``)
SHIPPED: tuple[str, ...] = ("fashion-mnist", "shapes")


def vgg_blocks(in_channels: int, resolution: int, widths: Sequence[int], convs: int,
               owner: str) -> tuple[nn.Sequential, int]:
    """VGG's body (Simonyan & Zisserman 2015): per width, ``convs`` x (conv3x3-BN-ReLU) then a 2x2 max-pool;
    returns it and the side of its output feature map. ``owner`` names the network in the error for a
    ``resolution`` too small to pool that often."""
    layers: list[nn.Module] = []
    c, r = in_channels, resolution
    for w in widths:
        for _ in range(convs):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        layers.append(nn.MaxPool2d(2))
        r //= 2
    if r < 1:
        raise TwopathsError(f"{owner}: resolution {resolution} is too small for {len(widths)} pooling blocks")
    return nn.Sequential(*layers), r


class FeatureNet(nn.Module):
    """A small VGG-style CNN (Simonyan & Zisserman 2015): ``len(widths)`` blocks of
    (conv3x3-BN-ReLU) x ``convs`` then 2x2 max-pool, flatten, a ``dim``-wide ReLU layer (the
    features) and, after dropout, a linear classifier.

    Inputs are images in ``[-1, 1]``, ``(N, in_channels, resolution, resolution)``, exactly as the
    datasets yield them. BatchNorm (Ioffe & Szegedy 2015) makes training fast; in :meth:`eval`
    mode the network is a fixed deterministic function, which is what a metric needs.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, resolution: int = 28,
                 widths: Sequence[int] = (32, 64, 128), convs: int = 1, dim: int = 256,
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.arch = {"in_channels": in_channels, "num_classes": num_classes, "resolution": resolution,
                     "widths": list(widths), "convs": convs, "dim": dim, "dropout": dropout}
        self.body, r = vgg_blocks(in_channels, resolution, widths, convs, "FeatureNet")
        self.embed = nn.Linear(widths[-1] * r * r, dim)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim, num_classes)
        self.dim = dim  # D, the feature dimension
        self.identity = "FeatureNet (untrained)"  # set by load_feature_net

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, R, R) in [-1, 1] -> (N, D) penultimate features (non-negative: after ReLU)."""
        a = self.arch
        if x.ndim != 4 or tuple(x.shape[1:]) != (a["in_channels"], a["resolution"], a["resolution"]):
            raise TwopathsError(f"feature net {self.identity} takes images of shape (N, {a['in_channels']}, "
                                f"{a['resolution']}, {a['resolution']}), got {tuple(x.shape)}")
        h = self.body(x)  # (N, widths[-1], R / 2**L, R / 2**L)
        return torch.relu(self.embed(h.flatten(1)))  # (N, D)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, R, R) in [-1, 1] -> (N, classes)."""
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))  # (N, classes); dropout acts only in training


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_card(weights: Path, card: dict[str, Any], *, script: str, seconds: float,
               cpu_seconds: float | None = None) -> dict[str, Any]:
    """Write the JSON card beside a trained network's ``weights`` (``X.safetensors`` -> ``X.json``): what
    the training script measured (``card``) and how the weights came to be: wall-clock (and CPU) seconds
    of training, the date, torch's version, the weights' SHA-256 (checked on every load) and the script.
    Prints one line and returns the card."""
    import datetime

    card = {**card, "train_seconds": round(seconds, 1),  # wall clock (the machine may be shared)
            **({"train_cpu_seconds": round(cpu_seconds, 1)} if cpu_seconds is not None else {}),
            "date": datetime.date.today().isoformat(), "torch": torch.__version__, "sha256": file_sha256(weights),
            "script": script}
    weights.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and its card", flush=True)
    return card


def _resolve(name_or_path: str | Path, *, shipped: Sequence[str] = SHIPPED, kind: str = "feature net",
             script: str = "scripts/train_feature_net.py") -> tuple[Path, Path]:
    """(weights file, card file) for a shipped name or a user's ``.safetensors`` path.

    ``shipped``, ``kind`` and ``script`` let other networks that ship the same way (weights and a
    card in :data:`WEIGHTS_DIR`, e.g. :mod:`twopaths.eval.shapes_reader`) share this loading.
    """
    if str(name_or_path) in shipped:
        weights = WEIGHTS_DIR / f"{name_or_path}.safetensors"
    else:
        weights = Path(name_or_path).expanduser()
        if weights.suffix != ".safetensors":
            raise TwopathsError(f"unknown {kind} '{name_or_path}'; use one of {', '.join(shipped)} "
                                f"or a path to a .safetensors file with a .json card beside it")
    card = weights.with_suffix(".json")
    for path, what in ((weights, "weights"), (card, "card")):
        if not path.is_file():
            hint = f" (run {script} to make it)" if str(name_or_path) in shipped else ""
            raise TwopathsError(f"{kind} {what} not found: {path}{hint}")
    return weights, card


def read_card(name_or_path: str | Path, **where: Any) -> dict[str, Any]:
    """The JSON card of a shipped or user feature net (``where``: the keywords of :func:`_resolve`)."""
    _, card = _resolve(name_or_path, **where)
    try:
        return json.loads(card.read_text())
    except json.JSONDecodeError as exc:
        raise TwopathsError(f"{where.get('kind', 'feature net')} card {card} is not valid JSON ({exc})") from None


def verified_card(name_or_path: str | Path, **where: Any) -> tuple[Path, dict[str, Any], str]:
    """(weights file, card, SHA-256 of the weights) once the hash is checked against the card's."""
    weights, _ = _resolve(name_or_path, **where)
    card = read_card(name_or_path, **where)
    digest = file_sha256(weights)
    if card.get("sha256") and card["sha256"] != digest:
        raise TwopathsError(f"{where.get('kind', 'feature net')} weights {weights} do not match their card "
                            f"(sha256 {digest[:12]} != {card['sha256'][:12]}); the file is corrupt or the card "
                            f"is stale")
    return weights, card, digest


def load_verified(name_or_path: str | Path, build: Callable[[dict[str, Any]], nn.Module],
                  **where: Any) -> tuple[nn.Module, str, str]:
    """(network with the file's weights in eval mode, the name to show, the weights' SHA-256) for a
    shipped name or a ``.safetensors`` path, once the hash matches the card; ``build(card["arch"])``
    makes the empty network and ``net.card`` keeps the card. Every shipped network loads this way
    (``where``: the keywords of :func:`_resolve`)."""
    from safetensors.torch import load_file

    weights, card, digest = verified_card(name_or_path, **where)
    try:
        net = build(card["arch"])
        net.load_state_dict(load_file(str(weights)))
    except (KeyError, TypeError, RuntimeError) as exc:
        raise TwopathsError(f"{where.get('kind', 'feature net')} {weights} does not fit its card's arch "
                            f"({str(exc).splitlines()[0]})") from None
    net.card = card
    name = str(name_or_path) if str(name_or_path) in where.get("shipped", SHIPPED) else weights.stem
    return net.eval(), name, digest


def load_feature_net(name_or_path: str | Path, device: torch.device | str = "cpu") -> FeatureNet:
    """A trained :class:`FeatureNet` in eval mode, by shipped name (``"fashion-mnist"``,
    ``"shapes"``) or by path to a user's ``.safetensors`` file with a ``.json`` card beside it.

    The weights' SHA-256 must match the card. ``net.identity`` reads e.g.
    ``"fashion-mnist@1a2b3c4d (test acc 93.1%)"``.
    """
    net, name, digest = load_verified(name_or_path, lambda arch: FeatureNet(**arch))
    acc = net.card.get("test_accuracy")
    net.identity = f"{name}@{digest[:8]}" + (f" (test acc {100 * acc:.1f}%)" if acc is not None else "")
    return net.to(device)


def _as_batches(images: torch.Tensor | Dataset, batch_size: int):
    """Yield (B, C, H, W) float tensors from a tensor or an image dataset (uint8 kept until batched)."""
    if isinstance(images, torch.Tensor):
        for i in range(0, len(images), batch_size):
            yield images[i:i + batch_size]
        return
    stored = getattr(images, "images", None)  # an ImageDataset: convert whole batches, not items
    for i in range(0, len(images), batch_size):
        if isinstance(stored, torch.Tensor) and stored.dtype == torch.uint8:
            yield stored[i:i + batch_size].float().div_(127.5).sub_(1.0)
        else:
            yield torch.stack([images[j]["image"] for j in range(i, min(len(images), i + batch_size))])


@torch.no_grad()
def extract(net: FeatureNet, images: torch.Tensor | Dataset, batch_size: int = 500, with_logits: bool = False,
            progress: bool = True) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Features of ``images`` ((N, C, H, W) in [-1, 1], or an image dataset) in batches.

    Returns (N, D) float32 features, and (N, classes) logits too when ``with_logits``.
    """
    if len(images) == 0:
        raise TwopathsError("no images to extract features from")
    device = next(net.parameters()).device
    net.eval()
    feats, logits = [], []
    total = (len(images) + batch_size - 1) // batch_size
    for x in tqdm(_as_batches(images, batch_size), total=total, desc="features", unit="batch",
                  disable=not progress, leave=False):
        f = net.features(x.to(device, torch.float32))  # (B, D)
        feats.append(f.float().cpu())
        if with_logits:
            logits.append(net.head(f).float().cpu())  # (B, classes)
    out = torch.cat(feats)
    return (out, torch.cat(logits)) if with_logits else out
