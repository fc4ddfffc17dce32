"""Latent diffusion's two phases on tiny networks: the switch at ae_steps (in optimizer steps, also
with gradient accumulation), which parameters get gradients and move under AdamW with weight
decay, the latent scale factor, sampling with guidance, the EMA and a state_dict round trip."""

import pytest
import torch

from twopaths.backbones.autoencoder import Autoencoder, AutoencoderConfig
from twopaths.backbones.unet import UNet, UNetConfig
from twopaths.config import OptimConfig
from twopaths.errors import TwopathsError
from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion
from twopaths.paradigms.latent import AutoencoderTraining, LatentDiffusion, autoencoder_loss
from twopaths.training.ema import EMA
from twopaths.training.optim import build_adamw


def make_ldm(ae_steps=2, grad_accum=1, latent="sample", classes=3, seed=0, **kw):
    torch.manual_seed(seed)
    ae = Autoencoder(AutoencoderConfig(in_channels=1, latent_channels=2, base_channels=8, channel_mults=(1, 2),
                                       factor=2, groups=4))
    net = UNet(UNetConfig(in_channels=2, image_size=14, base_channels=8, channel_mults=(1,), num_res_blocks=1,
                          attention_resolutions=(), groups=4, num_classes=classes))
    diffusion = GaussianDiffusion(net, GaussianConfig(timesteps=20), (2, 14, 14), classes, clip=None)
    return LatentDiffusion(ae, diffusion, (1, 28, 28), ae_steps, grad_accum, latent, **kw)


def images(n=8, seed=0):
    """Smooth random images in [-1, 1]: blurred noise, so the latents carry structure."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.avg_pool2d(torch.randn(n, 1, 28, 28, generator=g), 5, 1, 2)
    return (x / x.abs().amax()).clamp(-1, 1)


def batch(n=8, seed=0):
    return {"image": images(n, seed), "label": torch.arange(n) % 3}


def train_step(model, opt, b, micro=1):
    for _ in range(micro):
        model.loss(b).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_phase_switches_after_ae_steps_optimizer_steps(grad_accum):
    model = make_ldm(ae_steps=3, grad_accum=grad_accum)
    opt = build_adamw(model, OptimConfig(lr=1e-3, weight_decay=0.0), torch.device("cpu"))
    phases = []
    for _ in range(5):
        train_step(model, opt, batch(), grad_accum)
        phases.append(int(model.phase))
    assert phases == [0, 0, 0, 1, 1]  # steps 1-3 train the autoencoder, step 4 starts diffusion
    assert int(model.micro_batches) == 5 * grad_accum


def test_only_the_active_part_gets_gradients_and_moves():
    model = make_ldm(ae_steps=1)
    # weight decay on: a parameter without a gradient must still not move (AdamW skips it)
    opt = build_adamw(model, OptimConfig(lr=1e-2, weight_decay=0.1), torch.device("cpu"))
    for phase, (active, frozen) in enumerate([(model.autoencoder, model.diffusion),
                                              (model.diffusion, model.autoencoder)]):
        before = {n: p.detach().clone() for n, p in frozen.named_parameters()}
        model.loss(batch()).backward()
        assert int(model.phase) == phase
        assert all(p.grad is not None for p in active.parameters())
        assert all(p.grad is None for p in frozen.parameters())
        opt.step()
        opt.zero_grad(set_to_none=True)
        assert all(torch.equal(before[n], p) for n, p in frozen.named_parameters())


def test_scale_factor_gives_unit_variance_latents():
    model = make_ldm(ae_steps=1, latent="mean")
    opt = build_adamw(model, OptimConfig(lr=1e-3), torch.device("cpu"))
    train_step(model, opt, batch())
    assert float(model.scale) == 1.0  # not set during the autoencoder phase
    b = batch(seed=1)
    train_step(model, opt, b)  # the switch: the scale comes from this batch
    z = model.latents(b["image"]) * model.scale
    assert abs(float(z.std()) - 1.0) < 1e-5
    other = model.latents(images(64, seed=2)) * model.scale  # and about 1 on other images
    assert 0.8 < float(other.std()) < 1.25
    assert float(model.scale) != 1.0


def test_eval_losses_do_not_advance_the_clock_and_follow_the_phase():
    model = make_ldm(ae_steps=1, latent="mean")
    model.eval()
    with torch.no_grad():
        ae_loss = model.loss(batch())
    assert int(model.micro_batches) == 0
    expected, _ = autoencoder_loss(model.autoencoder, batch()["image"], sample=False)
    assert torch.allclose(ae_loss, expected)  # phase 1: the validation loss is the autoencoder's
    model.train()
    opt = build_adamw(model, OptimConfig(lr=1e-3), torch.device("cpu"))
    train_step(model, opt, batch())
    train_step(model, opt, batch())
    model.eval()
    with torch.no_grad():
        diffusion_loss = model.loss(batch())
    assert int(model.micro_batches) == 2 and int(model.phase) == 1
    assert abs(float(diffusion_loss) - float(ae_loss)) > 1e-3  # now the diffusion loss


def test_sampling_gives_images_in_range_with_guidance_and_a_decoded_callback():
    model = make_ldm(ae_steps=1)
    opt = build_adamw(model, OptimConfig(lr=1e-3), torch.device("cpu"))
    with pytest.raises(TwopathsError, match="still in its autoencoder phase"):
        model.sample(2, steps=2)
    train_step(model, opt, batch())
    train_step(model, opt, batch())
    model.eval()
    seen = []
    x = model.sample(5, sampler="ddim", steps=3, cond=torch.tensor([0, 1, 2, 0, 1]), guidance=2.5,
                     generator=torch.Generator().manual_seed(0),
                     callback=lambda i, t, x_t, x0: seen.append((x_t.shape, x0.shape)))
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1.0
    assert seen == [((4, 1, 28, 28), (4, 1, 28, 28))] * 3  # images, not latents, and only a few
    again = model.sample(5, sampler="ddim", steps=3, cond=torch.tensor([0, 1, 2, 0, 1]), guidance=2.5,
                         generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
    assert model.sample_shape == (1, 28, 28) and model.latent_shape == (2, 14, 14) and model.num_classes == 3
    assert model.reconstruct(batch()["image"]).shape == (8, 1, 28, 28)


def test_state_dict_round_trip_keeps_phase_clock_and_scale():
    model = make_ldm(ae_steps=1)
    opt = build_adamw(model, OptimConfig(lr=1e-3), torch.device("cpu"))
    for _ in range(3):
        train_step(model, opt, batch())
    fresh = make_ldm(ae_steps=1, seed=1)
    fresh.load_state_dict(model.state_dict())
    assert int(fresh.phase) == 1 and int(fresh.micro_batches) == 3
    assert float(fresh.scale) == float(model.scale) != 1.0
    model.eval()
    fresh.eval()
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(model.sample(2, steps=2, cond=torch.tensor([0, 1]), generator=g()),
                       fresh.sample(2, steps=2, cond=torch.tensor([0, 1]), generator=g()))


def test_the_ema_leaves_the_scale_alone():
    model = make_ldm(ae_steps=0)
    ema = EMA(model, decay=0.9, warmup=False)  # made before the switch, as the trainer makes it
    opt = build_adamw(model, OptimConfig(lr=1e-3), torch.device("cpu"))
    train_step(model, opt, batch())
    scale = float(model.scale)
    ema.update(model, 1)
    with ema.applied(model):
        assert float(model.scale) == scale and int(model.phase) == 1


def test_skipped_phase_one_checks_the_autoencoder_first():
    def not_loaded():
        raise TwopathsError("not loaded")

    model = make_ldm(ae_steps=0, check_autoencoder=not_loaded)
    with pytest.raises(TwopathsError, match="not loaded"):
        model.loss(batch())
    assert int(model.phase) == 0
    ready = make_ldm(ae_steps=0, check_autoencoder=lambda: None)
    ready.loss(batch())
    assert int(ready.phase) == 1


def test_autoencoder_training_paradigm():
    ae = make_ldm().autoencoder
    paradigm = AutoencoderTraining(ae, (1, 28, 28), latent="mean")
    x = images()
    loss = paradigm.loss({"image": x})
    loss.backward()
    assert all(p.grad is not None for p in ae.parameters())
    # with kl_weight 0 and the mean, the loss is exactly the mean absolute error of the reconstruction
    ae.cfg.kl_weight = 0.0
    with torch.no_grad():
        recon = ae.decode(ae.encode(x).mode())
        assert torch.allclose(paradigm.loss({"image": x}), (recon - x).abs().mean(), atol=1e-6)
    assert paradigm.reconstruct(x).abs().max() <= 1.0
    with pytest.raises(TwopathsError, match="does not generate"):
        paradigm.sample(2)
