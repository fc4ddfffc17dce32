"""twopaths: diffusion models and transformers, built from first principles and measured side by side.

    import twopaths as tp
    run = tp.train("mlp-lm", data="fortunes", out="runs/mlp", train={"max_steps": 200})
    print(run.generate("The secret of", max_new_tokens=50))

``load``, ``train`` and ``evaluate`` come from :mod:`twopaths.api` (imported on first use, so the
command line starts without torch); see docs/python-api.md.
"""

from twopaths.version import __version__

__all__ = ["__version__", "evaluate", "load", "train"]


def __getattr__(name: str):
    if name in ("load", "train", "evaluate", "Run"):
        from twopaths import api

        return getattr(api, name)
    raise AttributeError(f"module 'twopaths' has no attribute {name!r}")
