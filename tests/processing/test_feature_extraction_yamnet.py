"""Tests of `YamnetFeatureExtractor`: the log-mel patches against a direct numpy computation of YAMNet's reference
pipeline, patch counts, padded batches, input kinds, bad input, save/load."""

import io
import math
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import run_docstring_examples
from transformers import BatchFeature
from transformers.audio_utils import mel_filter_bank

from soundlm.processing import AudioInputError, resample
from soundlm.processing.feature_extraction_yamnet import YamnetFeatureExtractor, mel_weight_matrix

SR = 16000
REAL_RECORDING = "/usr/share/sounds/alsa/Front_Center.wav"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: the features of a few seconds of audio need no more, and on a shared 2-core machine a
    second thread only makes OpenMP's barriers wait for it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def extractor():
    return YamnetFeatureExtractor()


def reference_patches(waveform: np.ndarray) -> np.ndarray:
    """YAMNet's features.py written out in float64 numpy with its own numbers: pad_waveform, then a framed periodic
    Hann STFT (400 / 160 / 512), |rFFT|, TensorFlow's mel matrix built band by band, log(mel + 0.001), patches of 96
    frames every 48."""
    sample_rate, window_s, hop_s, patch_s, patch_hop_s = 16000.0, 0.025, 0.010, 0.96, 0.48
    # pad_waveform, with the reference's float seconds
    min_samples = int((patch_s + window_s - hop_s) * sample_rate)
    hop_samples = int(patch_hop_s * sample_rate)
    n = max(len(waveform), min_samples)
    hops = math.ceil((n - min_samples) / hop_samples)
    padded = np.zeros(min_samples + hops * hop_samples)
    padded[: len(waveform)] = waveform
    # STFT magnitude
    window_length, hop_length, fft_length = 400, 160, 512
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window_length) / window_length)
    num_frames = 1 + (len(padded) - window_length) // hop_length
    frames = np.stack([padded[i * hop_length : i * hop_length + window_length] for i in range(num_frames)])
    magnitude = np.abs(np.fft.rfft(frames * hann, n=fft_length))  # (frames, 257)
    # tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125, 7500)
    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    bins = mel(np.linspace(0, 8000, 257))
    edges = np.linspace(mel(125.0), mel(7500.0), 66)
    matrix = np.zeros((257, 64))
    for band in range(64):
        lower, center, upper = edges[band : band + 3]
        for k in range(1, 257):  # the DC bin stays 0
            matrix[k, band] = max(0.0, min((bins[k] - lower) / (center - lower), (upper - bins[k]) / (upper - center)))
    log_mel = np.log(magnitude @ matrix + 0.001)
    starts = range(0, num_frames - 96 + 1, 48)
    return np.stack([log_mel[s : s + 96] for s in starts])


def test_patches_match_a_direct_numpy_computation(extractor):
    rng = np.random.default_rng(0)
    t = np.arange(int(2.3 * SR)) / SR
    clips = [
        (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32),  # 2.3 s: 4 patches
        (0.1 * rng.standard_normal(12345)).astype(np.float32),  # shorter than one patch: padded to 1
    ]
    if os.path.exists(REAL_RECORDING):  # alsa-utils' "Front center", 48 kHz
        clips.append(resample(sf.read(REAL_RECORDING, dtype="float32")[0], 48000, SR))
    for clip in clips:
        batch = extractor(clip, sampling_rate=SR)
        expected = reference_patches(clip.astype(np.float64))
        got = batch["input_features"][0].numpy()
        assert got.shape == expected.shape == (extractor.num_patches(len(clip)), 96, 64)
        # float32 (as TensorFlow computes) vs float64: mel energies agree to 1e-4 relative, or to 1e-5 absolute where
        # they are near float32's FFT noise floor (a few 1e-6, far below the 0.001 offset)
        np.testing.assert_allclose(np.exp(got), np.exp(expected), rtol=1e-4, atol=1e-5)
        assert np.abs(got - expected).mean() < 5e-4
        assert batch["patch_mask"][0].tolist() == [1] * len(expected)


def test_mel_matrix_is_tensorflows():
    """The HTK-style matrix of `tf.signal.linear_to_mel_weight_matrix`, which transformers also implements."""
    ours = mel_weight_matrix(64, 257, 16000, 125.0, 7500.0)
    theirs = mel_filter_bank(num_frequency_bins=257, num_mel_filters=64, min_frequency=125.0, max_frequency=7500.0,
                             sampling_rate=16000, norm=None, mel_scale="htk", triangularize_in_mel_space=True)
    assert ours.shape == (257, 64) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert np.all(ours[0] == 0) and ours.max() <= 1.0
    with pytest.raises(ValueError, match="Nyquist"):
        mel_weight_matrix(64, 257, 16000, 125.0, 9000.0)


def test_numbers_and_patch_counts(extractor):
    assert (extractor.window_length, extractor.hop_length, extractor.fft_length) == (400, 160, 512)
    assert (extractor.patch_frames, extractor.patch_hop_frames) == (96, 48)
    # the reference's pad_waveform: one patch up to 0.975 s, then one per started 0.48 s
    cases = {0: 1, 1: 1, 15600: 1, 15601: 2, 15600 + 7680: 2, 15600 + 7681: 3, 16000: 2, 32000: 4, 160000: 20}
    for samples, patches in cases.items():
        assert extractor.num_patches(samples) == patches, samples
        assert extractor.padded_length(samples) == 15600 + (patches - 1) * 7680
    for samples in (1, 15600, 15601, 16000, 48000):
        assert extractor(np.zeros(samples, np.float32), sampling_rate=SR)["input_features"].shape[1] == cases.get(
            samples, extractor.num_patches(samples))


def test_padded_batch_equals_items_alone(extractor):
    rng = np.random.default_rng(1)
    clips = [(0.2 * rng.standard_normal(n)).astype(np.float32) for n in (8000, 40000, 16000)]
    batch = extractor(clips, sampling_rate=SR)
    counts = [extractor.num_patches(len(c)) for c in clips]
    assert batch["input_features"].shape == (3, max(counts), 96, 64)
    assert batch["patch_mask"].dtype == torch.int64
    assert batch["patch_mask"].sum(-1).tolist() == counts
    for index, clip in enumerate(clips):
        alone = extractor(clip, sampling_rate=SR)["input_features"][0]
        assert torch.equal(batch["input_features"][index, : counts[index]], alone)
        assert torch.all(batch["input_features"][index, counts[index] :] == extractor.padding_value)


def test_log_mel_patches_ignores_samples_past_each_length(extractor):
    rng = np.random.default_rng(2)
    waveforms = torch.from_numpy((0.3 * rng.standard_normal((2, 30000))).astype(np.float32))
    features, mask = extractor.log_mel_patches(waveforms, [12000, 30000])
    clean = waveforms.clone()
    clean[0, 12000:] = 0
    assert torch.equal(features[0, :1], extractor.log_mel_patches(clean[:1, :12000])[0][0])
    assert mask.tolist() == [[True, False, False], [True, True, True]]
    with pytest.raises(ValueError, match="lengths"):
        extractor.log_mel_patches(waveforms, [40000, 1])


def test_input_kinds_rates_and_channels(extractor, tmp_path):
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    reference = extractor(tone, sampling_rate=SR)["input_features"]
    # stereo of two equal channels, in both layouts, and as a tensor
    for item in (np.stack([tone, tone]), np.stack([tone, tone]).T, torch.from_numpy(np.stack([tone, tone]))):
        assert torch.equal(extractor(item, sampling_rate=SR)["input_features"], reference)
    # int16 PCM
    pcm = (tone * 32767).astype(np.int16)  # scaled by 1 / 32768; quantisation noise shows in the empty bands only
    strong = reference > 0
    torch.testing.assert_close(extractor(pcm, sampling_rate=SR)["input_features"][strong], reference[strong],
                               atol=1e-3, rtol=0)
    # files, dicts and bytes at 44.1 kHz are resampled to 16 kHz (same patch count, similar features)
    t44 = np.arange(44100) / 44100
    tone44 = (0.5 * np.sin(2 * np.pi * 1000 * t44)).astype(np.float32)
    path = tmp_path / "tone.wav"
    sf.write(path, tone44, 44100, subtype="FLOAT")
    buffer = io.BytesIO()
    sf.write(buffer, tone44, 44100, format="WAV", subtype="FLOAT")
    batch = extractor([str(path), path, {"path": str(path)}, {"bytes": buffer.getvalue()},
                       {"array": tone44, "sampling_rate": 44100}])
    assert batch["input_features"].shape == (5, 2, 96, 64)
    for row in batch["input_features"]:
        assert torch.equal(row, batch["input_features"][0])
    strong = reference[0, 0] > 0  # bands with energy: resampling changes them by a few 1e-3 nats
    torch.testing.assert_close(batch["input_features"][0, 0][strong], reference[0, 0][strong], atol=0.05, rtol=0)
    if not os.path.exists(REAL_RECORDING):
        return
    # a real recording (48 kHz)
    audio, rate = sf.read(REAL_RECORDING, dtype="float32")
    real = extractor(REAL_RECORDING)
    assert real["patch_mask"].sum().item() == extractor.num_patches(round(len(audio) * SR / rate))
    assert torch.isfinite(real["input_features"]).all()


def test_return_types(extractor):
    clip = np.zeros(20000, np.float32)
    batch = extractor(clip, sampling_rate=SR, return_tensors="np")
    assert isinstance(batch, BatchFeature) and isinstance(batch["input_features"], np.ndarray)
    assert batch["input_features"].dtype == np.float32 and batch["patch_mask"].dtype == np.int64
    assert sorted(extractor(clip, sampling_rate=SR, return_patch_mask=False)) == ["input_features"]
    # digital silence: log(0 + 0.001) everywhere
    assert torch.allclose(extractor(clip, sampling_rate=SR)["input_features"], torch.tensor(math.log(0.001)))


def test_bad_input(extractor):
    with pytest.raises(AudioInputError, match="item 1 of the batch") as error:
        extractor([np.zeros(100, np.float32), np.full(100, np.nan, np.float32)], sampling_rate=SR)
    assert error.value.category == "non_finite"
    with pytest.raises(AudioInputError) as error:
        extractor(np.zeros((6, 1000), np.float32), sampling_rate=SR)
    assert error.value.category == "channels"
    assert extractor.__class__(downmix=True)(np.zeros((6, 1000), np.float32), sampling_rate=SR)["input_features"].shape[
        0] == 1
    with pytest.raises(AudioInputError) as error:
        extractor("/no/such/file.wav")
    assert error.value.category == "unreadable"
    with pytest.raises(ValueError, match="sampling_rate"):
        extractor(np.zeros(100, np.float32), sampling_rate=0)
    with pytest.raises(ValueError, match="empty list"):
        extractor([], sampling_rate=SR)
    with pytest.raises(ValueError, match="Nyquist"):
        YamnetFeatureExtractor(sampling_rate=8000)  # 7500 Hz is above 4 kHz


def test_save_load_round_trip(extractor, tmp_path):
    custom = YamnetFeatureExtractor(patch_hop_seconds=0.24)
    custom.save_pretrained(tmp_path)
    loaded = YamnetFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == custom.to_dict()
    assert loaded.patch_hop_frames == 24
    clip = np.random.default_rng(3).standard_normal(30000).astype(np.float32)
    features = custom(clip, sampling_rate=SR)["input_features"]
    assert torch.equal(loaded(clip, sampling_rate=SR)["input_features"], features)
    assert features.shape[1] == 1 + math.ceil((30000 - 15600) / 3840)


def test_docstring_example_runs():
    found, failed = run_docstring_examples(YamnetFeatureExtractor, "YamnetFeatureExtractor")
    assert found
    assert failed == 0
