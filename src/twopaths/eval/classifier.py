"""How well a classifier run (``vit``) classifies: accuracy per class, beside the evaluation CNN's.

``twopaths eval RUN --metrics accuracy`` prints :func:`classifier_accuracy`; the evaluation CNN is
the shipped feature network of the run's data set (:mod:`twopaths.eval.features`), scored on the
same images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from twopaths.errors import TwopathsError
from twopaths.paradigms.classifier import Classifier, accuracy_from_confusion, confusion_matrix
from twopaths.viz import save_confusion

__all__ = ["classifier_accuracy", "require_classifier"]


def require_classifier(run: Any, what: str) -> Classifier:
    """The classifier of ``run``, or a clear error naming ``what`` needed one."""
    if not isinstance(run.model, Classifier):
        raise TwopathsError(f"{what} is for classifier runs (model 'vit'); model '{run.cfg.model}' is not one")
    return run.model


def _feature_net_accuracy(run: Any, dataset: Any) -> tuple[float, str] | None:
    """The shipped evaluation CNN's accuracy on the same items, when one ships for the run's data."""
    from twopaths.eval.features import SHIPPED, extract, load_feature_net

    if run.cfg.data.name not in SHIPPED:
        return None
    net = load_feature_net(run.cfg.data.name)
    if net.arch["resolution"] != run.meta["resolution"] or net.arch["num_classes"] != run.model.num_classes:
        return None
    _, logits = extract(net, dataset, with_logits=True, progress=False)  # (N, K)
    labels = dataset.labels if hasattr(dataset, "labels") else \
        torch.as_tensor([int(dataset[i]["label"]) for i in range(len(dataset))])  # (N,)
    return float((logits.argmax(-1) == labels).float().mean()), net.identity


def classifier_accuracy(run: Any, *, split: str | None = None, n: int | None = None, batch_size: int = 500,
                        weights: str = "EMA") -> dict[str, Any]:
    """``twopaths eval RUN --metrics accuracy`` (``run`` loaded with its data): accuracy on ``split``
    (default test; the first ``n`` items), per class, beside the evaluation CNN's, printed as a table;
    writes ``RUN/confusion-SPLIT.png`` and returns the numbers. ``weights`` names the loaded weights."""
    model = require_classifier(run, "--metrics accuracy")
    split = split or "test"
    dataset = getattr(run.splits, split)
    if n is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(n, len(dataset))))
    counts = confusion_matrix(model, dataset, batch_size=batch_size)
    result = accuracy_from_confusion(counts)
    names = run.meta.get("class_names") or [str(k) for k in range(model.num_classes)]
    print(f"{run.cfg.model} on {run.cfg.data.name}/{split}, checkpoint step {run.checkpoint.step} ({weights} "
          f"weights), {result['items']:,} images")
    print(f"  {'accuracy':<20} {result['accuracy']:.4f}")
    cnn = _feature_net_accuracy(run, dataset)
    out: dict[str, Any] = {"accuracy": result["accuracy"], "accuracy_split": split, "accuracy_items": result["items"],
                           "per_class_accuracy": dict(zip(names, result["per_class"]))}
    if cnn is not None:
        print(f"  {'evaluation CNN':<20} {cnn[0]:.4f}  ({cnn[1]}, same images)")
        out.update({"feature_net_accuracy": cnn[0], "feature_net": cnn[1]})
    print(f"  {'class':<20} {'accuracy':>8}")
    for name, acc in zip(names, result["per_class"]):
        print(f"  {name:<20} {acc:>8.4f}")
    png = save_confusion(counts, names, Path(run.run_dir) / f"confusion-{split}.png",
                         f"{run.cfg.model} on {run.cfg.data.name}/{split}: accuracy {result['accuracy']:.4f}")
    print(f"wrote {png}")
    out["confusion"] = counts.tolist()
    return out
