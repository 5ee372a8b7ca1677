# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""Feature extractor of YAMNet: waveforms in, log-mel patches of 0.96 s out.

The pipeline is the one YAMNet was trained with (TensorFlow models, `research/audioset/yamnet/features.py`):

    waveform at 16 kHz, mono
      -> zero-padded to 15600 + k * 7680 samples (at least one whole patch, then whole patch hops)
      -> frames of 400 samples (25 ms), hop 160 (10 ms), periodic Hann window, |rFFT| of length 512
      -> 64 triangular mel bands of the HTK mel scale from 125 Hz to 7500 Hz (`tf.signal.linear_to_mel_weight_matrix`)
      -> log(mel + 0.001)
      -> patches of 96 frames (0.96 s), hop 48 frames (0.48 s): (num_patches, 96, 64)

Self-contained for Hub export: this file imports only third-party packages and `.audio_io`, which is copied beside
it into exported folders.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import TensorType

from .audio_io import AudioInputMixin, check_sampling_rate

# The HTK mel scale as TensorFlow writes it: mel(f) = 1127 ln(1 + f / 700).
_MEL_BREAK_FREQUENCY_HERTZ = 700.0
_MEL_HIGH_FREQUENCY_Q = 1127.0


def hertz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """Frequencies in Hz -> HTK mels, `1127 * ln(1 + f / 700)`."""
    return _MEL_HIGH_FREQUENCY_Q * np.log1p(np.asarray(frequencies, dtype=np.float64) / _MEL_BREAK_FREQUENCY_HERTZ)


def mel_weight_matrix(
    num_mel_bins: int, num_spectrogram_bins: int, sampling_rate: int, lower_edge_hertz: float, upper_edge_hertz: float
) -> np.ndarray:
    """The matrix of `tf.signal.linear_to_mel_weight_matrix`: (num_spectrogram_bins, num_mel_bins), float32.

    Spectrogram bin `k` sits at `k * (sampling_rate / 2) / (num_spectrogram_bins - 1)` Hz; band `m` is a triangle
    on the mel scale rising from edge `m` to edge `m + 1` and falling to edge `m + 2`, with `num_mel_bins + 2` edges
    spaced evenly in mels from `lower_edge_hertz` to `upper_edge_hertz`. Peaks are 1 (no area normalisation), and
    the DC bin has weight 0 in every band (HTK's convention, as TensorFlow's).
    """
    nyquist = sampling_rate / 2.0
    if not 0.0 <= lower_edge_hertz < upper_edge_hertz <= nyquist:
        raise ValueError(
            f"mel band edges must satisfy 0 <= lower ({lower_edge_hertz}) < upper ({upper_edge_hertz}) <= Nyquist "
            f"({nyquist})"
        )
    bin_mels = hertz_to_mel(np.linspace(0.0, nyquist, num_spectrogram_bins))[:, None]  # (bins, 1)
    edges = np.linspace(hertz_to_mel(lower_edge_hertz), hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]  # (mels,) each
    rising = (bin_mels - lower) / (center - lower)
    falling = (upper - bin_mels) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0] = 0.0  # the DC bin
    return weights.astype(np.float32)


def _positive_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


class YamnetFeatureExtractor(AudioInputMixin, SequenceFeatureExtractor):
    r"""
    Constructs the feature extractor of YAMNet.

    It turns any audio (arrays, tensors, file paths, `datasets` audio dicts, at any sampling rate, mono or stereo)
    into 16 kHz mono, then into log-mel patches of 0.96 s every 0.48 s, exactly as YAMNet's TensorFlow reference
    computes them (see the module docstring). Each clip gives `num_patches(samples)` patches: one for anything up
    to 0.975 s, one more per started 0.48 s after that. A batch is padded to its longest clip at the patch level
    and `patch_mask` tells which patches are real.

    Args:
        feature_size (`int`, *optional*, defaults to 64):
            Number of mel bands (YAMNet's `mel_bands`).
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate in Hz of the waveform the features are computed from; inputs at other rates are
            resampled with soxr.
        stft_window_seconds (`float`, *optional*, defaults to 0.025):
            STFT window (400 samples at 16 kHz); the FFT length is the next power of two (512).
        stft_hop_seconds (`float`, *optional*, defaults to 0.010):
            STFT hop (160 samples at 16 kHz): 100 frames per second.
        mel_min_hz (`float`, *optional*, defaults to 125.0):
            Lower edge of the lowest mel band.
        mel_max_hz (`float`, *optional*, defaults to 7500.0):
            Upper edge of the highest mel band.
        log_offset (`float`, *optional*, defaults to 0.001):
            Added to the mel magnitudes before the natural log.
        patch_window_seconds (`float`, *optional*, defaults to 0.96):
            Length of a patch (96 frames), the network's input.
        patch_hop_seconds (`float`, *optional*, defaults to 0.48):
            Hop between patches (48 frames). YAMNet was trained with 0.48 s, but any hop works.
        padding_value (`float`, *optional*, defaults to 0.0):
            The value of padded patches (they are masked out by `patch_mask`). The waveform itself is always
            padded with silence, as YAMNet's reference does.
        downmix (`bool`, *optional*, defaults to `False`):
            Allow audio with more than 2 channels (averaged to mono). When `False` such audio raises.
        return_patch_mask (`bool`, *optional*, defaults to `True`):
            Whether to return `patch_mask`.

    Example:

    ```python
    >>> import numpy as np
    >>> from soundlm.processing.feature_extraction_yamnet import YamnetFeatureExtractor

    >>> extractor = YamnetFeatureExtractor()
    >>> one_second = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000).astype(np.float32)
    >>> stereo_two_seconds = np.zeros((2, 88200), dtype=np.float32)
    >>> batch = extractor([one_second, {"array": stereo_two_seconds, "sampling_rate": 44100}], sampling_rate=16000)
    >>> batch["input_features"].shape, batch["patch_mask"].sum(-1).tolist()
    (torch.Size([2, 4, 96, 64]), [2, 4])

    ```
    """

    model_input_names = ["input_features", "patch_mask"]

    def __init__(
        self,
        feature_size: int = 64,
        sampling_rate: int = 16000,
        stft_window_seconds: float = 0.025,
        stft_hop_seconds: float = 0.010,
        mel_min_hz: float = 125.0,
        mel_max_hz: float = 7500.0,
        log_offset: float = 0.001,
        patch_window_seconds: float = 0.96,
        patch_hop_seconds: float = 0.48,
        padding_value: float = 0.0,
        downmix: bool = False,
        return_patch_mask: bool = True,
        **kwargs,
    ):
        sampling_rate = check_sampling_rate(sampling_rate, "sampling_rate")
        if isinstance(feature_size, bool) or not isinstance(feature_size, numbers.Integral) or feature_size < 1:
            raise ValueError(f"feature_size (the number of mel bands) must be a positive integer, got {feature_size!r}")
        if not isinstance(padding_value, numbers.Real) or not math.isfinite(padding_value):
            raise ValueError(f"padding_value must be a finite number, got {padding_value!r}")
        super().__init__(
            feature_size=int(feature_size), sampling_rate=sampling_rate, padding_value=float(padding_value), **kwargs
        )
        self.stft_window_seconds = _positive_number(stft_window_seconds, "stft_window_seconds")
        self.stft_hop_seconds = _positive_number(stft_hop_seconds, "stft_hop_seconds")
        self.mel_min_hz = float(mel_min_hz)
        self.mel_max_hz = _positive_number(mel_max_hz, "mel_max_hz")
        self.log_offset = _positive_number(log_offset, "log_offset")
        self.patch_window_seconds = _positive_number(patch_window_seconds, "patch_window_seconds")
        self.patch_hop_seconds = _positive_number(patch_hop_seconds, "patch_hop_seconds")
        self.downmix = bool(downmix)
        self.return_patch_mask = bool(return_patch_mask)
        if self.window_length < 2 or self.hop_length < 1 or self.patch_frames < 1 or self.patch_hop_frames < 1:
            raise ValueError(
                f"the STFT window ({self.window_length} samples), STFT hop ({self.hop_length} samples), patch "
                f"({self.patch_frames} frames) and patch hop ({self.patch_hop_frames} frames) must all be positive"
            )
        _ = self.mel_matrix  # checks the band edges against the Nyquist frequency

    @classmethod
    def from_yamnet_config(cls, config: Any, **kwargs) -> YamnetFeatureExtractor:
        """The extractor that feeds a model of `config` (a `YamnetConfig`: its feature fields)."""
        return cls(
            feature_size=config.num_mel_bins,
            sampling_rate=config.sampling_rate,
            stft_window_seconds=config.stft_window_seconds,
            stft_hop_seconds=config.stft_hop_seconds,
            mel_min_hz=config.mel_min_hz,
            mel_max_hz=config.mel_max_hz,
            log_offset=config.log_offset,
            patch_window_seconds=config.patch_window_seconds,
            patch_hop_seconds=config.patch_hop_seconds,
            **kwargs,
        )

    # ----------------------------------------------------------------------------------------------------
    # the numbers the pipeline is built from (YAMNet's: 400, 160, 512, 96, 48)

    @property
    def window_length(self) -> int:
        """STFT window in samples: `round(sampling_rate * stft_window_seconds)`."""
        return int(round(self.sampling_rate * self.stft_window_seconds))

    @property
    def hop_length(self) -> int:
        """STFT hop in samples: `round(sampling_rate * stft_hop_seconds)`."""
        return int(round(self.sampling_rate * self.stft_hop_seconds))

    @property
    def fft_length(self) -> int:
        """The smallest power of two >= `window_length`."""
        return 2 ** math.ceil(math.log2(self.window_length))

    @property
    def patch_frames(self) -> int:
        """STFT frames per patch: `round(patch_window_seconds / stft_hop_seconds)`."""
        return int(round(self.patch_window_seconds / self.stft_hop_seconds))

    @property
    def patch_hop_frames(self) -> int:
        """STFT frames between the starts of two patches: `round(patch_hop_seconds / stft_hop_seconds)`."""
        return int(round(self.patch_hop_seconds / self.stft_hop_seconds))

    @property
    def mel_matrix(self) -> np.ndarray:
        """(fft_length // 2 + 1, feature_size) float32: |rFFT| -> mel bands (computed on each call, not saved)."""
        return mel_weight_matrix(
            self.feature_size, self.fft_length // 2 + 1, self.sampling_rate, self.mel_min_hz, self.mel_max_hz
        )

    def num_patches(self, num_samples: int) -> int:
        """Patches a clip of `num_samples` samples (at `sampling_rate`) gives: 1 up to one patch of audio (0.975 s
        at YAMNet's settings: 96 frames of 10 ms plus the last window's extra 15 ms), then one per started patch
        hop (0.48 s). This is the rule of YAMNet's `pad_waveform`."""
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        first_patch = (self.patch_frames - 1) * self.hop_length + self.window_length
        patch_hop = self.patch_hop_frames * self.hop_length
        return 1 + -(-max(0, num_samples - first_patch) // patch_hop)

    def padded_length(self, num_samples: int) -> int:
        """Samples a clip of `num_samples` is zero-padded to before framing (15600 + k * 7680 at YAMNet's
        settings): exactly enough STFT frames for `num_patches(num_samples)` patches."""
        first_patch = (self.patch_frames - 1) * self.hop_length + self.window_length
        return first_patch + (self.num_patches(num_samples) - 1) * self.patch_hop_frames * self.hop_length

    # ----------------------------------------------------------------------------------------------------
    # the computation, in torch (the model's waveform path uses it too)

    def log_mel_spectrogram(self, waveforms: torch.Tensor) -> torch.Tensor:
        """
        Log-mel spectrogram of waveforms at `sampling_rate`, with no padding (only whole STFT windows).

        Args:
            waveforms (`torch.Tensor` of shape `(batch_size, num_samples)`): mono audio, `num_samples >=
                window_length`.

        Returns:
            `torch.FloatTensor` of shape `(batch_size, 1 + (num_samples - window_length) // hop_length,
            feature_size)`: `log(mel + log_offset)`, computed in float32.
        """
        waveforms = waveforms.to(torch.float32)
        frames = waveforms.unfold(-1, self.window_length, self.hop_length)  # (batch, frames, window)
        window = torch.hann_window(self.window_length, periodic=True, dtype=torch.float32, device=waveforms.device)
        magnitudes = torch.fft.rfft(frames * window, n=self.fft_length).abs()  # (batch, frames, fft_length/2 + 1)
        mel = magnitudes @ torch.from_numpy(self.mel_matrix).to(waveforms.device)  # (batch, frames, mels)
        return torch.log(mel + self.log_offset)

    def log_mel_patches(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Log-mel patches of a batch of mono waveforms at `sampling_rate` (the tensor-in, tensor-out core of
        `__call__`, also used by `YamnetModel.forward_waveforms`).

        Each item is cut to its length, zero-padded to `padded_length(length)` samples and framed into
        `num_patches(length)` patches; the batch is padded with `padding_value` patches to the largest count.
        Samples past an item's length are ignored, whatever their value.

        Args:
            waveforms (`torch.Tensor` of shape `(batch_size, num_samples)`): mono audio, real samples first.
            lengths (`torch.Tensor` or list of `int` of length `batch_size`, *optional*): real samples per item
                (defaults to `num_samples` for all).

        Returns:
            `tuple` of
            - `torch.FloatTensor` of shape `(batch_size, num_patches, patch_frames, feature_size)`: the patches;
            - `torch.BoolTensor` of shape `(batch_size, num_patches)`: True on real patches.
        """
        if waveforms.ndim != 2:
            raise ValueError(f"waveforms must have shape (batch_size, num_samples), got {tuple(waveforms.shape)}")
        batch_size, num_samples = waveforms.shape
        if lengths is None:
            lengths = [num_samples] * batch_size
        lengths = [int(n) for n in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)]
        if len(lengths) != batch_size or any(not 0 <= n <= num_samples for n in lengths):
            raise ValueError(f"lengths {lengths} must give 0..{num_samples} samples for each of {batch_size} items")
        counts = [self.num_patches(n) for n in lengths]
        total = self.padded_length(max(lengths))
        # silence after each item's end: its own padding, and whatever was in the batch's padding
        keep = torch.arange(num_samples, device=waveforms.device)[None, :] < torch.tensor(
            lengths, device=waveforms.device
        )[:, None]
        padded = torch.zeros(batch_size, total, dtype=torch.float32, device=waveforms.device)
        width = min(num_samples, total)
        padded[:, :width] = torch.where(keep, waveforms.to(torch.float32), 0.0)[:, :width]
        log_mel = self.log_mel_spectrogram(padded)  # (batch, frames, mels)
        patches = log_mel.unfold(1, self.patch_frames, self.patch_hop_frames)  # (batch, patches, mels, frames)
        patches = patches.transpose(-1, -2).contiguous()  # (batch, patches, frames, mels)
        patch_mask = torch.arange(patches.shape[1], device=waveforms.device)[None, :] < torch.tensor(
            counts, device=waveforms.device
        )[:, None]
        patches = patches.masked_fill(~patch_mask[:, :, None, None], self.padding_value)
        return patches, patch_mask

    # ----------------------------------------------------------------------------------------------------

    def __call__(
        self,
        audio: Any,
        sampling_rate: int | None = None,
        *,
        return_tensors: str | TensorType | None = "pt",
        return_patch_mask: bool | None = None,
    ) -> BatchFeature:
        """
        Loads, validates, resamples and downmixes one clip or a batch of clips, then computes their log-mel patches.

        Args:
            audio:
                One clip or a list of clips. A clip is any of: a numpy array or torch tensor of shape `(samples,)`
                or `(channels, samples)` (see `validate_audio` for the layout rule and accepted dtypes); a file path
                (`str` or `os.PathLike`); a `datasets` audio dict `{"array": ..., "sampling_rate": ...}`,
                `{"path": ...}` or `{"bytes": ...}`; or a torchcodec `AudioDecoder`. A 3-D array or tensor
                `(batch, channels, samples)` is a batch. Stereo is averaged to mono.
            sampling_rate (`int`, *optional*):
                Sampling rate in Hz of the arrays and tensors given without their own rate. When `None` and such an
                item is given, a warning is logged once and `self.sampling_rate` (16 kHz) is assumed.
            return_tensors (`str` or `TensorType`, *optional*, defaults to `"pt"`):
                `"pt"` for torch tensors, `"np"` or `None` for numpy arrays.
            return_patch_mask (`bool`, *optional*):
                Overrides `self.return_patch_mask` for this call.

        Returns:
            [`BatchFeature`] with
            - **input_features** (`torch.FloatTensor` of shape `(batch_size, num_patches, patch_frames,
              feature_size)`, `(batch_size, num_patches, 96, 64)` for YAMNet): log-mel patches; `num_patches` is
              the largest count of the batch.
            - **patch_mask** (`torch.LongTensor` of shape `(batch_size, num_patches)`): 1 on real patches, 0 on
              padding (`patch_mask.sum(-1)` is each clip's `num_patches`).

            Both are the model's inputs: `model(**batch)` works.

        Raises:
            AudioInputError (a `ValueError` with a `category`): for bad audio, naming its index in the batch (and its
            path for files). `ValueError` / `TypeError`: a bad sampling rate, a wrong dtype, an unsupported input.
        """
        if sampling_rate is not None:
            sampling_rate = check_sampling_rate(sampling_rate, "sampling_rate")
        if return_patch_mask is None:
            return_patch_mask = self.return_patch_mask
        clips = [clip[0] for clip in self._prepare_clips(audio, sampling_rate, channels=1)]  # mono (samples,)
        lengths = [clip.shape[-1] for clip in clips]
        waveforms = np.zeros((len(clips), max(lengths)), dtype=np.float32)
        for index, clip in enumerate(clips):
            waveforms[index, : clip.shape[-1]] = clip
        with torch.no_grad():
            features, patch_mask = self.log_mel_patches(torch.from_numpy(waveforms), lengths)
        data = {"input_features": features.numpy()}
        if return_patch_mask:
            data["patch_mask"] = patch_mask.numpy().astype(np.int64)
        return BatchFeature(data, tensor_type=return_tensors)


__all__ = ["YamnetFeatureExtractor", "hertz_to_mel", "mel_weight_matrix"]
