"""Latent diffusion models: the KL ``autoencoder`` alone, and ``ldm`` (autoencoder + latent diffusion).

Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models": see
:mod:`twopaths.backbones.autoencoder` for the autoencoder and :mod:`twopaths.paradigms.latent`
for the two-phase training. ``ldm``'s latent denoiser is built by
:func:`twopaths.models.diffusion.image_denoiser` from the same fields as ``ddpm``'s (its arch is
a :class:`~twopaths.models.diffusion.GaussianArch` with the autoencoder's fields added), so every
backbone ``ddpm`` can use runs in latent space too. ``twopaths sample`` on an ``autoencoder`` run
writes test images beside their reconstructions; on an ``ldm`` run it works as for ``ddpm``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from twopaths.backbones.autoencoder import Autoencoder, AutoencoderConfig
from twopaths.backbones.text_encoder import TextEncoder
from twopaths.backbones.unet import UNetConfig
from twopaths.config import RunConfig, build_config, read_yaml
from twopaths.data.registry import run_meta
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.diffusion import (GaussianArch, conditioning_classes, diffusion_sample_hook, image_denoiser,
                                       image_diffusion_cpu_preset, image_diffusion_preset, sample_diffusion)
from twopaths.models.spec import HookFn, ModelSpec, image_preset
from twopaths.nn.functional import psnr
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.gaussian import GaussianDiffusion
from twopaths.paradigms.latent import AutoencoderTraining, LatentDiffusion
from twopaths.training.checkpoint import latest_checkpoint
from twopaths.viz import save_grid, side_by_side


@dataclass
class AutoencoderArch:
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)  # network, factor, KL weight, loss
    latent: Literal["sample", "mean"] = "sample"  # decode a posterior sample while training (LDM), or its mean


def _latent_unet() -> UNetConfig:
    # Latents are small (7x7 for 28x28 images and f = 4, 8x8 for 32x32): one level, wide, with
    # self-attention over all positions; any latent side works. For f = 2 (14x14), two levels
    # ([1, 2], attention at 7) are the natural choice.
    return UNetConfig(in_channels=4, image_size=7, base_channels=128, channel_mults=(1,), num_res_blocks=2,
                      attention_resolutions=(7,), head_channels=32)


@dataclass
class LDMArch(GaussianArch):
    # everything of ddpm (diffusion, unet and any other backbone of image_denoiser, conditioning,
    # sampler, sample_steps) now describes the diffusion over latents; mlp is unused (images only)
    unet: UNetConfig = field(default_factory=_latent_unet)  # latent denoiser; its image_size is the latent side
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)  # the first stage (arch.autoencoder.*)
    ae_steps: int = 4000  # phase 1: optimizer steps that train the autoencoder before diffusion starts
    #: > 0: phase 1 is this fraction of train.max_steps instead of ae_steps (the arena sets max_steps
    #: from a time budget, so a fixed step count would not scale with it)
    ae_fraction: float = 0.0
    latent: Literal["sample", "mean"] = "sample"  # what diffusion learns: posterior samples (LDM) or means
    autoencoder_run: str | None = None  # a trained 'autoencoder' run: use its (EMA) weights, skip phase 1


def _image_shape(cfg: RunConfig, meta: dict[str, Any]) -> tuple[int, int, int]:
    return meta["channels"], meta["resolution"], meta["resolution"]


def _autoencoder(ae_cfg: AutoencoderConfig, shape: tuple[int, int, int]) -> Autoencoder:
    """The autoencoder for images of ``shape`` (C, R, R), with the config's values checked."""
    ae_cfg = dataclasses.replace(ae_cfg, in_channels=shape[0])  # also re-runs the config's checks
    ae_cfg.latent_shape(shape[1])  # a clear error when R does not divide by the factor
    return Autoencoder(ae_cfg)


def _build_autoencoder(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    shape = _image_shape(cfg, meta)
    return AutoencoderTraining(_autoencoder(cfg.arch.autoencoder, shape), shape, cfg.arch.latent)


def _adopt_autoencoder_run(a: LDMArch, meta: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The weights of ``a.autoencoder_run`` (EMA when kept), after copying its autoencoder config into
    ``a`` (so the saved config.yaml says which network was used); None if that run is not on disk.

    A run missing here is fine for an ldm run past its switch (its own checkpoints hold the
    autoencoder); a new run then stops at its first step with a clear error."""
    if not a.autoencoder_run or not Path(a.autoencoder_run).is_dir():
        return None
    run_dir = Path(a.autoencoder_run)
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a twopaths run: {path.name} is missing")
    saved = read_yaml(path)
    if saved.get("model") != "autoencoder":
        raise ConfigError(f"config key 'arch.autoencoder_run': {a.autoencoder_run} is a '{saved.get('model')}' run, "
                          f"not an 'autoencoder' run")
    ae_cfg = build_config("autoencoder", AutoencoderArch, None, saved)
    ae_meta = run_meta(ae_cfg.data, run_dir)
    if ae_meta["channels"] != meta["channels"]:
        raise ConfigError(f"config key 'arch.autoencoder_run': {a.autoencoder_run} was trained on "
                          f"{ae_meta['channels']}-channel images; this data has {meta['channels']}")
    model = _build_autoencoder(ae_cfg, ae_meta)  # its newest checkpoint, EMA weights when kept (as load_run)
    checkpoint = latest_checkpoint(run_dir)
    checkpoint.load_model(model)
    if checkpoint.has_ema:
        checkpoint.load_ema_into_model(model)
    a.autoencoder = dataclasses.replace(ae_cfg.arch.autoencoder)
    return model.autoencoder.state_dict()


def _build_ldm(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a: LDMArch = cfg.arch
    shape = _image_shape(cfg, meta)
    if a.diffusion.learn_sigma:
        raise ConfigError("config key 'arch.diffusion.learn_sigma' is not supported by ldm: the hybrid loss's "
                          "t = 0 term is a likelihood of 8-bit pixels, and latents are continuous")
    if not 0.0 <= a.ae_fraction < 1.0:
        raise ConfigError(f"config key 'arch.ae_fraction' must be in [0, 1), got {a.ae_fraction}")
    if a.ae_fraction > 0:
        a = dataclasses.replace(a, ae_steps=max(1, round(a.ae_fraction * cfg.train.max_steps)))
    if not a.autoencoder_run:
        if a.ae_steps < 1:
            raise ConfigError(f"config key 'arch.ae_steps' must be >= 1 (or set arch.autoencoder_run to a trained "
                              f"autoencoder), got {a.ae_steps}")
        if a.ae_steps >= cfg.train.max_steps:
            raise ConfigError(f"config key 'arch.ae_steps' ({a.ae_steps}) leaves no diffusion steps before "
                              f"train.max_steps ({cfg.train.max_steps}); lower it or raise train.max_steps")
    weights = _adopt_autoencoder_run(a, meta)
    cfg.arch.autoencoder = a.autoencoder  # ``a`` may be a copy (ae_fraction): the saved config names the network used
    ae = _autoencoder(a.autoencoder, shape)
    if weights is not None:
        ae.load_state_dict(weights)
    c, h, w = ae.latent_shape(shape[1])

    n_classes = conditioning_classes(cfg, meta)
    text = TextEncoder(a.text) if a.conditioning == "text" else None  # captions, cross-attended (LDM sec. 3.3)
    net = image_denoiser(a, c, h, c, n_classes, text.dim if text else 0)
    diffusion = GaussianDiffusion(net, a.diffusion, (c, h, w), n_classes, "image", clip=None,  # latents: unbounded
                                  text_encoder=text).set_sampling_defaults(a.sampler, a.sample_steps)
    if a.autoencoder_run:  # phase 1 skipped: the weights must have been loaded before the first step
        def loaded() -> None:
            if weights is None:
                raise ConfigError(f"config key 'arch.autoencoder_run': {a.autoencoder_run} is not a run directory; "
                                  f"train the autoencoder first (twopaths train autoencoder --out DIR) or drop the "
                                  f"key to train it in this run (arch.ae_steps)")

        return LatentDiffusion(ae, diffusion, shape, 0, cfg.train.grad_accum, a.latent, check_autoencoder=loaded)
    return LatentDiffusion(ae, diffusion, shape, a.ae_steps, cfg.train.grad_accum, a.latent)


# ----------------------------------------------------------------------------- reconstructions


def _recon_error(x: torch.Tensor, recon: torch.Tensor) -> tuple[float, float]:
    """(MSE in [-1, 1] units, mean per-image PSNR in dB), as ``twopaths eval --metrics recon`` reports them."""
    return float((recon.float() - x.float()).pow(2).mean()), float(psnr(x, recon).mean())


def reconstruction_hook(meta: dict[str, Any]) -> HookFn:
    """During training: the first 16 validation images above their reconstructions, with their error."""

    def hook(trainer: Any, step: int) -> dict[str, float] | None:
        data = trainer.val_set if trainer.val_set is not None and len(trainer.val_set) else trainer.train_set
        x = torch.stack([data[i]["image"] for i in range(min(16, len(data)))]).to(trainer.device)
        recon = trainer.model.reconstruct(x)
        save_grid(side_by_side(x.cpu(), recon.cpu()), Path(trainer.run_dir) / "samples" / f"step_{step:08d}_recon.png",
                  nrow=8)
        mse, db = _recon_error(x, recon)
        return {"recon_mse": mse, "recon_psnr": db}

    return hook


def ldm_sample_hook(meta: dict[str, Any]) -> HookFn:
    """Reconstructions while the autoencoder trains, then samples (as ddpm's hook) and the scale."""
    samples, reconstructions = diffusion_sample_hook(meta), reconstruction_hook(meta)

    def hook(trainer: Any, step: int) -> dict[str, float] | None:
        model: LatentDiffusion = trainer.model
        if not model.in_diffusion_phase:
            return reconstructions(trainer, step)
        return {**(samples(trainer, step) or {}), "latent_scale": float(model.scale)}

    return hook


def sample_reconstructions(run: Any, *, n: int, seed: int, out: str | None, **_: Any) -> int:
    """``twopaths sample`` for an autoencoder: ``n`` random test images (rows of 8) with the row of
    their reconstructions under each, as a PNG, or NPZ arrays (originals, reconstructions, labels)."""
    from twopaths.data.registry import real_images

    x, labels = real_images(run.cfg.data, n, "test", seed=seed)
    with torch.no_grad():  # in batches of 500 images, as eval --metrics recon
        recon = torch.cat([run.model.reconstruct(x[i:i + 500]).float().cpu() for i in range(0, len(x), 500)])
    out = Path(out) if out else Path(run.run_dir) / "samples" / "reconstructions.png"
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, originals=x.numpy().astype(np.float32),
                            reconstructions=recon.numpy().astype(np.float32), labels=labels.numpy())
    elif out.suffix == ".png":
        save_grid(side_by_side(x, recon), out, nrow=8)
    else:
        raise TwopathsError(f"--out must end in .png (a picture) or .npz (arrays), got {out}")
    mse, db = _recon_error(x, recon)
    print(f"wrote {out} ({n} test images" + (", each row of originals above its reconstructions"
                                                  if out.suffix == ".png" else "")
          + f"; MSE {mse:.4g}, PSNR {db:.2f} dB)")
    return 0


LATENT_MODELS = [
    ModelSpec(name="autoencoder", paradigm="autoencoder", backbones=("autoencoder",),
              summary="KL-regularised convolutional autoencoder (Rombach et al. 2022), the first stage of ldm; "
                      "samples are reconstructions",
              data_kinds=("image",), arch_cls=AutoencoderArch, build=_build_autoencoder,
              preset=image_preset({"lr": 5e-4, "warmup_steps": 200, "min_lr_ratio": 0.1},
                                  {"batch_size": 64, "max_steps": 5000, "eval_every": 500, "eval_batches": 10,
                                   "ckpt_every": 1000, "sample_every": 1000, "ema_decay": 0.999}),
              cpu_presets={"image": {"arch": {"autoencoder": {"base_channels": 16}},
                                     "train": {"max_steps": 2000, "eval_every": 500, "ckpt_every": 500,
                                               "sample_every": 500}}},
              sample_hook=reconstruction_hook, sample=sample_reconstructions),
    ModelSpec(name="ldm", paradigm="latent", backbones=("autoencoder", "unet", "dit"),
              summary="latent diffusion (Rombach et al. 2022): a KL autoencoder, then Gaussian diffusion on its "
                      "scaled latents, in one run; class-conditional with classifier-free guidance",
              data_kinds=("image",), arch_cls=LDMArch, build=_build_ldm, preset=image_diffusion_preset(),
              # on CPU: the arena's quick-suite ldm (autoencoder in the first 30% of the steps, a 48-channel
              # latent U-Net) on ddpm's CPU schedule
              cpu_presets={"image": image_diffusion_cpu_preset(
                  ae_fraction=0.3, autoencoder={"base_channels": 16},
                  unet={"base_channels": 48, "head_channels": 16, "num_res_blocks": 1, "groups": 8})},
              sample_hook=ldm_sample_hook, sample=sample_diffusion, evaluation="diffusion"),
]
