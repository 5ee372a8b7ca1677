"""evaluation/signal.py: levels, clipping, spectral distances on signals with known answers."""

import math

import numpy as np
import pytest
import torch

from soundlm.evaluation.signal import (
    clipped_fraction,
    clipped_fraction_at_level,
    level_db,
    level_difference_db,
    mel_distance,
    multi_resolution_stft_distance,
    spectral_flatness,
)

RATE = 16000


def _sine(frequency=440.0, amplitude=0.5, seconds=1.0):
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_levels_of_known_signals():
    assert level_db(_sine(amplitude=1.0)) == pytest.approx(-3.0103, abs=1e-3)  # a full-scale sine
    assert level_difference_db(_sine(amplitude=0.5), _sine(amplitude=0.25)) == pytest.approx(20 * math.log10(2))
    assert level_db(np.zeros(100, dtype=np.float32)) == -200.0
    stereo = torch.from_numpy(np.stack([_sine(), _sine()]))
    assert level_db(stereo) == pytest.approx(level_db(_sine()))


def test_clipped_fraction_counts_samples_at_full_scale():
    audio = np.zeros(1000, dtype=np.float32)
    audio[:25] = 1.0
    audio[25:30] = -1.2
    assert clipped_fraction(audio) == pytest.approx(0.03)
    assert clipped_fraction(_sine(amplitude=0.9)) == 0.0


def test_clipped_fraction_at_level_scales_to_the_reference_first():
    full_scale = _sine(amplitude=1.0)
    # a quiet copy brought to the reference's level clips as the reference does; a loud one is scaled down
    assert clipped_fraction_at_level(_sine(amplitude=0.1), full_scale) == pytest.approx(clipped_fraction(full_scale))
    assert clipped_fraction(_sine(amplitude=1.5)) > 0.5
    assert clipped_fraction_at_level(_sine(amplitude=1.5), _sine(amplitude=0.5)) == 0.0
    # at the same RMS, a square wave (crest factor 1) stays under full scale and a spike train (crest factor 10) clips
    square = np.sign(_sine(amplitude=1.0)).astype(np.float32) * 0.01
    assert clipped_fraction_at_level(square, full_scale) == 0.0
    spikes = np.zeros(RATE, dtype=np.float32)
    spikes[::100] = 0.01
    assert clipped_fraction_at_level(spikes, full_scale) == pytest.approx(0.01)
    assert clipped_fraction_at_level(np.zeros(RATE, dtype=np.float32), full_scale) == 0.0


def test_spectral_distances_are_zero_for_identity_and_grow_with_the_difference():
    clean = _sine()
    noise = np.random.default_rng(0).normal(0, 1, clean.shape).astype(np.float32)
    assert multi_resolution_stft_distance(clean, clean) == pytest.approx(0.0, abs=1e-9)
    assert mel_distance(clean, clean, RATE) == pytest.approx(0.0, abs=1e-9)
    small = multi_resolution_stft_distance(clean + 0.01 * noise, clean)
    large = multi_resolution_stft_distance(clean + 0.2 * noise, clean)
    assert 0 < small < large
    assert 0 < mel_distance(clean + 0.01 * noise, clean, RATE) < mel_distance(clean + 0.2 * noise, clean, RATE)
    # a level change alone: the mel distance is the log of the gain (white noise fills every band)
    assert mel_distance(2 * noise, noise, RATE) == pytest.approx(math.log(2), rel=1e-6)


def test_spectral_flatness_tells_a_tone_from_noise_and_ignores_silence():
    noise = np.random.default_rng(0).normal(0, 0.1, RATE * 2)
    # each bin of white noise's power is exponential: geometric / arithmetic mean = exp(-Euler's gamma)
    assert spectral_flatness(noise) == pytest.approx(math.exp(-0.5772), rel=0.03)
    tone = _sine(seconds=2.0).astype(np.float64)
    assert spectral_flatness(tone) < 1e-3
    harmonics = sum(_sine(frequency=220.0 * k, amplitude=0.3 / k, seconds=2.0) for k in range(1, 6))
    assert spectral_flatness(harmonics) < spectral_flatness(harmonics + 0.01 * noise) \
        < spectral_flatness(harmonics + 0.3 * noise) < spectral_flatness(noise)
    # a tone with a second of silence after it: the silent frames are left out, not counted as flat
    assert spectral_flatness(np.concatenate([tone, np.zeros(RATE)])) < 1e-3
    assert spectral_flatness(np.zeros(RATE)) == 0.0
    assert spectral_flatness(np.stack([noise, noise])) == pytest.approx(spectral_flatness(noise))
    with pytest.raises(ValueError, match="n_fft must be an int >= 16"):
        spectral_flatness(noise, n_fft=8)
    with pytest.raises(ValueError, match="floor_db must be a negative number"):
        spectral_flatness(noise, floor_db=0)


def test_bad_input():
    with pytest.raises(ValueError, match="NaN or infinite"):
        level_db(np.array([0.0, np.nan]))
    with pytest.raises(TypeError, match="floating-point"):
        level_db(np.zeros(10, dtype=np.int16))
    with pytest.raises(ValueError, match="differ in length by more than 1 %"):
        level_difference_db(np.zeros(100, dtype=np.float32), np.zeros(200, dtype=np.float32))
    with pytest.raises(ValueError, match="channel"):
        level_difference_db(np.zeros((2, 100), dtype=np.float32), np.zeros((1, 100), dtype=np.float32))
    with pytest.raises(ValueError, match="samples > 0"):
        clipped_fraction(np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match="differ in length"):
        clipped_fraction_at_level(np.ones(100, dtype=np.float32), np.ones(300, dtype=np.float32))
