"""The ``twopaths`` command line: train, sample, eval, data.

Every command that can fail because of what the user typed or pointed at prints one
``error: ...`` line and exits with status 2; a bug keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from twopaths import __version__
from twopaths.errors import TwopathsError

# --sampler values, spelled here so building the parser does not import torch; a test checks they
# match the samplers of twopaths.paradigms (gaussian / masked_sampling.SAMPLERS)
GAUSSIAN_SAMPLERS = ("ddpm", "ddim", "dpmpp", "euler", "heun")
MASKED_SAMPLERS = ("ancestral", "remask", "block")

EXAMPLES_TRAIN = """\
examples:
  twopaths train gpt-nano --data fortunes --out runs/gpt
  twopaths train gpt-char --out runs/char --set data.tokenizer=char
  twopaths train mlp-lm --data fortunes --out runs/mlp
  twopaths train mlp-lm --out runs/mlp --set train.max_steps=2000 --set optim.lr=1e-3
  twopaths train mlp-lm --out runs/mlp --config my.yaml --dry-run
  twopaths train --resume runs/mlp --set train.max_steps=4000     # continue, exactly where it stopped
  torchrun --nproc_per_node 2 -m twopaths train mlp-lm --out runs/ddp   # data parallel

config keys (--set KEY=VALUE; the value is YAML, e.g. 3e-4, true, [0.9,0.95]):
  data.*   name path seed val_fraction test_fraction tokenizer vocab_size context
           resolution channels size max_number reverse
  optim.*  lr min_lr_ratio warmup_steps weight_decay betas eps grad_clip
  train.*  max_steps batch_size grad_accum seed device precision compile ema_decay
           ema_warmup log_every eval_every eval_batches sample_every ckpt_every
           keep_last num_workers progress
  arch.*   the model's own settings (shown by --dry-run and saved in RUN/config.yaml)
"""


def _models_help() -> str:
    from twopaths.models import MODELS

    return "models:\n" + "\n".join(f"  {name:<12} {spec.summary}" for name, spec in MODELS.items())


def _add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    """Which weights of a run to use: the newest checkpoint's EMA unless told otherwise."""
    p.add_argument("--checkpoint", help="a specific checkpoint directory instead of the newest")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")


def _add_decoding_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """How a seq2seq run decodes: beam search (the run's arch.beam, arch.length_penalty) or greedy."""
    p.add_argument("--beam", type=int, default=None, help="beam width (default: the run's arch.beam, 4)")
    p.add_argument("--length-penalty", type=float, default=None, metavar="ALPHA",
                   help="GNMT length penalty ((5+|Y|)/6)^ALPHA (default: the run's arch.length_penalty, 0.6)")
    p.add_argument("--greedy", action="store_true", help="greedy decoding (the same as --beam 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twopaths",
        description="Diffusion models and transformers, built from first principles, "
                    "trained on the same data and measured side by side.",
        epilog="Run 'twopaths COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"twopaths {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, help="what to do")

    # train ------------------------------------------------------------------------------------
    p = sub.add_parser("train", help="train a model (or resume a run)",
                       description="Train a named model on a dataset, writing checkpoints, metrics.jsonl "
                                   "and the resolved config.yaml into the run directory.",
                       epilog=_models_help() + "\n\n" + EXAMPLES_TRAIN,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model name (see below); omit with --resume")
    p.add_argument("--data", help="dataset name (see 'twopaths data list'); same as --set data.name=...")
    p.add_argument("--out", type=Path, help="run directory to create (refuses one that already has checkpoints)")
    p.add_argument("--config", help="YAML file of config values (applied before --set)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value; repeatable")
    p.add_argument("--resume", type=Path, metavar="RUN",
                   help="continue RUN from its newest checkpoint with its saved config (plus any --set)")
    p.add_argument("--dry-run", action="store_true",
                   help="resolve the config, load data, build the model, run one forward/backward pass, "
                        "print the plan; write nothing")
    p.set_defaults(func=cmd_train)

    # sample -----------------------------------------------------------------------------------
    p = sub.add_parser("sample", help="generate from a trained run",
                       description="Generate from a run's newest checkpoint (EMA weights unless --no-ema). "
                                   "Text models stream tokens to stdout; diffusion models write a PNG grid "
                                   "(or a scatter plot for 2-D points) or NPZ arrays.",
                       epilog="examples:\n"
                              "  twopaths sample runs/gpt --prompt \"The secret of\" --n 3 --top-p 0.9\n"
                              "  twopaths sample runs/ddpm --n 64 --sampler dpmpp --steps 20 --out grid.png\n"
                              "  twopaths sample runs/ddpm --class Sneaker --guidance 3 --trajectory traj.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--n", type=int, default=None, help="number of samples (text: 1, diffusion: 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same samples)")
    _add_checkpoint_args(p)
    g = p.add_argument_group("text models")
    g.add_argument("--prompt", default="", help="text to continue (default: start of a new document)")
    g.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate per sample")
    g.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy")
    g.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely tokens")
    g.add_argument("--top-p", type=float, default=None,
                   help="nucleus sampling: only the most likely tokens whose probability adds up to p")
    g.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="stop a sample when this text appears (not printed); repeatable")
    g = p.add_argument_group("diffusion models")
    g.add_argument("--sampler", choices=[*GAUSSIAN_SAMPLERS, *MASKED_SAMPLERS], default=None,
                   help="Gaussian diffusion (default ddim): DDPM ancestral, DDIM (eta 0), DPM-Solver++(2M), or "
                        "Euler/Heun on EDM sigmas; masked diffusion (mdlm, default ancestral): MDLM ancestral, "
                        "LLaDA low-confidence remasking, or block (semi-autoregressive remasking)")
    g.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default: T for ddpm, the run's arch.sample_steps otherwise; mdlm: "
                        "the number of tokens to fill); heun evaluates the network twice per step")
    g.add_argument("--block-size", type=int, default=None,
                   help="mdlm --sampler block: tokens per block, filled left to right (default: one block)")
    g.add_argument("--infill", metavar="TEXT", default=None,
                   help="mdlm: fill the gaps of TEXT, each run of '_' (two or more) being that many tokens; "
                        "the rest of TEXT is kept exactly")
    g.add_argument("--spacing", choices=["leading", "linspace", "trailing"], default="leading",
                   help="how the steps are placed among the T training timesteps")
    g.add_argument("--class", dest="class_", metavar="C",
                   help="class name or number for class-conditional models (default: every class in turn)")
    g.add_argument("--guidance", type=float, default=1.0,
                   help="classifier-free guidance scale w (1 = plain conditional; 3 is a common choice)")
    g.add_argument("--out", help="output file: .png (grid or scatter plot) or .npz (arrays); "
                                 "default RUN/samples/sample.png")
    g.add_argument("--trajectory", metavar="PNG", help="also draw x_t and the predicted x0 across the steps")
    p.set_defaults(func=cmd_sample)

    # fill -------------------------------------------------------------------------------------
    p = sub.add_parser("fill", help="fill the [MASK]s of a sentence with a masked language model (bert)",
                       description="Ask a bert run for the tokens behind each [MASK] of TEXT: prints, for every "
                                   "[MASK], the --top-k most likely tokens with their probabilities, then TEXT with "
                                   "each [MASK] replaced by its most likely token. Each [MASK] is one token, "
                                   "predicted independently from the visible text in one forward pass.",
                       epilog="examples:\n"
                              "  twopaths fill runs/bert \"the [MASK] of the matter\"\n"
                              "  twopaths fill runs/bert \"A bird in the [MASK] is worth two in the [MASK].\" --top-k 10",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="run directory of a bert model")
    p.add_argument("text", help="the sentence, with one or more [MASK]")
    p.add_argument("--top-k", type=int, default=5, help="predictions listed per [MASK] (default 5)")
    _add_checkpoint_args(p)
    p.set_defaults(func=cmd_fill)

    # inpaint / upscale ------------------------------------------------------------------------
    p = sub.add_parser("inpaint", help="fill a region of an image with a diffusion model (RePaint)",
                       description="Fill the masked region of an image with a trained Gaussian diffusion image run "
                                   "(ddpm, dit), RePaint style (Lugmayr et al. 2022): at every reverse step the known "
                                   "pixels come from the noised input and the hole from the model, and each block of "
                                   "JUMP steps is re-noised and denoised again RESAMPLE times so the two agree. The "
                                   "known pixels of the result equal the input exactly. The image must be the run's "
                                   "size (28x28 for Fashion-MNIST); colour is converted to the run's channels. "
                                   "MASK: a PNG of the same size where WHITE marks the region to FILL and black the "
                                   "pixels to keep (as in image editors). With a .png --out, writes a side-by-side "
                                   "picture (input with the hole grey | mask | results) and each raw result beside it "
                                   "(OUT_result.png, or OUT_result_K.png with --n > 1); with .npz, the arrays.",
                       epilog="examples:\n"
                              "  twopaths inpaint runs/ddpm --image shirt.png --box 8,8,20,20 --out filled.png\n"
                              "  twopaths inpaint runs/ddpm --image shirt.png --mask hole.png --n 4 --out filled.png\n"
                              "  twopaths inpaint runs/ddpm --image shirt.png --box 0,14,28,28 --steps 250 "
                              "--resample 10 --jump 10 --out f.png\n"
                              "  twopaths inpaint runs/ddpm --image shoe.png --box 0,0,14,28 --class Sneaker "
                              "--guidance 3 --out f.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="run directory of a Gaussian diffusion image model")
    p.add_argument("--image", type=Path, required=True, help="the image to complete (PNG/JPEG, the run's size)")
    p.add_argument("--mask", type=Path, help="mask image of the same size: white = fill, black = keep")
    p.add_argument("--box", metavar="x0,y0,x1,y1",
                   help="fill this rectangle instead of a mask file (pixels; x = column; x1, y1 exclusive)")
    p.add_argument("--out", help="output: .png (side by side + raw results) or .npz; default RUN/samples/inpaint.png")
    p.add_argument("--n", type=int, default=1, help="number of different completions (default 1)")
    p.add_argument("--steps", type=int, default=None,
                   help="reverse-process timesteps, strided over the T of training (default min(T, 100))")
    p.add_argument("--resample", type=int, default=5,
                   help="RePaint r: passes through each block of steps (1 = no resampling; default 5; "
                        "costs about r times the network evaluations)")
    p.add_argument("--jump", type=int, default=5, help="RePaint j: steps per block before jumping back (default 5)")
    p.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddpm",
                   help="reverse step for the hole: DDPM ancestral (RePaint's choice, default) or DDIM")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    p.add_argument("--class", dest="class_", metavar="C",
                   help="class name or number for class-conditional models (default: unconditional)")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale with --class")
    _add_checkpoint_args(p)
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("upscale", help="upscale a small image with a super-resolution run (sr3)",
                       description="Upscale an image by an sr3 run's factor (Saharia et al. 2022): the model denoises "
                                   "the large image conditioned on the bicubic-upsampled input. The image must be the "
                                   "run's resolution / factor (7x7 for x4 on Fashion-MNIST). The result is projected "
                                   "so that average-pooling it gives back the input exactly (and it stays in range). "
                                   "Writes the upscaled image (OUT, or OUT_K.png with --n > 1) and a comparison strip "
                                   "OUT_compare.png: input (nearest) | bilinear | sr3.",
                       epilog="examples:\n"
                              "  twopaths train sr3 --data fashion-mnist --out runs/sr3 --set arch.factor=4\n"
                              "  twopaths upscale runs/sr3 --image small.png --out big.png\n"
                              "  twopaths upscale runs/sr3 --image small.png --n 4 --steps 250 --out big.png\n"
                              "  twopaths upscale runs/sr3 --image small.png --sampler dpmpp --steps 20 "
                              "--consistency every --out big.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="run directory of an sr3 model")
    p.add_argument("--image", type=Path, required=True, help="the low-resolution image (PNG/JPEG)")
    p.add_argument("--out", help="the upscaled image, .png (default RUN/samples/upscale.png)")
    p.add_argument("--n", type=int, default=1, help="number of different upscalings (default 1)")
    p.add_argument("--sampler", choices=GAUSSIAN_SAMPLERS, default=None,
                   help="diffusion sampler (default: the run's arch.sampler, ddpm for sr3 runs)")
    p.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default: the run's arch.sample_steps, 100 for sr3 runs)")
    p.add_argument("--consistency", choices=["final", "every", "none"], default=None,
                   help="project the result so downsample(result) == input: final (default), every step too "
                        "(ILVR; ddpm, ddim, dpmpp), or none")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    _add_checkpoint_args(p)
    p.set_defaults(func=cmd_upscale)

    # eval -------------------------------------------------------------------------------------
    p = sub.add_parser("eval", help="evaluate a trained run: loss, likelihood, FID/KID/precision-recall",
                       description="Evaluate a run's newest checkpoint. loss and nll score a data split; "
                                   "fid, kid, pr and classes (images) and modes (2-D mixtures) score N samples "
                                   "drawn from the model against N test-split items, always beside the "
                                   "real-vs-real floor (N other real items scored the same way). Prints a table "
                                   "and, with --json, writes the numbers to a file.",
                       epilog="metrics:\n"
                              "  loss     mean training loss on the split (text: also perplexity, bits per token)\n"
                              "  nll      diffusion: bits/dim from the full variational bound (T evaluations per batch)\n"
                              "  fid      Frechet distance of feature-net features (Heusel et al. 2017)\n"
                              "  kid      kernel inception distance, mean and std over 100 subsets (Binkowski et al. 2018)\n"
                              "  pr       precision, recall (k=3) and density, coverage (k=5)\n"
                              "  classes  predicted-class entropy (1 = all classes equally) and Inception Score\n"
                              "  modes    2-D mixtures: modes covered and high-quality fraction (3 sigma)\n"
                              "  recon    autoencoder, ldm: reconstruction MSE and PSNR of N split images, and FID of "
                              "the reconstructions beside the same images' own (floor)\n"
                              "  accuracy classifiers (vit): test accuracy, per class, beside the evaluation CNN's; "
                              "writes RUN/confusion-SPLIT.png\n"
                              "  bleu, chrf, exact  seq2seq: corpus BLEU, chrF (sacrebleu, 0-100) and exact-match % of "
                              "the translations of the split (default test: unseen numbers)\n\n"
                              "examples:\n"
                              "  twopaths eval runs/ddpm --metrics fid,kid,pr,classes --n 10000 --sampler dpmpp --steps 20\n"
                              "  twopaths eval runs/ddpm --metrics fid --n 2000 --guidance 3 --json fid.json\n"
                              "  twopaths eval --real-vs-real fashion-mnist --n 10000\n"
                              "  twopaths eval runs/mix --metrics modes --n 4000\n"
                              "  twopaths eval runs/gpt --split test\n"
                              "  twopaths eval runs/vit --metrics accuracy\n"
                              "  twopaths eval runs/fr --metrics bleu,chrf,exact --beam 4 --length-penalty 0.6",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, nargs="?", help="run directory (omit with --real-vs-real)")
    p.add_argument("--real-vs-real", metavar="DATASET",
                   help="no run: print the floor of the sample metrics for DATASET at --n")
    p.add_argument("--split", choices=["val", "test", "train"], default=None,
                   help="loss/nll: the split to score (default val); sample metrics: the real split compared "
                        "against (default test; the floor's other real images come from train, or val)")
    p.add_argument("--batches", type=int, default=None, help="loss/nll: only the first N batches (default: all)")
    p.add_argument("--n", type=int, default=None,
                   help="loss/nll: only the first N items of the split; sample metrics: number of samples "
                        "(default 10,000, or the real split's size if smaller)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated, from: loss, nll, fid, kid, pr, classes, modes, accuracy, recon, bleu, chrf, "
                        "exact (see below; "
                        "default loss (classifiers: loss,accuracy), or the sample metrics with --real-vs-real)")
    _add_checkpoint_args(p)
    g = p.add_argument_group("sample metrics")
    g.add_argument("--sampler", choices=["ddpm", "ddim", "dpmpp", "euler", "heun"], default="ddim",
                   help="diffusion sampler (default ddim)")
    g.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default: T for ddpm, the run's arch.sample_steps otherwise)")
    g.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1 = plain conditional)")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same samples, same numbers)")
    g.add_argument("--batch-size", type=int, default=500, help="samples generated per batch (default 500)")
    g.add_argument("--feature-net", metavar="NAME_OR_PATH",
                   help="feature network: a shipped name (fashion-mnist, shapes) or a .safetensors file with "
                        "a .json card beside it (default: the run's dataset)")
    g = p.add_argument_group("translation metrics (seq2seq)")
    _add_decoding_args(g)
    p.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    p.set_defaults(func=cmd_eval)

    # translate --------------------------------------------------------------------------------
    p = sub.add_parser("translate", help="translate text with a sequence-to-sequence run (seq2seq)",
                       description="Translate each source with a seq2seq run's newest checkpoint (EMA weights unless "
                                   "--no-ema) by beam search (default: the run's arch.beam = 4 beams and length "
                                   "penalty 0.6) or --greedy decoding, with the decoder's KV cache. Prints one "
                                   "translation per line, in the order given.",
                       epilog="examples:\n"
                              "  twopaths translate runs/fr 4321 17 80\n"
                              "  twopaths translate runs/fr 4321 --greedy\n"
                              "  twopaths translate runs/fr --file numbers.txt --beam 8 --length-penalty 1 --show-source\n"
                              "  twopaths translate runs/back \"quatre mille trois cent vingt et un\"  # data.reverse=true",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="run directory of a seq2seq model")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="source texts to translate")
    p.add_argument("--file", metavar="FILE", help="also translate every non-empty line of FILE ('-': stdin)")
    _add_decoding_args(p)
    p.add_argument("--max-len", type=int, default=None, help="most target tokens per translation (default: the context)")
    p.add_argument("--batch-size", type=int, default=256, help="sources decoded together (default 256)")
    p.add_argument("--show-source", action="store_true", help="print SOURCE<TAB>TRANSLATION lines")
    _add_checkpoint_args(p)
    p.set_defaults(func=cmd_translate)

    # arena ------------------------------------------------------------------------------------
    p = sub.add_parser("arena", help="train diffusion, transformers, GANs and VAEs head to head; write a report",
                       description="Train every contender of a suite on the same data with the same training "
                                   "FLOPs (counted per optimizer step and turned into a step count before "
                                   "training, so the same command trains the same models on any machine and under "
                                   "any load), measure quality along the budget (FID/KID/precision/recall with the "
                                   "real-vs-real floor, mode coverage, perplexity, recall accuracy), sampling speed "
                                   "per NFE, training cost (FLOPs, throughput, peak memory) and stability across "
                                   "seeds, and write report.md, a self-contained report.html and results.json into "
                                   "--out. A verdict names a winner only between contenders that learned the data "
                                   "and only when the gap exceeds its interval; otherwise it says inconclusive and "
                                   "why. Finished contenders are cached: re-running the same command resumes where "
                                   "it stopped.",
                       epilog="suites:\n"
                              "  quick     mixture2d (ddpm, gan, vae, coord-gpt; 3 seeds), fashion-mnist (ddpm, dit, ldm,\n"
                              "            pixel-gpt, vae, gan), fortunes (gpt, mdlm): about 10 minutes on 2 CPU cores\n"
                              "  standard  the same contenders with about 10x the FLOPs, n = 1,000 image metrics, and\n"
                              "            recall: about 90 minutes on 2 idle CPU cores (resumable)\n"
                              "  full      larger models and budgets, 3 seeds, plus recall: sized for one GPU\n"
                              "  sequence  recall (gpt, mdlm, conv-lm): associative-recall accuracy vs distance 4..128,\n"
                              "            about 10 minutes on 2 CPU cores\n\n"
                              "examples:\n"
                              "  twopaths arena --suite quick --out arena-quick\n"
                              "  twopaths arena --suite standard --out arena-standard\n"
                              "  twopaths arena --suite full --out arena-full --device cuda\n"
                              "  twopaths arena --only fashion-mnist/ddpm --only fashion-mnist/gan --budget 10T --out a\n"
                              "  twopaths arena --suite quick --only mixture2d --seeds 5 --out a   # stability study\n"
                              "  twopaths arena --suite sequence --budget 4T --out arena-seq   # long-range dependencies\n"
                              "  twopaths arena --report-only --out arena-quick   # rebuild the report from results.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=["quick", "standard", "full", "sequence"], default="quick",
                   help="which suite (default quick)")
    p.add_argument("--out", type=Path, required=True, help="output directory (runs, results.json, report.*)")
    p.add_argument("--only", action="append", default=[], metavar="SUITE[/CONTENDER]",
                   help="run only this suite or contender; repeatable")
    p.add_argument("--budget", metavar="FLOPS", help="training FLOPs per contender and seed, e.g. 2.5T, 300G, 1e13 "
                                                     "(default: the suite's)")
    p.add_argument("--budget-seconds", type=float, metavar="SECONDS",
                   help="train each contender for this many wall-clock seconds instead (load-dependent: a busy "
                        "machine trains every model less, and the report says so)")
    p.add_argument("--seeds", type=int, help="runs per contender (stability is the spread over seeds)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train and sample")
    p.add_argument("--report-only", action="store_true", help="rebuild report.md/html from OUT/results.json")
    p.set_defaults(func=cmd_arena)

    # attention --------------------------------------------------------------------------------
    p = sub.add_parser("attention", help="draw a ViT's attention rollout over test images",
                       description="Attention rollout (Abnar & Zuidema 2020) of a vit run: --n images of a split, "
                                   "each shown plain and with the heat map of what its class token draws on "
                                   "through all layers (heads averaged, identity added for the residual, rows "
                                   "renormalised, layers multiplied), titled with the predicted and true class. "
                                   "Writes one PNG.",
                       epilog="examples:\n"
                              "  twopaths attention runs/vit --n 8 --out attention.png\n"
                              "  twopaths attention runs/vit --n 16 --split val --seed 3\n"
                              "  twopaths attention runs/vit --no-residual   # raw attention products, for comparison",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="run directory of a vit model")
    p.add_argument("--n", type=int, default=8, help="number of images (default 8; 8 per row)")
    p.add_argument("--split", choices=["val", "test", "train"], default="test", help="where the images come from")
    p.add_argument("--seed", type=int, default=0, help="which images: a random pick with this seed")
    p.add_argument("--out", type=Path, help="PNG to write (default RUN/attention.png)")
    p.add_argument("--no-residual", action="store_true",
                   help="multiply the head-averaged attention alone, without the identity for the residual")
    _add_checkpoint_args(p)
    p.set_defaults(func=cmd_attention)

    # export / import-hf ------------------------------------------------------------------------
    p = sub.add_parser("export", help="write a run in another library's format (Hugging Face GPT-2)",
                       description="Write a GPT run as a Hugging Face GPT-2 folder (config.json, model.safetensors, "
                                   "tokenizer) that transformers.GPT2LMHeadModel.from_pretrained(DIR) loads. "
                                   "Needs a GPT-2 compatible run: learned positions, gelu-tanh, biases, tied head.")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--format", choices=["hf"], default="hf", help="output format (only hf for now)")
    p.add_argument("--out", type=Path, required=True, help="folder to create (must not exist or be empty)")
    _add_checkpoint_args(p)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import-hf", help="turn a local Hugging Face GPT-2 folder into a twopaths run",
                       description="Read a local GPT-2 folder (config.json, model.safetensors, tokenizer.json or "
                                   "vocab.json + merges.txt) and write a twopaths run you can sample, evaluate "
                                   "or fine-tune with --resume. Never unpickles: pytorch_model.bin is refused.")
    p.add_argument("dir", type=Path, help="the Hugging Face model folder")
    p.add_argument("--out", type=Path, required=True, help="run directory to create")
    p.set_defaults(func=cmd_import_hf)

    # data -------------------------------------------------------------------------------------
    p = sub.add_parser("data", help="list datasets, or fetch Fashion-MNIST",
                       description="'list' shows every dataset, where it was found, its size and shapes. "
                                   "'fetch fashion-mnist' downloads the IDX files from the official mirror "
                                   "into the cache (checksums verified); it is the only network access.")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True, help="list or fetch")
    q = data_sub.add_parser("list", help="show every dataset and where it was found",
                            description="Show every dataset, where it was found, its size and shapes. Pair datasets "
                                        "(numbers-LANG, pairs) go from source to target; --set data.reverse=true swaps "
                                        "the two (numbers-fr: French words -> digits).")
    q.add_argument("--path", help="an explicit Fashion-MNIST folder to check")
    q.set_defaults(func=cmd_data_list)
    q = data_sub.add_parser("fetch", help="download a dataset (only fashion-mnist needs it)")
    q.add_argument("name", choices=["fashion-mnist"], help="dataset to download (the others are local or procedural)")
    q.add_argument("--dest", type=Path, help="folder to download into (default: the cache, see TWOPATHS_CACHE)")
    q.set_defaults(func=cmd_data_fetch)
    return parser


# ----------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    from twopaths.data.registry import load_splits
    from twopaths.models import load_run_config, resolve_config
    from twopaths.runs import build_trainer
    from twopaths.train.checkpoint import list_checkpoints

    if args.resume:
        if args.model or args.data or args.config:
            raise TwopathsError("--resume takes the model, data and config from the run; "
                                "change values with --set only")
        run_dir = args.resume
        cfg = load_run_config(run_dir, args.overrides)
        if not list_checkpoints(run_dir / "checkpoints"):
            raise TwopathsError(f"run {run_dir} has no checkpoint to resume from; "
                                f"start it again with 'twopaths train {cfg.model} --out {run_dir}'")
    else:
        if not args.model:
            raise TwopathsError("name a model to train (see 'twopaths train --help'), or --resume RUN")
        if not args.out and not args.dry_run:
            raise TwopathsError("--out RUN is required: the directory where checkpoints and metrics go")
        cfg = resolve_config(args.model, args.config, args.overrides, args.data)
        run_dir = args.out or Path("runs") / args.model
        if list_checkpoints(run_dir / "checkpoints") and not args.dry_run:
            raise TwopathsError(f"{run_dir} already holds a run with checkpoints; continue it with "
                                f"--resume {run_dir}, or choose another --out (nothing was changed)")

    splits = load_splits(cfg.data, None if args.dry_run else run_dir)
    trainer = build_trainer(cfg, run_dir, splits)
    if args.dry_run:
        from twopaths.config import to_dict

        plan = trainer.dry_run()
        print("dry run: nothing written\n")
        for key, value in plan.items():
            print(f"  {key:<40} {value:,}" if isinstance(value, int) and not isinstance(value, bool)
                  else f"  {key:<40} {value}")
        print(f"\n  data source: {splits.meta.get('source')}")
        print("  arch: " + json.dumps(to_dict(cfg.arch)))
        return 0
    if trainer.is_main:
        print(f"training {cfg.model} on {cfg.data.name} ({splits.meta.get('source')}) -> {run_dir}"
              + (f" (resuming)" if args.resume else ""), file=sys.stderr)
    result = trainer.fit(resume=bool(args.resume))
    if trainer.is_main:
        print(f"done: step {result['step']}, loss {result['loss']:.4f}, {result['seconds']:.1f}s; "
              f"checkpoint {result['checkpoint']}", file=sys.stderr)
    from twopaths.train.distributed import shutdown

    shutdown()
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from twopaths.runs import load_run

    run = load_run(args.run, args.checkpoint, use_ema=not args.no_ema)
    if run.spec.sample_command is None:
        raise TwopathsError(f"model '{run.cfg.model}' has no sampler")
    masked = set(MASKED_SAMPLERS)
    if run.spec.samplers:
        args.sampler = args.sampler or run.spec.samplers[0]
        if args.sampler not in run.spec.samplers:
            raise TwopathsError(f"--sampler {args.sampler} does not fit model '{run.cfg.model}'; "
                                f"it samples with {', '.join(run.spec.samplers)}")
    elif args.sampler in masked or args.block_size is not None or args.infill is not None:
        raise TwopathsError(f"--sampler {args.sampler or 'block'}, --block-size and --infill are for masked "
                            f"diffusion models (mdlm); model '{run.cfg.model}' does not take them")
    else:
        args.sampler = args.sampler or "ddim"
    if args.block_size is not None and args.sampler != "block":
        raise TwopathsError("--block-size goes with --sampler block")
    is_text = "tokenizer" in run.meta
    args.n = args.n if args.n is not None else (1 if is_text else 64)
    if args.n < 1 or args.max_new_tokens < 1 or (args.steps is not None and args.steps < 1):
        raise TwopathsError("--n, --steps and --max-new-tokens must be >= 1")
    return run.spec.sample_command(run, args)


def cmd_fill(args: argparse.Namespace) -> int:
    from twopaths.runs import load_run
    from twopaths.models.bert import fill_command

    return fill_command(load_run(args.run, args.checkpoint, use_ema=not args.no_ema), args)


def cmd_inpaint(args: argparse.Namespace) -> int:
    from twopaths.runs import load_run
    from twopaths.models.superres import inpaint_command

    return inpaint_command(load_run(args.run, args.checkpoint, use_ema=not args.no_ema), args)


def cmd_upscale(args: argparse.Namespace) -> int:
    from twopaths.runs import load_run
    from twopaths.models.superres import upscale_command

    return upscale_command(load_run(args.run, args.checkpoint, use_ema=not args.no_ema), args)


def cmd_attention(args: argparse.Namespace) -> int:
    from twopaths.runs import load_run
    from twopaths.models.vit import attention_command

    return attention_command(load_run(args.run, args.checkpoint, use_ema=not args.no_ema, with_data=True), args)


LOSS_METRICS = ("loss", "nll")
IMAGE_SAMPLE_METRICS = ("fid", "kid", "pr", "classes")
POINT_SAMPLE_METRICS = ("modes",)
CLASSIFIER_METRICS = ("loss", "accuracy")
PAIR_METRICS = ("bleu", "chrf", "exact")
RECON_METRICS = ("recon",)  # autoencoder and ldm runs: twopaths.eval.reconstruction


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from twopaths.data.registry import dataset_kind

    if (args.run is None) == (args.real_vs_real is None):
        raise TwopathsError("give a run directory, or --real-vs-real DATASET (not both)")
    if args.n is not None and args.n < 1:
        raise TwopathsError("--n must be >= 1")
    if args.batch_size < 1 or (args.steps is not None and args.steps < 1):
        raise TwopathsError("--batch-size and --steps must be >= 1")
    default = "loss" if args.run is not None else None
    metrics_asked = [m.strip() for m in (args.metrics or default or "").split(",") if m.strip()]
    known = LOSS_METRICS + IMAGE_SAMPLE_METRICS + POINT_SAMPLE_METRICS + ("accuracy",) + PAIR_METRICS + RECON_METRICS
    unknown = [m for m in metrics_asked if m not in known]
    if unknown:
        raise TwopathsError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(known)}")

    if args.real_vs_real is not None:
        kind = dataset_kind(args.real_vs_real)
        if kind not in ("image", "points"):
            raise TwopathsError(f"--real-vs-real needs an image or 2-D point dataset; '{args.real_vs_real}' is "
                                f"{kind} data")
        metrics_asked = metrics_asked or list(IMAGE_SAMPLE_METRICS if kind == "image" else POINT_SAMPLE_METRICS)
        from twopaths.config import DataConfig

        _check_metric_kinds(metrics_asked, kind, args.real_vs_real, allow_loss=False)
        result = _sample_metrics(None, DataConfig(name=args.real_vs_real), kind, metrics_asked, args)
        _print_sample_table(result, real_only=True)
        if args.json:
            args.json.write_text(json.dumps({"dataset": args.real_vs_real, **result}, indent=2))
        return 0

    from twopaths.runs import load_run
    from twopaths.train.trainer import mean_loss

    run = load_run(args.run, args.checkpoint, use_ema=not args.no_ema, with_data=True)
    kind = dataset_kind(run.cfg.data.name)
    from twopaths.paradigms.classifier import Classifier

    classifier = isinstance(run.model, Classifier)
    if classifier and args.metrics is None:
        metrics_asked = list(CLASSIFIER_METRICS)
    _check_metric_kinds(metrics_asked, "classifier" if classifier else kind, run.cfg.data.name, allow_loss=True)
    weights = "raw" if args.no_ema or not run.checkpoint.has_ema else "EMA"
    report: dict = {"run": str(args.run), "step": run.checkpoint.step}
    loss_asked = [m for m in metrics_asked if m in LOSS_METRICS]
    if loss_asked:
        split = args.split or "val"
        dataset = getattr(run.splits, split)
        if args.n is not None:
            dataset = torch.utils.data.Subset(dataset, range(min(args.n, len(dataset))))
        torch.manual_seed(0)  # stochastic losses (diffusion's t and noise) give the same number every time
        metrics: dict[str, float] = {}
        with torch.no_grad():
            if "loss" in loss_asked:
                loss = mean_loss(run.model, dataset, run.cfg.train.batch_size, torch.device("cpu"),
                                 max_batches=args.batches, progress=True)
                metrics.update(run.spec.report(loss, run.meta))
            if "nll" in loss_asked:
                if not hasattr(run.model, "nll_bits_per_dim"):
                    raise TwopathsError(f"model '{run.cfg.model}' has no likelihood bound; use --metrics loss")
                metrics.update(_diffusion_nll(run, dataset, args.batches))
        print(f"{run.cfg.model} on {run.cfg.data.name}/{split}, checkpoint step {run.checkpoint.step}"
              f" ({weights} weights), {len(dataset):,} items")
        for key, value in metrics.items():
            print(f"  {key:<20} {value:.4f}")
        report.update({"split": split, "items": len(dataset), **metrics})
    if "accuracy" in metrics_asked:
        from twopaths.models.vit import eval_accuracy

        report.update(eval_accuracy(run, args))
    pair_asked = [m for m in metrics_asked if m in PAIR_METRICS]
    if pair_asked:
        from twopaths.models.seq2seq import eval_translation

        report["translation"] = eval_translation(run, pair_asked, args)
    if "recon" in metrics_asked:
        from twopaths.eval.reconstruction import recon_command

        report["recon"] = recon_command(run, args)
    sample_asked = [m for m in metrics_asked
                    if m not in LOSS_METRICS + CLASSIFIER_METRICS + PAIR_METRICS + RECON_METRICS]
    if sample_asked:
        result = _sample_metrics(run, run.cfg.data, kind, sample_asked, args)
        print(f"{run.cfg.model} on {run.cfg.data.name}, checkpoint step {run.checkpoint.step} ({weights} weights): "
              f"{result['n']:,} samples ({result['sampling']}) vs {result['n']:,} {result['real_split']} items")
        _print_sample_table(result)
        report["samples"] = result
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def _check_metric_kinds(metrics: list[str], kind: str, data_name: str, allow_loss: bool) -> None:
    """One clear line when a metric does not fit the data (FID on points, modes on images, ...)."""
    if kind == "classifier":  # a classifier run (vit) samples nothing: its loss and accuracy
        wrong = [m for m in metrics if m not in CLASSIFIER_METRICS]
        if wrong:
            raise TwopathsError(f"metric(s) {', '.join(wrong)} do not fit a classifier run; available here: "
                                f"{', '.join(CLASSIFIER_METRICS)}")
        return
    fits = {"image": IMAGE_SAMPLE_METRICS, "points": POINT_SAMPLE_METRICS, "pairs": PAIR_METRICS}.get(kind, ())
    fits = fits + (LOSS_METRICS if allow_loss else ()) + (RECON_METRICS if allow_loss and kind == "image" else ())
    wrong = [m for m in metrics if m not in fits]
    if wrong:
        hint = " (accuracy is for classifier runs, e.g. model 'vit')" if "accuracy" in wrong else ""
        raise TwopathsError(f"metric(s) {', '.join(wrong)} do not fit {kind} data ('{data_name}'){hint}; "
                            f"available here: {', '.join(fits) or 'none'}")


def _sample_metrics(run, data_cfg, kind: str, metrics: list[str], args: argparse.Namespace) -> dict:
    """Sample metrics of a run (or, with ``run=None``, the real-vs-real floor alone) at --n."""
    from twopaths.data.images import real_images
    from twopaths.eval import images as ev

    split = args.split or "test"
    floor_split = "train" if split != "train" else "val"
    if kind == "points":
        return _mode_metrics(run, data_cfg, split, args)
    n = args.n
    if n is None:  # 10,000, or what the split holds
        from twopaths.data.registry import load_splits

        n = 10_000 if data_cfg.name in ("shapes",) else min(10_000, len(getattr(load_splits(data_cfg), split)))
    from twopaths.eval.features import SHIPPED, load_feature_net

    net_name = args.feature_net or data_cfg.name
    if args.feature_net is None and net_name not in SHIPPED:
        raise TwopathsError(f"no shipped feature net for dataset '{data_cfg.name}' (shipped: {', '.join(SHIPPED)}); "
                            f"pass --feature-net PATH.safetensors")
    real_eval, _ = real_images(data_cfg, n, split, seed=args.seed)  # data errors (--n too large) first
    real_floor, _ = real_images(data_cfg, n, floor_split, seed=args.seed + 1)
    net = load_feature_net(net_name)
    if real_eval.shape[-1] != net.arch["resolution"]:
        print(f"note: {real_eval.shape[-1]}x{real_eval.shape[-1]} images are resized to the feature net's "
              f"{net.arch['resolution']}x{net.arch['resolution']}; compare these numbers only with runs at the "
              f"same resolution", file=sys.stderr)
    fake, sampling = None, None
    if run is not None:
        steps = args.steps
        if hasattr(run.model, "schedule"):  # diffusion: the run's default number of steps
            steps = steps or (run.model.schedule.T if args.sampler == "ddpm" else run.cfg.arch.sample_steps)
            sampling = f"{args.sampler}, {steps} steps" + (f", guidance {args.guidance:g}"
                                                           if getattr(run.model, "num_classes", 0) else "")
        else:
            sampling = run.cfg.model
        fake = ev.sample_model(run.model, n, args.batch_size, args.sampler, steps, args.guidance, args.seed)
    result = ev.evaluate_images(fake, real_eval, real_floor, net, metrics)
    result.update({"real_split": split, "floor_split": floor_split})
    if sampling:
        result["sampling"] = sampling
    return result


def _mode_metrics(run, data_cfg, split: str, args: argparse.Namespace) -> dict:
    """Mode coverage of n samples, and of n fresh draws from the mixture as the floor."""
    from twopaths.data.registry import load_splits
    from twopaths.data.toy import sample_mixture
    from twopaths.eval.coverage import mode_coverage
    from twopaths.eval.images import sample_model

    meta = run.meta if run is not None else load_splits(data_cfg).meta
    n = args.n or 10_000
    real, _ = sample_mixture(meta["variant"], n, seed=10_000 + args.seed)
    result: dict = {"n": n, "feature_net": "-", "real_split": "fresh mixture", "floor_split": "fresh mixture",
                    "metrics": {}, "floor": {}}
    rows = [("floor", real)]
    if run is not None:
        steps, sampling = args.steps, run.cfg.model
        if hasattr(run.model, "schedule"):  # diffusion
            steps = steps or (run.model.schedule.T if args.sampler == "ddpm" else run.cfg.arch.sample_steps)
            sampling = f"{args.sampler}, {steps} steps"
        rows.append(("metrics", sample_model(run.model, n, args.batch_size, args.sampler, steps, args.guidance,
                                             args.seed)))
        result["sampling"] = sampling
    for row, points in rows:
        cov = mode_coverage(points, meta["modes"], meta["std"])
        result[row].update({"modes_covered": cov["modes_covered"], "high_quality": cov["high_quality"]})
        result["per_mode" if row == "metrics" else "real_per_mode"] = cov["per_mode"]
    result["modes"] = len(meta["modes"])
    return result


def _print_sample_table(result: dict, real_only: bool = False) -> None:
    """metric | value | real-vs-real floor | n | feature net."""
    print(f"  {'metric':<20} {'value':>12} {'real-vs-real':>14} {'n':>8}  feature net")
    for key, floor in result["floor"].items():
        value = "-" if real_only else _fmt(result["metrics"][key])
        print(f"  {key:<20} {value:>12} {_fmt(floor):>14} {result['n']:>8,}  {result['feature_net']}")


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _diffusion_nll(run, dataset, max_batches: int | None) -> dict[str, float]:
    """Bits per dimension from the full variational bound (T network evaluations per batch)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    model = run.model
    loader = DataLoader(dataset, batch_size=min(64, len(dataset)))
    total = min(len(loader), max_batches) if max_batches else len(loader)
    bits, prior = [], []
    desc = f"VLB ({model.schedule.T} steps per batch)" if hasattr(model, "schedule") else "likelihood bound"
    for i, batch in enumerate(tqdm(loader, total=total, desc=desc)):
        if i >= total:
            break
        x = batch[model.data_key]
        y = batch["label"] if model.num_classes else None
        out = model.nll_bits_per_dim(x, y)
        bits.append(out["bits_per_dim"])
        prior.append(out["prior_bits_per_dim"])
    return {"nll_bits_per_dim": float(torch.cat(bits).mean()), "prior_bits_per_dim": float(torch.cat(prior).mean())}


def cmd_arena(args: argparse.Namespace) -> int:
    from twopaths.arena.report import write_report
    from twopaths.arena.runner import read_json, run_arena
    from twopaths.arena.suites import select

    if args.report_only:
        results = read_json(args.out / "results.json")
        if results is None:
            raise TwopathsError(f"no readable {args.out / 'results.json'}; run the arena into {args.out} first")
    else:
        from twopaths.arena.suites import parse_flops

        budget = parse_flops(args.budget) if args.budget is not None else None
        suites = select(args.suite, args.only, budget, args.seeds, args.budget_seconds)
        results = run_arena(suites, args.out, args.suite, args.device, log=lambda m: print(m, file=sys.stderr))
    md, page = write_report(results, args.out)
    print(f"report: {page.resolve()}\n        {md.resolve()}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from twopaths.models.seq2seq import translate_command

    return translate_command(args)


def cmd_export(args: argparse.Namespace) -> int:
    from twopaths.interop.hf import export_hf

    out = export_hf(args.run, args.out, args.checkpoint, use_ema=not args.no_ema)
    print(f"wrote {out} (load it with transformers.GPT2LMHeadModel.from_pretrained)")
    return 0


def cmd_import_hf(args: argparse.Namespace) -> int:
    from twopaths.interop.hf import import_hf

    out = import_hf(args.dir, args.out)
    print(f"wrote run {out}; try: twopaths sample {out} --prompt \"Hello\"")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from twopaths.data.registry import inventory

    rows = inventory(args.path)
    headers = ("name", "kind", "size", "shapes", "found at")
    table = [(r.name + ("" if r.available else " (missing)"), r.kind, r.size, r.shapes, r.source) for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers[:-1])]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)) + "  " + headers[-1])
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from twopaths.data.images import download_fashion_mnist

    path = download_fashion_mnist(args.dest)
    print(f"Fashion-MNIST is in {path} (checksums verified)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TwopathsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; a training run continues from its newest checkpoint with --resume RUN",
              file=sys.stderr)
        return 130
