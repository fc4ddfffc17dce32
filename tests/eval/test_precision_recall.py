"""Precision/recall, density/coverage and class statistics: brute-force oracles and known cases."""

import math

import pytest
import torch

from twopaths.errors import TwopathsError
from twopaths.eval import precision_recall as pr
from twopaths.eval.precision_recall import class_statistics, knn_radii, manifold_metrics


def _oracle(real: torch.Tensor, fake: torch.Tensor, k_pr: int, k_dc: int) -> dict:
    """The papers' definitions with full float64 distance matrices."""
    real, fake = real.double(), fake.double()
    rr, ff, fr = torch.cdist(real, real), torch.cdist(fake, fake), torch.cdist(fake, real)
    r_real = lambda k: rr.sort(1).values[:, k]  # noqa: E731  column 0 is the point itself
    r_fake = ff.sort(1).values[:, k_pr]
    return {"precision": float((fr <= r_real(k_pr)[None]).any(1).double().mean()),
            "recall": float((fr <= r_fake[:, None]).any(0).double().mean()),
            "density": float((fr <= r_real(k_dc)[None]).double().sum() / (k_dc * len(fake))),
            "coverage": float((fr.min(0).values <= r_real(k_dc)).double().mean())}


def test_chunked_metrics_match_the_brute_force_definitions(monkeypatch):
    monkeypatch.setattr(pr, "_CHUNK", 37)  # several uneven chunks
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(300, 8, generator=gen), 1.2 * torch.randn(250, 8, generator=gen) + 0.2
    got, want = manifold_metrics(real, fake), _oracle(real, fake, 3, 5)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key
    assert knn_radii(real, (3,))[3].shape == (300,)


def test_noise_lowers_precision_and_one_mode_lowers_recall():
    gen = torch.Generator().manual_seed(1)
    centres = 6 * torch.randn(10, 8, generator=gen)  # 10 well separated classes
    def draw(n, classes):
        c = torch.as_tensor(classes)[torch.randint(len(classes), (n,), generator=gen)]
        return centres[c] + torch.randn(n, 8, generator=gen)
    real, same = draw(1000, range(10)), draw(1000, range(10))
    noisy = same + 1.5 * torch.randn(1000, 8, generator=gen)
    collapsed = draw(1000, [3])
    m_same, m_noisy, m_one = (manifold_metrics(real, f) for f in (same, noisy, collapsed))
    assert m_same["precision"] > 0.75 and m_same["recall"] > 0.75 and 0.7 < m_same["density"] < 1.3
    assert m_noisy["precision"] < m_same["precision"] - 0.3
    assert m_one["recall"] < 0.2 and m_one["precision"] > 0.75 and m_one["coverage"] < 0.2


def test_class_statistics():
    uniform = torch.eye(4).repeat(25, 1) * 20  # confident, every class equally often
    s = class_statistics(uniform)
    assert s["histogram"] == [0.25] * 4 and s["class_entropy"] == pytest.approx(math.log(4))
    assert s["class_entropy_norm"] == pytest.approx(1.0) and s["inception_score"] == pytest.approx(4.0, rel=1e-3)
    one = class_statistics(torch.tensor([[9.0, 0, 0, 0]]).repeat(50, 1))
    assert one["class_entropy_norm"] == 0.0 and one["inception_score"] == pytest.approx(1.0)
    with pytest.raises(TwopathsError, match="logits"):
        class_statistics(torch.zeros(3))
