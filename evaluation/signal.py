"""Loudness and spectral measures for reconstructions: what a listener notices first.

Every function takes waveforms as float arrays or tensors of shape `(samples,)` or `(channels, samples)` at one
sampling rate (the caller resamples; `processing/audio_io.py` has the tools), compares a reconstruction with its
reference, and returns plain floats:

- `level_db(audio)`: RMS level in dB full scale (a full-scale sine is -3.01 dBFS); `level_difference_db(x, ref)`
  is `level_db(x) - level_db(ref)` (positive: the reconstruction is louder). It is an RMS level, not LUFS: no
  K-weighting and no gating, which keeps it free of a loudness-standard dependency; the difference of two levels
  of the same content is what the tokenizer report needs.
- `clipped_fraction(audio)`: share of samples at or beyond full scale (|x| >= 0.999).
  `clipped_fraction_at_level(x, ref)` is the share ``x`` would clip once scaled to ``ref``'s RMS level: it tells a
  reconstruction that clips because it is loud from one that clips because its peaks stand out more than the
  reference's (a higher crest factor), which no choice of level can cure.
- `multi_resolution_stft_distance(x, ref)`: the mean over FFT sizes (512, 1024, 2048; hop 1/4) of the spectral
  convergence plus the L1 distance of log magnitudes (the auxiliary loss of Parallel WaveGAN, Yamamoto et al.
  2020), so 0 is identical.
- `mel_distance(x, ref, sampling_rate)`: mean absolute difference of log-mel spectrograms (80 bands, natural log,
  floor 1e-5), in nats.
- `spectral_flatness(audio)`: how noise-like a sound is, on its own: the mean over its audible STFT frames of the
  geometric over the arithmetic mean of the power spectrum (Wiener entropy; 0 for a pure tone, about 0.56 for white
  noise through a Hann window). A reconstruction that turns harmonics into broadband noise scores above its
  original; one that loses harmonics without adding noise does not, so it is no harmonicity measure on its own.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = [
    "clipped_fraction",
    "clipped_fraction_at_level",
    "level_db",
    "level_difference_db",
    "mel_distance",
    "multi_resolution_stft_distance",
    "spectral_flatness",
]

CLIP_LEVEL = 0.999
_SILENCE_DB = -200.0  # the level of an all-zero signal (instead of -inf)


def _as_tensor(audio: Any, name: str) -> torch.Tensor:
    """(channels, samples) float64 tensor, or an error naming ``name``."""
    if isinstance(audio, np.ndarray):
        audio = torch.from_numpy(np.ascontiguousarray(audio))
    if not isinstance(audio, torch.Tensor):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(audio).__name__}")
    if not audio.is_floating_point():
        raise TypeError(f"{name} must hold floating-point samples, got dtype {audio.dtype}")
    if audio.dim() == 1:
        audio = audio[None]
    if audio.dim() != 2 or audio.shape[-1] == 0:
        raise ValueError(f"{name} must have shape (samples,) or (channels, samples) with samples > 0, "
                         f"got {tuple(audio.shape)}")
    if not bool(torch.isfinite(audio).all()):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return audio.detach().cpu().double()


def _pair(audio: Any, reference: Any) -> tuple[torch.Tensor, torch.Tensor]:
    audio, reference = _as_tensor(audio, "audio"), _as_tensor(reference, "reference")
    if audio.shape[0] != reference.shape[0]:
        raise ValueError(f"audio has {audio.shape[0]} channel(s) but reference has {reference.shape[0]}")
    length = min(audio.shape[-1], reference.shape[-1])
    if abs(audio.shape[-1] - reference.shape[-1]) > max(1, length // 100):
        raise ValueError(f"audio ({audio.shape[-1]} samples) and reference ({reference.shape[-1]} samples) differ in "
                         "length by more than 1 %: compare the same clip")
    return audio[..., :length], reference[..., :length]


def level_db(audio: Any) -> float:
    """RMS level of ``audio`` over all channels and samples, in dB relative to full scale (1.0)."""
    audio = _as_tensor(audio, "audio")
    rms = float(audio.pow(2).mean().sqrt())
    return 20.0 * math.log10(rms) if rms > 0 else _SILENCE_DB


def level_difference_db(audio: Any, reference: Any) -> float:
    """``level_db(audio) - level_db(reference)``: positive when the reconstruction is louder."""
    audio, reference = _pair(audio, reference)
    return level_db(audio) - level_db(reference)


def clipped_fraction(audio: Any, clip_level: float = CLIP_LEVEL) -> float:
    """Share of samples with ``|x| >= clip_level`` (0.999 by default: at full scale once written as PCM)."""
    audio = _as_tensor(audio, "audio")
    return float((audio.abs() >= clip_level).double().mean())


def clipped_fraction_at_level(audio: Any, reference: Any, clip_level: float = CLIP_LEVEL) -> float:
    """``clipped_fraction`` of ``audio`` scaled to ``reference``'s RMS level (before any clipping: pass the float
    waveform, not one already clamped to full scale). 0 for a silent ``audio``."""
    audio, reference = _pair(audio, reference)
    rms = float(audio.pow(2).mean().sqrt())
    if rms == 0.0:
        return 0.0
    return clipped_fraction(audio * (float(reference.pow(2).mean().sqrt()) / rms), clip_level)


def multi_resolution_stft_distance(
    audio: Any, reference: Any, fft_sizes: tuple[int, ...] = (512, 1024, 2048)
) -> float:
    """Mean over ``fft_sizes`` of spectral convergence + mean |log|X| - log|R||| (hop = size / 4, Hann window)."""
    audio, reference = _pair(audio, reference)
    total = 0.0
    for size in fft_sizes:
        window = torch.hann_window(size, dtype=torch.float64)
        spectra = [
            torch.stft(x, size, size // 4, window=window, center=True, return_complex=True).abs().clamp(min=1e-7)
            for x in (audio, reference)
        ]
        convergence = torch.linalg.norm(spectra[1] - spectra[0]) / torch.linalg.norm(spectra[1]).clamp(min=1e-7)
        log_distance = (spectra[0].log() - spectra[1].log()).abs().mean()
        total += float(convergence + log_distance)
    return total / len(fft_sizes)


def mel_distance(audio: Any, reference: Any, sampling_rate: int, num_mel_bins: int = 80, n_fft: int = 1024) -> float:
    """Mean |log mel(audio) - log mel(reference)| in nats (80 Slaney mel bands, hop n_fft / 4, floor 1e-5)."""
    from transformers.audio_utils import mel_filter_bank

    audio, reference = _pair(audio, reference)
    if not isinstance(sampling_rate, int) or sampling_rate <= 0:
        raise ValueError(f"sampling_rate must be a positive integer in Hz, got {sampling_rate!r}")
    filters = torch.from_numpy(mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1, num_mel_filters=num_mel_bins, min_frequency=0.0,
        max_frequency=sampling_rate / 2, sampling_rate=sampling_rate, norm="slaney", mel_scale="slaney",
    ).astype(np.float64))
    window = torch.hann_window(n_fft, dtype=torch.float64)
    mels = [
        torch.log((filters.T @ torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs()).clamp(1e-5))
        for x in (audio, reference)
    ]
    return float((mels[0] - mels[1]).abs().mean())


def spectral_flatness(audio: Any, n_fft: int = 2048, floor_db: float = -60.0) -> float:
    """Mean spectral flatness of ``audio``'s frames (channels averaged as power; Hann window, hop n_fft / 4), over
    the frames within ``floor_db`` of the loudest one: silence between notes would otherwise count as noise. 0 for
    an all-zero signal."""
    audio = _as_tensor(audio, "audio")
    if not isinstance(n_fft, int) or n_fft < 16:
        raise ValueError(f"n_fft must be an int >= 16, got {n_fft!r}")
    if not isinstance(floor_db, (int, float)) or not floor_db < 0:
        raise ValueError(f"floor_db must be a negative number of dB, got {floor_db!r}")
    window = torch.hann_window(n_fft, dtype=torch.float64)
    power = torch.stft(audio, n_fft, n_fft // 4, window=window, center=True, return_complex=True).abs().pow(2)
    power = power.mean(dim=0)  # (bins, frames)
    energy = power.sum(dim=0)
    if float(energy.max()) <= 0:
        return 0.0
    frames = power[:, energy >= energy.max() * 10.0 ** (floor_db / 10.0)]
    tiny = torch.finfo(torch.float64).tiny  # keeps log(0) finite; a bin at exactly zero pulls the frame toward 0
    flatness = frames.clamp(min=tiny).log().mean(dim=0).exp() / frames.mean(dim=0)
    return float(flatness.mean())
