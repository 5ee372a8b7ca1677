"""What the LM-MSN pipelines share: the sound tokenizer they read and write tokens with, and how they tell an LM-MSN
processor. Kept apart from `base.py` so that the MINT pipelines' import closure (what a Hub export copies) holds no
LM-MSN code."""

from __future__ import annotations

from typing import Any

import torch


def load_sound_tokenizer(sound_tokenizer: Any, device: torch.device | None = None):
    """The MSN tokenizer that reads and writes an LM-MSN model's audio tokens: a model, or a saved folder."""
    from ..modeling.msn_tokenizer import MSNTokenizerModel

    if sound_tokenizer is None:
        raise ValueError("an LM-MSN model needs its sound tokenizer: pass sound_tokenizer=<folder or "
                         "MSNTokenizerModel> to pipeline(...)")
    if not isinstance(sound_tokenizer, MSNTokenizerModel):
        sound_tokenizer = MSNTokenizerModel.from_pretrained(sound_tokenizer)
    sound_tokenizer = sound_tokenizer.eval()
    return sound_tokenizer if device is None else sound_tokenizer.to(device)


def is_lm_msn(processor: Any) -> bool:
    """Whether a pipeline's processor is LM-MSN's (`AudioTokenProcessor`): the model is then a causal LM that reads
    and writes sound tokens."""
    from ..processing.processing_lm_msn import AudioTokenProcessor

    return isinstance(processor, AudioTokenProcessor)
