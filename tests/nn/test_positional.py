import math

import torch

from twopaths.nn.positional import LearnedPositions, RotaryEmbedding, sinusoidal


def test_sinusoidal_follows_the_formula():
    pos = torch.arange(50)
    d = 16
    enc = sinusoidal(pos, d)
    assert enc.shape == (50, d)
    for i in range(d // 2):  # channel i: sin(pos / 10000^(2i/d)); channel d/2 + i: the matching cos
        freq = 1.0 / 10000 ** (2 * i / d)
        assert torch.allclose(enc[:, i], torch.sin(pos * freq), atol=1e-5)
        assert torch.allclose(enc[:, d // 2 + i], torch.cos(pos * freq), atol=1e-5)
    assert sinusoidal(pos, 7).shape == (50, 7)


def test_learned_positions_are_trainable_embeddings():
    wpe = LearnedPositions(32, 8)
    assert wpe.weight.shape == (32, 8) and wpe.weight.requires_grad


def test_rope_preserves_norm_and_depends_on_relative_position():
    rope = RotaryEmbedding(8)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)

    def score(m, n):
        return float((rope(q, torch.tensor([[m]])) * rope(k, torch.tensor([[n]]))).sum())

    assert math.isclose(score(3, 1), score(10, 8), rel_tol=1e-5)  # same offset, same score
    assert not math.isclose(score(3, 1), score(3, 2), rel_tol=1e-3)
    assert torch.allclose(rope(q, torch.tensor([[7]])).norm(), q.norm(), atol=1e-5)
    assert torch.allclose(rope(q, torch.tensor([[0]])), q)  # position 0 is no rotation
