"""Mode coverage on the known 2-D mixtures: real samples cover every mode, a collapsed set does not."""

import pytest
import torch

from twopaths.data.toy import mixture_modes, sample_mixture
from twopaths.errors import TwopathsError
from twopaths.eval.coverage import mode_coverage


def test_real_samples_cover_every_mode_and_collapse_is_counted():
    modes, std = mixture_modes("ring8")
    x, labels = sample_mixture("ring8", 2000, seed=0)
    real = mode_coverage(x, modes, std)
    assert real["modes_covered"] == 8 and real["modes"] == 8 and real["high_quality"] > 0.98
    assert sum(real["per_mode"]) == pytest.approx(real["high_quality"] * 2000)
    # three modes only, plus 30% of samples scattered far from any mode
    kept = x[labels < 3][:700]
    junk = torch.full((300, 2), 0.0)  # the ring's centre, 2 away from every mode
    out = mode_coverage(torch.cat([kept, junk]), modes, std)
    assert out["modes_covered"] == 3 and out["high_quality"] == pytest.approx(0.7, abs=0.01)
    assert out["per_mode"][3:] == [0] * 5


def test_a_mode_needs_one_percent_of_the_samples():
    modes, std = mixture_modes("grid25")
    x = torch.cat([modes[0].repeat(995, 1), modes[1].repeat(5, 1)])  # 0.5% at mode 1
    assert mode_coverage(x, modes, std)["modes_covered"] == 1
    with pytest.raises(TwopathsError, match="NaN"):
        mode_coverage(torch.tensor([[float("nan"), 0.0]]), modes, std)
