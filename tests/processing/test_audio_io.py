"""Tests of `soundlm.processing.audio_io`: reading, validation, resampling and channel mapping."""

import io
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import run_docstring_examples

from soundlm.processing import audio_io
from soundlm.processing.audio_io import (
    AudioInputError,
    check_sampling_rate,
    load_audio,
    resample,
    to_channels,
    validate_audio,
)

REAL_RECORDING = "/usr/share/sounds/alsa/Front_Center.wav"


def sine(freq: float, sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return np.repeat(np.sin(2 * np.pi * freq * t)[None], channels, axis=0).astype(np.float32)


def peak_frequency(audio: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[-1])))
    return float(np.fft.rfftfreq(audio.shape[-1], 1 / sr)[np.argmax(spectrum)])


# ------------------------------------------------------------------------------------------------------------
# check_sampling_rate


@pytest.mark.parametrize("value", [16000, np.int64(44100), 48000.0])
def test_check_sampling_rate_accepts_integers(value):
    out = check_sampling_rate(value)
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value", [0, -16000, 44100.5, True, "44100", float("nan"), None])
def test_check_sampling_rate_rejects(value):
    with pytest.raises(ValueError, match=r"sampling_rate must be a positive integer in Hz, got"):
        check_sampling_rate(value)


def test_check_sampling_rate_message_names_value():
    with pytest.raises(ValueError, match=r"^orig_sr must be a positive integer in Hz, got 0$"):
        check_sampling_rate(0, "orig_sr")


# ------------------------------------------------------------------------------------------------------------
# load_audio


def test_load_audio_stereo_wav_shape_rate_and_values(tmp_path):
    data = np.stack([np.linspace(-0.5, 0.5, 1000), np.linspace(0.25, -0.25, 1000)]).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, data.T, 22050, subtype="FLOAT")
    audio, sr = load_audio(path)
    assert sr == 22050
    assert audio.dtype == np.float32 and audio.shape == (2, 1000)
    np.testing.assert_array_equal(audio, data)


def test_load_audio_mono_pcm16_is_scaled(tmp_path):
    path = tmp_path / "mono.wav"
    sf.write(path, np.full(100, 0.5, dtype=np.float32), 8000, subtype="PCM_16")
    audio, sr = load_audio(str(path))
    assert audio.shape == (1, 100) and sr == 8000
    np.testing.assert_allclose(audio, 0.5, atol=1 / 32768)


def test_load_audio_start_end_select_samples(tmp_path):
    ramp = (np.arange(1000, dtype=np.float32) / 1000)[:, None]
    path = tmp_path / "ramp.wav"
    sf.write(path, ramp, 1000, subtype="FLOAT")
    audio, _ = load_audio(path, start=0.1, end=0.25)
    np.testing.assert_array_equal(audio[0], ramp[100:250, 0])
    audio, _ = load_audio(path, start=0.9)
    assert audio.shape == (1, 100)
    audio, _ = load_audio(path, end=5.0)  # past the end: reads to the end
    assert audio.shape == (1, 1000)


def test_load_audio_from_bytes(tmp_path):
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((50, 2), dtype=np.float32), 16000, format="WAV")
    audio, sr = load_audio(io.BytesIO(buffer.getvalue()))
    assert audio.shape == (2, 50) and sr == 16000


def test_load_audio_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(ValueError, match=r"cannot read audio file .*nope\.wav.*no such file"):
        load_audio(path)


def test_load_audio_unreadable_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio")
    with pytest.raises(ValueError, match=r"cannot read audio file .*notes\.wav.*: \S"):
        load_audio(path)


def test_load_audio_bad_window(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, np.zeros(100, dtype=np.float32), 1000)
    with pytest.raises(ValueError, match=r"start=0\.5 s is past the end of audio file .*short\.wav"):
        load_audio(path, start=0.5)
    with pytest.raises(ValueError, match=r"end must be greater than start"):
        load_audio(path, start=0.05, end=0.05)
    with pytest.raises(ValueError, match=r"start must be a finite number of seconds >= 0"):
        load_audio(path, start=-1.0)


# ------------------------------------------------------------------------------------------------------------
# resample


def test_resample_preserves_sine_frequency():
    audio = sine(1000.0, 16000, 1.0, channels=2)
    out = resample(audio, 16000, 44100)
    assert out.dtype == np.float32 and out.shape == (2, 44100)
    for channel in out:
        assert abs(peak_frequency(channel, 44100) - 1000.0) <= 1.0
    # Amplitude is kept (away from the edges, where the filter rings).
    np.testing.assert_allclose(np.abs(out[:, 2000:-2000]).max(), 1.0, atol=0.02)


def test_resample_down_and_mono_1d():
    out = resample(sine(440.0, 48000, 0.5)[0], 48000, 16000)
    assert out.ndim == 1 and out.shape == (8000,)
    assert abs(peak_frequency(out, 16000) - 440.0) <= 2.0


def test_resample_rejects_aliases():
    # 10 kHz is above the 8 kHz Nyquist limit of 16 kHz audio: a band-limited resampler removes it
    # instead of folding it down to 6 kHz.
    out = resample(sine(10000.0, 48000, 1.0), 48000, 16000)
    assert np.sqrt(np.mean(out[:, 1000:-1000] ** 2)) < 1e-5


def test_resample_same_rate_is_noop():
    audio = np.ones((2, 10), dtype=np.float32)
    assert resample(audio, 44100, 44100) is audio


def test_resample_bad_arguments():
    with pytest.raises(ValueError, match=r"target_sr must be a positive integer in Hz, got 0"):
        resample(np.zeros((1, 10), dtype=np.float32), 16000, 0)
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 3\)"):
        resample(np.zeros((1, 2, 3), dtype=np.float32), 16000, 8000)
    with pytest.raises(ValueError, match=r"empty"):
        resample(np.zeros((2, 0), dtype=np.float32), 16000, 8000)



def test_resampling_that_overflows_is_refused_not_returned():
    """Found by the fuzz test: a finite float32 sample of 9.2e36 (at 1 Hz, up to 8 kHz) overflows in soxr's filter
    sums; the result would hold infinities, so it is refused with the peak named."""
    audio = np.zeros((1, 128), dtype=np.float32)  # the draw hypothesis found
    audio[0, -1] = 9.240257e36
    with pytest.raises(AudioInputError, match=r"from 1 Hz to 8000 Hz overflowed: the audio peaks at 9.24e\+36"):
        resample(audio, 1, 8000)
    assert np.isfinite(resample(audio / 1e36, 1, 8000)).all()  # large but representable: resampled


# ------------------------------------------------------------------------------------------------------------
# to_channels


def test_to_channels_mono_to_stereo_duplicates():
    mono = np.array([[0.1, -0.2, 0.3]], dtype=np.float32)
    out = to_channels(mono, 2)
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(out[0], mono[0])
    np.testing.assert_array_equal(out[1], mono[0])


def test_to_channels_stereo_to_mono_averages():
    stereo = np.array([[1.0, 0.5, -1.0], [0.0, 0.5, 1.0]], dtype=np.float32)
    out = to_channels(stereo, 1)
    assert out.shape == (1, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.5, 0.5, 0.0])


def test_to_channels_same_count_is_unchanged():
    stereo = np.zeros((2, 5), dtype=np.float32)
    assert to_channels(stereo, 2) is stereo


def test_to_channels_multichannel_needs_downmix():
    surround = np.arange(6, dtype=np.float32)[:, None].repeat(4, axis=1)  # channel k holds the value k
    with pytest.raises(
        ValueError, match=r"audio has 6 channels but 2 channel\(s\) were expected.*downmix=True"
    ):
        to_channels(surround, 2)
    out = to_channels(surround, 2, downmix=True)
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out, 2.5)


def test_to_channels_bad_target():
    with pytest.raises(ValueError, match=r"channels must be a positive integer, got 0"):
        to_channels(np.zeros((1, 4), dtype=np.float32), 0)


# ------------------------------------------------------------------------------------------------------------
# validate_audio


@pytest.mark.parametrize(
    ("dtype", "value", "expected"),
    [(np.int16, 16384, 0.5), (np.int32, -(2**30), -0.5), (np.int8, 64, 0.5), (np.float64, 0.25, 0.25)],
)
def test_validate_audio_dtypes(dtype, value, expected):
    out = validate_audio(np.full(10, value, dtype=dtype))
    assert out.dtype == np.float32 and out.shape == (1, 10)
    np.testing.assert_allclose(out, expected)


def test_validate_audio_torch_tensors():
    out = validate_audio(torch.full((2, 8), 0.5, dtype=torch.bfloat16))
    assert out.dtype == np.float32 and out.shape == (2, 8)
    np.testing.assert_allclose(out, 0.5)
    out = validate_audio(torch.full((8,), -16384, dtype=torch.int16))
    np.testing.assert_allclose(out, -0.5)


def test_validate_audio_layout_rule():
    assert validate_audio(np.zeros((2, 100), dtype=np.float32)).shape == (2, 100)  # (channels, samples)
    assert validate_audio(np.zeros((100, 2), dtype=np.float32)).shape == (2, 100)  # (samples, channels)
    assert validate_audio(np.zeros((1000, 8), dtype=np.float32)).shape == (8, 1000)
    # More than 8 on the short axis: (channels, samples) is assumed, never transposed.
    assert validate_audio(np.zeros((1000, 9), dtype=np.float32)).shape == (1000, 9)
    assert validate_audio(np.zeros((16, 1000), dtype=np.float32)).shape == (16, 1000)
    assert validate_audio(np.zeros((2, 2), dtype=np.float32)).shape == (2, 2)


def test_validate_audio_transposed_values_are_right():
    frames = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], dtype=np.float32)  # (samples, channels)
    np.testing.assert_array_equal(validate_audio(frames), frames.T)


@pytest.mark.parametrize(
    ("array", "dtype_name"),
    [
        (np.zeros(4, dtype=bool), "bool"),
        (np.zeros(4, dtype=np.complex64), "complex64"),
        (np.array([0.1, None], dtype=object), "object"),
        (np.array(["a", "b"]), "<U1"),
        (np.zeros(4, dtype=np.int64), "int64"),
        (torch.zeros(4, dtype=torch.bool), "torch.bool"),
    ],
)
def test_validate_audio_bad_dtype(array, dtype_name):
    with pytest.raises(TypeError, match=rf"audio has (integer )?dtype {dtype_name}"):
        validate_audio(array)


def test_validate_audio_bad_type():
    with pytest.raises(TypeError, match=r"clip must be a numpy array or a torch tensor, got int"):
        validate_audio(3, name="clip")


@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 100)])
def test_validate_audio_empty(shape):
    with pytest.raises(ValueError, match=r"audio is empty"):
        validate_audio(np.zeros(shape, dtype=np.float32))


def test_validate_audio_all_nan():
    with pytest.raises(ValueError, match=r"audio is all NaN \(20 values\)"):
        validate_audio(np.full((2, 10), np.nan, dtype=np.float32))


def test_validate_audio_counts_nan_and_inf():
    audio = np.zeros(100, dtype=np.float32)
    audio[[3, 5]] = np.nan
    audio[7] = -np.inf
    with pytest.raises(ValueError, match=r"contains 2 NaN and 1 infinite value\(s\) out of 100"):
        validate_audio(audio)


def test_validate_audio_too_many_dims():
    with pytest.raises(ValueError, match=r"got 3-D shape \(1, 2, 10\)"):
        validate_audio(np.zeros((1, 2, 10), dtype=np.float32))
    with pytest.raises(ValueError, match=r"got a scalar"):
        validate_audio(np.array(1.0, dtype=np.float32))


# ------------------------------------------------------------------------------------------------------------
# one error type, categorised where audio is read and validated


def test_every_audio_problem_is_an_audio_input_error_with_its_category(tmp_path):
    import pickle

    from soundlm.processing.audio_io import AUDIO_ERROR_CATEGORIES, AudioInputError

    sf.write(tmp_path / "short.wav", np.zeros(100, dtype=np.float32), 1000)
    (tmp_path / "notes.wav").write_text("this is not audio")
    nan = np.zeros(10, dtype=np.float32)
    nan[3] = np.nan
    cases = {
        "unreadable": [lambda: load_audio(tmp_path / "nope.wav"), lambda: load_audio(tmp_path / "notes.wav")],
        "bad_window": [lambda: load_audio(tmp_path / "short.wav", start=0.5),
                       lambda: load_audio(tmp_path / "short.wav", start=0.05, end=0.01)],
        "empty": [lambda: validate_audio(np.zeros(0, dtype=np.float32)),
                  lambda: resample(np.zeros((1, 0), dtype=np.float32), 8000, 16000)],
        "non_finite": [lambda: validate_audio(nan)],
        "bad_shape": [lambda: validate_audio(np.zeros((1, 2, 3), dtype=np.float32))],
        "channels": [lambda: to_channels(np.zeros((6, 10), dtype=np.float32), 2)],
    }
    for category, calls in cases.items():
        assert category in AUDIO_ERROR_CATEGORIES
        for call in calls:
            with pytest.raises(AudioInputError) as caught:
                call()
            assert caught.value.category == category and isinstance(caught.value, ValueError)
            copy = pickle.loads(pickle.dumps(caught.value))  # crosses process boundaries intact
            assert (copy.category, str(copy)) == (category, str(caught.value))
    with pytest.raises(ValueError, match="category must be one of"):
        AudioInputError("weird", "x")
    assert str(AudioInputError("empty", "x").with_context("item 2")) == "item 2: x"


def test_formats_soundfile_cannot_read_fall_back_to_torchcodec(tmp_path):
    pytest.importorskip("torchcodec", reason="torchcodec is not installed (scripts/test.sh installs soundlm[audio])")
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    sf.write(tmp_path / "tone.wav", sine(440, 16000, 0.5).T, 16000)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(tmp_path / "tone.wav"), "-c:a", "aac",
                    str(tmp_path / "tone.m4a")], check=True)
    audio, sr = load_audio(tmp_path / "tone.m4a")  # AAC: not libsndfile's
    assert sr == 16000 and abs(audio.shape[-1] - 8000) < 2048 and abs(peak_frequency(audio[0], sr) - 440) < 10
    from_bytes, _ = load_audio(io.BytesIO((tmp_path / "tone.m4a").read_bytes()), start=0.1, end=0.3)
    assert from_bytes.shape[-1] == round(0.2 * sr)


# ------------------------------------------------------------------------------------------------------------
# documentation and real audio


def test_docstring_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found, failed = run_docstring_examples(audio_io)
    assert found >= 4
    assert failed == 0


@pytest.mark.skipif(not os.path.exists(REAL_RECORDING), reason=f"{REAL_RECORDING} not installed (alsa-utils)")
def test_real_recording():
    audio, sr = load_audio(REAL_RECORDING)
    info = sf.info(REAL_RECORDING)
    assert sr == info.samplerate
    assert audio.shape == (info.channels, info.frames)
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    rms = float(np.sqrt(np.mean(audio**2)))
    assert rms > 1e-3  # a voice, not silence
    out = resample(validate_audio(audio), sr, 44100)
    assert abs(out.shape[-1] - info.frames * 44100 / sr) <= 1
    # Resampling keeps the loudness of a band-limited voice recording.
    assert abs(float(np.sqrt(np.mean(out**2))) - rms) / rms < 0.05
