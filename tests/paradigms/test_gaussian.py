"""The Gaussian forward process, objectives, guidance, the variational bound, and a real training run
on the ring of 8 Gaussians that must cover every mode."""

import math

import pytest
import torch

from twopaths.nn.distributions import discretized_gaussian_log_likelihood, normal_kl
from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion
from twopaths.paradigms.schedule import NoiseSchedule, make_betas, min_snr_weight, q_sample, target_for, to_eps, to_x0


def test_closed_form_matches_iterating_the_markov_chain():
    """q(x_t | x_0) in one step has the moments of t+1 single noising steps x_s = sqrt(1-b_s) x_{s-1} + sqrt(b_s) e."""
    s = NoiseSchedule.make("linear", 200)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000,), 0.7)
    x = x0.clone()
    for step in range(120):
        beta = float(s.betas[step])
        x = math.sqrt(1 - beta) * x + math.sqrt(beta) * torch.randn(x.shape, generator=g)
    t = torch.full((200_000,), 119)
    closed = q_sample(s, x0, t, torch.randn(x0.shape, generator=g))
    ab = float(s.alphas_cumprod[119])
    assert x.mean().item() == pytest.approx(math.sqrt(ab) * 0.7, abs=5e-3)
    assert closed.mean().item() == pytest.approx(math.sqrt(ab) * 0.7, abs=5e-3)
    assert x.var().item() == pytest.approx(1 - ab, rel=1e-2)
    assert closed.var().item() == pytest.approx(x.var().item(), rel=1e-2)


@pytest.mark.parametrize("kind, diffusers_name", [("linear", "linear"), ("cosine", "squaredcos_cap_v2"),
                                                   ("sigmoid", "sigmoid")])
def test_schedules_match_diffusers(kind, diffusers_name):
    diffusers = pytest.importorskip("diffusers")
    ours = make_betas(kind, 1000)
    theirs = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=diffusers_name).betas.double()
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_zero_terminal_snr():
    base, zsnr = NoiseSchedule.make("linear", 1000), NoiseSchedule.make("linear", 1000, zero_terminal_snr=True)
    assert zsnr.alphas_cumprod[-1] == 0
    assert torch.isclose(zsnr.alphas_cumprod[0], base.alphas_cumprod[0])
    assert torch.all(zsnr.alphas_cumprod[1:] <= zsnr.alphas_cumprod[:-1])


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_objective_conversions_round_trip(prediction):
    s = NoiseSchedule.make("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(64, 3, generator=g), torch.randn(64, 3, generator=g)
    t = torch.randint(0, 990, (64,), generator=g)
    x_t = q_sample(s, x0, t, eps)
    output = target_for(prediction, x0, eps, s, t)  # a perfect model's output
    assert torch.allclose(to_x0(prediction, output, x_t, s, t), x0, atol=1e-3)
    assert torch.allclose(to_eps(prediction, output, x_t, s, t), eps, atol=1e-3)


def test_min_snr_weights():
    snr = torch.tensor([0.5, 5.0, 50.0])
    assert torch.allclose(min_snr_weight("x0", snr, 5.0), torch.tensor([0.5, 5.0, 5.0]))
    assert torch.allclose(min_snr_weight("eps", snr, 5.0), torch.tensor([1.0, 1.0, 0.1]))
    assert torch.allclose(min_snr_weight("v", snr, 5.0), torch.tensor([0.5 / 1.5, 5 / 6, 5 / 51]))


def test_kl_and_discretized_likelihood():
    m, lv = torch.randn(100), torch.randn(100)
    assert torch.allclose(normal_kl(m, lv, m, lv), torch.zeros(100), atol=1e-6)
    assert torch.all(normal_kl(m, lv, m + 0.3, lv - 0.2) > 0)
    # a sharp Gaussian on a bin centre puts ~all mass in that bin; probabilities over all 256 bins sum to 1
    levels = torch.linspace(-1, 1, 256)
    logp = discretized_gaussian_log_likelihood(levels, torch.full((256,), 0.1), torch.full((256,), math.log(0.3)))
    assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-4)


class Toy(torch.nn.Module):
    """A small real denoiser for 1x4x4 images: conditions on t and an optional class."""

    def __init__(self, out_channels=1, classes=0):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(16 + 1 + 4, 64), torch.nn.SiLU(), torch.nn.Linear(64, 16 * out_channels))
        self.cls = torch.nn.Embedding(classes + 1, 4) if classes else None
        self.out_channels = out_channels

    def forward(self, x, t, y=None):
        c = self.cls(y) if self.cls is not None and y is not None else torch.zeros(x.shape[0], 4)
        h = torch.cat([x.flatten(1), t[:, None] / 1000, c], dim=1)
        return self.net(h).view(x.shape[0], self.out_channels, 4, 4)


def test_guidance_interpolates_conditional_and_unconditional():
    torch.manual_seed(0)
    d = GaussianDiffusion(Toy(classes=3), GaussianConfig(), (1, 4, 4), num_classes=3).eval()
    x, t, y = torch.randn(5, 1, 4, 4), torch.full((5,), 500.0), torch.tensor([0, 1, 2, 0, 1])
    cond, uncond = d.net(x, t, y), d.net(x, t, torch.full_like(y, 3))
    assert torch.allclose(d.model_output(x, t, y, guidance=1.0), cond, atol=1e-6)
    assert torch.allclose(d.model_output(x, t, y, guidance=0.0), uncond, atol=1e-6)
    assert torch.allclose(d.model_output(x, t, y, guidance=3.0), uncond + 3 * (cond - uncond), atol=1e-5)


def test_label_dropout_rate():
    d = GaussianDiffusion(Toy(classes=3), GaussianConfig(cond_drop=0.25), (1, 4, 4), num_classes=3).train()
    torch.manual_seed(0)
    y = d._labels({"label": torch.zeros(20_000, dtype=torch.long)}, 20_000, torch.device("cpu"))
    assert (y == 3).float().mean().item() == pytest.approx(0.25, abs=0.01)


def test_learned_variance_vlb_and_bits_per_dim():
    torch.manual_seed(0)
    cfg = GaussianConfig(timesteps=40, learn_sigma=True)
    d = GaussianDiffusion(Toy(out_channels=2), cfg, (1, 4, 4))
    x0 = (torch.randint(0, 256, (8, 1, 4, 4)) / 127.5 - 1).float()
    loss = d.loss({"image": x0})
    loss.backward()
    # the variance half of the output gets gradient only from the VLB term
    assert d.net.net[-1].weight.grad[16:].abs().sum() > 0
    x_t = q_sample(d.schedule, x0, torch.full((8,), 5), torch.randn_like(x0))
    out, var = d._split(d.net(x_t, torch.full((8,), 5.0)))
    terms = d._vlb_terms(x0, x_t, torch.full((8,), 5), out, var)
    assert torch.all(terms >= -1e-5)  # KL terms are non-negative
    bits = d.nll_bits_per_dim(x0)
    assert torch.isfinite(bits["bits_per_dim"]).all() and torch.all(bits["bits_per_dim"] > 0)
    assert torch.all(bits["prior_bits_per_dim"] >= 0)


def test_mixture2d_training_covers_all_eight_modes(tmp_path):
    """A real ddpm run (MLP backbone) on the ring of 8: samples land on every mode, and their mean and
    covariance match the data's (mean ~0, covariance ~2 I for a radius-2 ring)."""
    from twopaths.data.registry import load_splits
    from twopaths.models import get_spec, resolve_config
    from twopaths.training.trainer import Trainer

    cfg = resolve_config("ddpm", data="mixture2d", overrides=[
        "arch.mlp.width=128", "arch.mlp.num_blocks=3", "arch.diffusion.timesteps=200",
        "train.max_steps=1500", "train.batch_size=256", "train.eval_every=0", "train.sample_every=0",
        "train.progress=false", "train.ckpt_every=1500", "optim.lr=2e-3"])
    splits = load_splits(cfg.data)
    torch.manual_seed(0)
    model = get_spec("ddpm").build(cfg, splits.meta)
    trainer = Trainer(model, splits.train, cfg, tmp_path / "run")
    trainer.fit()
    with trainer.eval_weights() as m:
        samples = m.sample(4000, sampler="dpmpp", steps=25, generator=torch.Generator().manual_seed(0))
    from twopaths.eval.coverage import mode_coverage

    modes, std = splits.meta["modes"], splits.meta["std"]
    cov = mode_coverage(samples, modes, std, n_sigma=10)  # near = within 0.2 of a centre (modes 1.5 apart)
    print("samples near each mode:", cov["per_mode"], f"high-quality fraction {cov['high_quality']:.3f}")
    fair_share = len(samples) / len(modes)
    assert all(c >= 0.2 * fair_share for c in cov["per_mode"])  # every mode is covered, none collapsed away
    assert cov["high_quality"] > 0.8
    data = splits.train.x
    assert torch.allclose(samples.mean(0), data.mean(0), atol=0.1)
    assert torch.allclose(torch.cov(samples.T), torch.cov(data.T), atol=0.25)


def test_one_default_steps_rule():
    """Every caller (sample, eval, upscale) asks the model: its own sampler at its sample_steps, ddpm at all T
    steps when ddpm is not its own sampler (SR3's own ddpm keeps its 100 steps)."""
    d = GaussianDiffusion(Toy(), GaussianConfig(timesteps=40), (1, 4, 4))
    assert (d.default_steps("ddim"), d.default_steps("ddpm")) == (50, 40)  # a bare paradigm: ddim at 50
    d.set_sampling_defaults("dpmpp", 20)
    assert (d.default_steps("dpmpp"), d.default_steps("heun"), d.default_steps("ddpm")) == (20, 20, 40)
    d.set_sampling_defaults("ddpm", 10)
    assert d.default_steps("ddpm") == 10
    calls = []
    d.sample(2, sampler="ddpm", callback=lambda i, *_: calls.append(i))
    assert len(calls) == 10
