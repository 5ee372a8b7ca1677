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
    # importing the model families registers them with the Auto classes (see modeling/__init__.py)
    from . import (
        modeling,  # noqa: F401
        pipelines,  # noqa: F401  (registers the pipelines with transformers' PIPELINE_REGISTRY)
    )
    from .modeling.hub_export import export_for_hub  # noqa: F401
    from .modeling.msn_tokenizer import *  # noqa: F403  (the family lists its public names)
    from .processing import AudioInputError  # noqa: F401

    __version__ = "0.1.0"

    __all__ = ["AudioInputError", "export_for_hub", *modeling.msn_tokenizer.__all__]
