"""`audio-tokenization`: audio -> the MSN tokenizer's codes, and codes -> audio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .base import BatchedAudioPipeline, codes_per_clip


class AudioTokenizationPipeline(BatchedAudioPipeline):
    """Sound tokens from audio, and audio from sound tokens, with an MSN tokenizer (`MSNTokenizerModel`).

    Audio in (a path, an array with `sampling_rate`, a `{"array", "sampling_rate"}` dict or dataset row, or a list
    of those) gives `{"audio_codes": int64 array (num_codebooks, frames), "frame_rate": Hz}` per clip; a dict with
    `"audio_codes"` (what encoding returned, or any `(num_codebooks, frames)` / `(frames,)` integers) gives
    `{"audio": float32 array (channels, samples), "sampling_rate": Hz}`, as transformers' `text-to-audio` does.
    Codes are only ever read from such a dict: an integer array alone is audio (int16 PCM), never codes.
    Clips are never cropped: longer than the tokenizer's window (`config.window_frames`, its training clip) they
    are encoded window by window, and long code sequences are decoded the same way.

    Example:

    ```python
    >>> from transformers import pipeline
    >>> import soundlm  # registers the task
    >>> tokenize = pipeline("audio-tokenization", model="runs/demo/tokenizer_fm/final")  # doctest: +SKIP
    >>> tokens = tokenize("clip.wav")  # doctest: +SKIP
    >>> audio = tokenize({"audio_codes": tokens["audio_codes"]}, num_steps=10)  # doctest: +SKIP
    ```
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = False

    def _sanitize_parameters(self, sampling_rate: int | None = None, num_steps: int | None = None,
                             scheduler: str | None = None, temperature: float | None = None, seed: int | None = None,
                             **kwargs: Any):
        if kwargs:
            raise TypeError(f"audio-tokenization got unexpected argument(s) {sorted(kwargs)}")
        preprocess = {} if sampling_rate is None else {"sampling_rate": sampling_rate}
        forward = {key: value for key, value in
                   {"num_steps": num_steps, "scheduler": scheduler, "temperature": temperature, "seed": seed}.items()
                   if value is not None}
        return preprocess, forward, {}

    def preprocess(self, items: list[Any], sampling_rate: int | None = None) -> dict[str, Any]:
        kinds = {isinstance(item, Mapping) and "audio_codes" in item for item in items}
        if kinds == {True, False}:
            raise ValueError("a batch mixes audio and {'audio_codes': ...} dicts: encode and decode in separate calls")
        if kinds == {True}:
            return {"audio_codes": self._codes(items)}
        # whole clips, never cropped: the model encodes a long one window by window (`config.window_frames`)
        inputs = self.feature_extractor(items, sampling_rate=sampling_rate, return_tensors="pt", truncation=False)
        return {"input_values": inputs["input_values"], "padding_mask": inputs.get("padding_mask")}

    def _codes(self, items: list[Mapping]) -> torch.Tensor:
        rows = []
        for index, item in enumerate(items):
            codes = torch.as_tensor(np.asarray(item["audio_codes"]))
            if codes.dtype.is_floating_point or codes.dtype == torch.bool:
                raise TypeError(f"item {index}: audio_codes must be integers, got {codes.dtype}")
            codes = codes.reshape(1, -1) if codes.ndim == 1 else codes
            if codes.ndim != 2 or codes.shape[0] != 1 or codes.shape[1] == 0:
                raise ValueError(f"item {index}: audio_codes must have shape (1, frames) or (frames,) with frames "
                                 f">= 1, got {tuple(np.shape(item['audio_codes']))}")
            rows.append(codes.long())
        if len({row.shape[1] for row in rows}) != 1:
            raise ValueError("codes of different lengths cannot share a batch: decode them with batch_size=1")
        return torch.stack(rows)

    def _forward(self, model_inputs: dict[str, Any], num_steps: int = 10, scheduler: str = "euler",
                 temperature: float = 1.0, seed: int | None = None) -> dict[str, Any]:
        if "audio_codes" in model_inputs:
            generator = None if seed is None else torch.Generator(device="cpu").manual_seed(seed)
            audio = self.model.decode(model_inputs["audio_codes"], num_steps=num_steps, scheduler=scheduler,
                                      temperature=temperature, generator=generator).audio_values
            return {"audio": audio.float()}
        return {"audio_codes": codes_per_clip(self.model, model_inputs["input_values"], model_inputs["padding_mask"])}

    def postprocess(self, model_outputs: dict[str, Any]) -> list[dict[str, Any]]:
        if "audio" in model_outputs:
            return [{"audio": clip.numpy(), "sampling_rate": self.model.sample_rate} for clip in model_outputs["audio"]]
        return [{"audio_codes": codes.numpy(), "frame_rate": self.model.frame_rate}
                for codes in model_outputs["audio_codes"]]
