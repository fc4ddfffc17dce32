"""twopaths: diffusion models and transformers, built from first principles and measured side by side."""

__version__ = "0.1.0"
