"""`text-to-audio` for LM-MSN, in the shape of transformers' own pipeline (which it keeps serving)."""

from __future__ import annotations

from typing import Any

import torch
from transformers import TextToAudioPipeline

from ..modeling.lm_msn.generation_lm_msn import generate_audio
from ..processing.tasks.examples import text_segment
from .base import BatchedAudioPipeline
from .lm_msn_support import default_prompt, is_lm_msn, sound_tokenizer_for


class LMMSNTextToAudioPipeline(BatchedAudioPipeline, TextToAudioPipeline):
    """Sounds from text with the LM-MSN audio LLM: each text becomes the stage-2 text-to-audio prompt (default the
    processor's first, `"Generate a sound that matches this description: {caption}"` from `lm_msn_prompts.json`)
    in the LLM's chat template, followed by `<soa>`; the LLM samples codes (only codes, until `<eoa>`
    or `max_audio_tokens`), and the sound tokenizer decodes them. Returns `{"audio": float32 array (channels,
    samples), "sampling_rate": Hz}` per text, as transformers' `text-to-audio` does; a span that `max_audio_tokens`
    cut before `<eoa>` is decoded as it is (and logged).

    The model is a merged LM-MSN folder (`soundlm merge`) or a loaded audio LLM (`load_audio_llm`) with its
    `AudioTokenProcessor`; the sound tokenizer is `sound_tokenizer=` (a folder or `MSNTokenizerModel`), else the
    model folder's `sound_tokenizer/` (an exported LM-MSN folder carries one). Models without an
    `AudioTokenProcessor` (Bark, MusicGen, SpeechT5, ...) get transformers' own pipeline code.

    Example:

    ```python
    >>> from transformers import pipeline
    >>> import soundlm  # registers LM-MSN with the task
    >>> speak = pipeline("text-to-audio", model="runs/demo/lm_msn/merged",
    ...                  sound_tokenizer="runs/demo/tokenizer_fm/final")  # doctest: +SKIP
    >>> out = speak("rain on a tin roof", seed=0)  # doctest: +SKIP
    >>> out["audio"].shape, out["sampling_rate"]  # doctest: +SKIP
    ((1, 220500), 22050)
    ```
    """

    def __init__(self, *args: Any, sound_tokenizer: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sound_tokenizer = sound_tokenizer_for(self, sound_tokenizer)
        if self.sound_tokenizer is not None:
            self.sampling_rate = self.sound_tokenizer.config.sampling_rate

    def __call__(self, text_inputs: Any, **kwargs: Any) -> Any:
        if not is_lm_msn(self.processor):
            return TextToAudioPipeline.__call__(self, text_inputs, **kwargs)
        texts = text_inputs if isinstance(text_inputs, (list, tuple)) else [text_inputs]
        if not texts or not all(isinstance(text, str) and text.strip() for text in texts):
            raise ValueError(f"text_inputs must be a non-empty string or a list of them, got {text_inputs!r:.200}")
        return BatchedAudioPipeline.__call__(self, text_inputs, **kwargs)

    def _sanitize_parameters(self, prompt_template: str | None = None, max_audio_tokens: int | None = None,
                             min_audio_tokens: int | None = None, num_steps: int | None = None,
                             seed: int | None = None, generate_kwargs: dict | None = None, **kwargs: Any):
        if not is_lm_msn(self.processor):
            return TextToAudioPipeline._sanitize_parameters(self, generate_kwargs=generate_kwargs, **kwargs)
        if kwargs:
            raise TypeError(f"text-to-audio (LM-MSN) got unexpected argument(s) {sorted(kwargs)}")
        preprocess = {}
        if prompt_template is not None:
            if "{caption}" not in prompt_template:
                raise ValueError(f"prompt_template must hold '{{caption}}', got {prompt_template!r}")
            preprocess["prompt_template"] = prompt_template
        forward = {key: value for key, value in {
            "max_audio_tokens": max_audio_tokens, "min_audio_tokens": min_audio_tokens, "num_steps": num_steps,
            "seed": seed, "generate_kwargs": generate_kwargs}.items() if value is not None}
        return preprocess, forward, {}

    def preprocess(self, text: Any, prompt_template: str | None = None, **kwargs: Any) -> dict[str, Any]:
        if not is_lm_msn(self.processor):
            return TextToAudioPipeline.preprocess(self, text, **kwargs)
        template = prompt_template or default_prompt(self.processor, "text_to_audio")
        return {"prompts": [self.processor.chat_segments([text_segment(template.format(caption=caption))])
                            for caption in text]}

    def _forward(self, model_inputs: dict[str, Any], max_audio_tokens: int | None = None,
                 min_audio_tokens: int | None = None, num_steps: int = 10, seed: int | None = None,
                 generate_kwargs: dict | None = None, **kwargs: Any) -> dict[str, Any]:
        if not is_lm_msn(self.processor):
            return TextToAudioPipeline._forward(self, model_inputs, generate_kwargs=generate_kwargs, **kwargs)
        window = self.sound_tokenizer.config.window_frames
        max_audio_tokens = window if max_audio_tokens is None else max_audio_tokens
        min_audio_tokens = min(max_audio_tokens, 20) if min_audio_tokens is None else min_audio_tokens
        if not 1 <= min_audio_tokens <= max_audio_tokens:
            raise ValueError(f"need 1 <= min_audio_tokens <= max_audio_tokens, got {min_audio_tokens} and "
                             f"{max_audio_tokens}")
        if seed is not None:
            torch.manual_seed(seed)
        decode_kwargs = {"num_steps": num_steps}
        if seed is not None:
            decode_kwargs["generator"] = torch.Generator().manual_seed(seed)
        sampling = {"do_sample": True, "top_k": 50, **(generate_kwargs or {})}
        generated = generate_audio(self.model, self.processor, model_inputs["prompts"], max_audio_tokens,
                                   min_audio_tokens, sound_tokenizer=self.sound_tokenizer,
                                   decode_kwargs=decode_kwargs, **sampling)
        return {"audio": [item.audio_values.float().cpu() for item in generated]}

    def postprocess(self, model_outputs: dict[str, Any]) -> Any:
        if not is_lm_msn(self.processor):
            return TextToAudioPipeline.postprocess(self, model_outputs)
        return [{"audio": audio.numpy(), "sampling_rate": self.sampling_rate} for audio in model_outputs["audio"]]
