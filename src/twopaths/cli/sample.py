"""``twopaths sample``: generate from a trained run, with the sample function of its model family.

The options are checked here and passed on as keyword arguments to the model spec's ``sample``
(:class:`~twopaths.models.spec.ModelSpec`), which takes the ones its family uses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from twopaths.cli.options import (GAUSSIAN_SAMPLERS, MASKED_SAMPLERS, MAX_N, check_n, check_steps, check_writable,
                                  command, count, finite, fraction, load, natural, non_negative)
from twopaths.errors import TwopathsError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "sample", cmd_sample, run="run directory")
    p.add_argument("--n", type=count, default=None,
                   help="number of samples (text: 1, molecules: 100, audio: 8, video: 8, images: 64)")
    p.add_argument("--seed", type=natural, default=0, help="random seed (same seed, same samples)")
    p.add_argument("--force", action="store_true", help=f"allow --n above {MAX_N:,}")
    g = p.add_argument_group("text models")
    g.add_argument("--prompt", default="", help="text to continue (default: start of a new document)")
    g.add_argument("--max-new-tokens", type=count, default=200, help="tokens to generate per sample")
    g.add_argument("--temperature", type=non_negative, default=None,
                   help="softmax temperature; 0 = greedy (default 0.8; molecules: 1, as MOSES samples)")
    g.add_argument("--top-k", type=count, default=None, help="sample only among the k most likely tokens")
    g.add_argument("--top-p", type=fraction, default=None,
                   help="nucleus sampling: only the most likely tokens whose probability adds up to p")
    g.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="stop a sample when this text appears (not printed); repeatable")
    g = p.add_argument_group("diffusion models")
    g.add_argument("--sampler", choices=[*GAUSSIAN_SAMPLERS, *MASKED_SAMPLERS], default=None,
                   help="Gaussian diffusion (default: the run's own, arch.sampler): DDPM ancestral, DDIM (eta 0), "
                        "DPM-Solver++(2M), or Euler/Heun on EDM sigmas; masked diffusion (mdlm, default ancestral): MDLM ancestral, "
                        "LLaDA low-confidence remasking, or block (semi-autoregressive remasking)")
    g.add_argument("--steps", type=count, default=None,
                   help="sampling steps (default: the run's arch.sample_steps, or T for ddpm when that is not "
                        "the run's own sampler; mdlm: the number of tokens to fill); heun evaluates the network "
                        "twice per step")
    g.add_argument("--block-size", type=count, default=None,
                   help="mdlm --sampler block: tokens per block, filled left to right (default: one block)")
    g.add_argument("--infill", metavar="TEXT", default=None,
                   help="mdlm: fill the gaps of TEXT, each run of '_' (two or more) being that many tokens; "
                        "the rest of TEXT is kept exactly")
    g.add_argument("--spacing", choices=["leading", "linspace", "trailing"], default="leading",
                   help="how the steps are placed among the T training timesteps")
    g.add_argument("--class", dest="class_", metavar="C",
                   help="class name or number for class-conditional models (default: every class in turn)")
    g.add_argument("--guidance", type=finite, default=1.0,
                   help="classifier-free guidance scale w (1 = plain conditional; 3 is a common choice)")
    g.add_argument("--out", help="output file: .png (grid or scatter plot) or .npz (arrays); "
                                 "default RUN/samples/sample.png. Molecule runs (moses): .smi (SMILES, one per "
                                 "line) or .png (RDKit drawings); without --out they are printed")
    g.add_argument("--trajectory", metavar="PNG", help="also draw x_t and the predicted x0 across the steps")
    g = p.add_argument_group("video models")
    g.add_argument("--context-frames", type=count, default=None, metavar="K",
                   help="video prediction: continue the first K frames of N held-out test clips (1 <= K < the "
                        "run's frames) and write the ground truth beside (X_truth.png). Video --out: .gif (an "
                        "animation, the clips side by side, and X.png, one row per clip and one column per "
                        "frame) or .png (that strip alone); default RUN/samples/sample.gif")


def cmd_sample(args: argparse.Namespace) -> int:
    """generate from a trained run

    Generate from a run's newest checkpoint (EMA weights unless --no-ema). Text models stream tokens to
    stdout; diffusion models write a PNG grid (or a scatter plot for 2-D points) or NPZ arrays; molecule
    runs (moses) print SMILES or write them to .smi, or draw them into a .png; audio runs (wavenet,
    diffwave) write a WAV file, or a folder of them with a spectrogram grid; video runs write an animated
    GIF and a frame strip.

    examples:
      twopaths sample runs/gpt --prompt "The secret of" --n 3 --top-p 0.9
      twopaths sample runs/ddpm --n 64 --sampler dpmpp --steps 20 --out grid.png
      twopaths sample runs/ddpm --class Sneaker --guidance 3 --trajectory traj.png
      twopaths sample runs/moses-gpt --n 1000 --out mols.smi   # molecules: .smi, or .png drawings
      twopaths sample runs/diffwave --class seven --n 8 --out seven.wav   # a folder of WAVs
      twopaths sample runs/video-ddpm --n 4 --out clips.gif   # animated GIF + clips.png strip
      twopaths sample runs/video-ar --n 4 --context-frames 2 --out next.gif   # continue test clips
    """
    run = load(args)
    if run.spec.sample is None:
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
    elif run.spec.evaluation != "diffusion" and (args.sampler is not None or args.steps is not None):
        raise TwopathsError(f"--sampler and --steps are for diffusion models; model '{run.cfg.model}' samples "
                            f"in one pass or token by token and would ignore them")
    if args.block_size is not None and args.sampler != "block":
        raise TwopathsError("--block-size goes with --sampler block")
    check_steps(run, args.steps)
    check_n(args.n, args.force)
    is_text = "tokenizer" in run.meta
    is_video = "frames" in run.meta
    if is_video:
        _check_video_options(run, args)
    elif args.context_frames is not None:
        raise TwopathsError(f"--context-frames continues video clips; model '{run.cfg.model}' is not a video model")
    if is_text and _is_molecule_run(run):
        return _sample_molecules(run, args)
    if "sample_rate" in run.meta and args.out and Path(args.out).suffix != ".wav":
        raise TwopathsError(f"audio samples are written as .wav files (several: a folder of them), not "
                            f"{Path(args.out).name}")
    check_writable(Path(args.out) if args.out else Path(run.run_dir) / "samples" / "sample.png", makes_folders=True)
    args.n = args.n if args.n is not None else (1 if is_text else 8 if "sample_rate" in run.meta or is_video else 64)
    if args.temperature is None:  # text: 0.8; audio: the model's own distribution
        args.temperature = 1.0 if "sample_rate" in run.meta else 0.8
    return run.spec.sample(run, n=args.n, seed=args.seed, out=args.out, prompt=args.prompt,
                           max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                           top_p=args.top_p, stop=args.stop, sampler=args.sampler, steps=args.steps,
                           block_size=args.block_size, infill=args.infill, spacing=args.spacing, class_=args.class_,
                           guidance=args.guidance, trajectory=args.trajectory, context_frames=args.context_frames)


def _check_video_options(run, args: argparse.Namespace) -> None:
    """A video run's options, before anything is computed or written: one clear line each."""
    frames = int(run.meta["frames"])
    if args.out and Path(args.out).suffix not in (".gif", ".png"):
        raise TwopathsError(f"video samples are written as .gif (an animation and a .png frame strip beside it) "
                            f"or .png (the frame strip), not {Path(args.out).name}")
    if args.context_frames is not None and args.context_frames >= frames:
        raise TwopathsError(f"--context-frames {args.context_frames} leaves nothing to generate: the run's clips have "
                            f"{frames} frames, so K must be 1..{frames - 1}")
    if args.trajectory:
        raise TwopathsError("--trajectory draws the denoising of images; video runs write their clips only")


def _is_molecule_run(run) -> bool:
    from twopaths.eval.smiles_sampling import is_molecule_run

    return is_molecule_run(run)


def _sample_molecules(run, args: argparse.Namespace) -> int:
    """Molecules from a run trained on SMILES: to a .smi or .png file, or printed one per line."""
    from twopaths.eval.smiles_sampling import sample_smiles, write_molecules
    from twopaths.models.text import infill_template

    if args.prompt or args.stop or args.top_k is not None or args.top_p is not None:
        raise TwopathsError("molecule runs sample whole molecules: --prompt, --stop, --top-k and --top-p do not "
                            "apply (an mdlm fills a fixed scaffold with --infill 'c1ccc(____)cc1')")
    template = infill_template(args.infill, run.meta["tokenizer"]) if args.infill is not None else None
    if args.out is not None:
        if Path(args.out).suffix not in (".smi", ".png"):
            raise TwopathsError(f"molecules are written as .smi (SMILES, one per line) or .png (drawings), "
                                f"not {Path(args.out).name}")
        check_writable(Path(args.out), makes_folders=True)
    smiles = sample_smiles(run, args.n or 100, seed=args.seed, temperature=1.0 if args.temperature is None
                           else args.temperature, steps=args.steps, sampler=args.sampler if run.spec.samplers else None,
                           infill=template)
    if args.out is None:
        print("\n".join(smiles))
        return 0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print(write_molecules(smiles, args.out))
    return 0
