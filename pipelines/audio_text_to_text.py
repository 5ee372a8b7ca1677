"""`audio-text-to-text`: audio and an optional instruction in, text out (captioning, instruction following)."""

from __future__ import annotations

from typing import Any

from ..modeling.mint import MintForConditionalGeneration
from .base import BatchedAudioPipeline

CAPTION_PROMPT = "Generate audio caption:"  # MINT's Table 1 captioning prompt (WavCaps, FreeSound, Clotho)


class AudioTextToTextPipeline(BatchedAudioPipeline):
    """Captions and answers about audio with a MINT stage-2 model (`MintForConditionalGeneration`): each clip with
    `prompt` (default: the paper's captioning prompt, `"Generate audio caption:"`) gives
    `[{"generated_text": str}]`, the shape of transformers' `image-text-to-text` results. `generate_kwargs` (or
    `max_new_tokens`) go to the LLM's `generate` (greedy by default).

    Example:

    ```python
    >>> from transformers import pipeline
    >>> import soundlm  # registers the task
    >>> caption = pipeline("audio-text-to-text", model="runs/demo/mint/stage2/final")  # doctest: +SKIP
    >>> caption("street.wav")  # doctest: +SKIP
    [{'generated_text': 'a car drives past on a wet road'}]
    >>> caption(["a.wav", "b.wav"], prompt="This is a sound of", max_new_tokens=8)  # doctest: +SKIP
    ```
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def _sanitize_parameters(self, prompt: str | None = None, sampling_rate: int | None = None,
                             max_new_tokens: int | None = None, generate_kwargs: dict | None = None,
                             **kwargs: Any):
        if kwargs:
            raise TypeError(f"audio-text-to-text got unexpected argument(s) {sorted(kwargs)}")
        preprocess: dict[str, Any] = {"sampling_rate": sampling_rate}
        if prompt is not None:
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(f"prompt must be a non-empty string, got {prompt!r}")
            preprocess["prompt"] = prompt
        forward = dict(generate_kwargs or {})
        if max_new_tokens is not None:
            forward["max_new_tokens"] = max_new_tokens
        return preprocess, {"generate_kwargs": forward}, {}

    def preprocess(self, audio: list[Any], prompt: str = CAPTION_PROMPT,
                   sampling_rate: int | None = None) -> dict[str, Any]:
        if not isinstance(self.model, MintForConditionalGeneration):
            raise TypeError(f"audio-text-to-text serves MINT stage-2 models (MintForConditionalGeneration), got "
                            f"{type(self.model).__name__}")
        inputs = self.processor(audio=audio, text=[prompt] * len(audio), sampling_rate=sampling_rate)
        return self._cast_floats(dict(inputs))

    def _forward(self, model_inputs: dict[str, Any], generate_kwargs: dict | None = None) -> dict[str, Any]:
        kwargs = {"max_new_tokens": 32, "do_sample": False, **(generate_kwargs or {})}
        return {"tokens": self.model.generate(**model_inputs, **kwargs)}

    def postprocess(self, model_outputs: dict[str, Any]) -> list[list[dict[str, str]]]:
        return [[{"generated_text": text}] for text in self.processor.batch_decode(model_outputs["tokens"])]
