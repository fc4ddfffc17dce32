"""Audio clips: the spoken-digits set synthesised offline with eSpeak NG, and any folder of WAV files.

``spoken-digits`` is an SC09-like set (the ten words "zero" .. "nine", as in DiffWave's unconditional
and class-conditional experiments, Kong et al. 2021, sec. 5.2) that needs no download: each clip is one
word spoken by the ``espeak-ng`` synthesiser (Debian package ``espeak-ng``) with one of its English
accents (``en-us``, ``en-gb``, ``en-gb-scotland``, ...) and one of its voice *variants* (``+adam``,
``+f2``, ...: the speaker), at a seeded random speed and pitch. Each clip is resampled from eSpeak's
22,050 Hz to 8 kHz with a polyphase filter (``scipy.signal.resample_poly``, exact ratio 320/882),
trimmed of leading and trailing silence, centred in one second (8,000 samples) and peak-normalised
to 0.95. The **split is by variant**: validation and test hold speakers never heard in training.

The set is generated once (a few minutes) into ``cache_dir()/spoken-digits`` as one WAV file per clip
in a folder per digit, with ``manifest.csv`` (file, digit, accent, variant, speed, pitch, split) and
the eSpeak version; it is written into a temporary folder and renamed, so a killed generation leaves
nothing half-made. ``data.path`` may name another folder of WAV files whose subfolders are the classes
(``audio``); it is split at random by ``data.val_fraction`` / ``data.test_fraction``.

Items are ``{"audio": float32 (1, L) in [-1, 1], "label": int64}``.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from twopaths.data.base import DatasetSummary, cache_dir
from twopaths.errors import DataError

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SAMPLE_RATE = 8000  # Hz: SC09's rate, and DiffWave's
CLIP_SECONDS = 1.0
#: eSpeak NG's English accents that ship with the package (its MBROLA voices need extra data files)
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029")
RENDITIONS = 4  # clips per (variant, digit): each a seeded draw of accent, speed and pitch
HELD_OUT = 0.1  # fraction of the variants (speakers) in validation, and again in test
PEAK = 0.95
INSTALL_HINT = "apt-get install espeak-ng ('make test' and 'make demo' install it where they can)"
MANIFEST = "manifest.csv"
FIELDS = ("file", "digit", "accent", "variant", "speed", "pitch", "split")


# ----------------------------------------------------------------------------------------------
# WAV files


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A WAV file as float32 samples in [-1, 1] (channels averaged to mono) and its sample rate; a
    :class:`DataError` naming the file when it is not a readable WAV."""
    path = Path(path)
    try:
        import scipy.io.wavfile  # lazily: scipy.io costs every command a third of a second

        rate, x = scipy.io.wavfile.read(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as exc:  # scipy raises ValueError for files that are not WAV
        raise DataError(f"{path}: not a readable WAV file ({exc})") from None
    if x.dtype.kind == "f":
        x = x.astype(np.float32)
    elif x.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif x.dtype.kind == "i":
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    else:
        raise DataError(f"{path}: unsupported WAV sample type {x.dtype}")
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.size == 0 or not np.isfinite(x).all():
        raise DataError(f"{path}: the WAV file holds no samples, or samples that are not finite")
    return x, int(rate)


def write_wav(path: str | Path, x: np.ndarray | torch.Tensor, rate: int = SAMPLE_RATE) -> Path:
    """Write mono samples in [-1, 1] (clipped) as a 16-bit PCM WAV file."""
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32).reshape(-1)
    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)
    import scipy.io.wavfile

    scipy.io.wavfile.write(Path(path), rate, pcm)
    return Path(path)


def fit_clip(x: np.ndarray, rate: int, out_rate: int = SAMPLE_RATE, seconds: float = CLIP_SECONDS,
             silence: float = 0.02, peak: float | None = PEAK) -> np.ndarray:
    """One clip of ``seconds`` at ``out_rate`` from any mono recording: resampled (polyphase, exact
    rational ratio), trimmed of the samples quieter than ``silence`` x its peak at both ends, centred
    (cut evenly on both sides when longer) and scaled to ``peak`` (None: kept). (L,) float32."""
    g = np.gcd(int(out_rate), int(rate))
    import scipy.signal  # a second's import: only when a file needs resampling

    y = scipy.signal.resample_poly(x, out_rate // g, rate // g).astype(np.float32) if rate != out_rate else x
    loud = np.flatnonzero(np.abs(y) >= silence * max(float(np.abs(y).max()), 1e-8))
    if loud.size:
        y = y[loud[0]:loud[-1] + 1]
    length = int(round(seconds * out_rate))
    out = np.zeros(length, np.float32)
    if len(y) >= length:
        start = (len(y) - length) // 2
        out[:] = y[start:start + length]
    else:
        start = (length - len(y)) // 2
        out[start:start + len(y)] = y
    top = float(np.abs(out).max())
    return out * (peak / top) if peak is not None and top > 0 else out


# ----------------------------------------------------------------------------------------------
# spoken digits, synthesised


def find_espeak() -> str:
    """The ``espeak-ng`` program, or a :class:`DataError` saying how to install it."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise DataError(f"spoken-digits is synthesised with espeak-ng, which is not installed: {INSTALL_HINT}")
    return program


def espeak_variants(program: str) -> list[str]:
    """The voice variants (speakers) this eSpeak NG has, by file name, sorted."""
    lines = subprocess.run([program, "--voices=variant"], capture_output=True, text=True, check=True).stdout.splitlines()
    start, end = lines[0].index("File"), lines[0].index("Other Languages")  # fixed-width columns (names hold spaces)
    names = {line[start:end].strip().removeprefix("!v/") for line in lines[1:] if line[start:].startswith("!v/")}
    return sorted(names)


def _speak(program: str, word: str, accent: str, variant: str, speed: int, pitch: int, wav: Path) -> None:
    subprocess.run([program, "-v", f"{accent}+{variant}", "-s", str(speed), "-p", str(pitch), "-w", str(wav), word],
                   capture_output=True, check=True)


def generate_spoken_digits(dest: str | Path, seed: int = 0, renditions: int = RENDITIONS,
                           variants: list[str] | None = None, progress: bool = True) -> Path:
    """Synthesise the spoken-digits set into ``dest`` (see the module docstring) and return it. Built in
    a temporary folder beside ``dest`` and renamed when complete; ``variants`` limits the speakers."""
    program = find_espeak()
    dest = Path(dest)
    variants = variants if variants is not None else espeak_variants(program)
    if len(variants) < 3:
        raise DataError(f"spoken-digits needs at least 3 eSpeak voice variants (train, val, test); found {variants}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(variants))
    n_held = max(1, round(HELD_OUT * len(variants)))
    split_of = {variants[i]: "val" for i in order[:n_held]} | {variants[i]: "test" for i in order[n_held:2 * n_held]}
    version = subprocess.run([program, "--version"], capture_output=True, text=True).stdout.strip()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        rows = []
        jobs = [(v, d, r) for v in variants for d in range(len(DIGITS)) for r in range(renditions)]
        for variant, digit, r in tqdm(jobs, desc="synthesising spoken digits", unit="clip", disable=not progress):
            accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
            speed, pitch = int(rng.integers(120, 221)), int(rng.integers(20, 81))  # words/min, 0-99 scale
            raw = tmp / "raw.wav"
            _speak(program, DIGITS[digit], accent, variant, speed, pitch, raw)
            x, rate = read_wav(raw)
            name = f"{DIGITS[digit]}/{variant.replace(' ', '_')}_{r}.wav"
            (tmp / DIGITS[digit]).mkdir(exist_ok=True)
            write_wav(tmp / name, fit_clip(x, rate))
            rows.append({"file": name, "digit": digit, "accent": accent, "variant": variant, "speed": speed,
                         "pitch": pitch, "split": split_of.get(variant, "train")})
        (tmp / "raw.wav").unlink(missing_ok=True)
        with open(tmp / MANIFEST, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        (tmp / "ESPEAK_VERSION").write_text(version + "\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def spoken_digits_folder(explicit: str | Path | None = None) -> Path:
    """The spoken-digits folder: ``explicit`` if given (it must hold a manifest), else the cache,
    synthesised there first if missing."""
    if explicit is not None:
        folder = Path(explicit)
        if not (folder / MANIFEST).is_file():
            raise DataError(f"{folder} has no {MANIFEST}: not a spoken-digits folder (for your own WAV files "
                            f"use --data audio --set data.path={folder})")
        return folder
    folder = cache_dir() / "spoken-digits"
    if not (folder / MANIFEST).is_file():
        generate_spoken_digits(folder)
    return folder


def read_manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / MANIFEST, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or set(FIELDS) - set(rows[0]):
        raise DataError(f"{folder / MANIFEST}: expected the columns {', '.join(FIELDS)}")
    return rows


def summarize_spoken_digits() -> DatasetSummary:
    """The ``twopaths data list`` row: the cached set if made, else whether it can be made here."""
    folder = cache_dir() / "spoken-digits"
    shapes = f"1x{int(SAMPLE_RATE * CLIP_SECONDS)} (1 s at {SAMPLE_RATE // 1000} kHz), 10 classes, speakers split"
    if (folder / MANIFEST).is_file():
        return DatasetSummary("spoken-digits", "audio", str(folder), f"{len(read_manifest(folder)):,} clips", shapes)
    try:
        find_espeak()
    except DataError as exc:
        return DatasetSummary("spoken-digits", "audio", str(exc).split(":")[0], "-", "-", available=False)
    return DatasetSummary("spoken-digits", "audio", "synthesised by espeak-ng on first use (a few minutes)",
                          f"about {100 * len(DIGITS) * RENDITIONS:,} clips", shapes)


# ----------------------------------------------------------------------------------------------
# datasets


class AudioClips(Dataset):
    """Fixed-length clips ``(N, 1, L)`` float32 with class labels ``(N,)`` int64."""

    def __init__(self, audio: torch.Tensor, labels: torch.Tensor, class_names: list[str], rate: int = SAMPLE_RATE):
        if audio.ndim != 3 or audio.shape[1] != 1 or len(audio) != len(labels):
            raise ValueError(f"audio must be (N, 1, L) with N labels, got {tuple(audio.shape)} and {len(labels)}")
        self.audio, self.labels, self.class_names, self.rate = audio, labels, class_names, rate

    def __len__(self) -> int:
        return len(self.audio)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"audio": self.audio[index], "label": self.labels[index]}


def _load(files: list[Path], rate: int, seconds: float, progress: bool = False) -> torch.Tensor:
    """The files as clips (N, 1, L) at ``rate``; one note on stderr when some had another sample rate."""
    clips, other = [], Counter()
    for f in tqdm(files, disable=not progress, desc="reading WAV", unit="file"):
        x, file_rate = read_wav(f)
        clips.append(fit_clip(x, file_rate, out_rate=rate, seconds=seconds))
        if file_rate != rate:
            other[file_rate] += 1
    if other:
        rates = ", ".join(f"{k:,} Hz" for k in sorted(other))
        print(f"note: {sum(other.values())} of {len(files)} WAV files are at {rates}, not {rate:,} Hz; they were "
              f"resampled to {rate:,} Hz (polyphase filter)", file=sys.stderr)
    return torch.from_numpy(np.stack(clips))[:, None]  # (N, 1, L)


def spoken_digit_splits(path: str | Path | None = None) -> tuple[dict[str, AudioClips], str]:
    """The spoken-digits clips by split (train/val/test: disjoint speakers) and where they are."""
    folder = spoken_digits_folder(path)
    rows = read_manifest(folder)
    out = {}
    for split in ("train", "val", "test"):
        chosen = [r for r in rows if r["split"] == split]
        if not chosen:
            raise DataError(f"{folder / MANIFEST} has no clip in the {split} split")
        audio = _load([folder / r["file"] for r in chosen], SAMPLE_RATE, CLIP_SECONDS)
        labels = torch.tensor([int(r["digit"]) for r in chosen], dtype=torch.int64)
        out[split] = AudioClips(audio, labels, list(DIGITS))
    return out, str(folder)


def audio_folder_splits(path: str | Path, seed: int, val_fraction: float, test_fraction: float,
                        rate: int = SAMPLE_RATE, seconds: float = CLIP_SECONDS) -> tuple[dict[str, AudioClips], str]:
    """A folder of WAV files whose subfolders are the classes (``*.wav``, any rate and bit depth), each
    clip fitted to ``seconds`` at ``rate``, split at random with a fixed ``seed``."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; the audio dataset needs a folder of WAV files (subfolders = classes)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob("*.wav")))
    if not classes:
        raise DataError(f"{root} has no subfolder with .wav files; put each class's clips in its own subfolder")
    files = [(f, c) for c, name in enumerate(classes) for f in sorted((root / name).glob("*.wav"))]
    n = len(files)
    n_val, n_test = int(round(n * val_fraction)), int(round(n * test_fraction))
    if n - n_val - n_test < 1 or (val_fraction > 0 and n_val < 1) or (test_fraction > 0 and n_test < 1):
        raise DataError(f"{root} has {n} clips, too few for train/val/test splits of "
                        f"{1 - val_fraction - test_fraction:.0%}/{val_fraction:.0%}/{test_fraction:.0%}")
    perm = np.random.default_rng(seed).permutation(n)
    index = {"val": perm[:n_val], "test": perm[n_val:n_val + n_test], "train": perm[n_val + n_test:]}
    audio = _load([f for f, _ in files], rate, seconds)
    labels = torch.tensor([c for _, c in files], dtype=torch.int64)
    return {k: AudioClips(audio[torch.from_numpy(i)], labels[torch.from_numpy(i)], classes, rate)
            for k, i in index.items()}, str(root)


__all__ = ["ACCENTS", "AudioClips", "DIGITS", "SAMPLE_RATE", "audio_folder_splits", "find_espeak", "fit_clip",
           "generate_spoken_digits", "read_manifest", "read_wav", "spoken_digit_splits", "spoken_digits_folder",
           "summarize_spoken_digits", "write_wav"]
