"""The classification paradigm: a tiny ViT learns a separable image task, augmentation acts only in
training (and is a real shift / mirror, reproducible from the torch RNG), label smoothing matches
torch's ``cross_entropy(label_smoothing=)``, and the confusion-matrix accuracy."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from twopaths.backbones.vit import ViT, ViTConfig
from twopaths.paradigms.classifier import (Classifier, ClassifierConfig, accuracy_from_confusion, confusion_matrix,
                                           random_crop, random_hflip, smoothed_cross_entropy)


PATTERNS = torch.tensor([[[1, 1], [-1, -1]],  # horizontal stripes
                         [[1, -1], [1, -1]],  # vertical stripes
                         [[1, -1], [-1, 1]],  # checkerboard
                         [[1, 1], [1, 1]]], dtype=torch.float32)  # flat


def pattern_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, 8, 8) images of one of four textures (the label), each at a random phase, under uniform noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = PATTERNS[y].repeat(1, 4, 4)[:, None]  # (n, 1, 8, 8)
    shift = torch.randint(0, 2, (n, 2), generator=g)
    x = torch.stack([xi.roll((int(dy), int(dx)), dims=(1, 2)) for xi, (dy, dx) in zip(x, shift)])
    return 0.6 * x + torch.rand(n, 1, 8, 8, generator=g) * 0.8 - 0.4, y


def tiny_classifier(cfg: ClassifierConfig, classes: int = 4, res: int = 8, patch: int = 4) -> Classifier:
    torch.manual_seed(0)
    vit = ViT(ViTConfig(image_size=res, in_channels=1, num_classes=classes, patch_size=patch, d_model=32,
                        n_layer=2, n_head=2, mlp_ratio=2.0))
    return Classifier(vit, cfg, classes)


def test_tiny_vit_learns_a_separable_task():
    x, y = pattern_task(512, seed=0)
    xt, yt = pattern_task(400, seed=1)
    model = tiny_classifier(ClassifierConfig(label_smoothing=0.1, crop_padding=0, hflip=False))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(60):  # at 100% from about step 20 on
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = model.loss({"image": x[idx], "label": y[idx]})
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    acc = model.accuracy({"image": xt, "label": yt})
    assert acc >= 0.95, acc
    counts = confusion_matrix(model, [{"image": a, "label": b} for a, b in zip(xt, yt)], batch_size=64)
    assert counts.shape == (4, 4) and int(counts.sum()) == 400
    result = accuracy_from_confusion(counts)
    assert result["accuracy"] == pytest.approx(acc) and min(result["per_class"]) > 0.85
    assert torch.equal(model.predict(xt[:5]), model.logits(xt[:5]).argmax(-1))


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_matches_torch(eps):
    g = torch.Generator().manual_seed(2)
    logits, labels = torch.randn(16, 7, generator=g) * 3, torch.randint(0, 7, (16,), generator=g)
    expected = F.cross_entropy(logits, labels, label_smoothing=eps)
    assert torch.allclose(smoothed_cross_entropy(logits, labels, eps), expected, atol=1e-6)


def test_loss_smooths_and_augments_in_training_only():
    model = tiny_classifier(ClassifierConfig(label_smoothing=0.2, crop_padding=2, hflip=True))
    torch.nn.init.normal_(model.net.head.weight)  # the zero-initialised head would make every input score alike
    x, y = pattern_task(32, seed=3)
    batch = {"image": x, "label": y}
    model.eval()
    plain = F.cross_entropy(model.logits(x), y)
    assert torch.allclose(model.loss(batch), plain, atol=1e-6)  # eval: no augmentation, no smoothing
    assert torch.allclose(model.loss(batch), plain, atol=1e-6)  # and deterministic
    model.train()  # no dropout in this net: any change comes from the augmentation
    torch.manual_seed(5)
    a = model.loss(batch)
    torch.manual_seed(5)
    assert torch.equal(model.loss(batch), a)  # reproducible from the torch RNG
    torch.manual_seed(6)
    assert not torch.equal(model.loss(batch), a)
    model.cfg.crop_padding, model.cfg.hflip = 0, False  # augmentation off: only the smoothing differs
    assert torch.allclose(model.loss(batch), F.cross_entropy(model.logits(x), y, label_smoothing=0.2), atol=1e-6)


def test_random_crop_is_a_shift_with_background_fill():
    x = torch.rand(20, 2, 6, 5) * 2 - 1
    torch.manual_seed(0)
    out = random_crop(x, padding=2)
    assert out.shape == x.shape
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)
    shifts = set()
    for i in range(len(x)):
        match = [(dy, dx) for dy in range(5) for dx in range(5)
                 if torch.equal(out[i], padded[i, :, dy:dy + 6, dx:dx + 5])]
        assert match, f"image {i} is not a shifted copy"
        shifts.add(match[0])
    assert len(shifts) > 5  # offsets vary per image
    assert torch.equal(random_crop(x, padding=0), x)
    torch.manual_seed(0)
    assert torch.equal(random_crop(x, padding=2), out)  # same seed, same crops


def test_random_hflip_mirrors_about_half():
    x = torch.rand(200, 1, 4, 4)
    torch.manual_seed(0)
    out = random_hflip(x)
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped | kept).all()) and 60 < int(flipped.sum()) < 140


def test_confusion_matrix_counts_true_by_predicted():
    class Fixed(Classifier):  # predicts the class stored in the image's first pixel
        def logits(self, x):
            return F.one_hot(x[:, 0, 0, 0].long(), 3).float()

    model = Fixed(torch.nn.Identity(), ClassifierConfig(), 3)
    pred = torch.tensor([0, 1, 2, 2, 1, 0])
    true = torch.tensor([0, 1, 2, 1, 1, 2])
    data = TensorDataset(pred.float()[:, None, None, None], true)
    dicts = [{"image": a, "label": b} for a, b in data]
    cpu = torch.device("cpu")
    counts = confusion_matrix(model, dicts, batch_size=4, device=cpu)
    assert counts.tolist() == [[1, 0, 0], [0, 2, 1], [1, 0, 1]]
    result = accuracy_from_confusion(counts)
    assert result["accuracy"] == pytest.approx(4 / 6) and result["per_class"] == pytest.approx([1, 2 / 3, 1 / 2])
    assert int(confusion_matrix(model, dicts, batch_size=4, device=cpu, max_items=5).sum()) == 5
