"""Molecules from a trained text model, and their MOSES metrics (``twopaths eval RUN --metrics moses``).

An autoregressive model trained on SMILES documents (``--data moses`` or ``moses-small``, one molecule per
document) starts each molecule after an end-of-text token, as it saw them in training, and ends it at the
next one: each row of a batch is prompted with ``<|endoftext|>`` and stops at the next (Polykovskiy et al.
2020 sample their CharRNN the same way, from a start token to an end token). The molecules are then
scored by :func:`twopaths.eval.molecules.moses_metrics` against the run's own training and test splits.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from twopaths.data.molecules import MOLECULE_DATASETS
from twopaths.errors import TwopathsError

#: tokens a sampled molecule may have before it is cut (MOSES molecules have at most ~60 SMILES tokens)
MAX_TOKENS = 100


def sample_smiles(run: Any, n: int, seed: int = 0, batch_size: int = 500, temperature: float = 1.0,
                  max_tokens: int = MAX_TOKENS) -> list[str]:
    """``n`` SMILES strings from ``run``'s autoregressive model, each from ``<|endoftext|>`` to the next (a
    row that reaches ``max_tokens`` first is kept as it stands and usually fails validity)."""
    model, tokenizer = run.model, run.meta["tokenizer"]
    if not hasattr(model, "generate"):
        raise TwopathsError(f"--metrics moses samples molecules token by token; model '{run.cfg.model}' does not "
                            f"generate that way (train gpt-nano, gpt or mlp-lm on moses)")
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    smiles: list[str] = []
    with tqdm(total=n, desc="sampling molecules", unit="mol") as bar:
        while len(smiles) < n:
            b = min(batch_size, n - len(smiles))
            rows = model.generate([[tokenizer.eot_id]] * b, max_tokens, temperature=temperature,
                                  stop_id=tokenizer.eot_id, generator=generator)
            smiles += [tokenizer.decode(ids) for ids in rows]
            bar.update(b)
    return smiles


def moses_report(run: Any, n: int, seed: int = 0, batch_size: int = 500) -> dict[str, Any]:
    """MOSES metrics of ``n`` molecules sampled from ``run`` against its data's train (novelty) and test
    splits (SNN, Frag, Scaf, property distances); unique@k for each k in (1,000, 10,000) up to ``n``."""
    from twopaths.data.registry import text_documents
    from twopaths.eval.molecules import moses_metrics

    if run.cfg.data.name not in MOLECULE_DATASETS:
        raise TwopathsError(f"--metrics moses scores molecules; run {run.run_dir} was trained on "
                            f"'{run.cfg.data.name}', not on {' or '.join(MOLECULE_DATASETS)}")
    docs, _ = text_documents(run.cfg.data)
    generated = sample_smiles(run, n, seed=seed, batch_size=batch_size)
    metrics = moses_metrics(generated, docs["train"], docs["test"], n_unique=tuple(k for k in (1000, 10000) if k <= n))
    return {"n": n, "seed": seed, "train": len(docs["train"]), "test": len(docs["test"]), "metrics": metrics,
            "examples": generated[:5]}


__all__ = ["MAX_TOKENS", "moses_report", "sample_smiles"]
