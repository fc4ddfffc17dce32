"""Molecules from a trained text model (``twopaths sample RUN --out mols.smi`` or ``mols.png``), and their
MOSES metrics (``twopaths eval RUN --metrics moses``).

A model trained on SMILES documents (``--data moses`` or ``moses-small``) saw one stream of molecules with
an end-of-text token between consecutive ones, so a molecule is what follows ``<|endoftext|>`` up to the
next. A sequence VAE's decoder, given z ~ N(0, I), is prompted with that token and stops at the next one
(Polykovskiy et al. 2020 sample their CharRNN and VAE the same way, from a start token to an end token); it
was trained on one molecule per row, each starting with the end token at position 0. An autoregressive
model was not: it read windows cut anywhere in the stream (nanoGPT's packing), so in training an end token
at position 0 with nothing before it, and a molecule starting at position 1, came once in ~40 windows, and
everywhere else an end token followed the tail of another molecule. Sampled from position 0 it starts
molecules as if in the middle of one more often (an unopened ``)``: 0.7% of molecules against 0.2%
after a burn-in, for the 384-TFLOP gpt of docs/arena-molecules). So it is sampled as the stream it was
trained on: each row first writes a molecule that is thrown away, whatever it is, and the kept molecule
follows the last :data:`BURN_IN_TAIL` tokens of that one, its end token included (a short tail, so the kept
molecule fits in the context window as training molecules did). That costs about twice the tokens. A masked diffusion model
(MDLM, Sahoo et al. 2024) denoises a whole window whose first token is fixed to ``<|endoftext|>``, and the
molecule is read from the window up to the next end token: the window's length (its context) is the
longest molecule it can make. The molecules are then scored by :func:`twopaths.eval.molecules.moses_metrics`
against the run's own training and test splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from twopaths.data.molecules import MOLECULE_DATASETS
from twopaths.errors import TwopathsError

#: tokens a sampled molecule may have before it is cut (MOSES molecules have at most ~60 SMILES tokens)
MAX_TOKENS = 100
#: tokens of an autoregressive model's burn-in molecule, its end token included, kept as the left context
#: of the molecule it samples next (see the module docstring)
BURN_IN_TAIL = 8


def sample_smiles(run: Any, n: int, seed: int = 0, batch_size: int = 500, temperature: float = 1.0,
                  max_tokens: int = MAX_TOKENS, steps: int | None = None, sampler: str | None = None,
                  infill: tuple[list[int], list[bool]] | None = None) -> list[str]:
    """``n`` SMILES strings from ``run``'s model, each from ``<|endoftext|>`` to the next (see the module
    docstring); a molecule that reaches ``max_tokens`` (an MDLM: the end of its window) first is kept as it
    stands and usually fails validity. ``steps`` and ``sampler`` are MDLM's (default: one step per token
    to fill, its first sampler). ``infill`` (MDLM only): token ids and a mask of the positions to fill,
    such as a scaffold with gaps; every molecule keeps the unmasked tokens and is exactly that long."""
    from twopaths.paradigms.mdlm import MaskedDiffusion
    from twopaths.paradigms.sequence_vae import SequenceVAE

    model, tokenizer = run.model, run.meta["tokenizer"]
    eot = tokenizer.eot_id
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    if infill is not None:
        if not isinstance(model, MaskedDiffusion):
            raise TwopathsError(f"infilling needs a masked diffusion model (mdlm); '{run.cfg.model}' is not one")
        ids, fill = [eot, *infill[0], eot], [False, *infill[1], False]
        if len(ids) > model.context:
            raise TwopathsError(f"the infill template is {len(ids) - 2} tokens; molecules of this model have at "
                                f"most {model.context - 2}")
        sampler = sampler or run.spec.samplers[0]  # steps: MaskedDiffusion.default_steps, one per token to fill

        def batch(b: int) -> list[list[int]]:
            return model.infill(torch.tensor(ids).expand(b, -1), torch.tensor(fill), sampler=sampler, steps=steps,
                                generator=generator, temperature=temperature)[:, 1:-1].tolist()
    elif isinstance(model, MaskedDiffusion):
        length = min(model.context, max_tokens + 1)
        sampler = sampler or run.spec.samplers[0]

        def batch(b: int) -> list[list[int]]:
            rows = model.sample(b, sampler=sampler, steps=steps, generator=generator, length=length, prompt=[eot],
                                temperature=temperature)[:, 1:].tolist()
            return [row[:row.index(eot)] if eot in row else row for row in rows]
    elif isinstance(model, SequenceVAE):
        def batch(b: int) -> list[list[int]]:
            return model.sample(b, generator=generator, max_tokens=max_tokens, temperature=temperature)
    elif hasattr(model, "generate"):
        def batch(b: int) -> list[list[int]]:  # a burn-in molecule, then the kept one (module docstring)
            burn_in = model.generate([[eot]] * b, max_tokens, temperature=temperature, stop_id=eot, generator=generator)
            prompts = [[eot, *ids, eot][-BURN_IN_TAIL:] for ids in burn_in]
            return model.generate(prompts, max_tokens, temperature=temperature, stop_id=eot, generator=generator)
    else:
        raise TwopathsError(f"molecules are sampled token by token or by masked diffusion; model '{run.cfg.model}' "
                            f"does neither (train gpt-nano, gpt, mlp-lm, mdlm or seq-vae on moses)")
    smiles: list[str] = []
    with tqdm(total=n, desc="sampling molecules", unit="mol") as bar, torch.no_grad():
        while len(smiles) < n:
            b = min(batch_size, n - len(smiles))
            smiles += [tokenizer.decode(ids) for ids in batch(b)]
            bar.update(b)
    return smiles


def is_molecule_run(run: Any) -> bool:
    """Whether ``run`` was trained on SMILES (a MOSES dataset, or any data read with the SMILES tokenizer)."""
    return run.cfg.data.name in MOLECULE_DATASETS or getattr(run.meta.get("tokenizer"), "kind", None) == "smiles"


def write_molecules(smiles: list[str], out: str | Path, per_row: int = 8, max_drawn: int = 48) -> str:
    """Write sampled SMILES to ``out``: ``.smi`` (one per line, as sampled, invalid ones included so the file
    scores as the sample did) or ``.png`` (a grid of the first ``max_drawn`` valid molecules drawn by RDKit,
    each with its sample number). Returns a one-line summary (how many, how many valid)."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import Draw

    out = Path(out)
    with rdBase.BlockLogs():
        mols = [Chem.MolFromSmiles(s) if s else None for s in smiles]
    valid = [(i, m) for i, m in enumerate(mols) if m is not None]
    if out.suffix == ".smi":
        out.write_text("".join(s + "\n" for s in smiles), encoding="utf-8")
    elif out.suffix == ".png":
        if not valid:
            raise TwopathsError(f"none of the {len(smiles)} sampled molecules is valid: nothing to draw in {out}")
        drawn = valid[:max_drawn]
        image = Draw.MolsToGridImage([m for _, m in drawn], molsPerRow=min(per_row, len(drawn)),
                                     subImgSize=(220, 180), legends=[f"#{i}" for i, _ in drawn])
        image.save(out)
    else:
        raise TwopathsError(f"molecules are written as .smi (SMILES, one per line) or .png (drawings), not {out.name}")
    return f"{len(smiles)} molecules, {len(valid)} valid ({len(valid) / len(smiles):.1%}) -> {out}"


def moses_report(run: Any, n: int, seed: int = 0, batch_size: int = 500, temperature: float = 1.0,
                 steps: int | None = None) -> dict[str, Any]:
    """MOSES metrics of ``n`` molecules sampled from ``run`` against its data's train (novelty) and test
    splits (SNN, Frag, Scaf, property distances); unique@k for each k in (1,000, 10,000) up to ``n``.
    ``temperature`` and ``steps`` (an MDLM's) are :func:`sample_smiles`'; MOSES samples at temperature 1."""
    from twopaths.data.registry import text_documents
    from twopaths.eval.molecules import moses_metrics

    if run.cfg.data.name not in MOLECULE_DATASETS:
        raise TwopathsError(f"--metrics moses scores molecules; run {run.run_dir} was trained on "
                            f"'{run.cfg.data.name}', not on {' or '.join(MOLECULE_DATASETS)}")
    docs, _ = text_documents(run.cfg.data)
    generated = sample_smiles(run, n, seed=seed, batch_size=batch_size, temperature=temperature, steps=steps)
    metrics = moses_metrics(generated, docs["train"], docs["test"])  # unique@k where k molecules are valid
    return {"n": n, "seed": seed, "temperature": temperature, "steps": steps, "train": len(docs["train"]),
            "test": len(docs["test"]), "metrics": metrics, "examples": generated[:5]}


__all__ = ["BURN_IN_TAIL", "MAX_TOKENS", "is_molecule_run", "moses_report", "sample_smiles", "write_molecules"]
