"""Tests of `MSNFeatureExtractor`: every input kind, resampling, channels, crop/pad, round trip, bad input."""

import ast
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import run_docstring_examples
from transformers import BatchFeature

from soundlm.processing import MSNFeatureExtractor, audio_io
from soundlm.processing import feature_extraction_msn as fe_module

REAL_RECORDING = "/usr/share/sounds/alsa/Front_Center.wav"
SR = 44100


def sine(freq: float, sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return np.repeat(np.sin(2 * np.pi * freq * t)[None], channels, axis=0).astype(np.float32)


def ramp(samples: int) -> np.ndarray:
    """Mono ramp whose value at sample i is i / samples: crops can be located from their first value."""
    return (np.arange(samples, dtype=np.float64) / samples).astype(np.float32)


@pytest.fixture
def extractor():
    return MSNFeatureExtractor(clip_seconds=1.0)


class _Samples:
    def __init__(self, data, sample_rate):
        self.data, self.sample_rate = data, sample_rate


class FakeAudioDecoder:
    """Stands in for the torchcodec `AudioDecoder` that `datasets>=4` yields (torchcodec is not installed)."""

    def __init__(self, data: torch.Tensor, sample_rate: int):
        self._samples = _Samples(data, sample_rate)

    def get_all_samples(self):
        return self._samples


# ------------------------------------------------------------------------------------------------------------
# shapes for every input kind


def lengths(batch) -> list[int]:
    """Real samples per item: the padding mask's sum."""
    return [int(n) for n in batch["padding_mask"].sum(-1)]


def check_batch(batch, batch_size, channels=2, samples=SR):
    assert isinstance(batch, BatchFeature)
    assert batch["input_values"].shape == (batch_size, channels, samples)
    assert batch["input_values"].dtype == torch.float32
    assert batch["padding_mask"].shape == (batch_size, samples)
    assert batch["padding_mask"].dtype == torch.int64
    assert sorted(batch) == ["input_values", "padding_mask"]  # what the tokenizer's encode and forward take


def test_numpy_mono(extractor):
    batch = extractor(np.full(SR // 2, 0.5, dtype=np.float32), sampling_rate=SR)
    check_batch(batch, 1)
    assert lengths(batch) == [SR // 2]


def test_numpy_stereo_both_layouts(extractor):
    stereo = np.stack([np.full(SR, 0.1), np.full(SR, -0.2)]).astype(np.float32)
    for audio in (stereo, stereo.T):
        batch = extractor(audio, sampling_rate=SR)
        check_batch(batch, 1)
        np.testing.assert_allclose(batch["input_values"][0, 0].numpy(), 0.1)
        np.testing.assert_allclose(batch["input_values"][0, 1].numpy(), -0.2)


def test_torch_tensor(extractor):
    batch = extractor(torch.full((2, 1000), 0.25), sampling_rate=SR)
    check_batch(batch, 1)
    assert lengths(batch) == [1000]
    assert torch.all(batch["input_values"][0, :, :1000] == 0.25)


def test_list_batch_mixed_kinds(extractor, tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, np.zeros((4410, 2), dtype=np.float32), SR)
    items = [
        np.zeros(100, dtype=np.float32),
        torch.zeros(2, 200),
        str(path),
        {"array": np.zeros(300, dtype=np.float32), "sampling_rate": SR},
        FakeAudioDecoder(torch.zeros(2, 400), SR),
        [0.0] * 500,  # a nested list is one clip
    ]
    batch = extractor(items, sampling_rate=SR)
    check_batch(batch, len(items))
    assert lengths(batch) == [100, 200, 4410, 300, 400, 500]


def test_path_to_wav(extractor, tmp_path):
    path = tmp_path / "tone.wav"
    audio = sine(440.0, SR, 0.5, channels=2)
    sf.write(path, audio.T, SR, subtype="FLOAT")
    for item in (path, str(path), [path, path]):
        batch = extractor(item)
        check_batch(batch, 2 if isinstance(item, list) else 1)
        np.testing.assert_array_equal(batch["input_values"][0, :, : SR // 2].numpy(), audio)


def test_datasets_dicts(extractor, tmp_path):
    path = tmp_path / "clip.flac"
    sf.write(path, np.full((1000, 1), 0.5, dtype=np.float32), SR)
    buffer = io.BytesIO()
    sf.write(buffer, np.full((700, 2), 0.5, dtype=np.float32), SR, format="WAV")
    items = [
        {"array": np.full(500, 0.5, dtype=np.float64), "sampling_rate": SR, "path": "ignored.wav"},
        {"path": str(path)},
        {"path": None, "bytes": buffer.getvalue()},
    ]
    batch = extractor(items)
    check_batch(batch, 3)
    assert lengths(batch) == [500, 1000, 700]
    for i, n in enumerate([500, 1000, 700]):
        np.testing.assert_allclose(batch["input_values"][i, :, :n].numpy(), 0.5, atol=1e-4)


def test_decoder_keeps_stereo(extractor):
    # datasets' own AudioDecoder["array"] downmixes to mono; the extractor reads all channels instead.
    data = torch.stack([torch.full((300,), 0.1), torch.full((300,), -0.1)])
    batch = extractor(FakeAudioDecoder(data, SR))
    assert torch.allclose(batch["input_values"][0, :, :300], data)


def test_three_dim_input_is_a_batch(extractor):
    batch = extractor(torch.zeros(3, 2, 1000), sampling_rate=SR)
    check_batch(batch, 3)


def test_return_numpy(extractor):
    batch = extractor([np.zeros(10, dtype=np.float32)], sampling_rate=SR, return_tensors="np")
    assert isinstance(batch["input_values"], np.ndarray) and batch["input_values"].dtype == np.float32
    assert batch["input_values"].shape == (1, 2, SR)
    assert isinstance(batch["padding_mask"], np.ndarray) and batch["padding_mask"].dtype == np.int64
    assert lengths(batch) == [10]


# ------------------------------------------------------------------------------------------------------------
# resampling and channels


def test_resampling_preserves_frequency(extractor):
    batch = extractor(sine(1000.0, 16000, 1.0), sampling_rate=16000, return_tensors="np")
    assert lengths(batch) == [SR]
    audio = batch["input_values"][0, 0]
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    peak = np.fft.rfftfreq(audio.size, 1 / SR)[np.argmax(spectrum)]
    assert abs(peak - 1000.0) <= 1.0


def test_per_item_rates(extractor):
    items = [
        {"array": np.zeros(16000, dtype=np.float32), "sampling_rate": 16000},
        {"array": np.zeros(11025, dtype=np.float32), "sampling_rate": 22050},
        np.zeros(24000, dtype=np.float32),  # at the call's sampling_rate
    ]
    batch = extractor(items, sampling_rate=48000)
    assert lengths(batch) == [SR, SR // 2, SR // 2]


def test_mono_is_duplicated_to_stereo(extractor):
    mono = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    values = extractor(mono, sampling_rate=SR)["input_values"][0, :, :1000].numpy()
    np.testing.assert_array_equal(values[0], mono)
    np.testing.assert_array_equal(values[1], mono)


def test_stereo_is_averaged_to_mono():
    extractor = MSNFeatureExtractor(audio_channels=1, clip_seconds=None)
    stereo = np.array([[1.0, 0.5, -1.0, 0.2], [0.0, 0.5, 1.0, 0.4]], dtype=np.float32)
    batch = extractor(stereo, sampling_rate=SR)
    assert batch["input_values"].shape == (1, 1, 2048)
    np.testing.assert_allclose(batch["input_values"][0, 0, :4].numpy(), [0.5, 0.5, 0.0, 0.3], rtol=1e-6)


def test_downmix_multichannel():
    extractor = MSNFeatureExtractor(clip_seconds=None, hop_length=10, downmix=True)
    surround = np.arange(6, dtype=np.float32)[:, None].repeat(20, axis=1) / 10  # channel k holds k / 10
    batch = extractor(surround, sampling_rate=SR)
    assert batch["input_values"].shape == (1, 2, 20)
    np.testing.assert_allclose(batch["input_values"].numpy(), 0.25, rtol=1e-6)


# ------------------------------------------------------------------------------------------------------------
# crop and pad


def test_crop_and_pad_lengths_and_masks():
    extractor = MSNFeatureExtractor(clip_seconds=1.0, padding_value=0.25)
    short, long = ramp(SR // 2), ramp(3 * SR // 2)
    batch = extractor([short, long], sampling_rate=SR, return_tensors="np")
    values, mask = batch["input_values"], batch["padding_mask"]
    assert values.shape == (2, 2, SR)
    assert lengths(batch) == [SR // 2, SR]
    assert mask[0, : SR // 2].all() and not mask[0, SR // 2 :].any()
    assert mask[1].all()
    np.testing.assert_array_equal(values[0, 0, : SR // 2], short)
    assert (values[0, :, SR // 2 :] == 0.25).all()  # padding_value
    np.testing.assert_array_equal(values[1, 1], long[:SR])  # crop="start" keeps the beginning


def test_random_crop_is_reproducible_and_a_window():
    extractor = MSNFeatureExtractor(clip_seconds=0.1)
    clip = extractor.clip_samples
    long = ramp(10 * clip)
    items = [long, long, long]

    def offsets(seed):
        values = extractor(items, sampling_rate=SR, crop="random", seed=seed, return_tensors="np")[
            "input_values"
        ]
        starts = []
        for window in values[:, 0]:
            start = int(np.searchsorted(long, window[0]))
            np.testing.assert_array_equal(window, long[start : start + clip])  # a contiguous window
            starts.append(start)
        return starts

    first = offsets(1234)
    assert first == offsets(1234)
    assert first != offsets(4321)
    assert len(set(first)) > 1  # items in a batch get different windows
    assert all(0 <= s <= 9 * clip for s in first)


def test_no_clip_length_pads_to_whole_frames():
    extractor = MSNFeatureExtractor(clip_seconds=None, hop_length=100)
    batch = extractor([np.ones(250, dtype=np.float32), np.ones(120, dtype=np.float32)], sampling_rate=SR)
    assert batch["input_values"].shape == (2, 2, 300)
    assert batch["padding_mask"].sum(dim=1).tolist() == [250, 120]
    assert not hasattr(extractor, "num_frames")  # the frame count is the tokenizer's one rule


def test_default_clip_is_ten_seconds_of_the_vae_rate():
    extractor = MSNFeatureExtractor()
    assert extractor.clip_samples == 441000 and extractor.hop_length == 2048


def test_truncation_false_keeps_long_items(extractor):
    batch = extractor(
        [np.ones(SR + 10, dtype=np.float32), np.ones(5, dtype=np.float32)], sampling_rate=SR, truncation=False
    )
    assert batch["input_values"].shape == (2, 2, SR + 10)
    assert lengths(batch) == [SR + 10, 5]


def test_max_length_seconds_overrides_clip(extractor):
    batch = extractor(np.ones(SR, dtype=np.float32), sampling_rate=SR, max_length_seconds=0.5)
    assert batch["input_values"].shape == (1, 2, SR // 2)
    assert lengths(batch) == [SR // 2]


def test_no_padding():
    extractor = MSNFeatureExtractor(clip_seconds=None)
    same = extractor([np.ones(30, dtype=np.float32)] * 2, sampling_rate=SR, padding=False)
    assert same["input_values"].shape == (2, 2, 30)
    ragged = [np.ones(30, dtype=np.float32), np.ones(40, dtype=np.float32)]
    as_lists = extractor(ragged, sampling_rate=SR, padding=False, return_tensors=None)
    assert [v.shape for v in as_lists["input_values"]] == [(2, 30), (2, 40)]
    with pytest.raises(ValueError, match=r"different lengths \[30, 40\].*use padding=True"):
        extractor(ragged, sampling_rate=SR, padding=False)


def test_left_padding():
    extractor = MSNFeatureExtractor(clip_seconds=None, hop_length=8, padding_side="left")
    batch = extractor(np.ones(5, dtype=np.float32), sampling_rate=SR)
    assert batch["padding_mask"][0].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    assert batch["input_values"][0, 0].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]


def test_no_padding_mask():
    extractor = MSNFeatureExtractor(clip_seconds=0.01, return_padding_mask=False)
    batch = extractor(np.ones(5, dtype=np.float32), sampling_rate=SR)
    assert "padding_mask" not in batch and batch["input_values"].shape == (1, 2, 441)
    assert "padding_mask" in extractor(
        np.ones(5, dtype=np.float32), sampling_rate=SR, return_padding_mask=True
    )


# ------------------------------------------------------------------------------------------------------------
# serialisation


def test_save_pretrained_round_trip(tmp_path):
    original = MSNFeatureExtractor(
        sampling_rate=48000,
        audio_channels=1,
        clip_seconds=4.5,
        padding_value=-0.5,
        downmix=True,
        hop_length=960,
        return_padding_mask=False,
        padding_side="left",
    )
    original.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["feature_extractor_type"] == "MSNFeatureExtractor"
    loaded = MSNFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == original.to_dict()
    expected = {
        "sampling_rate": 48000,
        "audio_channels": 1,
        "feature_size": 1,
        "clip_seconds": 4.5,
        "padding_value": -0.5,
        "downmix": True,
        "hop_length": 960,
        "return_padding_mask": False,
        "padding_side": "left",
    }
    for name, value in expected.items():
        assert getattr(loaded, name) == value, name
        assert saved[name] == value, name
    # and it behaves the same
    audio = np.linspace(-1, 1, 100_000).astype(np.float32)
    a, b = original(audio, sampling_rate=16000), loaded(audio, sampling_rate=16000)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_defaults_round_trip_with_clip_none(tmp_path):
    MSNFeatureExtractor(clip_seconds=None).save_pretrained(tmp_path)
    loaded = MSNFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.clip_seconds is None and loaded.clip_samples is None
    assert (loaded.sampling_rate, loaded.audio_channels, loaded.hop_length) == (44100, 2, 2048)


def test_module_imports_are_hub_exportable():
    """The exported folder holds only these two files: nothing but third-party and `.audio_io` imports."""
    for module in (fe_module, audio_io):
        tree = ast.parse(Path(module.__file__).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and node.module == "audio_io", f"{module.__name__}: {ast.dump(node)}"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.split(".")[0] == "soundlm" for n in names), (
                    f"{module.__name__} imports {names}"
                )


def test_remote_code_loading(tmp_path):
    """The config with `auto_map` and the two files load with trust_remote_code, without soundlm."""
    export = tmp_path / "export"
    MSNFeatureExtractor(clip_seconds=0.5, hop_length=512).save_pretrained(export)
    for module in (fe_module, audio_io):
        shutil.copy(module.__file__, export)
    config = json.loads((export / "preprocessor_config.json").read_text())
    config["auto_map"] = {"AutoFeatureExtractor": "feature_extraction_msn.MSNFeatureExtractor"}
    (export / "preprocessor_config.json").write_text(json.dumps(config))
    script = (
        "import sys, numpy as np\n"
        "from transformers import AutoFeatureExtractor\n"
        f"fe = AutoFeatureExtractor.from_pretrained({str(export)!r}, trust_remote_code=True)\n"
        "assert type(fe).__module__.startswith('transformers_modules'), type(fe).__module__\n"
        "assert not any(m.split('.')[0] == 'soundlm' for m in sys.modules)\n"
        "out = fe(np.zeros(100, dtype=np.float32), sampling_rate=16000)\n"
        "print(tuple(out['input_values'].shape), fe.hop_length)\n"
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["(1,", "2,", "22050)", "512"]


# ------------------------------------------------------------------------------------------------------------
# bad input: one test per problem, each naming the item and the problem


def test_bad_empty_audio(extractor):
    with pytest.raises(ValueError, match=r"item 1 of the batch: audio is empty"):
        extractor([np.ones(10, dtype=np.float32), np.zeros(0, dtype=np.float32)], sampling_rate=SR)


def test_bad_empty_file_names_path(extractor, tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((0, 2), dtype=np.float32), SR)
    with pytest.raises(ValueError, match=r"item 0 of the batch \(file '.*silence\.wav'\): audio is empty"):
        extractor(path)


def test_bad_all_nan(extractor):
    with pytest.raises(ValueError, match=r"item 0 of the batch: audio is all NaN"):
        extractor(np.full(10, np.nan, dtype=np.float32), sampling_rate=SR)


def test_bad_some_inf(extractor):
    audio = np.ones(10, dtype=np.float32)
    audio[4] = np.inf
    with pytest.raises(ValueError, match=r"item 2 of the batch: audio contains 0 NaN and 1 infinite"):
        extractor([np.ones(3), np.ones(3), audio], sampling_rate=SR)


@pytest.mark.parametrize(
    ("audio", "dtype"),
    [(np.ones(10, dtype=bool), "bool"), (torch.ones(10, dtype=torch.complex64), "complex64")],
)
def test_bad_dtype(extractor, audio, dtype):
    with pytest.raises(TypeError, match=rf"item 0 of the batch: audio has dtype .*{dtype}"):
        extractor(audio, sampling_rate=SR)


def test_bad_too_many_channels(extractor):
    surround = np.zeros((6, 1000), dtype=np.float32)
    with pytest.raises(ValueError, match=r"item 1 of the batch: audio has 6 channels .*downmix=True"):
        extractor([np.zeros(10, dtype=np.float32), surround], sampling_rate=SR)


def test_bad_unreadable_file(extractor, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF garbage")
    with pytest.raises(ValueError, match=r"item 0 of the batch: cannot read audio file .*broken\.wav"):
        extractor([str(bad)])


def test_bad_missing_file_in_dict(extractor, tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(
        ValueError, match=r"item 1 of the batch: cannot read audio file .*missing\.wav.*: no such file"
    ):
        extractor([np.zeros(4, dtype=np.float32), {"path": str(missing)}], sampling_rate=SR)


def test_bad_sampling_rate_argument(extractor):
    with pytest.raises(ValueError, match=r"sampling_rate must be a positive integer in Hz, got 0"):
        extractor(np.zeros(10, dtype=np.float32), sampling_rate=0)
    with pytest.raises(ValueError, match=r"sampling_rate must be a positive integer in Hz, got 22050.5"):
        extractor(np.zeros(10, dtype=np.float32), sampling_rate=22050.5)


def test_bad_sampling_rate_in_dict(extractor):
    items = [{"array": np.zeros(10), "sampling_rate": 16000}, {"array": np.zeros(10), "sampling_rate": -1}]
    with pytest.raises(
        ValueError, match=r"item 1 of the batch: sampling_rate must be a positive integer in Hz, got -1"
    ):
        extractor(items)


def test_bad_input_type(extractor):
    with pytest.raises(TypeError, match=r"audio must be .*, or a list of those, got int"):
        extractor(5)
    with pytest.raises(
        TypeError, match=r"item 1 of the batch: expected .*, got float \(a list is read as a batch"
    ):
        extractor([np.zeros(4), 0.5], sampling_rate=SR)
    with pytest.raises(ValueError, match=r"audio is an empty list"):
        extractor([])


def test_bad_dict_keys(extractor):
    with pytest.raises(
        ValueError, match=r"item 0 of the batch: a dict must hold 'array'.*got keys \['audio'\]"
    ):
        extractor({"audio": np.zeros(4)})


def test_bad_call_options(extractor):
    audio = np.zeros(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"crop must be 'start' or 'random', got 'middle'"):
        extractor(audio, sampling_rate=SR, crop="middle")
    with pytest.raises(ValueError, match=r"padding='max_length' needs a clip length"):
        MSNFeatureExtractor(clip_seconds=None)(audio, sampling_rate=SR, padding="max_length")
    with pytest.raises(
        ValueError, match=r"max_length_seconds must be a positive number of seconds or None, got 0"
    ):
        extractor(audio, sampling_rate=SR, max_length_seconds=0)
    with pytest.raises(ValueError, match=r"padding must be True, False.*got 'sideways'"):
        extractor(audio, sampling_rate=SR, padding="sideways")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sampling_rate": 0}, r"sampling_rate must be a positive integer in Hz, got 0"),
        ({"audio_channels": 0}, r"audio_channels must be a positive integer, got 0"),
        ({"clip_seconds": -1.0}, r"clip_seconds must be a positive number of seconds or None, got -1.0"),
        ({"hop_length": 0}, r"hop_length must be a positive integer number of samples, got 0"),
        ({"padding_value": float("nan")}, r"padding_value must be a finite number, got nan"),
        ({"feature_size": 1}, r"feature_size \(1\) must equal audio_channels \(2\)"),
        ({"padding_side": "top"}, r"padding_side must be 'right' or 'left', got 'top'"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MSNFeatureExtractor(**kwargs)


def test_missing_sampling_rate_warns_and_assumes_own_rate(extractor, monkeypatch):
    messages = []
    monkeypatch.setattr(audio_io, "_warn_once", messages.append)  # the extractor reads its audio through audio_io
    batch = extractor(np.zeros(100, dtype=np.float32))
    assert lengths(batch) == [100]  # no resampling
    assert len(messages) == 1 and "sampling_rate" in messages[0] and "44100 Hz" in messages[0]
    messages.clear()
    extractor({"array": np.zeros(100), "sampling_rate": 16000})  # the item carries its rate
    extractor(np.zeros(100), sampling_rate=SR)
    assert messages == []


# ------------------------------------------------------------------------------------------------------------
# documentation and real audio


def test_docstring_example_runs():
    found, failed = run_docstring_examples(MSNFeatureExtractor, "MSNFeatureExtractor")
    assert found
    assert failed == 0


@pytest.mark.skipif(not os.path.exists(REAL_RECORDING), reason=f"{REAL_RECORDING} not installed (alsa-utils)")
def test_real_recording():
    extractor = MSNFeatureExtractor()  # paper setting: 10 s of 44.1 kHz stereo
    info = sf.info(REAL_RECORDING)
    batch = extractor(REAL_RECORDING, return_tensors="np")
    expected = round(info.frames * SR / info.samplerate)
    assert batch["input_values"].shape == (1, 2, 441000)
    assert abs(lengths(batch)[0] - expected) <= 1
    n = lengths(batch)[0]
    values = batch["input_values"][0]
    np.testing.assert_array_equal(values[0], values[1])  # mono recording duplicated
    assert np.sqrt(np.mean(values[0, :n] ** 2)) > 1e-3 and not values[:, n:].any()
    assert batch["padding_mask"][0].sum() == n
