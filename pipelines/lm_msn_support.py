"""What the LM-MSN pipelines share: the sound tokenizer they read and write tokens with, how they tell an LM-MSN
processor, and their default prompts. Kept apart from `base.py` so that the MINT pipelines' import closure (what a
Hub export copies) holds no LM-MSN code."""

from __future__ import annotations

from typing import Any

import torch

from ..processing.tasks.examples import audio_question
from .base import codes_per_clip, is_instance_by_name

SOUND_TOKENIZER_SUBFOLDER = "sound_tokenizer"
"""Where an exported LM-MSN folder keeps the MSN tokenizer that reads and writes its codes."""


def load_sound_tokenizer(sound_tokenizer: Any, device: torch.device | None = None, model: Any = None):
    """The MSN tokenizer that reads and writes an LM-MSN model's audio tokens: a model, a saved folder, or (when
    None) the `sound_tokenizer/` subfolder of the folder or Hub repository `model` was loaded from."""
    from ..modeling.msn_tokenizer.modeling_msn_tokenizer import MSNTokenizerModel

    if sound_tokenizer is None:
        source = getattr(getattr(model, "config", None), "_name_or_path", None)
        if source:
            try:
                sound_tokenizer = MSNTokenizerModel.from_pretrained(source, subfolder=SOUND_TOKENIZER_SUBFOLDER)
            except (OSError, ValueError):
                sound_tokenizer = None
        if sound_tokenizer is None:
            raise ValueError(f"an LM-MSN model needs its sound tokenizer: pass sound_tokenizer=<folder or "
                             f"MSNTokenizerModel> to pipeline(...) (the model's folder {source!r} has no "
                             f"{SOUND_TOKENIZER_SUBFOLDER}/)")
    elif not is_instance_by_name(sound_tokenizer, "MSNTokenizerModel"):
        sound_tokenizer = MSNTokenizerModel.from_pretrained(sound_tokenizer)
    sound_tokenizer = sound_tokenizer.eval()
    return sound_tokenizer if device is None else sound_tokenizer.to(device)


def sound_tokenizer_for(pipeline: Any, sound_tokenizer: Any):
    """A pipeline's sound tokenizer (`load_sound_tokenizer`) when its processor is LM-MSN's, else None; a
    `sound_tokenizer` given for any other model is refused."""
    if is_lm_msn(pipeline.processor):
        return load_sound_tokenizer(sound_tokenizer, pipeline.device, pipeline.model)
    if sound_tokenizer is not None:
        raise ValueError("sound_tokenizer is for LM-MSN models (with an AudioTokenProcessor)")
    return None


def clip_questions(sound_tokenizer: Any, input_values: torch.Tensor, padding_mask: torch.Tensor | None,
                   prompt: str) -> list[list]:
    """Each clip of a padded batch as the user turn that asks `prompt` about it (`audio_question`): its codes, at
    most one decoder window (the tokenizer's `window_frames`, as in training), then the prompt."""
    window = sound_tokenizer.config.window_frames
    return [audio_question(codes[0, :window].tolist(), prompt)
            for codes in codes_per_clip(sound_tokenizer, input_values, padding_mask)]


def is_lm_msn(processor: Any) -> bool:
    """Whether a pipeline's processor is LM-MSN's (`AudioTokenProcessor`): the model is then a causal LM that reads
    and writes sound tokens (by class name, `is_instance_by_name`)."""
    return is_instance_by_name(processor, "AudioTokenProcessor")


def default_prompt(processor: Any, task: str) -> str:
    """The first stage-2 phrasing of `task` (`"captioning"`, `"classification"`, `"text_to_audio"`) that the
    processor carries (`AudioTokenProcessor.stage2_prompts`)."""
    return processor.stage2_prompts[task][0]
