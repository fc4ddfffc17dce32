"""The shipped feature networks and what metrics computed with them detect on real images:
noise raises FID and lowers precision, one class lowers recall and the class entropy."""

import json
import re
import shutil

import pytest
import torch

from twopaths.errors import TwopathsError
from twopaths.eval.features import SHIPPED, WEIGHTS_DIR, extract, load_feature_net, read_card
from twopaths.eval.fid import fid_from_features
from twopaths.eval.images import evaluate_images
from twopaths.eval.precision_recall import class_statistics, manifold_metrics


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_nets_load_with_a_truthful_card(name):
    card = read_card(name)
    for key in ("arch", "recipe", "test_accuracy", "date", "torch", "sha256", "parameters"):
        assert key in card, key
    assert (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size <= 5_000_000
    net = load_feature_net(name)
    assert net.identity.startswith(f"{name}@{card['sha256'][:8]}") and "test acc" in net.identity
    assert sum(p.numel() for p in net.parameters()) == card["parameters"]
    a = card["arch"]
    x = torch.zeros(2, a["in_channels"], a["resolution"], a["resolution"])
    assert net.features(x).shape == (2, net.dim) and net.logits(x).shape == (2, a["num_classes"])
    if name == "fashion-mnist":
        assert card["test_accuracy"] >= 0.92


def test_a_stale_card_or_wrong_input_is_reported(tmp_path):
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"shapes{suffix}", tmp_path / f"mine{suffix}")
    net = load_feature_net(tmp_path / "mine.safetensors")  # a user's own net by path
    assert net.identity.startswith("mine@")
    card = json.loads((tmp_path / "mine.json").read_text())
    (tmp_path / "mine.json").write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(TwopathsError, match="do not match their card"):
        load_feature_net(tmp_path / "mine.safetensors")
    with pytest.raises(TwopathsError, match="unknown feature net 'cifar'"):
        load_feature_net("cifar")
    with pytest.raises(TwopathsError, match="takes images of shape"):
        net.features(torch.zeros(1, 1, 32, 32))


def test_fid_rises_monotonically_with_noise_and_precision_falls(fashion, fm_net):
    (real, _), (other, _) = fashion["test"], fashion["train"]
    f_real = extract(fm_net, real, progress=False)
    gen = torch.Generator().manual_seed(0)
    fids, precisions, densities = [], [], []
    for sigma in (0.0, 0.1, 0.2, 0.3):
        noisy = (other + sigma * torch.randn(other.shape, generator=gen)).clamp(-1, 1)
        f = extract(fm_net, noisy, progress=False)
        fids.append(fid_from_features(f, f_real))
        m = manifold_metrics(f_real, f)
        precisions.append(m["precision"])
        densities.append(m["density"])
    assert all(a < b for a, b in zip(fids, fids[1:])), fids
    assert fids[-1] > 10 * fids[0], fids
    # (much heavier noise collapses the features into a blob that k-NN precision can count as
    # realistic again, the outlier weakness Naeem et al. 2020 point out; density stays low there)
    assert precisions[-1] < precisions[0] - 0.2 and densities[-1] < densities[0] - 0.4, (precisions, densities)


def test_one_class_lowers_recall_and_class_entropy(fashion, fm_net):
    (real, _), (other, labels) = fashion["test"], fashion["train"]
    sneakers = other[labels == 7]
    collapsed = sneakers[torch.arange(len(other)) % len(sneakers)]  # 1,000 images, all of one class
    out = evaluate_images(collapsed, real, other, fm_net, metrics=("pr", "classes"), progress=False)
    assert out["floor"]["recall"] > 0.6 and out["metrics"]["recall"] < 0.3
    assert out["floor"]["class_entropy_norm"] > 0.95 and out["metrics"]["class_entropy_norm"] < 0.2
    assert out["n"] == 1000 and out["feature_net"] == fm_net.identity
    # the classifier knows the classes: 90% of real images classified right, a balanced histogram
    logits = fm_net.logits(other)
    assert (logits.argmax(1) == labels).float().mean() > 0.88
    assert max(class_statistics(logits)["histogram"]) < 0.15


@pytest.mark.parametrize("convert, expected", [
    (lambda x: ((x + 1) * 127.5).round().to(torch.uint8), "the images are torch.uint8"),
    (lambda x: (x + 1) * 127.5, "(from 0..255: x / 127.5 - 1)"),
    (lambda x: (x + 1) / 2, "images in [0, 1]?"),
    (lambda x: x * 1.2, "clamp a sampler's overshoot first"),
    (lambda x: x.masked_fill(torch.zeros_like(x, dtype=torch.bool).index_fill_(0, torch.tensor([3]), True),
                             float("nan")), "NaN or infinite"),
])
def test_images_in_another_convention_are_refused_not_clamped(fashion, fm_net, convert, expected):
    real, other = fashion["test"][0][:64], fashion["train"][0][:64]
    with pytest.raises(TwopathsError, match=re.escape(expected)):
        evaluate_images(convert(other), real, real, fm_net, metrics=("fid",), progress=False)
