"""`audio-text-to-text`: audio and an optional instruction in, text out (captioning, instruction following)."""

from __future__ import annotations

from typing import Any

from ..modeling.lm_msn.generation_lm_msn import generate_text, sound_tokenizer_window_frames
from ..modeling.mint import MintForConditionalGeneration
from ..processing.feature_extraction_msn import MSNFeatureExtractor
from ..processing.tasks import audio_segment, load_lm_msn_prompts, text_segment
from .base import BatchedAudioPipeline, codes_per_clip
from .lm_msn_support import is_lm_msn, load_sound_tokenizer

CAPTION_PROMPT = "Generate audio caption:"  # MINT's Table 1 captioning prompt (WavCaps, FreeSound, Clotho)


class AudioTextToTextPipeline(BatchedAudioPipeline):
    """Captions and answers about audio: each clip with `prompt` gives `[{"generated_text": str}]`, the shape of
    transformers' `image-text-to-text` results. `generate_kwargs` (or `max_new_tokens`) go to the LLM's `generate`
    (greedy by default).

    * MINT stage 2 (`MintForConditionalGeneration` with its `MintProcessor`): the prompt goes to the Q-Former and the
      LLM (default: the paper's captioning prompt, `"Generate audio caption:"`).
    * LM-MSN (a causal LM with its `AudioTokenProcessor`, and `sound_tokenizer=` a folder or `MSNTokenizerModel`):
      the clip becomes sound tokens (at most one decoder window, the tokenizer's `clip_seconds`, as in training),
      then the audio and the prompt (default: the first captioning prompt of `lm_msn_prompts.json`, `"Describe this
      sound."`) go into the LLM's chat template; the answer stays text.

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

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args: Any, sound_tokenizer: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sound_tokenizer = self.sound_extractor = None
        if is_lm_msn(self.processor):
            self.sound_tokenizer = load_sound_tokenizer(sound_tokenizer, self.device)
            self.sound_extractor = MSNFeatureExtractor.from_tokenizer_config(self.sound_tokenizer.config)
        elif sound_tokenizer is not None:
            raise ValueError("sound_tokenizer is for LM-MSN models (with an AudioTokenProcessor)")
        elif not isinstance(self.model, MintForConditionalGeneration):
            raise TypeError(f"audio-text-to-text serves MINT stage-2 models (MintForConditionalGeneration) and LM-MSN "
                            f"models (with an AudioTokenProcessor), got {type(self.model).__name__} with "
                            f"{type(self.processor).__name__}")

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
        if self.sound_tokenizer is not None:
            prompt = prompt or load_lm_msn_prompts()["captioning"][0]
            inputs = self.sound_extractor(audio, sampling_rate=sampling_rate, return_tensors="pt")
            return {"input_values": inputs["input_values"], "padding_mask": inputs.get("padding_mask"),
                    "prompt": prompt}
        inputs = self.processor(audio=audio, text=[prompt or CAPTION_PROMPT] * len(audio),
                                sampling_rate=sampling_rate)
        return self._cast_floats(dict(inputs))

    def _forward(self, model_inputs: dict[str, Any], generate_kwargs: dict | None = None) -> dict[str, Any]:
        kwargs = {"max_new_tokens": 32, "do_sample": False, **(generate_kwargs or {})}
        if self.sound_tokenizer is None:
            return {"tokens": self.model.generate(**model_inputs, **kwargs)}
        window = sound_tokenizer_window_frames(self.sound_tokenizer.config)
        clips = codes_per_clip(self.sound_tokenizer, model_inputs["input_values"], model_inputs["padding_mask"])
        prompts = [self.processor.chat_segments([audio_segment(codes[0, :window].tolist()),
                                                 text_segment("\n" + model_inputs["prompt"])]) for codes in clips]
        max_new_tokens = kwargs.pop("max_new_tokens")
        return {"texts": generate_text(self.model, self.processor, prompts, max_new_tokens=max_new_tokens, **kwargs)}

    def postprocess(self, model_outputs: dict[str, Any]) -> list[list[dict[str, str]]]:
        texts = model_outputs.get("texts")
        if texts is None:
            texts = self.processor.batch_decode(model_outputs["tokens"])
        return [[{"generated_text": text}] for text in texts]
