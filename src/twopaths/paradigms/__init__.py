"""How a model learns and samples, independent of the network: the column index of the paradigm x
backbone matrix (``twopaths models``). Each paradigm is a :class:`~twopaths.paradigms.base.Paradigm`
subclass in its own module; this table says which backbone contracts
(:data:`twopaths.backbones.CONTRACTS`) it takes and which family the arena files it under.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParadigmEntry:
    family: str  # diffusion, autoregressive, GAN, VAE, or other (not generative)
    contracts: tuple[str, ...]  # backbone contracts it takes
    module: str  # where it lives, under twopaths.paradigms
    summary: str
    samplers: tuple[str, ...] = ()  # its sampler names, first the default; each module's registry is checked against them


PARADIGMS: dict[str, ParadigmEntry] = {
    "gaussian": ParadigmEntry("diffusion", ("denoiser",), "gaussian",
                              "Gaussian diffusion: DDPM/DDIM/DPM-Solver++/Euler/Heun samplers, CFG",
                              ("ddpm", "ddim", "dpmpp", "euler", "heun", "diffwave")),
    "latent": ParadigmEntry("diffusion", ("autoencoder", "denoiser"), "latent",
                            "Gaussian diffusion in an autoencoder's latent space (LDM)"),
    "mdlm": ParadigmEntry("diffusion", ("token model",), "mdlm", "masked diffusion over tokens (MDLM)",
                          ("ancestral", "remask", "block")),
    "autoregressive": ParadigmEntry("autoregressive", ("token model",), "autoregressive",
                                    "next-token prediction; sampling with a KV cache"),
    "sample-autoregressive": ParadigmEntry("autoregressive", ("token model",), "sample_autoregressive",
                                           "next-sample prediction over mu-law audio (WaveNet), incremental"),
    "quantized": ParadigmEntry("autoregressive", ("token model",), "quantized",
                               "next-token prediction over quantised pixels or coordinates (ImageGPT)"),
    "frame-autoregressive": ParadigmEntry("autoregressive", ("denoiser",), "frame_autoregressive",
                                          "video frame by frame: each frame a diffusion sample given the frames "
                                          "before it"),
    "seq2seq": ParadigmEntry("autoregressive", ("encoder-decoder",), "seq2seq",
                             "conditional next-token prediction; greedy and beam search"),
    "gan": ParadigmEntry("GAN", ("generator/critic",), "gan", "non-saturating GAN with an R1 penalty"),
    "vae": ParadigmEntry("VAE", ("generator/critic",), "vae", "VAE with a discretised Gaussian decoder"),
    "sequence-vae": ParadigmEntry("VAE", ("token model",), "sequence_vae",
                                  "VAE of token sequences: one latent per document, KL warm-up (Bowman et al.)"),
    "autoencoder": ParadigmEntry("other", ("autoencoder",), "latent", "KL autoencoder training (LDM's first stage)"),
    "bert": ParadigmEntry("other", ("token model",), "bert", "masked-token prediction (BERT), fill-in"),
    "classifier": ParadigmEntry("other", ("image classifier",), "classifier", "cross-entropy classification"),
}

#: the Gaussian samplers whose state is x_t, which RePaint's known-pixel replacement and re-noising need
#: (:mod:`twopaths.restore.inpaint`)
REPAINT_SAMPLERS = ("ddpm", "ddim")

__all__ = ["PARADIGMS", "REPAINT_SAMPLERS", "ParadigmEntry"]
