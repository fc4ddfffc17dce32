"""Every dataset by name: how to load its splits for a run, and how to describe it.

Names (``--data NAME`` or ``--set data.name=NAME``):

=====================  =======  ==========================================================
``fashion-mnist``      image    70k 28x28 grey images, 10 classes (IDX files; Debian/download)
``shapes``             image    procedural RGB circles/squares/triangles with captions
``images``             image    your own folder of PNG/JPEG (``data.path``), subfolders = classes
``mixture2d``          points   2-D ring of 8 Gaussians; ``mixture2d-grid25``: a 5x5 grid
``fortunes``           text     Debian fortunes (~15k quotations), or ``data.path`` to any text
``text``               text     any UTF-8 file or folder given as ``data.path``
``recall``             text     procedural associative recall at distance d (``data/recall.py``)
``moses``              text     MOSES molecules as SMILES, one per document (``data/molecules.py``);
                                ``moses-small``: ``data.size`` of them, for a CPU
``spoken-digits``      audio    "zero" .. "nine" synthesised by eSpeak NG at 8 kHz, 1 s clips, speakers
                                split between train/val/test (``data/audio.py``)
``audio``              audio    your folder of WAV files (``data.path``), subfolders = classes
``moving-fashion``     video    procedural clips of Fashion-MNIST items bouncing in a box, with their true
                                trajectories, like Moving MNIST (``data/video.py``)
``numbers-LANG``       pairs    digits -> number words via num2words, e.g. ``numbers-fr``
``pairs``              pairs    any tab-separated parallel text file given as ``data.path``
=====================  =======  ==========================================================

Pair datasets go from the first column to the second; ``data.reverse=true`` swaps the two
(``numbers-fr`` reversed: French words -> digits).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from twopaths.config import DataConfig
from twopaths.data import audio, images, molecules, pairs, recall, shapes, text, toy, video
from twopaths.data.base import DatasetSummary, Splits
from twopaths.data.tokenizers import Tokenizer, load_tokenizer, run_tokenizer, train_tokenizer
from twopaths.errors import ConfigError, DataError, TwopathsError

IMAGE_DATASETS = ("fashion-mnist", "shapes", "images")
POINT_DATASETS = ("mixture2d", "mixture2d-ring8", "mixture2d-grid25")
TEXT_DATASETS = ("fortunes", "text", "recall", *molecules.MOLECULE_DATASETS)
PAIR_DATASETS = ("numbers-LANG", "pairs")
AUDIO_DATASETS = ("spoken-digits", "audio")
VIDEO_DATASETS = ("moving-fashion",)


#: config values a dataset needs by default (under the model's own preset, over its kind's): molecules
#: are tokenized as SMILES, not characters; moving-fashion draws 20,000 train clips
DATASET_PRESETS: dict[str, dict] = {**{name: {"data": {"tokenizer": "smiles"}} for name in molecules.MOLECULE_DATASETS},
                                    "moving-fashion": {"data": {"size": 20_000}}}


def dataset_kind(name: str) -> str:
    if name in IMAGE_DATASETS:
        return "image"
    if name in POINT_DATASETS:
        return "points"
    if name in TEXT_DATASETS:
        return "text"
    if name.startswith("numbers-") or name == "pairs":
        return "pairs"
    if name in AUDIO_DATASETS:
        return "audio"
    if name in VIDEO_DATASETS:
        return "video"
    known = ", ".join(IMAGE_DATASETS + POINT_DATASETS + TEXT_DATASETS + PAIR_DATASETS + AUDIO_DATASETS
                      + VIDEO_DATASETS)
    raise DataError(f"unknown dataset '{name}'; known datasets: {known}")


def _index_split(n: int, cfg: DataConfig) -> dict[str, np.ndarray]:
    """A fixed-seed split of ``n`` items into train/val/test index arrays."""
    perm = np.random.default_rng(cfg.seed).permutation(n)
    _, n_val, n_test = text.split_counts(n, cfg.val_fraction, cfg.test_fraction, unit="items")
    return {"val": perm[:n_val], "test": perm[n_val:n_val + n_test], "train": perm[n_val + n_test:]}


def _image_splits(cfg: DataConfig) -> Splits:
    if cfg.name == "fashion-mnist":
        root = images.find_fashion_mnist(cfg.path)
        raw = images.load_fashion_mnist(root)
        train_x, train_y = raw["train"]
        # The official 10k test set stays the test split; validation is a fixed 5k of the 60k train.
        perm = torch.from_numpy(np.random.default_rng(cfg.seed).permutation(len(train_x)))
        val_idx, train_idx = perm[:5000], perm[5000:]
        make = lambda x, y: images.ImageDataset(x, y, class_names=images.FASHION_MNIST_CLASSES)  # noqa: E731
        return Splits(make(train_x[train_idx], train_y[train_idx]), make(train_x[val_idx], train_y[val_idx]),
                      make(*raw["test"]),
                      {"source": str(root), "channels": 1, "resolution": 28,
                       "class_names": list(images.FASHION_MNIST_CLASSES)})
    if cfg.name == "shapes":
        data = shapes.make_shapes(cfg.size, resolution=cfg.resolution, seed=cfg.seed)
        x, y, captions, source = data.images, data.labels, data.captions, "procedural"
        class_names = list(shapes.SHAPE_NAMES)
        channels = 3
    else:  # images: the user's folder
        if not cfg.path:
            raise DataError("dataset 'images' needs a folder: --set data.path=/path/to/images")
        x, y, class_names = images.load_image_folder(cfg.path, cfg.resolution, cfg.channels)
        captions, source, channels = None, str(cfg.path), cfg.channels
    idx = _index_split(len(x), cfg)

    def subset(i: np.ndarray) -> images.ImageDataset:
        t = torch.from_numpy(i)
        return images.ImageDataset(x[t], y[t], captions=[captions[j] for j in i] if captions else None,
                                   class_names=class_names)

    return Splits(subset(idx["train"]), subset(idx["val"]), subset(idx["test"]),
                  {"source": source, "channels": channels, "resolution": cfg.resolution, "class_names": class_names})


def _point_splits(cfg: DataConfig) -> Splits:
    variant = "grid25" if cfg.name.endswith("grid25") else "ring8"
    means, std = toy.mixture_modes(variant)
    make = lambda n, seed: toy.PointDataset(*toy.sample_mixture(variant, n, seed))  # noqa: E731
    _, n_val, n_test = text.split_counts(cfg.size, cfg.val_fraction, cfg.test_fraction, unit="points")
    # Independent draws from the known distribution: no sample is shared between splits.
    return Splits(make(cfg.size, cfg.seed), make(n_val, cfg.seed + 1), make(n_test, cfg.seed + 2),
                  {"source": "procedural", "variant": variant, "modes": means, "std": std})


def _text_documents(cfg: DataConfig) -> tuple[list[str], str]:
    if cfg.name == "text" and not cfg.path:
        raise DataError("dataset 'text' needs a file or folder: --set data.path=/path/to/text")
    root = text.find_fortunes(cfg.path) if cfg.name == "fortunes" else Path(cfg.path)
    return text.read_corpus(root), str(root)


def text_documents(cfg: DataConfig) -> tuple[dict[str, list[str]], str]:
    """A text dataset's documents by split (train/val/test), and where they were read from."""
    if cfg.name in molecules.MOLECULE_DATASETS:  # MOSES keeps its own test set
        return molecules.molecule_documents(cfg.name, cfg.path, cfg.size, cfg.seed, cfg.val_fraction,
                                            cfg.test_fraction)
    docs, source = _text_documents(cfg)
    return text.split_documents(docs, seed=cfg.seed, val_fraction=cfg.val_fraction,
                                test_fraction=cfg.test_fraction), source


def _text_splits(cfg: DataConfig, run_dir: Path | None) -> Splits:
    split, source = text_documents(cfg)
    tokenizer = tokenizer_for_run(cfg, split["train"], run_dir)

    if cfg.rows == "documents":  # one document per row (sequence VAE)
        windows = {k: text.DocumentRows(tokenizer, docs, cfg.context, name=f"{cfg.name}/{k}") for k, docs in split.items()}
    else:
        windows = {k: text.TokenWindows(text.encode_documents(tokenizer, docs), cfg.context, name=f"{cfg.name}/{k}")
                   for k, docs in split.items()}
    return Splits(windows["train"], windows["val"], windows["test"],
                  {"source": source, "tokenizer": tokenizer, "documents": {k: len(v) for k, v in split.items()}})


def tokenizer_for_run(cfg: DataConfig, train_docs: list[str], run_dir: Path | None) -> Tokenizer:
    """The run's tokenizer: reloaded from ``RUN/tokenizer.json`` if it exists, else trained on the
    training documents and saved (:func:`~twopaths.data.tokenizers.run_tokenizer`)."""
    return run_tokenizer(Path(run_dir) / "tokenizer.json" if run_dir is not None else None,
                         lambda: train_tokenizer(cfg.tokenizer, train_docs, cfg.vocab_size))


def _pair_splits(cfg: DataConfig, run_dir: Path | None = None) -> Splits:
    if cfg.name == "pairs":
        if not cfg.path:
            raise DataError("dataset 'pairs' needs a tab-separated file: --set data.path=/path/to/pairs.tsv")
        all_pairs = pairs.read_tsv_pairs(cfg.path)
        idx = _index_split(len(all_pairs), cfg)
        split = {k: [all_pairs[i] for i in v] for k, v in idx.items()}
        source = str(cfg.path)
    else:
        lang = cfg.name.removeprefix("numbers-")
        split = pairs.numbers_pairs(lang, max_number=cfg.max_number, seed=cfg.seed,
                                    val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction)
        source = f"num2words ({lang})"
    if cfg.reverse:  # the other direction: target -> source
        split = {k: [(tgt, src) for src, tgt in v] for k, v in split.items()}
    return Splits(pairs.PairDataset(split["train"]), pairs.PairDataset(split["val"]), pairs.PairDataset(split["test"]),
                  {"source": source, **pairs.pair_tokenizers(split["train"], run_dir)})


def _audio_splits(cfg: DataConfig) -> Splits:
    if cfg.name == "spoken-digits":
        if cfg.seconds != audio.CLIP_SECONDS:
            raise ConfigError(f"config key 'data.seconds' is {cfg.seconds:g}, but spoken-digits clips are "
                              f"{audio.CLIP_SECONDS:g} s (the digit classifier's input); data.seconds is for "
                              "folders of WAV files (data.name=audio)")
        split, source = audio.spoken_digit_splits(cfg.path)
    else:
        if not cfg.path:
            raise DataError("dataset 'audio' needs a folder of WAV files: --set data.path=/path/to/clips")
        split, source = audio.audio_folder_splits(cfg.path, cfg.seed, cfg.val_fraction, cfg.test_fraction,
                                                  seconds=cfg.seconds)
    train = split["train"]
    return Splits(train, split["val"], split["test"], {"source": source, "class_names": train.class_names,
                                                       "sample_rate": train.rate, "length": train.audio.shape[-1]})


def _video_meta(cfg: DataConfig, source: str) -> dict:
    return {"source": source, "frames": cfg.frames, "channels": 1, "resolution": cfg.resolution,
            "objects": cfg.objects, "item_size": video.ITEM_SIZE, "class_names": list(images.FASHION_MNIST_CLASSES)}


def _video_splits(cfg: DataConfig) -> Splits:
    split, source = video.moving_fashion_splits(cfg.path, cfg.size, frames=cfg.frames, resolution=cfg.resolution,
                                                objects=cfg.objects, seed=cfg.seed)
    return Splits(split["train"], split["val"], split["test"], _video_meta(cfg, source))


def run_meta(cfg: DataConfig, run_dir: Path) -> dict:
    """What a model needs to be built, without loading the data when a run has it saved.

    Text runs keep their tokenizer in ``RUN/tokenizer.json``, so sampling never re-reads the corpus;
    video clips are described by the config alone.
    """
    if dataset_kind(cfg.name) == "text" and (Path(run_dir) / "tokenizer.json").is_file():
        return {"tokenizer": load_tokenizer(Path(run_dir) / "tokenizer.json"), "source": str(cfg.path or cfg.name)}
    if dataset_kind(cfg.name) == "pairs" and all((Path(run_dir) / f"tokenizer_{side}.json").is_file()
                                                  for side in ("src", "tgt")):
        return {"source": str(cfg.path or cfg.name), **pairs.pair_tokenizers([], run_dir)}
    if dataset_kind(cfg.name) == "video":  # known from the config: no need to render 20,000 clips
        video.check_clip_config(cfg.frames, cfg.resolution, cfg.objects)
        return _video_meta(cfg, str(images.find_fashion_mnist(cfg.path)))
    return load_splits(cfg, run_dir).meta


def load_splits(cfg: DataConfig, run_dir: Path | None = None) -> Splits:
    """Load ``cfg.name`` as train/val/test splits (text: with the run's tokenizer)."""
    kind = dataset_kind(cfg.name)
    if kind == "image":
        return _image_splits(cfg)
    if kind == "points":
        return _point_splits(cfg)
    if kind == "text":
        return recall.load_recall_splits(cfg, run_dir) if cfg.name == "recall" else _text_splits(cfg, run_dir)
    if kind == "audio":
        return _audio_splits(cfg)
    if kind == "video":
        return _video_splits(cfg)
    return _pair_splits(cfg, run_dir)


_PROCEDURAL = ("shapes",)  # datasets that can draw as many fresh images as asked


def real_images(data: str | DataConfig, n: int, split: str = "test", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` real images ``float32 (n, C, H, W)`` in [-1, 1] and their labels ``(n,)`` from a split.

    ``data`` is a dataset name or a run's data config (same resolution, same split seed). The n
    images are a fixed-``seed`` random subset of the split. A procedural dataset (``shapes``)
    whose split is too small is drawn again, larger, from the same distribution; any other
    dataset raises a one-line error naming the split's size.
    """
    cfg = DataConfig(name=data) if isinstance(data, str) else data
    if dataset_kind(cfg.name) != "image":
        raise DataError(f"dataset '{cfg.name}' is {dataset_kind(cfg.name)} data, not images")
    if n < 2:
        raise TwopathsError(f"--n must be at least 2 for sample metrics, got {n}")
    if split not in ("train", "val", "test"):
        raise TwopathsError(f"unknown split '{split}'; use train, val or test")
    splits = load_splits(cfg)
    dataset = getattr(splits, split)
    if len(dataset) < n and cfg.name in _PROCEDURAL:
        fraction = {"val": cfg.val_fraction, "test": cfg.test_fraction}.get(split, 1 - cfg.val_fraction - cfg.test_fraction)
        bigger = DataConfig(**{**vars(cfg), "size": math.ceil(1.05 * n / fraction) + 16})
        dataset = getattr(load_splits(bigger), split)
    if len(dataset) < n:
        raise DataError(f"--n {n:,} is larger than the {split} split of '{cfg.name}' ({len(dataset):,} images); "
                        f"use --n {len(dataset):,} or fewer")
    index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
    x = dataset.images[index].float().div_(127.5).sub_(1.0)  # (n, C, H, W) in [-1, 1]
    return x, dataset.labels[index]


def inventory(path: str | None = None) -> list[DatasetSummary]:
    """One summary per dataset for ``twopaths data list`` (cheap: headers and counts only)."""
    rows = [images.summarize_fashion_mnist(path)]
    rows.append(DatasetSummary("shapes", "image", "procedural", "any number (data.size, default 10,000)",
                               "3xRxR (data.resolution, default 32), 3 shape classes, captions"))
    rows.append(DatasetSummary("images", "image", "your folder: --set data.path=DIR", "-",
                               "data.channels x data.resolution^2; subfolders are classes", available=True))
    for variant, label in (("ring8", "mixture2d"), ("grid25", "mixture2d-grid25")):
        means, std = toy.mixture_modes(variant)
        rows.append(DatasetSummary(label, "points", "procedural", "any number (data.size, default 10,000)",
                                   f"2-D, {len(means)} modes, std {std}"))
    try:
        rows.append(text.summarize_text("fortunes", text.find_fortunes(None)))
    except DataError as exc:
        rows.append(DatasetSummary("fortunes", "text", str(exc).split(";")[0], "-", "-", available=False))
    rows.append(DatasetSummary("text", "text", "your file or folder: --set data.path=...", "-",
                               "UTF-8; documents split on '%' lines or blank lines"))
    rows.append(recall.summarize())
    try:
        folder = molecules.find_moses(None)
        rows.append(DatasetSummary("moses", "text", str(folder), "1,584,663 train + 176,074 test molecules",
                                   "SMILES, one molecule per document, SMILES tokens; "
                                   "moses-small: data.size of them"))
    except DataError as exc:
        rows.append(DatasetSummary("moses", "text", str(exc).split(":")[0], "-", "-", available=False))
    rows.append(audio.summarize_spoken_digits())
    rows.append(DatasetSummary("audio", "audio", "your folder: --set data.path=DIR", "-",
                               "WAV files, any rate; subfolders are classes; 1 s clips at 8 kHz"))
    rows.append(video.summarize_moving_fashion(path))
    rows.append(pairs.summarize_numbers("fr"))
    rows.append(DatasetSummary("pairs", "pairs", "your TSV file: --set data.path=FILE", "-",
                               "source<TAB>target lines; data.reverse=true swaps the sides"))
    return rows
