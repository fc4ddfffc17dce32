"""Moving models between twopaths and other libraries (:mod:`twopaths.interop.hf`: Hugging Face GPT-2)."""
