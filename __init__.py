"""soundlm: LM-MSN sound tokenizer and audio LLM, and MINT, on the Hugging Face stack.

Importing the package registers its configurations, models and feature extractors with the
transformers Auto classes, so ``AutoModel.from_pretrained(local_dir)`` works without remote code.
"""

import sys as _sys

if __name__ != "soundlm":
    # The repository root is the package (pyproject maps it onto `soundlm`). Tools that import the root
    # folder by its directory name (pytest collects it as a package) must get the same module objects,
    # not a second copy of every class, so the installed package stands in for this one.
    import importlib as _importlib

    _sys.modules[__name__] = _importlib.import_module("soundlm")
else:
    from transformers import AutoFeatureExtractor as _AutoFeatureExtractor

    from .modeling import MSNTokenizerConfig, MSNTokenizerModel, MSNTokenizerOutput  # noqa: F401
    from .modeling.hub_export import export_for_hub  # noqa: F401
    from .processing import MSNFeatureExtractor  # noqa: F401

    _AutoFeatureExtractor.register(MSNTokenizerConfig, MSNFeatureExtractor, exist_ok=True)

    __version__ = "0.1.0"

    __all__ = [
        "MSNTokenizerConfig",
        "MSNTokenizerModel",
        "MSNTokenizerOutput",
        "MSNFeatureExtractor",
        "export_for_hub",
    ]
