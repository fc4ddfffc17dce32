"""Scoring a language model on the associative-recall probe (:mod:`twopaths.data.recall`).

The data module generates the items; this one asks a trained model for each item's answer and
reads accuracy off per distance d. An autoregressive model and a masked-diffusion model (MDLM)
are asked the same question: predict the answer token from exactly the prefix before it.
"""

from __future__ import annotations

import torch

from twopaths.data.recall import query_index
from twopaths.paradigms.autoregressive import Autoregressive
from twopaths.paradigms.mdlm import MaskedDiffusion


@torch.no_grad()
def predict_answers(model: torch.nn.Module, tokens: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Each model's answer token for items ``tokens`` (N, context + 1) -> (N,) ids.

    - autoregressive (GPT, conv-lm, mlp-lm): the greedy next token after the query key, from the
      prefix ``tokens[:, :context - 1]`` (:meth:`Autoregressive.generate_batch`, temperature 0);
    - masked diffusion (MDLM): the answer position of ``tokens[:, :context]`` replaced by [MASK] and
      filled by :meth:`MaskedDiffusion.infill` in one ancestral step at temperature 0 (the argmax
      of p(x0 | x_t)); it sees exactly the autoregressive model's prefix and nothing after it.
    """
    context = tokens.shape[1] - 1
    answer = query_index(context) + 1
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(tokens), batch_size):
        chunk = tokens[start:start + batch_size].to(device)  # (b, context + 1)
        if isinstance(model, Autoregressive):
            pred = model.generate_batch(chunk[:, :answer], 1, temperature=0.0)[:, 0]  # (b,)
        elif isinstance(model, MaskedDiffusion):
            mask = torch.zeros(context, dtype=torch.bool, device=device)
            mask[answer] = True
            pred = model.infill(chunk[:, :context], mask, steps=1, sampler="ancestral", temperature=0.0)[:, answer]
        else:
            raise TypeError(f"recall accuracy needs an autoregressive or masked-diffusion model, "
                            f"got {type(model).__name__}")
        out.append(pred.cpu())
    return torch.cat(out)


def accuracy_by_distance(model: torch.nn.Module, tokens: torch.Tensor, distances: torch.Tensor,
                         batch_size: int = 256) -> dict[int, float]:
    """Fraction of items whose predicted answer equals the true one, per distance: {d: accuracy}."""
    context = tokens.shape[1] - 1
    truth = tokens[:, query_index(context) + 1]  # (N,)
    correct = (predict_answers(model, tokens, batch_size) == truth).float()  # (N,)
    return {int(d): float(correct[distances == d].mean()) for d in torch.unique(distances).tolist()}
