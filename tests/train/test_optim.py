import math

import pytest
import torch
from torch import nn

from twopaths.config import OptimConfig
from twopaths.training.ema import EMA
from twopaths.training.optim import build_adamw, effective_warmup, lr_at, param_groups


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.norm = nn.LayerNorm(4)
        self.proj = nn.Linear(4, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight  # tied, as in GPT-2


def test_no_decay_on_norms_biases_embeddings():
    m = Tied()
    decay, no_decay = param_groups(m, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert [p is m.proj.weight for p in decay["params"]] == [True]
    ids = {id(p) for p in no_decay["params"]}
    assert ids == {id(m.embed.weight), id(m.norm.weight), id(m.norm.bias), id(m.proj.bias)}
    # every trainable parameter is in exactly one group, tied ones once
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(m.parameters()))


def test_adamw_is_fused_only_on_cuda():
    opt = build_adamw(Tied(), OptimConfig(), torch.device("cpu"))
    assert not opt.defaults.get("fused")


def test_schedule_warmup_then_cosine():
    cfg = OptimConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg, 110) for s in range(1, 111)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # linear to the peak
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # then never rises
    assert lrs[-1] == pytest.approx(0.1)  # ends exactly at lr * min_lr_ratio
    assert lr_at(60, cfg, 110) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))


def test_schedule_without_warmup():
    cfg = OptimConfig(lr=2.0, warmup_steps=0, min_lr_ratio=0.0)
    assert lr_at(1, cfg, 100) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi / 100)))
    assert lr_at(100, cfg, 100) == pytest.approx(0.0, abs=1e-12)


def test_ema_warmup_and_average():
    m = nn.Linear(2, 1)
    ema = EMA(m, decay=0.9, warmup=True)
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(1000) == 0.9
    with torch.no_grad():
        m.weight.fill_(1.0)
        m.bias.fill_(1.0)
    start = ema.shadow["weight"].clone()
    ema.update(m, step=1000)  # decay 0.9
    assert torch.allclose(ema.shadow["weight"], 0.9 * start + 0.1)


def test_ema_applied_restores_weights():
    m = nn.Linear(3, 3)
    ema = EMA(m, decay=0.5)
    before = m.weight.detach().clone()
    ema.shadow["weight"].zero_()
    with ema.applied(m):
        assert torch.all(m.weight == 0)
    assert torch.equal(m.weight, before)


def test_warmup_is_capped_to_a_tenth_of_the_run():
    cfg = OptimConfig(lr=1.0, warmup_steps=500, min_lr_ratio=0.1)
    assert effective_warmup(cfg, 200) == 20  # a 200-step run must still reach its learning rate
    assert lr_at(20, cfg, 200) == pytest.approx(1.0)
    assert max(lr_at(s, cfg, 200) for s in range(1, 201)) == pytest.approx(1.0)
    assert effective_warmup(cfg, 10_000) == 500  # long runs keep the preset's warmup
    assert effective_warmup(OptimConfig(warmup_steps=0), 200) == 0
