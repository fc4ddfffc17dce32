"""Shared data for the evaluation tests: real Fashion-MNIST images (skipped, with the reason,
when the dataset is not installed) and the shipped feature network."""

import pytest

from twopaths.errors import DataError


@pytest.fixture(scope="session")
def fashion():
    """1,000 test images and 1,000 train images of Fashion-MNIST, (N, 1, 28, 28) in [-1, 1], with labels."""
    from twopaths.eval.images import real_images

    try:
        test = real_images("fashion-mnist", 1000, "test")
        train = real_images("fashion-mnist", 1000, "train")
    except DataError as exc:
        pytest.skip(f"Fashion-MNIST is not installed ({exc}); 'make test' installs it")
    return {"test": test, "train": train}


@pytest.fixture(scope="session")
def fm_net():
    from twopaths.eval.features import load_feature_net

    return load_feature_net("fashion-mnist")
