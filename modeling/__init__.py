"""Model families, one sub-package each (``msn_tokenizer/``, ``lm_msn/``, ``mint/``, ``yamnet/``).

A family's ``__init__.py`` registers its configuration, model and processor classes with the transformers Auto
classes and lists its public names. This module imports every sub-package it finds, so a new family folder
registers itself on ``import soundlm`` without this file, the CLI or the Hub export being edited.
"""

import importlib
import pkgutil

FAMILIES = tuple(info.name for info in pkgutil.iter_modules(__path__) if info.ispkg)
for _family in FAMILIES:
    importlib.import_module(f".{_family}", __name__)

__all__ = ["FAMILIES"]
