"""`audio-text-to-text` for MINT stage 2 alone: the pipeline an exported MINT stage-2 folder carries as remote code
(its import closure holds no LM-MSN code). `AudioTextToTextPipeline` adds LM-MSN on top and is the one registered."""

from __future__ import annotations

from typing import Any

from .base import BatchedAudioPipeline, is_instance_by_name

CAPTION_PROMPT = "Generate audio caption:"  # MINT's Table 1 captioning prompt (WavCaps, FreeSound, Clotho)


class MintAudioTextToTextPipeline(BatchedAudioPipeline):
    """Captions and answers about audio with MINT stage 2 (`MintForConditionalGeneration` and its `MintProcessor`):
    each clip with `prompt` (default: the paper's captioning prompt, `"Generate audio caption:"`, given to the
    Q-Former and the LLM) gives `[{"generated_text": str}]`, the shape of transformers' `image-text-to-text`
    results. `generate_kwargs` (or `max_new_tokens`) go to the LLM's `generate` (greedy by default)."""

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._check_model()

    def _check_model(self) -> None:
        if not is_instance_by_name(self.model, "MintForConditionalGeneration"):
            raise TypeError(f"this audio-text-to-text pipeline serves MINT stage-2 models "
                            f"(MintForConditionalGeneration), got {type(self.model).__name__}")

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

    def preprocess(self, audio: list[Any], prompt: str | None = None,
                   sampling_rate: int | None = None) -> dict[str, Any]:
        inputs = self.processor(audio=audio, text=[prompt or CAPTION_PROMPT] * len(audio),
                                sampling_rate=sampling_rate)
        return self._cast_floats(dict(inputs))

    def _forward(self, model_inputs: dict[str, Any], generate_kwargs: dict | None = None) -> dict[str, Any]:
        kwargs = {"max_new_tokens": 32, "do_sample": False, **(generate_kwargs or {})}
        return {"texts": self.processor.batch_decode(self.model.generate(**model_inputs, **kwargs))}

    def postprocess(self, model_outputs: dict[str, Any]) -> list[list[dict[str, str]]]:
        return [[{"generated_text": text}] for text in model_outputs["texts"]]
