"""Train the feature networks that FID, KID and precision/recall use (twopaths.eval.features), and
the spoken-digit classifier the audio metrics use (twopaths.eval.audio_features).

    PYTHONPATH=src python scripts/train_feature_net.py fashion-mnist   # or: shapes, spoken-digits, all
    PYTHONPATH=src python scripts/train_feature_net.py shapes --out /tmp/nets

A fixed recipe and seed, written into the JSON card beside the weights (RECIPES below):
AdamW (Loshchilov & Hutter 2019), linear warmup then cosine decay to zero, batch 128, light
augmentation (Fashion-MNIST: horizontal flips, a mirrored garment is still the same garment;
shapes: random translation by up to 2 pixels with background padding), two CPU threads. Sized to
train in a few minutes on two idle CPU cores. The
model is trained on the registry's train split only; the validation split is reported during
training and the test split, touched once at the end, gives the card's ``test_accuracy``.

Shapes: a class is the shape of the caption's first object, which a two-object picture does not
identify, so no classifier can be perfect there; the network is still a good feature extractor
(what FID needs is features that separate shapes, colours and sizes). It trains on a larger
procedural set drawn with another seed than the dataset's default, and is tested on the default
``shapes`` test split.

Spoken digits: the classifier sees a log-mel spectrogram (librosa's mel filterbank, stored in the
weights; the log-mel mean and standard deviation of the training clips, stored too) and is tested on
the speakers of the test split, whom training never heard. Augmentation: a random circular shift
by up to 0.1 s, a random gain in [0.5, 1] and white noise of a random level up to 0.01 (generated
clips are noisier than eSpeak's), independently per clip.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from twopaths.config import DataConfig
from twopaths.data.registry import load_splits
from twopaths.eval.audio_features import AudioFeatureNet
from twopaths.eval.features import WEIGHTS_DIR, FeatureNet, write_card

RECIPES: dict[str, dict] = {
    "fashion-mnist": {"data": {"name": "fashion-mnist"}, "test_data": {"name": "fashion-mnist"},
                      "arch": {"in_channels": 1, "num_classes": 10, "resolution": 28, "widths": [32, 64, 128],
                               "convs": 1, "dim": 256, "dropout": 0.3},
                      "epochs": 6, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05, "warmup_steps": 200,
                      "shift": 0, "hflip": True, "seed": 0, "threads": 2},
    "shapes": {"data": {"name": "shapes", "size": 12000, "seed": 1}, "test_data": {"name": "shapes"},
               "arch": {"in_channels": 3, "num_classes": 3, "resolution": 32, "widths": [32, 64, 128],
                        "convs": 1, "dim": 256, "dropout": 0.3},
               "epochs": 3, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05, "warmup_steps": 100,
               "shift": 2, "hflip": False, "seed": 0, "threads": 2},
    "spoken-digits": {"data": {"name": "spoken-digits"}, "test_data": {"name": "spoken-digits"}, "kind": "audio",
                      "front": {"n_fft": 256, "hop": 122, "n_mels": 64, "samples": 8000},
                      "arch": {"in_channels": 1, "num_classes": 10, "resolution": 64, "widths": [16, 32, 64, 128],
                               "convs": 1, "dim": 256, "dropout": 0.3},
                      "epochs": 12, "batch_size": 64, "lr": 2e-3, "weight_decay": 0.05, "warmup_steps": 100,
                      "max_shift_s": 0.1, "min_gain": 0.5, "max_noise": 0.01, "seed": 0, "threads": 2},
}


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1], the datasets' convention."""
    return images_u8.float().div_(127.5).sub_(1.0)


def augment(x: torch.Tensor, shift: int, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``shift`` px (padding with the background, -1) and optional
    horizontal flips, independently per image. x: (B, C, H, W) -> (B, C, H, W)."""
    b, c, h, w = x.shape
    if hflip:
        flip = torch.rand(b, generator=gen) < 0.5  # (B,)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if shift:
        padded = F.pad(x, (shift,) * 4, value=-1.0)  # (B, C, H + 2s, W + 2s)
        dy = torch.randint(0, 2 * shift + 1, (b,), generator=gen)  # (B,)
        dx = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
        rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (B, H, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (B, 1, W)
        x = padded[torch.arange(b)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)  # (B, C, H, W)
    return x.contiguous()


def augment_audio(x: torch.Tensor, recipe: dict, gen: torch.Generator) -> torch.Tensor:
    """Per clip: a circular shift by up to ``max_shift_s`` seconds, a gain in [``min_gain``, 1] and
    white noise of a level in [0, ``max_noise``]. x: (B, 1, L) -> (B, 1, L)."""
    b, _, length = x.shape
    limit = int(recipe["max_shift_s"] * 8000)
    shift = torch.randint(-limit, limit + 1, (b,), generator=gen)  # (B,)
    idx = (torch.arange(length)[None, :] - shift[:, None]) % length  # (B, L)
    x = torch.gather(x[:, 0], 1, idx)[:, None]  # (B, 1, L)
    gain = recipe["min_gain"] + (1 - recipe["min_gain"]) * torch.rand(b, 1, 1, generator=gen)
    noise = recipe["max_noise"] * torch.rand(b, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
    return (gain * x + noise).clamp(-1, 1)


def mel_front(net: AudioFeatureNet, train_audio: torch.Tensor) -> None:
    """Store librosa's mel filterbank (Slaney scale and normalisation, librosa's defaults) and the
    mean and standard deviation of the training clips' log-mel values in ``net.front``."""
    import librosa

    a = net.front.arch
    net.front.mel.copy_(torch.from_numpy(librosa.filters.mel(sr=8000, n_fft=a["n_fft"], n_mels=a["n_mels"])))
    with torch.no_grad():
        logmel = torch.cat([torch.log(net.front.power_mel(train_audio[i:i + 500]) + 1e-6)
                            for i in range(0, len(train_audio), 500)])
    net.front.mean.fill_(float(logmel.mean()))
    net.front.std.fill_(float(logmel.std()))


@torch.no_grad()
def accuracy(net: FeatureNet | AudioFeatureNet, inputs: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    """Top-1 accuracy on uint8 images (converted to [-1, 1]) or float clips."""
    net.eval()
    correct = 0
    for i in range(0, len(inputs), batch):
        x = to_float(inputs[i:i + batch]) if inputs.dtype == torch.uint8 else inputs[i:i + batch]
        correct += int((net.logits(x).argmax(1) == labels[i:i + batch]).sum())
    return correct / len(inputs)


def train(name: str, out_dir: Path, epochs: int | None = None) -> dict:
    recipe = dict(RECIPES[name])
    if epochs is not None:
        recipe["epochs"] = epochs
    torch.set_num_threads(recipe["threads"])
    torch.manual_seed(recipe["seed"])
    splits = load_splits(DataConfig(**recipe["data"]))
    test = load_splits(DataConfig(**recipe["test_data"])).test
    audio = recipe.get("kind") == "audio"
    data = "audio" if audio else "images"
    train_x, train_y = getattr(splits.train, data), splits.train.labels  # (N, C, H, W) uint8 or (N, 1, L), (N,)
    if audio:
        net = AudioFeatureNet(recipe["front"], recipe["arch"])
        mel_front(net, train_x)
    else:
        net = FeatureNet(**recipe["arch"])
    decay = [p for n, p in net.named_parameters() if p.ndim > 1]  # no decay on norms and biases
    rest = [p for n, p in net.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe["weight_decay"]},
                             {"params": rest, "weight_decay": 0.0}], lr=recipe["lr"])
    steps_per_epoch = len(train_x) // recipe["batch_size"]
    total = steps_per_epoch * recipe["epochs"]
    warm = recipe["warmup_steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm))))
    gen = torch.Generator().manual_seed(recipe["seed"])
    start = time.time()
    for epoch in range(recipe["epochs"]):
        net.train()
        perm = torch.randperm(len(train_x), generator=gen)
        running = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * recipe["batch_size"]:(i + 1) * recipe["batch_size"]]
            if audio:
                x = augment_audio(train_x[idx], recipe, gen)  # (B, 1, L)
            else:
                x = augment(to_float(train_x[idx]), recipe["shift"], recipe["hflip"], gen)  # (B, C, H, W)
            loss = F.cross_entropy(net(x), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
        val = accuracy(net, getattr(splits.val, data), splits.val.labels)
        print(f"{name} epoch {epoch + 1}/{recipe['epochs']}: loss {running / steps_per_epoch:.4f}, "
              f"val acc {100 * val:.2f}%, {time.time() - start:.0f}s", flush=True)
    seconds = time.time() - start
    test_acc = accuracy(net, getattr(test, data), test.labels)
    print(f"{name}: test accuracy {100 * test_acc:.2f}% on {len(test):,} {'clips' if audio else 'images'}",
          flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    card = {
        "name": name,
        "arch": net.arch,
        "feature_dim": net.dim,
        "classes": list(test.class_names or []),
        "test_accuracy": round(test_acc, 5),
        "val_accuracy": round(val, 5),
        f"test_{'clips' if audio else 'images'}": len(test),
        f"train_{'clips' if audio else 'images'}": len(train_x),
        "parameters": sum(p.numel() for p in net.parameters()),
        "recipe": recipe,
    }
    return write_card(weights, card, script="scripts/train_feature_net.py", seconds=seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=[*RECIPES, "all"], help="which feature network to train")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"output folder (default {WEIGHTS_DIR})")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (for a quick try)")
    args = parser.parse_args(argv)
    for name in RECIPES if args.name == "all" else [args.name]:
        train(name, args.out, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
