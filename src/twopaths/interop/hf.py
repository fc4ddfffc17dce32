"""Hugging Face GPT-2 <-> twopaths GPT: export a run as a ``transformers`` folder, import one as a run.

Our :class:`~twopaths.backbones.transformer.Transformer` names its parameters as GPT-2 does in
``transformers`` (``transformer.wte``, ``transformer.h.0.attn.c_attn``, ``lm_head``...), so
moving weights is a rename-free copy with one exception: GPT-2 keeps its four per-block
projections in ``Conv1D`` layers, which compute ``x @ W + b`` with ``W`` of shape (in, out),
while ``nn.Linear`` computes ``x @ W.T + b`` with ``W`` of shape (out, in). Those four matrices
(``attn.c_attn``, ``attn.c_proj``, ``mlp.c_fc``, ``mlp.c_proj``) are transposed; nothing else
changes. The key names, the Conv1D convention and the ``config.json`` fields follow
``transformers``' ``modeling_gpt2.py``, ``pytorch_utils.Conv1D`` and ``GPT2Config``; nanoGPT's
``GPT.from_pretrained`` does the same transpose in the import direction.

An exported folder holds::

    config.json              GPT2Config fields (model_type "gpt2", GPT2LMHeadModel)
    generation_config.json   bos/eos = the tokenizer's <|endoftext|> id
    model.safetensors        transformer.* weights, Conv1D layout; lm_head.weight only when untied
    tokenizer.json           BPE runs: the run's tokenizers file (+ tokenizer_config.json)
    twopaths_tokenizer.json  char runs: our char tokenizer (transformers has no class for it)
    README.md                where it came from and how to load it

Tied embeddings are stored once, as ``transformer.wte.weight``, exactly as ``save_pretrained``
does; ``from_pretrained`` re-ties ``lm_head.weight`` to it (``GPT2LMHeadModel._tied_weights_keys``).
safetensors refuses two names for one tensor anyway.

Both directions build the whole result in a hidden sibling folder and rename it into place at
the end, so a failure never leaves a half-written export or run behind. Nothing is ever
unpickled: an HF folder with only ``pytorch_model.bin`` is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tokenizers import AddedToken, decoders, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import BPE

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.config import RunConfig, build_config, save_config
from twopaths.data.tokenizers import EOT, BPETokenizer, Tokenizer, load_tokenizer
from twopaths.errors import CheckpointError, ConfigError, DataError, TwopathsError
from twopaths.models import get_spec, load_run_config
from twopaths.runs import load_run
from twopaths.training.checkpoint import save_checkpoint
from twopaths.training.ema import EMA
from twopaths.training.optim import build_adamw

# The four Conv1D matrices of a GPT-2 block, stored (in, out) by transformers, (out, in) by us.
_CONV1D = re.compile(r"^transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$")
# Causal-mask buffers that old GPT-2 checkpoints saved as if they were weights; never needed.
_MASK_BUFFER = re.compile(r"\.attn\.(bias|masked_bias)$")
# Keys of a bare GPT2Model (or the original OpenAI conversion), which lack the "transformer." prefix.
_BASE_PREFIXES = ("h.", "wte.", "wpe.", "ln_f.")

# transformers activation names -> ours. "gelu_new", "gelu_pytorch_tanh" and "gelu_python_tanh"
# are the tanh approximation (Hendrycks & Gimpel 2016, eq. in sec. 2); "gelu"/"gelu_python" the erf form.
_ACTIVATIONS_IN = {"gelu_new": "gelu-tanh", "gelu_pytorch_tanh": "gelu-tanh", "gelu_python_tanh": "gelu-tanh",
                   "gelu": "gelu", "gelu_python": "gelu"}
_ACTIVATIONS_OUT = {"gelu-tanh": "gelu_new", "gelu": "gelu"}

# GPT2Config's defaults, for keys an (older) config.json leaves out.
_GPT2_DEFAULTS: dict[str, Any] = {
    "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": None,
    "activation_function": "gelu_new", "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
    "layer_norm_epsilon": 1e-5, "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
    "add_cross_attention": False, "tie_word_embeddings": True,
}

_PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")


# ----------------------------------------------------------------------------- shared helpers


def _refuse_existing(out_dir: Path, what: str) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        state = "is not empty" if out_dir.is_dir() else "is a file"
        raise TwopathsError(f"{what} {out_dir} already exists and {state}; choose a new path or remove it first")


@contextlib.contextmanager
def _new_folder(out_dir: Path, what: str) -> Iterator[Path]:
    """Yield a hidden sibling folder to fill; on success rename it to ``out_dir``, on failure delete it.

    ``rename`` is atomic on POSIX and replaces an *empty* directory, so ``out_dir`` either does not
    change or appears complete.
    """
    _refuse_existing(out_dir, what)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".tmp-{out_dir.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        try:
            os.rename(tmp, out_dir)
        except OSError as exc:  # someone filled out_dir meanwhile
            raise TwopathsError(f"cannot create {what} {out_dir}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path} is missing")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{path} must hold a JSON object, not {type(obj).__name__}")
    return obj


def _hf_keys(n_layer: int, tied: bool) -> set[str]:
    """The tensor names of a GPT2LMHeadModel file (tied: without ``lm_head.weight``, as HF saves it)."""
    keys = {"transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight", "transformer.ln_f.bias"}
    for i in range(n_layer):
        for part in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"):
            keys |= {f"transformer.h.{i}.{part}.weight", f"transformer.h.{i}.{part}.bias"}
    return keys if tied else keys | {"lm_head.weight"}


# ----------------------------------------------------------------------------- export


def export_problems(arch: Any) -> list[str]:
    """``key=value (GPT-2 needs ...)`` for each arch setting GPT-2 cannot express; empty if exportable."""
    if not isinstance(arch, TransformerConfig):
        return [f"arch is {type(arch).__name__} (GPT-2 needs a transformer: a gpt* model)"]
    needs = {"positional": ("learned",), "activation": tuple(_ACTIVATIONS_OUT), "bias": (True,),
             "causal": (True,), "fused_qkv": (True,)}
    problems = [f"arch.{key}={getattr(arch, key)!r} (GPT-2 needs {' or '.join(repr(v) for v in allowed)})"
                for key, allowed in needs.items() if getattr(arch, key) not in allowed]
    hidden = int(arch.mlp_ratio * arch.d_model)
    if hidden < 1:
        problems.append(f"arch.mlp_ratio={arch.mlp_ratio!r} (the MLP would have {hidden} units)")
    return problems


def gpt2_config(arch: TransformerConfig, vocab_size: int, eot_id: int, dtype: torch.dtype) -> dict[str, Any]:
    """``config.json`` for ``arch`` in GPT2Config's field names."""
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": vocab_size,
        "n_positions": arch.context,
        "n_ctx": arch.context,  # the pre-2020 name of n_positions; older readers still look for it
        "n_embd": arch.d_model,
        "n_layer": arch.n_layer,
        "n_head": arch.n_head,
        "n_inner": int(arch.mlp_ratio * arch.d_model),  # exactly our MLP width (MLP.__init__)
        "activation_function": _ACTIVATIONS_OUT[arch.activation],
        "layer_norm_epsilon": arch.norm_eps,
        "resid_pdrop": arch.dropout,  # we have one dropout rate for all three places
        "embd_pdrop": arch.dropout,
        "attn_pdrop": arch.dropout,
        "initializer_range": 0.02,
        "scale_attn_weights": True,  # softmax(q k^T / sqrt(d_head)), as our attention does
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "add_cross_attention": False,
        "tie_word_embeddings": arch.tie_weights,
        "bos_token_id": eot_id,
        "eos_token_id": eot_id,
        "use_cache": True,
        "dtype": str(dtype).removeprefix("torch."),
    }


def hf_state_dict(net: Transformer) -> dict[str, torch.Tensor]:
    """Our backbone's weights under GPT2LMHeadModel's names and layouts (fresh CPU tensors)."""
    tied = net.cfg.tie_weights
    out = {}
    for name, tensor in net.state_dict().items():
        if tied and name == "lm_head.weight":
            continue  # stored once, as transformer.wte.weight
        tensor = tensor.detach().cpu()
        out[name] = (tensor.t() if _CONV1D.match(name) else tensor).contiguous().clone()
    expected = _hf_keys(net.cfg.n_layer, tied)
    if set(out) != expected:
        raise TwopathsError(f"this GPT's weights do not map onto GPT-2: extra {sorted(set(out) - expected)[:4]}, "
                            f"missing {sorted(expected - set(out))[:4]}")
    return out


def _export_readme(run_dir: Path, step: int, weights: str, tokenizer_kind: str, config: dict[str, Any]) -> str:
    lines = [
        "# GPT-2 export of a twopaths run",
        "",
        f"Exported from the twopaths run `{run_dir.name}`, checkpoint step {step} ({weights} weights), by `twopaths.interop.hf.export_hf`.",
        f"{config['n_layer']} layers, {config['n_head']} heads, width {config['n_embd']}, "
        f"context {config['n_positions']}, vocabulary {config['vocab_size']}.",
        "",
        "```python",
        "from transformers import GPT2LMHeadModel",
        'model = GPT2LMHeadModel.from_pretrained("THIS_FOLDER")',
    ]
    if tokenizer_kind == "bpe":
        lines += [
            "from transformers import AutoTokenizer  # or PreTrainedTokenizerFast(tokenizer_file=...)",
            'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")',
            "```",
            "",
            "The tokenizer is the run's own byte-level BPE; `<|endoftext|>` "
            f"(id {config['eos_token_id']}) separates documents. No prefix space is added.",
        ]
    else:
        lines += [
            "```",
            "",
            "This run uses twopaths' character tokenizer, which Hugging Face has no tokenizer class for,",
            "so there is no `tokenizer.json` here. The vocabulary is in `twopaths_tokenizer.json`:",
            "ids are the entries of `specials` followed by those of `chars`, one character each",
            f"(`<|endoftext|>` is id {config['eos_token_id']}). Load it with "
            "`twopaths.data.tokenizers.load_tokenizer`, or map characters to ids yourself.",
        ]
    return "\n".join(lines) + "\n"


def export_hf(run_dir: Path, out_dir: Path, checkpoint: str | None = None, use_ema: bool = True) -> Path:
    """Write run ``run_dir`` (its newest or the given ``checkpoint``; EMA weights unless ``use_ema``
    is False) as a Hugging Face GPT-2 folder ``out_dir``, which must not exist or be empty.

    Raises ConfigError, naming each key and value, when the run's architecture is not GPT-2's.
    Returns ``out_dir``.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    cfg = load_run_config(run_dir)
    problems = export_problems(cfg.arch)
    if problems:
        raise ConfigError(f"run {run_dir} (model '{cfg.model}') cannot be exported as Hugging Face GPT-2: "
                          + "; ".join(problems))
    tokenizer_path = run_dir / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise DataError(f"run {run_dir} has no tokenizer.json, so its token ids cannot be exported")
    _refuse_existing(out_dir, "export folder")  # before the (possibly slow) weight loading

    run = load_run(run_dir, checkpoint, use_ema=use_ema)
    net, tokenizer = run.model.net, run.meta["tokenizer"]
    if not isinstance(net, Transformer):
        raise ConfigError(f"run {run_dir}: model '{cfg.model}' is not a GPT, so it cannot be exported as GPT-2")
    tensors = hf_state_dict(net)
    config = gpt2_config(cfg.arch, net.vocab_size, tokenizer.eot_id, tensors["transformer.wte.weight"].dtype)
    weights = "EMA" if use_ema and run.checkpoint.has_ema else "raw"

    with _new_folder(out_dir, "export folder") as tmp:
        _write_json(tmp / "config.json", config)
        _write_json(tmp / "generation_config.json", {"bos_token_id": tokenizer.eot_id,
                                                     "eos_token_id": tokenizer.eot_id})
        # metadata {"format": "pt"} is what save_pretrained writes and what from_pretrained checks for
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        if isinstance(tokenizer, BPETokenizer):
            shutil.copyfile(tokenizer_path, tmp / "tokenizer.json")
            _write_json(tmp / "tokenizer_config.json", {
                "tokenizer_class": "PreTrainedTokenizerFast",  # reads tokenizer.json as it is
                "bos_token": EOT, "eos_token": EOT, "unk_token": EOT,
                "model_max_length": cfg.arch.context, "add_prefix_space": False,
            })
        else:
            shutil.copyfile(tokenizer_path, tmp / "twopaths_tokenizer.json")
        (tmp / "README.md").write_text(
            _export_readme(run_dir, run.checkpoint.step, weights, tokenizer.kind, config), encoding="utf-8")
    return out_dir


# ----------------------------------------------------------------------------- import


def arch_from_gpt2_config(conf: dict[str, Any], path: Path) -> dict[str, Any]:
    """Our ``arch`` keys for a GPT-2 ``config.json`` (read from ``path``); ConfigError if it is no GPT-2."""
    if conf.get("model_type") != "gpt2":
        raise ConfigError(f"{path}: model_type is {conf.get('model_type')!r}; only GPT-2 folders "
                          "(model_type 'gpt2') can be imported")
    get = lambda key: conf.get(key, _GPT2_DEFAULTS[key])  # noqa: E731

    problems = []
    for key in ("n_positions", "n_embd", "n_layer", "n_head", "vocab_size"):
        value = get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{key}={value!r} (a positive integer is needed)")
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    act = get("activation_function")
    if act not in _ACTIVATIONS_IN:
        problems.append(f"activation_function={act!r} (twopaths has: {', '.join(_ACTIVATIONS_IN)})")
    for key, needed in (("add_cross_attention", False), ("scale_attn_by_inverse_layer_idx", False),
                        ("scale_attn_weights", True)):
        if get(key) != needed:
            problems.append(f"{key}={get(key)!r} (twopaths' GPT needs {needed})")
    n_embd, n_head, n_inner = get("n_embd"), get("n_head"), get("n_inner")
    if n_embd % n_head:
        problems.append(f"n_embd={n_embd} is not divisible by n_head={n_head}")
    mlp_ratio = 4.0 if n_inner is None else (n_inner / n_embd if isinstance(n_inner, int) else -1.0)
    if n_inner is not None and (mlp_ratio <= 0 or int(mlp_ratio * n_embd) != n_inner):
        problems.append(f"n_inner={n_inner!r} (not expressible as mlp_ratio * n_embd)")
    if problems:
        raise ConfigError(f"{path}: cannot import this GPT-2 configuration: " + "; ".join(problems))
    return {
        "n_layer": get("n_layer"), "n_head": n_head, "d_model": n_embd, "context": get("n_positions"),
        "mlp_ratio": mlp_ratio, "dropout": float(get("resid_pdrop")), "bias": True,
        "activation": _ACTIVATIONS_IN[act], "positional": "learned",
        "tie_weights": bool(get("tie_word_embeddings")), "causal": True, "fused_qkv": True,
        "norm_eps": float(get("layer_norm_epsilon")),
    }


def _weight_files(hf_dir: Path) -> list[Path]:
    single, index = hf_dir / "model.safetensors", hf_dir / "model.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index} has no 'weight_map'")
        return [hf_dir / name for name in sorted(set(weight_map.values()))]
    pickled = [name for name in _PICKLED_WEIGHTS if (hf_dir / name).exists()]
    if pickled:
        raise CheckpointError(
            f"{hf_dir} has weights only in {pickled[0]}, which twopaths does not read: loading it would mean "
            "unpickling, and a pickle can run arbitrary code. Convert it to safetensors where you trust the "
            "file, e.g. GPT2LMHeadModel.from_pretrained(DIR).save_pretrained(NEW_DIR, safe_serialization=True), "
            "and import NEW_DIR")
    raise CheckpointError(f"{hf_dir} has no model.safetensors (nor model.safetensors.index.json)")


def read_hf_weights(hf_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Path]]:
    """All tensors of a GPT-2 folder under ``transformer.*`` / ``lm_head.weight`` names, and each one's file."""
    tensors: dict[str, torch.Tensor] = {}
    origin: dict[str, Path] = {}
    for path in _weight_files(hf_dir):
        if not path.is_file():
            raise CheckpointError(f"weight file {path} is missing")
        try:
            loaded = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"cannot read weights {path}: {exc}") from None
        for name, tensor in loaded.items():
            if _MASK_BUFFER.search(name):
                continue
            if name.startswith(_BASE_PREFIXES):
                name = "transformer." + name
            tensors[name], origin[name] = tensor, path
    return tensors, origin


def load_hf_weights(net: Transformer, tensors: dict[str, torch.Tensor], origin: dict[str, Path],
                    where: Path) -> None:
    """Copy GPT-2 tensors (HF names and layouts) into ``net``; CheckpointError naming the file on any mismatch."""
    tied = net.cfg.tie_weights
    expected = _hf_keys(net.cfg.n_layer, tied)
    missing = sorted(expected - set(tensors))
    unexpected = sorted(set(tensors) - expected - ({"lm_head.weight"} if tied else set()))
    if missing or unexpected:
        raise CheckpointError(f"{where} does not hold this GPT-2's weights: missing {len(missing)} "
                              f"{missing[:4]}, unexpected {len(unexpected)} {unexpected[:4]}")
    ours = net.state_dict()
    state = {}
    for name in sorted(expected):
        tensor = tensors[name]
        hf_shape = tuple(ours[name].shape[::-1]) if _CONV1D.match(name) else tuple(ours[name].shape)
        if tuple(tensor.shape) != hf_shape:
            raise CheckpointError(f"{origin[name]}: tensor {name} has shape {tuple(tensor.shape)}, "
                                  f"but config.json implies {hf_shape}")
        state[name] = (tensor.t() if _CONV1D.match(name) else tensor).float()
    if tied:
        head = tensors.get("lm_head.weight")
        if head is not None and not torch.equal(head.float(), state["transformer.wte.weight"]):
            raise CheckpointError(f"{origin['lm_head.weight']}: lm_head.weight differs from transformer.wte.weight "
                                  "although config.json says tie_word_embeddings is true")
        state["lm_head.weight"] = state["transformer.wte.weight"]
    net.load_state_dict(state, strict=True)


def read_hf_tokenizer(hf_dir: Path) -> tuple[Tokenizer, Path | None]:
    """The folder's tokenizer and the file it came from (None: built from vocab + merges).

    A folder written by :func:`export_hf` from a character-level run holds our own
    ``twopaths_tokenizer.json`` (HF has no char tokenizer class); it is read back as it is.
    """
    ours = hf_dir / "twopaths_tokenizer.json"
    if ours.is_file() and not (hf_dir / "tokenizer.json").is_file():
        return load_tokenizer(ours), ours
    path = hf_dir / "tokenizer.json"
    if path.is_file():
        tokenizer = load_tokenizer(path)  # DataError naming the file if it is no BPE or lacks <|endoftext|>
        if not isinstance(tokenizer, BPETokenizer):
            raise DataError(f"{path}: a twopaths {tokenizer.kind} tokenizer, not a GPT-2 BPE")
        return tokenizer, path
    vocab, merges = hf_dir / "vocab.json", hf_dir / "merges.txt"
    if not (vocab.is_file() and merges.is_file()):
        raise DataError(f"{hf_dir} has no tokenizer: expected tokenizer.json, vocab.json and merges.txt, "
                        "or twopaths_tokenizer.json")
    prefix_space = False
    if (hf_dir / "tokenizer_config.json").is_file():
        prefix_space = bool(_read_json(hf_dir / "tokenizer_config.json").get("add_prefix_space", False))
    try:
        vocab_map, merge_list = BPE.read_file(str(vocab), str(merges))
        backend = HFTokenizer(BPE(vocab_map, merge_list))
    except Exception as exc:  # the Rust side raises plain Exception with its parse error
        raise DataError(f"{vocab} / {merges}: not a BPE vocabulary and merge list ({exc})") from None
    # GPT-2's byte-level BPE (Radford et al. 2019, sec. 2.2): bytes shown as printable characters
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(EOT, special=True, normalized=False)])
    return BPETokenizer(backend, source=f"{vocab} + {merges}"), None


def import_hf(hf_dir: Path, out_run: Path) -> Path:
    """Turn a local Hugging Face GPT-2 folder (config.json, model.safetensors, a tokenizer) into a
    twopaths run ``out_run`` (model ``gpt``) with a step-0 checkpoint; returns ``out_run``.

    ``twopaths sample OUT_RUN`` then works without any dataset. ``out_run`` must not exist or be empty.
    """
    hf_dir, out_run = Path(hf_dir), Path(out_run)
    if not hf_dir.is_dir():
        raise ConfigError(f"Hugging Face folder not found: {hf_dir}")
    config_path = hf_dir / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"{hf_dir} is not a Hugging Face model folder: config.json is missing")
    conf = _read_json(config_path)
    arch = arch_from_gpt2_config(conf, config_path)
    _refuse_existing(out_run, "run folder")
    tokenizer, tokenizer_file = read_hf_tokenizer(hf_dir)
    vocab_size = conf.get("vocab_size", _GPT2_DEFAULTS["vocab_size"])
    if tokenizer.vocab_size != vocab_size:
        raise DataError(f"{tokenizer_file or hf_dir}: the tokenizer has {tokenizer.vocab_size} ids but "
                        f"{config_path} says vocab_size {vocab_size}; twopaths sizes a GPT's vocabulary "
                        "from its tokenizer, so the two must match")
    tensors, origin = read_hf_weights(hf_dir)
    head, wte = tensors.get("lm_head.weight"), tensors.get("transformer.wte.weight")
    if arch["tie_weights"] and head is not None and wte is not None and not torch.equal(head, wte):
        # transformers (5.x) then leaves the head untied and uses the stored one; do as it does
        arch["tie_weights"] = False

    spec = get_spec("gpt")
    try:
        cfg: RunConfig = build_config("gpt", spec.arch_cls, spec.preset, {
            "arch": arch,
            "data": {"tokenizer": "bpe" if isinstance(tokenizer, BPETokenizer) else "char",
                     "vocab_size": vocab_size, "context": arch["context"]},
        })
    except ConfigError as exc:
        raise ConfigError(f"{config_path}: {exc}") from None
    model = spec.build(cfg, {"tokenizer": tokenizer})
    load_hf_weights(model.net, tensors, origin, hf_dir)
    del tensors

    with _new_folder(out_run, "run folder") as tmp:
        save_config(cfg, tmp / "config.yaml")
        if tokenizer_file is not None:
            shutil.copyfile(tokenizer_file, tmp / "tokenizer.json")
        else:
            tokenizer.save(tmp / "tokenizer.json")
        optimizer = build_adamw(model, cfg.optim, torch.device("cpu"))  # fresh: no moments yet
        ema = EMA(model, cfg.train.ema_decay).state_dict() if cfg.train.ema_decay > 0 else None  # = the weights
        save_checkpoint(tmp / "checkpoints", 0, model, optimizer, ema,
                        {"imported_from": str(hf_dir.resolve()), "source_format": "huggingface-gpt2"},
                        keep_last=cfg.train.keep_last)
    return out_run


__all__ = ["export_hf", "import_hf", "export_problems", "gpt2_config", "hf_state_dict", "arch_from_gpt2_config",
           "read_hf_weights", "load_hf_weights", "read_hf_tokenizer"]
