"""Counting the FLOPs of a forward pass, so different backbones can be compared at equal compute.

Peebles & Xie 2023 ("Scalable Diffusion Models with Transformers", sec. 4) show that a diffusion
backbone's sample quality follows its forward-pass Gflops more than its parameter count; the arena
compares a U-Net and a DiT at matched Gflops. :func:`flops_of` runs any computation once under a
dispatch mode that applies ``torch.utils.flop_counter``'s formulas, which count the matrix
multiplications (``mm``, ``addmm``, ``bmm``), convolutions and fused attention kernels by their
shapes. (Not ``FlopCounterMode`` itself: its per-module backward hooks break losses that call
``torch.autograd.grad`` themselves, such as the GAN's R1 penalty.)

Conventions:

- **a multiply-add is 2 FLOPs** (a (m, k) @ (k, n) product is 2 m k n), the hardware convention
  used for MFU. fvcore, and the DiT paper's Gflops with it, count a multiply-add as one, so their
  figures are half of ours;
- only matmuls, convolutions and attention are counted; norms, activations, additions and biases
  are not (they are O(elements), small next to the matmuls);
- the count is for the inputs given: pass a batch of one for the cost of one image.

PyTorch's counter knows the GPU attention kernels but not the CPU one that SDPA uses
(``_scaled_dot_product_flash_attention_for_cpu``); we add it, with the same formula (the
Q K^T scores and the weighted sum of values), so a count on the CPU equals one on the GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, shape_wrapper


def _sdpa_flops(query_shape: torch.Size, key_shape: torch.Size, value_shape: torch.Size, *args: Any,
                out_shape: Any = None, **kwargs: Any) -> int:
    """2 B H Tq Tk D for the scores Q K^T plus 2 B H Tq Tk Dv for the weighted values."""
    b, h, t_q, d = query_shape
    t_k, d_v = key_shape[-2], value_shape[-1]
    return 2 * b * h * t_q * t_k * d + 2 * b * h * t_q * t_k * d_v


def _formulas() -> dict[Any, Callable[..., int]]:
    """PyTorch's formulas by op, plus the CPU attention kernel they lack."""
    formulas = dict(flop_registry)
    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_sdpa is not None:
        formulas.setdefault(cpu_sdpa, shape_wrapper(_sdpa_flops))
    return formulas


class _CountFlops(TorchDispatchMode):
    """Adds up the formula of every op that has one, as the ops run."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.formulas = _formulas()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 (torch's signature)
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = self.formulas.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


def flops_of(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn`` (forward, backward, a whole sampling loop: whatever it runs)."""
    with _CountFlops() as counter:
        fn()
    return counter.total


def count_flops(module: nn.Module, *example_inputs: Any, **kwargs: Any) -> int:
    """FLOPs of ``module(*example_inputs, **kwargs)``, counted while it runs (no gradients kept).

    The module runs in eval mode (so dropout draws no random numbers) and goes back to the mode it
    was in; the global random state is otherwise untouched as long as the forward pass draws none.
    """
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return flops_of(lambda: module(*example_inputs, **kwargs))
    finally:
        module.train(was_training)


def forward_gflops(module: nn.Module, *example_inputs: Any, **kwargs: Any) -> float:
    """Gflops (10^9 FLOPs, a multiply-add = 2) of one forward pass on the inputs given; pass a batch
    of one for the cost per image, e.g. ``forward_gflops(unet, torch.zeros(1, 1, 28, 28), torch.zeros(1))``."""
    return count_flops(module, *example_inputs, **kwargs) / 1e9


@contextlib.contextmanager
def count_network_calls(model: nn.Module) -> Iterator[dict[str, int]]:
    """Count the sequential calls of the model's main network while a block runs.

    The main network is the submodule holding the most parameters among those called (the
    denoiser, the transformer, the generator or decoder). Called on a whole batch at once, its
    call count is the number of *sequential* network evaluations per sample: NFE for diffusion,
    one per token for autoregression, one for a GAN or VAE.
    """
    counts: dict[nn.Module, int] = {}
    handles = [m.register_forward_pre_hook(lambda mod, _: counts.__setitem__(mod, counts.get(mod, 0) + 1))
               for m in model.modules() if m is not model]
    out: dict[str, int] = {}
    try:
        yield out
    finally:
        for h in handles:
            h.remove()
        if counts:
            size = {m: sum(p.numel() for p in m.parameters()) for m in counts}
            main = max(counts, key=lambda m: (size[m], -counts[m]))
            out["calls"] = counts[main]
            out["main_params"] = size[main]
