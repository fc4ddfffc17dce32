"""Diffusion models: Gaussian diffusion over a U-Net or a DiT (images) or a residual MLP (2-D points).

Images can be conditioned on a class label (``arch.conditioning=class``, the default for data
with classes) or on a caption (``arch.conditioning=text``, or the ``ddpm-text`` model): a text
encoder trained jointly with the denoiser, which cross-attends to it (:mod:`twopaths.backbones.text_encoder`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from twopaths.backbones.dit import DiT, DiTConfig, dit_preset, sized_dit
from twopaths.backbones.mlp import MLPDenoiser, MLPDenoiserConfig
from twopaths.backbones.text_encoder import TextEncoder, TextEncoderConfig
from twopaths.backbones.unet import UNet, UNetConfig, unet_preset
from twopaths.config import RunConfig
from twopaths.data.registry import dataset_kind
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.spec import HookFn, ModelSpec, image_preset
from twopaths.nn.flops import forward_gflops
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion
from twopaths.paradigms.samplers import SamplerName
from twopaths.viz import save_trajectory, write_captions, write_samples


@dataclass
class GaussianArch:
    """The Gaussian paradigm on one denoiser backbone: ``diffusion`` configures the paradigm
    (:class:`~twopaths.paradigms.gaussian.GaussianConfig`), ``backbone`` picks the network for images
    (``unet`` or ``dit``; 2-D points always use ``mlp``), and the field of that name configures it. The
    other backbones' fields stay in the config so that ``--set arch.backbone=dit`` is all it takes to switch."""
    diffusion: GaussianConfig = field(default_factory=GaussianConfig)  # schedule, objective, weighting, CFG dropout
    backbone: Literal["unet", "dit"] = "unet"  # for images: the U-Net (arch.unet) or a DiT (arch.dit); points: arch.mlp
    unet: UNetConfig = field(default_factory=lambda: unet_preset("unet-small"))  # image backbone
    # a named DiT size (DiT-S/2, DiT-B/4...: backbones/dit.py) that sets arch.dit's patch_size, d_model,
    # n_layer and n_head; 'custom' sizes the DiT from arch.dit alone
    dit_size: str = "DiT-T/4"
    dit: DiTConfig = field(default_factory=lambda: dit_preset("DiT-T/4"))  # image fields come from the data
    mlp: MLPDenoiserConfig = field(default_factory=MLPDenoiserConfig)  # 2-D point backbone
    conditioning: Literal["auto", "class", "text", "none"] = "auto"  # auto: class labels for image data with classes
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)  # caption encoder (conditioning=text)
    sampler: SamplerName = "ddim"  # used by the training sample hook
    sample_steps: int = 50  # steps of that sampler
    sample_guidance: float = 1.0  # its classifier-free guidance scale (conditional models; 1: none)


def image_denoiser(a: GaussianArch, in_channels: int, resolution: int, out_channels: int,
                   num_classes: int = 0, context_dim: int = 0) -> nn.Module:
    """The image backbone of ``a`` for (in_channels, resolution, resolution) inputs: ``net(x, t, y)``,
    with cross-attention to a (B, S, context_dim) context when ``context_dim`` > 0.

    ``a.backbone`` picks the U-Net (``a.unet``) or a DiT (``a.dit``, sized by ``a.dit_size``). One
    line on stderr says its parameters and Gflops per image, so backbones can be matched on compute.
    """
    if a.backbone == "dit":
        dit = dit_config(a, in_channels, resolution, out_channels, num_classes, context_dim)
        return _announce(DiT(dit, a.dit_size if a.dit_size != "custom" else f"DiT-custom/{dit.patch_size}"),
                         in_channels, resolution, context_dim, a)
    # attention is configured by feature-map size for arch.unet.image_size; keep it at the same
    # levels when the data has another size (28 -> 14 is level 1, so 32 -> 16)
    levels = [i for i, r in enumerate(a.unet.resolutions) if r in a.unet.attention_resolutions]
    unet = dataclasses.replace(a.unet, in_channels=in_channels, out_channels=out_channels, image_size=resolution,
                               num_classes=num_classes, context_dim=context_dim,
                               attention_resolutions=tuple(resolution // 2**i for i in levels))
    return _announce(UNet(unet), in_channels, resolution, context_dim, a)


def dit_config(a: GaussianArch, in_channels: int, resolution: int, out_channels: int, num_classes: int = 0,
               context_dim: int = 0) -> DiTConfig:
    """``a.dit`` with the size named by ``a.dit_size`` (:func:`~twopaths.backbones.dit.sized_dit`) and the data's
    image fields."""
    cfg = sized_dit(a.dit, a.dit_size, resolution, key="arch")
    return dataclasses.replace(cfg, image_size=resolution, in_channels=in_channels, out_channels=out_channels,
                               num_classes=num_classes, context_dim=context_dim)


def denoiser_summary(net: nn.Module, name: str, in_channels: int, resolution: int, context_dim: int = 0,
                     context_len: int = 16) -> str:
    """One line, e.g. ``DiT-T/4: 4.17M parameters, 0.275 Gflops per forward (28x28, 49 tokens)``: what
    one image costs (a multiply-add = 2 FLOPs; :mod:`twopaths.nn.flops`), with ``context_len`` text tokens."""
    params = sum(p.numel() for p in net.parameters())
    where = f"{resolution}x{resolution}"
    if isinstance(net, DiT):  # analytic, equal to the counted ops (tests/backbones/test_dit.py)
        gflops = net.gflops(resolution, resolution, context_len if context_dim else 0)
        where += f", {(resolution // net.cfg.patch_size) ** 2} tokens"
    else:  # counted on one forward pass of a blank image
        text = {"context": torch.zeros(1, context_len, context_dim),
                "context_mask": torch.ones(1, context_len, dtype=torch.bool)} if context_dim else {}
        gflops = forward_gflops(net, torch.zeros(1, in_channels, resolution, resolution), torch.zeros(1), **text)
    if context_dim:
        where += f", {context_len} text tokens"
    return f"{name}: {params / 1e6:.3g}M parameters, {gflops:.3g} Gflops per forward ({where})"


def _announce(net: nn.Module, in_channels: int, resolution: int, context_dim: int, a: Any) -> nn.Module:
    """Print the backbone's :func:`denoiser_summary` on stderr (once, on the first process) and return it."""
    if os.environ.get("RANK", "0") == "0":
        name = net.name if isinstance(net, DiT) else "U-Net"
        context_len = a.text.max_len if context_dim and hasattr(a, "text") else 16
        print(denoiser_summary(net, name, in_channels, resolution, context_dim, context_len), file=sys.stderr)
    return net


def conditioning_classes(cfg: RunConfig, meta: dict[str, Any], kind: str = "image") -> int:
    """How many classes a model conditions on, by ``arch.conditioning``: 'class' the data's (an error
    without two or more), 'auto' the data's for image or audio data with two or more, anything else none (0)."""
    a = cfg.arch
    classes = meta.get("class_names") or []
    if a.conditioning == "class" and len(classes) < 2:
        raise ConfigError(f"config key 'arch.conditioning' is 'class' but dataset '{cfg.data.name}' has no classes")
    conditional = a.conditioning == "class" or (a.conditioning == "auto" and kind in ("image", "audio")
                                                and len(classes) > 1)
    return len(classes) if conditional else 0


def _build_ddpm(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a = cfg.arch
    kind = dataset_kind(cfg.data.name)
    n_classes = conditioning_classes(cfg, meta, kind)
    out_mult = 2 if a.diffusion.learn_sigma else 1  # the learned variance doubles the output channels
    if a.conditioning == "text" and kind != "image":
        raise ConfigError(f"config key 'arch.conditioning' is 'text', which needs image data with captions "
                          f"(such as shapes); dataset '{cfg.data.name}' is {kind} data")
    if kind == "image":
        C, R = meta["channels"], meta["resolution"]
        text = TextEncoder(a.text) if a.conditioning == "text" else None  # trained jointly with the denoiser
        net = image_denoiser(a, C, R, C * out_mult, n_classes, text.dim if text else 0)
        return GaussianDiffusion(net, a.diffusion, (C, R, R), n_classes, "image", clip=1.0,
                                 text_encoder=text).set_sampling_defaults(a.sampler, a.sample_steps)
    mlp = dataclasses.replace(a.mlp, dim=2, out_dim=2 * out_mult, num_classes=n_classes)
    # Like images' [-1, 1], bound the x0 estimate by the data's range: at the noisiest steps an eps
    # model's x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar) divides by a tiny number, and an unclipped
    # error there throws samples far off the data.
    bound = 1.25 * (float(meta["modes"].abs().max()) + 5 * float(meta["std"])) if "modes" in meta else None
    return GaussianDiffusion(MLPDenoiser(mlp), a.diffusion, (2,), n_classes, "x",
                             clip=bound).set_sampling_defaults(a.sampler, a.sample_steps)


def class_labels(model: Any, n: int, class_arg: str | None, class_names: list[str]) -> torch.Tensor | None:
    """Class ids for n samples: the one asked for (by name or number), else every class in turn."""
    if not model.num_classes:
        if class_arg is not None:
            raise TwopathsError("this model was trained without class labels; drop --class")
        return None
    if class_arg is None:
        return torch.arange(n) % model.num_classes
    lowered = [c.lower() for c in class_names]
    if class_arg.lower() in lowered:
        return torch.full((n,), lowered.index(class_arg.lower()))
    if class_arg.isdigit() and int(class_arg) < model.num_classes:
        return torch.full((n,), int(class_arg))
    raise TwopathsError(f"unknown class '{class_arg}'; choose a number 0..{model.num_classes - 1} or one of: "
                        + ", ".join(class_names))


#: what the training sample hook of a text-conditioned model draws (each twice: a grid of 8 columns)
HOOK_CAPTIONS = ("a large red circle", "a small green square", "a large blue triangle", "a small yellow circle",
                 "a large white square", "a small cyan triangle left of a large magenta circle",
                 "a large orange circle above a small blue square",
                 "a small red triangle right of a large green circle")


def caption_prompts(model: Any, n: int, prompt: str, cfg: RunConfig) -> list[str] | None:
    """Captions for n samples of a text-conditioned model: ``prompt`` n times, or without one the
    first n test-split captions (repeated if there are fewer). None for a model without text."""
    if model.text_encoder is None:
        if prompt:
            raise TwopathsError(f"--prompt is for text-conditioned models; this run has "
                                f"arch.conditioning={cfg.arch.conditioning} (train with --set arch.conditioning=text)")
        return None
    if prompt:
        model.text_encoder.tokenizer.batch([prompt], model.text_encoder.cfg.max_len)  # unknown words: a clear error
        return [prompt] * n
    from twopaths.data.registry import load_splits

    captions = getattr(load_splits(cfg.data).test, "captions", None) or [""]
    return [captions[i % len(captions)] for i in range(n)]


def sample_diffusion(run: Any, *, n: int, seed: int, out: str | None, sampler: str, steps: int | None,
                     spacing: str, class_: str | None, guidance: float, prompt: str, trajectory: str | None,
                     **_: Any) -> int:
    """``twopaths sample`` for diffusion models: a PNG grid / scatter plot or NPZ arrays, and optionally
    a picture of the denoising trajectory."""
    model: GaussianDiffusion = run.model
    sampler, steps = model.sampling_plan(sampler, steps)  # default: the run's own (arch.sampler)
    if guidance < 0:
        raise TwopathsError("--guidance must be >= 0 (1 = plain conditional, 0 = unconditional)")
    labels = class_labels(model, n, class_, run.meta.get("class_names") or [])
    prompts = caption_prompts(model, n, prompt, run.cfg)
    generator = torch.Generator().manual_seed(seed)
    bar = tqdm(total=steps, desc=f"{sampler} {steps} steps", unit="step", leave=False)
    frames: tuple[list, list, list] = ([], [], [])  # x_t, predicted x0, t of each step, for --trajectory
    keep = min(n, 4)

    def callback(i: int, t: float, x_t: torch.Tensor, x0: torch.Tensor) -> None:
        bar.update(1)
        if trajectory:
            frames[0].append(x_t[:keep].cpu())
            frames[1].append(x0[:keep].cpu())
            frames[2].append(t)

    try:
        samples = model.sample(n, cond=labels, sampler=sampler, steps=steps, generator=generator, guidance=guidance,
                               spacing=spacing, callback=callback, prompts=prompts)
    finally:
        bar.close()
    path = write_samples(samples, labels, Path(out) if out else Path(run.run_dir) / "samples" / "sample.png", run.meta)
    print(f"wrote {path} ({n} samples, {sampler}, {steps} steps"
          + (f", guidance {guidance}" if labels is not None or prompts is not None else "") + ")")
    if prompts is not None:
        print(f"wrote {write_captions(prompts, path)} (the captions"
              + (", from the test split: no --prompt given)" if not prompt else ")"))
    if trajectory:
        if samples.ndim == 2:
            raise TwopathsError("--trajectory draws images; for 2-D points use --out with .npz")
        print(f"wrote {save_trajectory(*frames, trajectory)}")
    return 0


def diffusion_sample_hook(meta: dict[str, Any]) -> HookFn:
    """During training: 16 images (a grid) or 1,000 points (a scatter plot) per sample step, EMA weights."""

    def hook(trainer: Any, step: int) -> dict[str, float]:
        model: GaussianDiffusion = trainer.model
        arch = trainer.cfg.arch
        n = 1000 if len(model.sample_shape) == 1 else 16
        labels = class_labels(model, n, None, [])  # every class in turn
        prompts = None
        if model.text_encoder is not None:  # each caption in one column (those the vocabulary can say)
            known = [c for c in HOOK_CAPTIONS if not model.text_encoder.tokenizer.unknown_words(c)] or [""]
            prompts = [known[i % len(known)] for i in range(n)]
        guidance = arch.sample_guidance if labels is not None or prompts is not None else 1.0
        samples = model.sample(n, cond=labels, generator=torch.Generator().manual_seed(0), guidance=guidance,
                               prompts=prompts)  # the run's own sampler and steps
        path = write_samples(samples, labels, Path(trainer.run_dir) / "samples" / f"step_{step:08d}.png", meta, nrow=8)
        if prompts is not None:
            write_captions(prompts, path)
        return {"sample_std": float(samples.std())}

    return hook


def image_diffusion_preset(**optim: Any) -> dict[str, Any]:
    """The preset of ddpm on images, which dit, ldm and sr3 share (dit with its own ``optim`` values):
    Fashion-MNIST, Adam at a constant 2e-4 after 500 warmup steps without weight decay, 20,000 steps of
    128 images, an EMA over ~2,000 steps (0.9995), checkpoints every 1,000 and samples every 2,000 steps."""
    return image_preset({"lr": 2e-4, "warmup_steps": 500, "min_lr_ratio": 1.0, **optim},
                        {"batch_size": 128, "max_steps": 20000, "eval_every": 1000, "eval_batches": 10,
                         "ckpt_every": 1000, "sample_every": 2000, "ema_decay": 0.9995})


def image_diffusion_cpu_preset(**arch: Any) -> dict[str, Any]:
    """The CPU preset of the image diffusion models: ~20 minutes on 2 CPU cores (``arch`` sizes the model).

    A few thousand steps instead of 20,000, so what makes short runs work: v-prediction (Salimans & Ho
    2022) on the cosine schedule (Nichol & Dhariwal 2021) with Min-SNR-5 loss weighting (Hang et al.
    2023), which converges ~3x faster than uniform eps-weighting in their fig. 1; a constant 1e-3 after
    100 warmup steps and an EMA over ~1,000 steps (0.999). Samples every 1,000 steps with DPM-Solver++
    at 20 steps and guidance 3, the class of each row fixed, so a grid shows whether classes are learned.
    """
    return {"optim": {"lr": 1e-3, "warmup_steps": 100},
            "train": {"batch_size": 64, "max_steps": 3000, "eval_every": 500, "eval_batches": 5,
                      "ckpt_every": 500, "sample_every": 1000, "ema_decay": 0.999},
            "arch": {"sampler": "dpmpp", "sample_steps": 20, "sample_guidance": 3.0,
                     "diffusion": {"prediction": "v", "schedule": "cosine", "weighting": "min-snr"}, **arch}}


#: the 3-level U-Net of the CPU presets: 16-32-32 channels, one residual block per level, attention at 7x7
#: (0.28M parameters; 0.41 s per step of 64 Fashion-MNIST images on 2 idle cores)
CPU_UNET = {"base_channels": 16, "channel_mults": [1, 2, 2], "num_res_blocks": 1, "attention_resolutions": [7],
            "groups": 8}

DIFFUSION_MODELS = [
    ModelSpec(name="ddpm", paradigm="gaussian", backbones=("unet", "dit", "mlp"),
              summary="Gaussian diffusion (Ho et al. 2020) on a U-Net (images) or an MLP (2-D points), "
                      "class-conditional with classifier-free guidance",
              data_kinds=("image", "points"), arch_cls=GaussianArch, build=_build_ddpm, preset=image_diffusion_preset(),
              cpu_presets={"image": image_diffusion_cpu_preset(unet=CPU_UNET)},
              kind_presets={"points": {"optim": {"lr": 1e-3, "warmup_steps": 100},
                                       "train": {"batch_size": 256, "max_steps": 4000, "eval_every": 1000,
                                                 "ckpt_every": 1000, "sample_every": 2000, "ema_decay": 0.999}}},
              sample_hook=diffusion_sample_hook, sample=sample_diffusion, evaluation="diffusion"),
    ModelSpec(name="dit", paradigm="gaussian", backbones=("dit",),
              summary="Gaussian diffusion on a Diffusion Transformer (Peebles & Xie 2023): patches as tokens, "
                      "adaLN-Zero conditioning, sizes DiT-T/4 (default) ... DiT-XL/2 (arch.dit_size)",
              data_kinds=("image",), arch_cls=GaussianArch, build=_build_ddpm,
              # The paper's optimiser (sec. 5): AdamW at a constant 1e-4, no weight decay, no warmup. Its
              # EMA decay of 0.9999 averages over ~10k steps, 2.5% of its 400k-step runs; over our 20k
              # steps that would be half the run, so we keep ddpm's 0.9995 (~2k steps), which also keeps a
              # U-Net vs DiT comparison about the backbone. Steps, batch and checkpoints as for ddpm.
              preset={**image_diffusion_preset(lr=1e-4, warmup_steps=0), "arch": {"backbone": "dit"}},
              # on CPU: a DiT of about the CPU U-Net's Gflops (width 64, 3 blocks, 2x2 patches: 196 tokens)
              cpu_presets={"image": image_diffusion_cpu_preset(
                  dit_size="custom", dit={"d_model": 64, "n_layer": 3, "n_head": 4, "patch_size": 2})},
              sample_hook=diffusion_sample_hook, sample=sample_diffusion, evaluation="diffusion"),
    ModelSpec(name="ddpm-text", paradigm="gaussian", backbones=("unet",),
              summary="text-to-image: ddpm whose U-Net cross-attends to a caption encoder trained with it "
                      "(shapes captions), classifier-free guidance on prompts",
              data_kinds=("image",), arch_cls=GaussianArch, build=_build_ddpm, sample_hook=diffusion_sample_hook,
              sample=sample_diffusion, evaluation="diffusion",
              # ddpm with arch.conditioning=text, sized to reach the prompt-fidelity goal on CPU
              # (benchmarks/text_to_image.py): 32x32 shapes, a 3-level U-Net of 16-32-32 channels with
              # self- and cross-attention at 16x16 and 8x8, a 2-layer 64-wide text encoder; a higher
              # constant learning rate and a shorter EMA than ddpm's, for a run of a few thousand steps.
              # v-prediction (Salimans & Ho 2022) on the cosine schedule (Nichol & Dhariwal 2021) with
              # Min-SNR-5 weighting (Hang et al. 2023): what a caption decides (colours, shapes, layout) is
              # decided at high noise, where an eps model's x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)
              # amplifies its error ~100x and early in training paints the picture in the noise's colours;
              # a v model predicts x0 there directly, and its loss weights those steps as x0 errors.
              preset=image_preset({"lr": 1e-3, "warmup_steps": 100, "min_lr_ratio": 1.0},
                                  {"batch_size": 32, "max_steps": 4000, "eval_every": 500, "eval_batches": 10,
                                   "ckpt_every": 500, "sample_every": 1000, "ema_decay": 0.999}, data="shapes",
                                  arch={"conditioning": "text", "sampler": "dpmpp", "sample_steps": 25,
                                        "diffusion": {"prediction": "v", "schedule": "cosine", "weighting": "min-snr"},
                                        "unet": {"image_size": 32, "base_channels": 16, "channel_mults": [1, 2, 2],
                                                 "num_res_blocks": 1, "attention_resolutions": [16, 8], "groups": 8},
                                        "text": {"d_model": 64, "n_layer": 2, "n_head": 4}})),
]
