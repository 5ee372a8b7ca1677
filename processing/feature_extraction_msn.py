# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""Feature extractor of the LM-MSN sound tokenizer: waveforms in, fixed-rate fixed-layout clips out.

Self-contained for Hub export: this file imports only third-party packages and `.audio_io`, which is
copied beside it into exported folders.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import numpy as np
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import PaddingStrategy, TensorType

from .audio_io import AudioInputMixin, check_sampling_rate


def _positive_seconds(value, name: str) -> float:
    """``value`` as float seconds; ValueError naming ``name`` unless it is a finite positive real."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


class MSNFeatureExtractor(AudioInputMixin, SequenceFeatureExtractor):
    r"""
    Constructs the feature extractor of the LM-MSN sound tokenizer.

    It turns any audio the user has (arrays, tensors, file paths, `datasets` audio dicts, at any sampling
    rate, mono / stereo / multichannel) into a batch of clips at `sampling_rate` Hz with `audio_channels`
    channels, cropped or padded to `clip_seconds`, ready for the tokenizer's front end (the Oobleck VAE
    wants 44.1 kHz stereo and has a hop of 2048 samples).

    Args:
        sampling_rate (`int`, *optional*, defaults to 44100):
            The sampling rate in Hz of the returned waveforms; inputs at other rates are resampled with soxr.
        audio_channels (`int`, *optional*, defaults to 2):
            Number of channels of the returned waveforms (also stored as `feature_size`). Mono input is
            duplicated, stereo input averaged when 1 is asked.
        clip_seconds (`float` or `None`, *optional*, defaults to 10.0):
            Length in seconds of every returned clip: longer audio is cropped (see `crop`), shorter audio is
            padded. `None` means no fixed length: the batch is padded to its longest item, rounded up to a
            whole number of `hop_length` frames.
        padding_value (`float`, *optional*, defaults to 0.0):
            The sample value used for padding.
        downmix (`bool`, *optional*, defaults to `False`):
            Allow audio with more than 2 channels, averaged to mono (then duplicated to `audio_channels`).
            When `False` such audio raises a `ValueError`.
        hop_length (`int`, *optional*, defaults to 2048):
            Samples per latent frame of the tokenizer's front end: with `clip_seconds=None` a batch is padded to a
            whole number of frames. How many tokens a clip gives is the tokenizer's rule
            (`MSNTokenizerModel.num_frames`), not the extractor's.
        return_padding_mask (`bool`, *optional*, defaults to `True`):
            Whether to return `padding_mask`.

    Example:

    ```python
    >>> import numpy as np
    >>> from soundlm.processing import MSNFeatureExtractor

    >>> extractor = MSNFeatureExtractor(clip_seconds=1.0)
    >>> mono_16k = np.sin(2 * np.pi * 440 * np.arange(8000) / 16000).astype(np.float32)  # 0.5 s
    >>> stereo_44k = np.zeros((2, 66150), dtype=np.float32)  # 1.5 s
    >>> batch = extractor([mono_16k, {"array": stereo_44k, "sampling_rate": 44100}], sampling_rate=16000)
    >>> batch["input_values"].shape, batch["padding_mask"].shape, batch["padding_mask"].sum(-1).tolist()
    (torch.Size([2, 2, 44100]), torch.Size([2, 44100]), [22050, 44100])

    ```
    """

    model_input_names = ["input_values", "padding_mask"]

    def __init__(
        self,
        sampling_rate: int = 44100,
        audio_channels: int = 2,
        clip_seconds: float | None = 10.0,
        padding_value: float = 0.0,
        downmix: bool = False,
        hop_length: int = 2048,
        return_padding_mask: bool = True,
        **kwargs,
    ):
        feature_size = kwargs.pop("feature_size", None)
        sampling_rate = check_sampling_rate(sampling_rate, "sampling_rate")
        if (
            isinstance(audio_channels, bool)
            or not isinstance(audio_channels, numbers.Integral)
            or audio_channels < 1
        ):
            raise ValueError(f"audio_channels must be a positive integer, got {audio_channels!r}")
        if feature_size is not None and feature_size != audio_channels:
            raise ValueError(
                f"feature_size ({feature_size}) must equal audio_channels ({audio_channels}): they are "
                "the same setting"
            )
        if clip_seconds is not None:
            clip_seconds = _positive_seconds(clip_seconds, "clip_seconds")
        if isinstance(hop_length, bool) or not isinstance(hop_length, numbers.Integral) or hop_length < 1:
            raise ValueError(f"hop_length must be a positive integer number of samples, got {hop_length!r}")
        if not isinstance(padding_value, numbers.Real) or not math.isfinite(padding_value):
            raise ValueError(f"padding_value must be a finite number, got {padding_value!r}")
        super().__init__(
            feature_size=int(audio_channels),
            sampling_rate=sampling_rate,
            padding_value=float(padding_value),
            **kwargs,
        )
        if self.padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}")
        self.audio_channels = int(audio_channels)
        self.clip_seconds = clip_seconds
        self.downmix = bool(downmix)
        self.hop_length = int(hop_length)
        self.return_padding_mask = bool(return_padding_mask)

    @property
    def clip_samples(self) -> int | None:
        """Samples per clip: `round(clip_seconds * sampling_rate)`, `None` when `clip_seconds` is `None`."""
        return None if self.clip_seconds is None else int(round(self.clip_seconds * self.sampling_rate))

    @classmethod
    def from_tokenizer_config(cls, config) -> MSNFeatureExtractor:
        """The extractor that feeds a tokenizer of `config` (an `MSNTokenizerConfig`): its sampling rate,
        channels, clip length and hop."""
        return cls(
            sampling_rate=config.sampling_rate,
            audio_channels=config.audio_channels,
            clip_seconds=config.clip_seconds,
            hop_length=config.hop_length,
        )

    def __call__(
        self,
        audio: Any,
        sampling_rate: int | None = None,
        *,
        return_tensors: str | TensorType | None = "pt",
        padding: bool | str | PaddingStrategy = True,
        truncation: bool = True,
        max_length_seconds: float | None = None,
        crop: Literal["start", "random"] = "start",
        seed: int | None = None,
        return_padding_mask: bool | None = None,
    ) -> BatchFeature:
        """
        Loads, validates, resamples, channel-maps, crops and pads one clip or a batch of clips.

        Args:
            audio:
                One clip or a list of clips. A clip is any of: a numpy array or torch tensor of shape
                `(samples,)` or `(channels, samples)` (see `validate_audio` for the layout rule and accepted
                dtypes); a file path (`str` or `os.PathLike`); a `datasets` audio dict
                `{"array": ..., "sampling_rate": ...}`, `{"path": ...}` or `{"bytes": ...}`; or a
                `datasets`/torchcodec `AudioDecoder`. A 3-D array or tensor `(batch, channels, samples)` is a
                batch. Mixed lists are fine.
            sampling_rate (`int`, *optional*):
                Sampling rate in Hz of the arrays and tensors given without their own rate (files and dicts
                carry theirs). When `None` and such an item is given, a warning is logged once and
                `self.sampling_rate` is assumed.
            return_tensors (`str` or `TensorType`, *optional*, defaults to `"pt"`):
                `"pt"` for torch tensors, `"np"` for numpy arrays, `None` for numpy arrays (lists when not
                padded).
            padding (`bool`, `str` or `PaddingStrategy`, *optional*, defaults to `True`):
                `True` / `"longest"`: pad to the clip length when one is set (`max_length_seconds` or
                `clip_seconds`), else to the longest item rounded up to a whole number of `hop_length` frames.
                `"max_length"`: same, but a clip length must be set. `False` / `"do_not_pad"`: no padding
                (all items must then have the same length to be stacked into tensors).
            truncation (`bool`, *optional*, defaults to `True`):
                Crop items longer than the clip length. With `False`, nothing is cropped and the batch is
                padded to the longer of the clip length and its longest item.
            max_length_seconds (`float`, *optional*):
                Clip length in seconds for this call, overriding `clip_seconds`.
            crop (`str`, *optional*, defaults to `"start"`):
                Which window of a long item to keep: `"start"` (its beginning) or `"random"` (a uniformly
                drawn window, reproducible with `seed`).
            seed (`int`, *optional*):
                Seed of the random crops (one generator per call, items drawn in order).
            return_padding_mask (`bool`, *optional*):
                Overrides `self.return_padding_mask` for this call.

        Returns:
            [`BatchFeature`] with
            - **input_values** (`torch.FloatTensor` of shape `(batch_size, audio_channels, num_samples)`):
              waveforms at `sampling_rate` Hz.
            - **padding_mask** (`torch.LongTensor` of shape `(batch_size, num_samples)`): 1 on real samples,
              0 on padding (`padding_mask.sum(-1)` is each item's length after cropping).

            Both are the tokenizer's inputs: `model.encode(**batch)` and `model(**batch)` work.

        Raises:
            AudioInputError (a `ValueError` with a `category`): for bad audio, naming its index in the batch (and
            its path for files) and the problem: empty, all-NaN or non-finite audio, too many channels without
            `downmix=True`, an unreadable file. `ValueError` / `TypeError`: a bad sampling rate, a wrong dtype,
            an unsupported input type.
        """
        if sampling_rate is not None:
            sampling_rate = check_sampling_rate(sampling_rate, "sampling_rate")
        if crop not in ("start", "random"):
            raise ValueError(f"crop must be 'start' or 'random', got {crop!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")
        strategy = self._padding_strategy(padding)
        target = self._fixed_length(max_length_seconds)
        if strategy == "max_length" and target is None:
            raise ValueError(
                "padding='max_length' needs a clip length: set clip_seconds on the extractor or pass "
                "max_length_seconds"
            )
        if return_padding_mask is None:
            return_padding_mask = self.return_padding_mask

        clips = self._prepare_clips(audio, sampling_rate, self.audio_channels)

        # Crop.
        rng = np.random.default_rng(seed)
        if truncation and target is not None:
            for index, clip in enumerate(clips):
                excess = clip.shape[-1] - target
                if excess > 0:
                    offset = int(rng.integers(0, excess + 1)) if crop == "random" else 0
                    clips[index] = clip[:, offset : offset + target]
        lengths = np.array([clip.shape[-1] for clip in clips], dtype=np.int64)

        # Pad.
        if strategy == "do_not_pad":
            data: dict[str, Any] = {"input_values": clips}
            if return_padding_mask:
                data["padding_mask"] = [np.ones(n, dtype=np.int64) for n in lengths]
            if return_tensors is not None:
                if len(set(lengths.tolist())) > 1:
                    raise ValueError(
                        f"padding=False gave items of different lengths {lengths.tolist()} samples, which "
                        f"cannot be stacked into return_tensors={return_tensors!r}: use padding=True or "
                        "return_tensors=None"
                    )
                data = {
                    key: np.stack(value) if isinstance(value, list) else value for key, value in data.items()
                }
            return BatchFeature(data, tensor_type=return_tensors)

        longest = int(lengths.max())
        if target is None:
            total = -(-longest // self.hop_length) * self.hop_length  # round up to whole frames
        else:
            total = max(target, longest)
        input_values = np.full((len(clips), self.audio_channels, total), self.padding_value, dtype=np.float32)
        padding_mask = np.zeros((len(clips), total), dtype=np.int64)
        for index, clip in enumerate(clips):
            n = clip.shape[-1]
            window = slice(0, n) if self.padding_side == "right" else slice(total - n, total)
            input_values[index, :, window] = clip
            padding_mask[index, window] = 1
        data = {"input_values": input_values}
        if return_padding_mask:
            data["padding_mask"] = padding_mask
        return BatchFeature(data, tensor_type=return_tensors)

    # ----------------------------------------------------------------------------------------------------
    # helpers

    def _fixed_length(self, max_length_seconds: float | None) -> int | None:
        if max_length_seconds is None:
            return self.clip_samples
        max_length_seconds = _positive_seconds(max_length_seconds, "max_length_seconds")
        samples = int(round(max_length_seconds * self.sampling_rate))
        if samples < 1:
            raise ValueError(
                f"max_length_seconds={max_length_seconds} is shorter than one sample at "
                f"{self.sampling_rate} Hz"
            )
        return samples

    @staticmethod
    def _padding_strategy(padding: bool | str | PaddingStrategy) -> str:
        if isinstance(padding, PaddingStrategy):
            padding = padding.value
        if padding is True or padding == "longest":
            return "longest"
        if padding is False or padding == "do_not_pad":
            return "do_not_pad"
        if padding == "max_length":
            return "max_length"
        raise ValueError(
            f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}"
        )


__all__ = ["MSNFeatureExtractor"]
