"""What the arena runs: suites of contenders on one dataset, with one training budget each.

A *contender* is a named model with config overrides, so it is exactly what ``twopaths train
MODEL --set ...`` would train. Contenders in one suite get the **same training FLOPs** on the
same data: the arena counts the FLOPs of one optimizer step (:func:`twopaths.nn.flops.flops_of`)
and turns the budget into a step count before training, so a suite trains the same models on
any machine and under any load (bit-identical on CPU with the same seeds and threads). Wall-clock
time is measured and reported beside, never used to decide how long to train, unless a budget in
seconds is asked for (``--budget-seconds``: load-dependent, and the report says so). Parameter
counts are matched to within a stated factor; the report prints both.

Sizes: ``quick`` fits 2 CPU cores in about 10 minutes (the demo: reduced models, budgets and
sample counts, so its verdicts may honestly be "inconclusive"); ``standard`` is sized for 2 CPU
cores in about 90 minutes; ``full`` for one GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from twopaths.errors import ConfigError

#: how far apart (max/min) the parameter counts of one suite's contenders may be
PARAM_MATCH_FACTOR = 2.0


@dataclass(frozen=True)
class Contender:
    name: str  # label in the report, e.g. "ddpm"
    model: str  # a name from ``twopaths train --help``
    family: str  # diffusion, autoregressive, gan, vae: what the comparison table groups by
    overrides: tuple[str, ...] = ()  # --set KEY=VALUE, applied after the suite's own
    #: sampling settings, NFE -> kwargs; diffusion models are measured at several NFE
    nfe: tuple[int, ...] = ()
    sampler: str = "dpmpp"  # diffusion sampler used at every NFE (ancestral for a masked diffusion LM)


@dataclass(frozen=True)
class Suite:
    name: str  # mixture2d, fashion-mnist, fortunes
    data: str  # dataset name (``twopaths data list``)
    kind: str  # points, image, text, sequence (recall accuracy vs distance), molecules, audio, video: the metrics
    contenders: tuple[Contender, ...]
    budget_flops: float  # training FLOPs per contender and seed (forward + backward, counted)
    seeds: int = 1  # runs per contender; the spread of their final loss measures stability
    n_eval: int = 1000  # samples per contender for the quality metrics (same n for the floor)
    n_curve: int = 256  # samples per intermediate checkpoint of the quality curve (points, image kinds)
    overrides: tuple[str, ...] = ()  # --set for every contender (e.g. the data's size)
    #: a wall-clock budget instead of ``budget_flops`` (``--budget-seconds``): load-dependent
    budget_s: float | None = None

    def contender(self, name: str) -> Contender:
        for c in self.contenders:
            if c.name == name:
                return c
        raise ConfigError(f"suite '{self.name}' has no contender '{name}'; it has: "
                          + ", ".join(c.name for c in self.contenders))


_QUIET = ("train.progress=true", "train.sample_every=0", "train.eval_every=0")

#: the quality curve: checkpoints at these fractions of the budget (geometric, ending at the budget)
CURVE_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
G, T = 1e9, 1e12

#: the diffusion objective for short runs (what ddpm's CPU preset uses): v-prediction (Salimans & Ho 2022) on
#: the cosine schedule (Nichol & Dhariwal 2021) with Min-SNR-5 weighting (Hang et al. 2023, ~3x faster
#: convergence). On Fashion-MNIST it took a 0.28M-parameter U-Net to FID 40 (floor 4.4, n = 1,000) in 3,000
#: steps of 64 images, where eps-prediction on the linear schedule stood at FID 193 at a similar budget.
_SHORT_RUN_DIFFUSION = ("arch.diffusion.prediction=v", "arch.diffusion.schedule=cosine",
                        "arch.diffusion.weighting=min-snr")

# ----------------------------------------------------------------------------- quick (2 CPU cores)

_QUICK = (
    # ~35-60k parameters each
    Suite("mixture2d", "mixture2d", "points", budget_flops=100 * G, seeds=3, n_eval=2000, n_curve=1000,
          overrides=_QUIET, contenders=(
        Contender("ddpm", "ddpm", "diffusion",
                  ("arch.conditioning=none", "arch.mlp.width=48", "arch.mlp.num_blocks=2"),
                  nfe=(10, 20, 50)),
        Contender("gan", "gan", "gan", ("arch.width=128",)),
        Contender("vae", "vae", "vae", ("arch.width=128",)),
        Contender("coord-gpt", "pixel-gpt", "autoregressive", ("arch.transformer.d_model=48",)),
    )),
    # ~0.38-0.74M parameters each
    Suite("fashion-mnist", "fashion-mnist", "image", budget_flops=1.2 * T, seeds=1, n_eval=500, n_curve=100,
          overrides=_QUIET, contenders=(
              Contender("ddpm", "ddpm", "diffusion",
                        ("arch.conditioning=none", "arch.unet.base_channels=24", "arch.unet.channel_mults=[1,2]",
                         "arch.unet.num_res_blocks=1", "arch.unet.groups=8", "train.batch_size=32",
                         "optim.lr=1e-3", *_SHORT_RUN_DIFFUSION),
                        nfe=(5, 10)),
              # the U-Net's Gflops per forward (0.25 at 28x28) matched by a DiT (0.255: width 80, 6 blocks,
              # 2x2 patches = 196 tokens; Peebles & Xie 2023 find Gflops, not parameters, predict quality)
              Contender("dit", "dit", "diffusion",
                        ("arch.conditioning=none", "arch.dit_size=custom", "arch.dit.d_model=80",
                         "arch.dit.n_layer=6", "arch.dit.n_head=4", "arch.dit.patch_size=2", "train.batch_size=32",
                         "optim.lr=1e-3", "optim.warmup_steps=50", *_SHORT_RUN_DIFFUSION),
                        nfe=(5, 10)),
              # the same U-Net width on 7x7x4 latents of a KL autoencoder trained in the first 30% of
              # the budget: 0.03 Gflops per denoising step instead of 0.25
              Contender("ldm", "ldm", "diffusion",
                        ("arch.conditioning=none", "arch.ae_fraction=0.3", "arch.autoencoder.base_channels=16",
                         "arch.unet.base_channels=48", "arch.unet.head_channels=16", "arch.unet.num_res_blocks=1",
                         "arch.unet.groups=8", "train.batch_size=32", "optim.lr=1e-3", *_SHORT_RUN_DIFFUSION),
                        nfe=(5, 10)),
              Contender("pixel-gpt", "pixel-gpt", "autoregressive",
                        ("arch.conditioning=none", "arch.transformer.n_layer=3", "arch.transformer.d_model=96")),
              Contender("vae", "vae", "vae", ("arch.width=18",)),
              Contender("gan", "gan", "gan", ("arch.width=20",)),
          )),
    # the same transformer (gpt-nano size), tokenizer, data and budget under both paradigms
    Suite("fortunes", "fortunes", "text", budget_flops=1.5 * T, seeds=1, n_eval=24, overrides=_QUIET, contenders=(
        Contender("gpt", "gpt-nano", "autoregressive", ("data.tokenizer=char", "data.context=128")),
        Contender("mdlm", "mdlm", "diffusion", ("data.tokenizer=char", "data.context=128"),
                  nfe=(16, 32, 64, 128, 256), sampler="ancestral"),
    )),
)

# ----------------------------------------------------------------------------- full (one GPU)

_FULL = (
    replace(_QUICK[0], budget_flops=2 * T, seeds=3, n_eval=10000, contenders=tuple(
        replace(c, nfe=(10, 20, 50, 250)) if c.nfe else c for c in _QUICK[0].contenders)),
    Suite("fashion-mnist", "fashion-mnist", "image", budget_flops=2000 * T, seeds=3, n_eval=5000, n_curve=1000,
          overrides=_QUIET, contenders=(
              Contender("ddpm", "ddpm", "diffusion", ("arch.conditioning=none",), nfe=(10, 20, 50, 250)),
              # unet-small is 2.40 Gflops per forward at 28x28; this DiT 2.44 (width 192, 12 blocks, 196 tokens)
              Contender("dit", "dit", "diffusion",
                        ("arch.conditioning=none", "arch.dit_size=custom", "arch.dit.d_model=192",
                         "arch.dit.n_layer=12", "arch.dit.n_head=4", "arch.dit.patch_size=2", "optim.lr=3e-4",
                         "optim.warmup_steps=200"),
                        nfe=(10, 20, 50, 250)),
              Contender("ldm", "ldm", "diffusion", ("arch.conditioning=none", "arch.ae_fraction=0.3"),
                        nfe=(10, 20, 50, 250)),
              Contender("pixel-gpt", "pixel-gpt", "autoregressive",
                        ("arch.conditioning=none", "arch.transformer.n_layer=8", "arch.transformer.d_model=256")),
              Contender("vae", "vae", "vae", ("arch.width=96",)),
              Contender("gan", "gan", "gan", ("arch.width=96",)),
          )),
    Suite("fortunes", "fortunes", "text", budget_flops=1000 * T, seeds=1, n_eval=200, overrides=_QUIET, contenders=(
        Contender("gpt", "gpt-char", "autoregressive", ()),
        Contender("mdlm", "mdlm", "diffusion", ("arch.n_layer=6", "arch.n_head=6", "arch.d_model=384",
                                                "arch.context=256", "arch.dropout=0.2", "data.tokenizer=char",
                                                "data.context=256"),
                  nfe=(16, 32, 64, 128, 256), sampler="ancestral"),
    )),
)

# ----------------------------------------------------------------------------- sequence (long-range dependencies)

# Associative recall at distance d (twopaths.data.recall): accuracy of the answer token per d in
# 4..128 for a causal transformer, the same transformer under masked diffusion, and a causal
# dilated convolution whose receptive field (64) is shorter than the longest distances. Kind
# "sequence": quality is accuracy vs distance on n_eval items per distance. Context 132 holds d = 128.
_RECALL_DATA = ("data.context=132", "data.size=1000000")
_RECALL_GPT = ("arch.context=132", "arch.n_layer=2", "arch.n_head=2", "arch.d_model=64", "optim.lr=3e-3")
_SEQUENCE = (
    # ~0.1M parameters each: 2 CPU cores, 3 x about 2 minutes of training
    Suite("recall", "recall", "sequence", budget_flops=8 * T, seeds=1, n_eval=200, overrides=(*_QUIET, *_RECALL_DATA),
          contenders=(
              Contender("gpt", "gpt-nano", "autoregressive", _RECALL_GPT),
              Contender("mdlm", "mdlm", "diffusion", _RECALL_GPT),
              Contender("conv-lm", "conv-lm", "autoregressive", ("arch.channels=48", "optim.lr=3e-3")),
          )),
)
_SEQUENCE_FULL = (  # one GPU: gpt-nano size (~0.8M), the conv at the same width (~0.6M)
    Suite("recall", "recall", "sequence", budget_flops=500 * T, seeds=1, n_eval=1000, overrides=(*_QUIET, *_RECALL_DATA),
          contenders=(
              Contender("gpt", "gpt-nano", "autoregressive", ("arch.context=132",)),
              Contender("mdlm", "mdlm", "diffusion", ("arch.context=132",)),
              Contender("conv-lm", "conv-lm", "autoregressive", ()),
          )),
)

# ----------------------------------------------------------------------------- molecules (MOSES)

# SMILES generation on MOSES (Polykovskiy et al. 2020) by the same transformer (gpt-nano size, context 64:
# MOSES molecules have at most ~57 SMILES tokens) under next-token prediction, masked diffusion and a
# sequence VAE, on the same SMILES tokens and FLOPs; n = 30,000 molecules each, as MOSES samples, so
# unique@10k exists even at validity 0.34. Kind "molecules": all MOSES metrics, next to the published
# baselines in the report.
_MOLECULE_ARCH = ("arch.context=64", "data.context=64")
_MOLECULES = (
    # ~0.8M parameters each (the VAE: ~1.5M, its decoder with cross-attention and a 2-layer encoder).
    # 384 TFLOP each (38,500 steps of 32 windows), at learning rate 3e-3: the budget pilot in
    # docs/arena-molecules/README.md measured gpt's validity 0.656 at 24 TFLOP and 0.928 at 192, the invalid
    # fraction falling ~0.6x per doubling, and 3e-3 ahead of 1e-3 at 24 TFLOP (0.656 vs 0.556).
    # 2 idle CPU cores: ~1.5 hours per contender and 5-6 hours in all, resumable (a rerun continues).
    # (mdlm samples 30,000 windows of 64 tokens at each NFE: 8 and 16 keep that to minutes on a CPU)
    Suite("moses", "moses-small", "molecules", budget_flops=384 * T, seeds=1, n_eval=30000,
          overrides=(*_QUIET, "data.size=200000", "optim.lr=3e-3"), contenders=(
              Contender("gpt", "gpt-nano", "autoregressive", _MOLECULE_ARCH),
              Contender("mdlm", "mdlm", "diffusion", _MOLECULE_ARCH, nfe=(8, 16), sampler="ancestral"),
              Contender("vae", "seq-vae", "vae", _MOLECULE_ARCH),
          )),
)
_MOLECULES_FULL = (  # one GPU: all of MOSES' training set, 30,000 molecules as MOSES samples
    replace(_MOLECULES[0], data="moses", budget_flops=2000 * T, n_eval=30000, overrides=_QUIET),
)

# ----------------------------------------------------------------------------- audio (spoken digits)

# One-second clips of spoken digits at 8 kHz (twopaths.data.audio: eSpeak NG voices; the test voices are
# unseen) by the same gated dilated-convolution block under both paradigms, class-conditional: waveform
# autoregression over mu-law samples (WaveNet, causal: one network call per sample, 8,000 per clip) and
# waveform diffusion (DiffWave, non-causal: one call per step for the whole clip) at 6, 12 and 50 steps.
# Kind "audio": the in-project digit classifier's accuracy on class-conditional samples, the Fréchet distance
# in its features with the real-vs-real floor, IS and modified IS, and the real-time factor.
_AUDIO_NET = ("train.batch_size=8", "optim.lr=1e-3", "optim.warmup_steps=100", "arch.conditioning=class")
_AUDIO = (
    # 10 layers of width 32 each (dilations 1..512): 0.16M parameters for diffwave (its step embedding is
    # 128 wide here, 512 in DiffWave), 0.09M for wavenet; 2 CPU cores, about an hour in all (n = 100 clips:
    # diffwave's 6 + 12 + 50 steps of 100 clips are 20 minutes of sampling on a CPU)
    Suite("spoken-digits", "spoken-digits", "audio", budget_flops=36 * T, seeds=1, n_eval=100, n_curve=50,
          overrides=(*_QUIET, *_AUDIO_NET), contenders=(
              Contender("diffwave", "diffwave", "diffusion",
                        ("arch.wavenet.channels=32", "arch.wavenet.n_layers=10", "arch.emb_dim=128"),
                        nfe=(6, 12, 50)),
              Contender("wavenet", "wavenet", "autoregressive",
                        ("arch.channels=32", "arch.n_layers=10", "arch.dilation_cycle=10")),
          )),
)

_AUDIO_FULL = (  # one GPU: DiffWave's and WaveNet's own width and depth (64 channels, 20 layers), n = 1,000
    replace(_AUDIO[0], budget_flops=2000 * T, n_eval=1000, n_curve=200, overrides=(
        *_QUIET, "train.batch_size=16", "optim.lr=2e-4", "optim.warmup_steps=200", "arch.conditioning=class"),
        contenders=(Contender("diffwave", "diffwave", "diffusion", ("arch.emb_dim=128",), nfe=(6, 12, 50)),
                    Contender("wavenet", "wavenet", "autoregressive", ()))),
)

# ----------------------------------------------------------------------------- video (moving objects)

# Clips of 8 32x32 frames of one Fashion-MNIST item moving at constant velocity and bouncing off the walls
# (twopaths.data.video), generated jointly by a space-time U-Net under Gaussian diffusion (Ho et al. 2022:
# every frame denoised together, one call per step) or frame by frame by the same 2-D U-Net given the two
# frames before (one diffusion sample per frame: frames x steps calls). The same recipe (v-prediction,
# cosine schedule, Min-SNR-5) and per-frame layout. Kind "video": frame FID with its floor, temporal
# consistency of the tracked motion, identity drift, cost per clip, and prediction from held-out clips.
_VIDEO_UNET = ("arch.unet.base_channels=16", "arch.unet.channel_mults=[1,2,2]", "arch.unet.num_res_blocks=1",
               "arch.unet.attention_resolutions=[8]", "arch.unet.groups=8", "arch.unet.head_channels=null",
               "arch.unet.num_heads=4")
_VIDEO = (
    # 0.31M parameters (video-ddpm: the temporal attention at 16x16 and 8x8 is its extra) and 0.28M; 24-26
    # GFLOP per step of 8 clips, so about 400 steps each; 2 CPU cores, about an hour in all
    Suite("moving-fashion", "moving-fashion", "video", budget_flops=10 * T, seeds=1, n_eval=100, n_curve=50,
          overrides=(*_QUIET, "train.batch_size=8", "optim.lr=1e-3", "optim.warmup_steps=100"), contenders=(
              Contender("video-ddpm", "video-ddpm", "diffusion",
                        (*_VIDEO_UNET, "arch.unet.temporal_attention_resolutions=[16,8]"), nfe=(10, 20)),
              Contender("video-ar", "video-ar", "autoregressive", _VIDEO_UNET, nfe=(10, 20)),
          )),
)
_VIDEO_FULL = (  # one GPU: the presets' 64-128-128-channel U-Nets, two residual blocks per level
    replace(_VIDEO[0], budget_flops=2000 * T, n_eval=1000, n_curve=500, overrides=_QUIET, contenders=(
        Contender("video-ddpm", "video-ddpm", "diffusion", (), nfe=(10, 20, 50)),
        Contender("video-ar", "video-ar", "autoregressive", (), nfe=(10, 20, 50)))),
)

# ----------------------------------------------------------------------------- standard (2 CPU cores, ~90 min)

# The quick suite's contenders with about ten times the training FLOPs, 3 seeds on mixture2d (the
# stability rows), n = 1,000 for the image metrics, and the recall suite: every verdict's evidence
# at a budget one idle 2-core machine finishes in about 90 minutes (resumable: a rerun continues).
_STANDARD = (
    replace(_QUICK[0], budget_flops=300 * G, n_eval=2000),
    replace(_QUICK[1], budget_flops=25 * T, n_eval=1000, n_curve=256, contenders=tuple(
        replace(c, nfe=(5, 10, 20)) if c.nfe else c for c in _QUICK[1].contenders)),
    replace(_QUICK[2], budget_flops=12 * T, n_eval=48),
    *_SEQUENCE,
)

SUITES: dict[str, tuple[Suite, ...]] = {"quick": _QUICK, "standard": _STANDARD,
                                        "full": _FULL + _SEQUENCE_FULL + _MOLECULES_FULL + _AUDIO_FULL + _VIDEO_FULL,
                                        "sequence": _SEQUENCE, "molecules": _MOLECULES, "audio": _AUDIO,
                                        "video": _VIDEO}


def parse_flops(text: str) -> float:
    """A FLOP count as people write it: ``2.5e12``, ``2.5T``, ``300G``, ``1P`` (decimal prefixes)."""
    scale = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
    t = str(text).strip().upper().removesuffix("FLOPS").removesuffix("FLOP")
    try:
        value = float(t[:-1]) * scale[t[-1]] if t and t[-1] in scale else float(t)
    except ValueError:
        raise ConfigError(f"--budget takes training FLOPs such as 2.5e12, 2.5T or 300G, got '{text}'") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"--budget must be a positive, finite number of FLOPs, got '{text}'")
    return value


def select(suite: str, only: list[str] | None = None, budget_flops: float | None = None,
           seeds: int | None = None, budget_s: float | None = None) -> list[Suite]:
    """The suites of ``suite`` (quick/standard/full/sequence), narrowed by ``only`` entries ``SUITE`` or
    ``SUITE/CONTENDER``, with the per-contender budget (FLOPs, or wall-clock seconds) and the number of
    seeds replaced when given."""
    if suite not in SUITES:
        raise ConfigError(f"unknown suite '{suite}'; choose one of: {', '.join(SUITES)}")
    if budget_flops is not None and not (math.isfinite(budget_flops) and budget_flops > 0):
        raise ConfigError(f"--budget must be a positive, finite number of FLOPs, got {budget_flops}")
    if budget_s is not None and not (math.isfinite(budget_s) and budget_s > 0):
        raise ConfigError(f"--budget-seconds must be a positive, finite number of seconds, got {budget_s}")
    if budget_flops is not None and budget_s is not None:
        raise ConfigError("give --budget (FLOPs) or --budget-seconds, not both")
    if seeds is not None and not 1 <= seeds <= 100:
        raise ConfigError(f"--seeds must be between 1 and 100, got {seeds}")
    chosen = list(SUITES[suite])
    if only:
        wanted: dict[str, set[str] | None] = {}
        names = {s.name: s for s in chosen}
        for entry in only:
            suite_name, _, contender = entry.partition("/")
            if suite_name not in names:
                raise ConfigError(f"--only {entry}: no suite '{suite_name}'; choose from {', '.join(names)}")
            if contender:
                names[suite_name].contender(contender)  # raises with the available names
                if wanted.get(suite_name, set()) is not None:
                    wanted.setdefault(suite_name, set()).add(contender)
            else:
                wanted[suite_name] = None  # the whole suite
        chosen = [s if wanted[s.name] is None else
                  replace(s, contenders=tuple(c for c in s.contenders if c.name in wanted[s.name]))
                  for s in chosen if s.name in wanted]
    return [replace(s, budget_flops=budget_flops if budget_flops is not None else s.budget_flops,
                    budget_s=budget_s, seeds=seeds if seeds is not None else s.seeds) for s in chosen]
