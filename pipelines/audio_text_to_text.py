"""`audio-text-to-text`: audio and an optional instruction in, text out (captioning, instruction following), for
MINT stage 2 and LM-MSN."""

from __future__ import annotations

from typing import Any

from ..modeling.lm_msn.generation_lm_msn import generate_text
from ..processing.feature_extraction_msn import MSNFeatureExtractor
from .base import is_instance_by_name
from .lm_msn_support import clip_questions, default_prompt, sound_tokenizer_for
from .mint_audio_text_to_text import CAPTION_PROMPT, MintAudioTextToTextPipeline

__all__ = ["CAPTION_PROMPT", "AudioTextToTextPipeline"]


class AudioTextToTextPipeline(MintAudioTextToTextPipeline):
    """Captions and answers about audio: each clip with `prompt` gives `[{"generated_text": str}]`, the shape of
    transformers' `image-text-to-text` results. `generate_kwargs` (or `max_new_tokens`) go to the LLM's `generate`
    (greedy by default).

    * MINT stage 2 (`MintForConditionalGeneration` with its `MintProcessor`): the prompt goes to the Q-Former and the
      LLM (default: the paper's captioning prompt, `"Generate audio caption:"`).
    * LM-MSN (a causal LM with its `AudioTokenProcessor`): the clip becomes sound tokens (at most one decoder
      window, the tokenizer's `window_frames`, as in training), then the audio and the prompt (default: the
      processor's first captioning prompt, `"Describe this sound."` from `lm_msn_prompts.json`) go into the LLM's
      chat template; the answer stays text. The sound tokenizer is `sound_tokenizer=` (a folder or
      `MSNTokenizerModel`), else the model folder's `sound_tokenizer/` (an exported LM-MSN folder carries one).
      `generate_kwargs={"audio_guidance_scale": w}` decodes with audio guidance (`generate_text`).

    Example:

    ```python
    >>> from transformers import pipeline
    >>> import soundlm  # registers the task
    >>> caption = pipeline("audio-text-to-text", model="runs/demo/mint/stage2/final")  # doctest: +SKIP
    >>> caption("street.wav")  # doctest: +SKIP
    [{'generated_text': 'a car drives past on a wet road'}]
    >>> caption(["a.wav", "b.wav"], prompt="This is a sound of", max_new_tokens=8)  # doctest: +SKIP
    >>> lm_msn = pipeline("audio-text-to-text", model="runs/demo/lm_msn/merged",
    ...                   sound_tokenizer="runs/demo/tokenizer_fm/final")  # doctest: +SKIP
    ```
    """

    def __init__(self, *args: Any, sound_tokenizer: Any = None, **kwargs: Any):
        self._sound_tokenizer_argument = sound_tokenizer
        super().__init__(*args, **kwargs)

    def _check_model(self) -> None:
        self.sound_tokenizer = sound_tokenizer_for(self, self._sound_tokenizer_argument)
        self.sound_extractor = None
        if self.sound_tokenizer is not None:
            self.sound_extractor = MSNFeatureExtractor.from_tokenizer_config(self.sound_tokenizer.config)
        elif not is_instance_by_name(self.model, "MintForConditionalGeneration"):
            raise TypeError(f"audio-text-to-text serves MINT stage-2 models (MintForConditionalGeneration) and "
                            f"LM-MSN models (with an AudioTokenProcessor), got {type(self.model).__name__} with "
                            f"{type(self.processor).__name__}")

    def preprocess(self, audio: list[Any], prompt: str | None = None,
                   sampling_rate: int | None = None) -> dict[str, Any]:
        if self.sound_tokenizer is None:
            return super().preprocess(audio, prompt=prompt, sampling_rate=sampling_rate)
        inputs = self.sound_extractor(audio, sampling_rate=sampling_rate, return_tensors="pt")
        return {"input_values": inputs["input_values"], "padding_mask": inputs.get("padding_mask"),
                "prompt": prompt or default_prompt(self.processor, "captioning")}

    def _forward(self, model_inputs: dict[str, Any], generate_kwargs: dict | None = None) -> dict[str, Any]:
        if self.sound_tokenizer is None:
            if "audio_guidance_scale" in (generate_kwargs or {}):
                raise ValueError("audio_guidance_scale is for LM-MSN models (the audio as sound tokens in the LLM's "
                                 f"prompt), got a {type(self.model).__name__}")
            return super()._forward(model_inputs, generate_kwargs)
        kwargs = {"max_new_tokens": 32, "do_sample": False, **(generate_kwargs or {})}
        prompts = [self.processor.chat_segments(question) for question in clip_questions(
            self.sound_tokenizer, model_inputs["input_values"], model_inputs["padding_mask"], model_inputs["prompt"])]
        max_new_tokens = kwargs.pop("max_new_tokens")
        return {"texts": generate_text(self.model, self.processor, prompts, max_new_tokens=max_new_tokens, **kwargs)}
