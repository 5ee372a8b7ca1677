# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""Reading, validating, resampling and channel-mapping audio: the one place audio enters `soundlm`.

Every waveform in this module is a `np.ndarray` of `float32` with shape `(channels, samples)`, values
nominally in `[-1, 1]`, and every sampling rate is an integer in Hz.

Problems with the audio itself (a file that cannot be read, no samples, NaN samples, a window outside the
file, too many channels) raise `AudioInputError`, a `ValueError` whose `category` says which kind of problem it
is, so batch jobs count and report them without parsing messages. Wrong argument types raise `TypeError`.

`AudioInputMixin` reads a feature extractor's `audio` argument (arrays, tensors, paths, `datasets` dicts,
torchcodec decoders) through these functions, so every extractor accepts the same inputs with the same errors.

This file is self-contained (stdlib, numpy, soundfile, soxr; torch only for `isinstance` checks, torchcodec only
as a fallback decoder) because it is copied next to `feature_extraction_msn.py` into exported Hub folders and
loaded as remote code.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf
import soxr

try:  # torch is only needed to recognise tensors; the module works without it.
    import torch
except ImportError:  # pragma: no cover - torch is a hard dependency of soundlm
    torch = None

logger = logging.getLogger(__name__)
_ARRAY_TYPES = (np.ndarray,) if torch is None else (np.ndarray, torch.Tensor)
SINGLE_CLIP_TYPES = "a numpy array, a torch tensor, a file path, a dict with 'array'/'path'/'bytes' keys"

__all__ = [
    "AUDIO_ERROR_CATEGORIES",
    "AudioInputError",
    "AudioInputMixin",
    "check_sampling_rate",
    "load_audio",
    "resample",
    "to_channels",
    "validate_audio",
    "write_audio",
]

AUDIO_ERROR_CATEGORIES = {
    "unreadable": "the file is missing or no decoder can read it",
    "empty": "the audio holds no samples (or no channels)",
    "non_finite": "some samples are NaN or infinite",
    "bad_window": "the start/end window is invalid or lies outside the file",
    "bad_shape": "the array is not (samples,) or (channels, samples)",
    "channels": "more channels than can be mapped without downmix=True",
    "too_short": "shorter than the consumer needs (e.g. one token frame)",
    "bad_row": "a manifest or dataset row that cannot be parsed or names no audio",
}


class AudioInputError(ValueError):
    """
    A problem with audio data, raised where audio is read and validated.

    Args:
        category (`str`): one of `AUDIO_ERROR_CATEGORIES` (`"unreadable"`, `"empty"`, `"non_finite"`,
            `"bad_window"`, `"bad_shape"`, `"channels"`, `"too_short"`, `"bad_row"`).
        message (`str`): what is wrong, naming the file or argument and the value.

    Batch jobs record `error.category` (counted in summaries) and `str(error)` (the reason).
    """

    def __init__(self, category: str, message: str):
        if category not in AUDIO_ERROR_CATEGORIES:
            raise ValueError(f"category must be one of {sorted(AUDIO_ERROR_CATEGORIES)}, got {category!r}")
        super().__init__(message)
        self.category = category

    def __reduce__(self):  # picklable across processes (datasets.map with num_proc, multiprocessing)
        return type(self), (self.category, str(self))

    def with_context(self, context: str) -> AudioInputError:
        """The same error with ``context`` (e.g. ``"item 3 of the batch"``) in front of its message."""
        return type(self)(self.category, f"{context}: {self}")

# A 2-D array is read as (samples, channels) and transposed only when its second axis is at most this
# long and its first axis is longer (see `validate_audio`).
MAX_CHANNELS_GUESS = 8

# Scale that maps each accepted integer PCM dtype onto [-1, 1).
_INT_SCALES = {
    np.dtype(np.int8): 1.0 / 2**7,
    np.dtype(np.int16): 1.0 / 2**15,
    np.dtype(np.int32): 1.0 / 2**31,
}


def check_sampling_rate(value: Any, name: str = "sampling_rate") -> int:
    """
    Checks that `value` is a sampling rate and returns it as a Python `int` (Hz).

    Integers (Python or numpy) and integral floats such as `16000.0` are accepted; booleans, zero,
    negative numbers, non-integral numbers and anything else raise.

    Args:
        value (`Any`): the candidate sampling rate in Hz.
        name (`str`, *optional*, defaults to `"sampling_rate"`): the argument name used in the message.

    Returns:
        `int`: the sampling rate in Hz.

    Raises:
        ValueError: e.g. `sampling_rate must be a positive integer in Hz, got 0`.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        ok = math.isfinite(float(value)) and float(value).is_integer() and value > 0
    if not ok:
        raise ValueError(f"{name} must be a positive integer in Hz, got {value!r}")
    return int(value)


def _check_seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds >= 0 or None, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0 or None, got {value!r}")
    return float(value)


def load_audio(
    path: str | os.PathLike | BinaryIO,
    *,
    start: float | None = None,
    end: float | None = None,
) -> tuple[np.ndarray, int]:
    """
    Reads an audio file with soundfile (WAV, FLAC, OGG/Vorbis, MP3 with libsndfile >= 1.1, ...), and formats
    soundfile cannot read (AAC, M4A, ...) with torchcodec when it is installed.

    Args:
        path (`str`, `os.PathLike` or binary file object):
            The file to read. A file object (e.g. `io.BytesIO(data)`) is read from its current position.
        start (`float`, *optional*):
            Offset in seconds of the first sample to read. Defaults to the beginning of the file.
        end (`float`, *optional*):
            Offset in seconds after the last sample to read. Defaults to the end of the file; an `end` past
            the end of the file reads up to the end.

    Returns:
        `tuple[np.ndarray, int]`: the waveform, `float32` of shape `(channels, samples)` with values in
        `[-1, 1]` for PCM files, and the file's sampling rate in Hz. No resampling happens here.

    Raises:
        AudioInputError: category `"unreadable"` if the file is missing or no decoder reads it (the message names
            the path and the reason); `"bad_window"` if `end <= start` or `start` lies past the end of the file.
        ValueError: if `start`/`end` are negative or not numbers.

    Example:

    ```python
    >>> import numpy as np, soundfile as sf
    >>> sf.write("tone.wav", np.zeros((4410, 2), dtype=np.float32), 44100)
    >>> audio, sr = load_audio("tone.wav", start=0.05)
    >>> audio.shape, sr
    ((2, 2205), 44100)

    ```
    """
    start = _check_seconds(start, "start")
    end = _check_seconds(end, "end")
    if start is not None and end is not None and end <= start:
        raise AudioInputError("bad_window", f"end must be greater than start, got start={start} s and end={end} s")
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else f"<{type(path).__name__}>"
    if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
        raise AudioInputError("unreadable", f"cannot read audio file {name!r}: no such file")
    position = None if isinstance(path, (str, os.PathLike)) else path.tell()
    try:
        with sf.SoundFile(path) as f:
            sr = int(f.samplerate)
            total = f.frames
            first = _first_sample(start, sr, total, name)
            if first:
                f.seek(first)
            frames = -1 if end is None else max(0, int(round(end * sr)) - first)
            data = f.read(frames=frames, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), sr
    except AudioInputError:
        raise
    except (sf.SoundFileError, RuntimeError, OSError, TypeError, ValueError) as err:
        soundfile_error = err
    if position is not None:
        path.seek(position)
    audio, sr = _decode_with_torchcodec(path, name, soundfile_error)
    first = _first_sample(start, sr, audio.shape[-1], name)
    last = audio.shape[-1] if end is None else int(round(end * sr))
    return np.ascontiguousarray(audio[:, first:last]), sr


def write_audio(path: str | os.PathLike, audio: np.ndarray, sampling_rate: int) -> None:
    """Write float audio `(channels, samples)` as a 16-bit PCM WAV, clipped to [-1, 1] (the folder is made if
    needed): the one way reports, the CLI and the demo write sound."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    sf.write(path, np.clip(np.asarray(audio), -1.0, 1.0).T, check_sampling_rate(sampling_rate), subtype="PCM_16")


def _first_sample(start: float | None, sr: int, total: int, name: str) -> int:
    first = 0 if start is None else int(round(start * sr))
    if first and first >= total:
        raise AudioInputError(
            "bad_window", f"start={start} s is past the end of audio file {name!r} (duration {total / sr:.3f} s)"
        )
    return first


def _decode_with_torchcodec(source: Any, name: str, soundfile_error: Exception) -> tuple[np.ndarray, int]:
    """Formats libsndfile cannot read (AAC, some MP3 and Opus files...), with torchcodec (ffmpeg) when installed."""
    try:
        from torchcodec.decoders import AudioDecoder
    except (ImportError, RuntimeError, OSError):
        raise AudioInputError(
            "unreadable",
            f"cannot read audio file {name!r}: {soundfile_error} (and torchcodec, the fallback decoder for other "
            "formats, is not installed: pip install 'soundlm[audio]')",
        ) from None
    try:
        data = source.read() if hasattr(source, "read") else os.fspath(source)
        samples = AudioDecoder(data).get_all_samples()
    except Exception as error:  # torchcodec raises RuntimeError/ValueError subclasses that vary by version
        reason = (str(error).strip().splitlines() or [type(error).__name__])[-1][:200]
        raise AudioInputError(
            "unreadable", f"cannot read audio file {name!r}: soundfile: {soundfile_error}; torchcodec: {reason}"
        ) from None
    return samples.data.numpy().astype(np.float32), int(samples.sample_rate)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """
    Resamples a waveform with soxr (quality `"HQ"`, a linear-phase band-limited resampler).

    Args:
        audio (`np.ndarray` of shape `(channels, samples)` or `(samples,)`): the waveform (float32/64).
        orig_sr (`int`): the sampling rate of `audio` in Hz.
        target_sr (`int`): the wanted sampling rate in Hz.

    Returns:
        `np.ndarray`: the waveform at `target_sr`, same number of dimensions and dtype as `audio` (other
        dtypes are computed in float32), with `round(samples * target_sr / orig_sr)` samples. `audio` itself
        is returned when the two rates are equal.

    Example:

    ```python
    >>> import numpy as np
    >>> resample(np.zeros((2, 16000), dtype=np.float32), 16000, 44100).shape
    (2, 44100)

    ```
    """
    orig_sr = check_sampling_rate(orig_sr, "orig_sr")
    target_sr = check_sampling_rate(target_sr, "target_sr")
    if not isinstance(audio, np.ndarray):
        raise TypeError(
            f"audio must be a numpy array of shape (channels, samples), got {type(audio).__name__}"
        )
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must have shape (channels, samples) or (samples,), got shape {audio.shape}")
    if orig_sr == target_sr:
        return audio
    if audio.shape[-1] == 0:
        raise AudioInputError("empty", "audio is empty (0 samples): nothing to resample")
    if audio.dtype not in (np.float32, np.float64):
        audio = audio.astype(np.float32)
    # soxr wants (frames, channels).
    out = soxr.resample(audio.T, orig_sr, target_sr, quality="HQ")
    if not np.isfinite(out).all() and np.isfinite(audio).all():
        # finite samples near the dtype's limit (|x| ~ 1e36 in float32) overflow in the filter's sums
        raise AudioInputError("non_finite", f"resampling from {orig_sr} Hz to {target_sr} Hz overflowed: the "
                                            f"audio peaks at {float(np.abs(audio).max()):.3g}, far outside [-1, 1]")
    return np.ascontiguousarray(out.T)


def to_channels(audio: np.ndarray, channels: int, *, downmix: bool = False) -> np.ndarray:
    """
    Maps a waveform onto `channels` channels.

    - same number of channels: returned unchanged;
    - mono -> `channels`: the one channel is duplicated;
    - stereo -> mono: the two channels are averaged;
    - anything else (e.g. 6-channel 5.1 audio) raises unless `downmix=True`, in which case all channels are
      averaged to mono, then duplicated to `channels`.

    Args:
        audio (`np.ndarray` of shape `(channels, samples)`): the waveform.
        channels (`int`): the wanted number of channels (>= 1), e.g. 2 for the Oobleck VAE.
        downmix (`bool`, *optional*, defaults to `False`): allow averaging more than 2 channels.

    Returns:
        `np.ndarray` of shape `(channels, samples)`, same dtype as `audio`.

    Example:

    ```python
    >>> import numpy as np
    >>> to_channels(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32), 1)
    array([[0.5, 0.5]], dtype=float32)

    ```
    """
    if isinstance(channels, (bool, np.bool_)) or not isinstance(channels, numbers.Integral) or channels < 1:
        raise ValueError(f"channels must be a positive integer, got {channels!r}")
    if not isinstance(audio, np.ndarray) or audio.ndim != 2:
        shape = getattr(audio, "shape", type(audio).__name__)
        raise ValueError(f"audio must be an array of shape (channels, samples), got {shape}")
    have = audio.shape[0]
    if have == channels:
        return audio
    if have == 0:
        raise AudioInputError("empty", "audio has 0 channels")
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    if have == 2 and channels == 1:
        return audio.mean(axis=0, keepdims=True, dtype=np.float64).astype(audio.dtype)
    if not downmix:
        raise AudioInputError(
            "channels",
            f"audio has {have} channels but {channels} channel(s) were expected (mono or stereo input is "
            "mapped automatically); pass downmix=True to average all channels"
        )
    mono = audio.mean(axis=0, keepdims=True, dtype=np.float64).astype(audio.dtype)
    return np.repeat(mono, channels, axis=0)


def _to_numpy(audio: Any, name: str) -> np.ndarray:
    if torch is not None and isinstance(audio, torch.Tensor):
        tensor = audio.detach().cpu()
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        if tensor.is_complex() or tensor.dtype == torch.bool:
            raise TypeError(
                f"{name} has dtype {tensor.dtype}; expected a real floating point or int16/int32 dtype"
            )
        return tensor.numpy()
    if isinstance(audio, np.ndarray):
        return audio
    if isinstance(audio, (list, tuple)):
        try:
            return np.asarray(audio)
        except ValueError as err:  # ragged nested lists
            raise ValueError(f"{name} is a ragged nested list and cannot form an array: {err}") from err
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(audio).__name__}")


def validate_audio(audio: Any, *, name: str = "audio") -> np.ndarray:
    """
    Converts a waveform to a clean `float32` array of shape `(channels, samples)`, or raises.

    Accepted inputs are numpy arrays and torch tensors (also nested lists of numbers):

    - dtypes: floating point (cast to float32); integer PCM `int8`, `int16`, `int32` scaled by `1/2**7`,
      `1/2**15`, `1/2**31` into `[-1, 1)`. `bool`, complex, object, string and other integer dtypes (e.g.
      `int64`, whose scale is ambiguous) raise `TypeError`.
    - shapes: `(samples,)` (mono) or `(channels, samples)`. A 2-D array of shape `(a, b)` with `a > b` and
      `b <= 8` is taken as `(samples, channels)` (soundfile's layout) and transposed; otherwise the first
      axis is the channel axis. In short: the smaller axis is the channel axis if it has at most 8 entries
      and the other axis is longer, and `(channels, samples)` is assumed in every other case. Arrays of
      more than 2 dimensions raise `ValueError`.
    - values: empty audio (0 samples or 0 channels), all-NaN audio, and audio with any NaN or infinite
      sample raise `AudioInputError` (categories `"empty"` and `"non_finite"`; the message counts them).

    Args:
        audio (`np.ndarray` or `torch.Tensor`): the waveform.
        name (`str`, *optional*, defaults to `"audio"`): what to call it in error messages.

    Returns:
        `np.ndarray` of dtype float32 and shape `(channels, samples)`. It may share memory with `audio` when
        no conversion was needed.

    Example:

    ```python
    >>> import numpy as np
    >>> validate_audio(np.full((1000, 2), 16384, dtype=np.int16)).shape  # (samples, channels) int16
    (2, 1000)

    ```
    """
    array = _to_numpy(audio, name)
    dtype = array.dtype
    if dtype.kind == "f":
        array = array.astype(np.float32, copy=False)
    elif dtype in _INT_SCALES:
        array = array.astype(np.float32) * np.float32(_INT_SCALES[dtype])
    elif dtype.kind in "iu":
        raise TypeError(
            f"{name} has integer dtype {dtype}, whose scale is ambiguous; expected float32/float64 or "
            "int8/int16/int32 PCM (convert with e.g. audio.astype(np.float32) / 32768)"
        )
    else:
        raise TypeError(f"{name} has dtype {dtype}; expected a real floating point or int16/int32 PCM dtype")

    if array.ndim == 0:
        raise AudioInputError("bad_shape", f"{name} must have shape (samples,) or (channels, samples), got a scalar")
    if array.ndim > 2:
        raise AudioInputError(
            "bad_shape",
            f"{name} must have shape (samples,) or (channels, samples), got {array.ndim}-D shape "
            f"{array.shape}"
        )
    if array.ndim == 1:
        array = array[None, :]
    elif array.shape[0] > array.shape[1] and array.shape[1] <= MAX_CHANNELS_GUESS:
        array = array.T
    if array.size == 0:
        raise AudioInputError(
            "empty",
            f"{name} is empty: got {array.shape[0]} channel(s) of {array.shape[1]} samples; expected at "
            "least one sample"
        )

    finite = np.isfinite(array)
    if not finite.all():
        n_nan = int(np.isnan(array).sum())
        n_inf = int(array.size - finite.sum() - n_nan)
        if n_nan == array.size:
            raise AudioInputError("non_finite", f"{name} is all NaN ({array.size} values)")
        raise AudioInputError(
            "non_finite",
            f"{name} contains {n_nan} NaN and {n_inf} infinite value(s) out of {array.size}; expected finite "
            "samples"
        )
    return np.ascontiguousarray(array)


# ----------------------------------------------------------------------------------------------------------
# Feature extractors' `audio` argument


class AudioInputMixin:
    """Reads the `audio` argument of a feature extractor into clips, the same way for every extractor: one clip or
    a batch of arrays, tensors, file paths, `{"array", "sampling_rate"}` / `{"bytes"}` / `{"path"}` dicts (a
    `datasets` row) or torchcodec decoders, each validated, resampled and channel-mapped by this module. The class
    needs `sampling_rate` (Hz, what clips are resampled to) and `downmix` (average more channels than asked for,
    rather than refuse them)."""

    sampling_rate: int
    downmix: bool

    def _prepare_clips(self, audio: Any, sampling_rate: int | None, channels: int) -> list[np.ndarray]:
        """Every clip of `audio` as float32 `(channels, samples)` at `self.sampling_rate`, or an error that names
        the item (and its file)."""
        return [self._prepare_item(item, index, sampling_rate, channels)
                for index, item in enumerate(self._as_batch(audio))]

    @staticmethod
    def _as_batch(audio: Any) -> list[Any]:
        """Splits the `audio` argument into a list of items (a single clip becomes a batch of one)."""
        if isinstance(audio, _ARRAY_TYPES) and audio.ndim == 3:
            if audio.shape[0] == 0:
                raise ValueError("audio is an empty batch (a 3-D array with 0 items)")
            return list(audio)
        if isinstance(audio, (str, os.PathLike, Mapping, *_ARRAY_TYPES)) or _is_decoder(audio):
            return [audio]
        if isinstance(audio, Sequence) and not isinstance(audio, (bytes, bytearray)):
            if len(audio) == 0:
                raise ValueError("audio is an empty list: expected at least one clip")
            return list(audio)
        raise TypeError(f"audio must be {SINGLE_CLIP_TYPES}, or a list of those, got {type(audio).__name__}")

    def _prepare_item(self, item: Any, index: int, sampling_rate: int | None, channels: int) -> np.ndarray:
        """Returns item `index` as float32 `(channels, samples)` at `self.sampling_rate`, or raises."""
        where = f"item {index} of the batch"
        try:
            array, item_sr, source = self._read_item(item, sampling_rate)
            if source:
                where = f"{where} ({source})"
            clip = validate_audio(array, name="audio")
            clip = resample(clip, item_sr, self.sampling_rate)
            return to_channels(clip, channels, downmix=self.downmix)
        except AudioInputError as err:
            raise err.with_context(where) from err
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
        except TypeError as err:
            raise TypeError(f"{where}: {err}") from err

    def _read_item(self, item: Any, sampling_rate: int | None) -> tuple[Any, int, str]:
        """Returns `(waveform, its sampling rate, a description of its source for error messages)`."""
        if isinstance(item, (str, os.PathLike)):
            array, sr = load_audio(item)
            return array, sr, f"file {os.fspath(item)!r}"
        if _is_decoder(item):
            samples = item.get_all_samples()
            return samples.data, check_sampling_rate(samples.sample_rate, "sample_rate"), ""
        if isinstance(item, Mapping):
            return self._read_dict(item, sampling_rate)
        if isinstance(item, (list, tuple, *_ARRAY_TYPES)):
            if isinstance(item, (list, tuple)) and any(isinstance(x, (str, os.PathLike, Mapping)) for x in item):
                raise TypeError("expected one clip but got a nested list of paths or dicts; pass a flat list")
            return item, self._default_rate(sampling_rate), ""
        hint = " (a list is read as a batch: pass a single clip as an array)"
        hint = hint if isinstance(item, numbers.Number) else ""
        raise TypeError(f"expected {SINGLE_CLIP_TYPES}, got {type(item).__name__}{hint}")

    def _read_dict(self, item: Mapping, sampling_rate: int | None) -> tuple[Any, int, str]:
        path = item.get("path")
        source = f"file {os.fspath(path)!r}" if isinstance(path, (str, os.PathLike)) and path else ""
        if item.get("array") is not None:
            if item.get("sampling_rate") is not None:
                sr = check_sampling_rate(item["sampling_rate"], "sampling_rate")
            else:
                sr = self._default_rate(sampling_rate)
            return item["array"], sr, source
        if item.get("bytes") is not None:
            array, sr = load_audio(io.BytesIO(bytes(item["bytes"])))
            return array, sr, source
        if source:
            array, sr = load_audio(path)
            return array, sr, source
        raise ValueError(f"a dict must hold 'array' (with 'sampling_rate'), 'bytes' or 'path'; got keys {sorted(item)}")

    def _default_rate(self, sampling_rate: int | None) -> int:
        if sampling_rate is None:
            _warn_once(
                f"It is strongly recommended to pass the `sampling_rate` argument to `{self.__class__.__name__}()` "
                f"with arrays and tensors; assuming {self.sampling_rate} Hz. Failing to do so can result in silent "
                "errors that might be hard to debug."
            )
            return self.sampling_rate
        return sampling_rate


@functools.cache
def _warn_once(message: str) -> None:
    logger.warning(message)


def _is_decoder(item: Any) -> bool:
    """Whether `item` looks like a torchcodec `AudioDecoder` (what `datasets>=4` yields for audio)."""
    return callable(getattr(item, "get_all_samples", None))
