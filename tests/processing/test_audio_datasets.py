"""load_audio_dataset: one schema for every input kind, window cutting at the edges, keys, load-time rejections."""

from __future__ import annotations

import csv
import io
import json

import datasets
import numpy as np
import pytest
import soundfile as sf

from soundlm.processing.audio_datasets import (
    AUDIO_DATASET_COLUMNS,
    load_audio_dataset,
    read_row_audio,
    window_spans,
)
from soundlm.processing.audio_io import AudioInputError

RATE = 8000


def _tone(seconds: float, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write(path, audio, rate=RATE):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, subtype="FLOAT" if path.suffix == ".wav" else None)
    return path


def _check_schema(dataset: datasets.Dataset) -> None:
    for name, feature in AUDIO_DATASET_COLUMNS.items():
        assert dataset.features[name] == feature, name
    for row in dataset:
        assert row["end"] - row["start"] == pytest.approx(row["duration"])
        assert 0 <= row["window_index"] < row["num_windows"]
        assert row["windowing"] in ("whole", "cut")
        assert len(row["key"]) == 32 and len(row["content_hash"]) == 64
        assert (row["audio_path"] is None) != (row["audio_bytes"] is None)


def test_csv_manifest_schema_text_and_extra_columns(tmp_path):
    _write(tmp_path / "a.wav", _tone(0.5))
    _write(tmp_path / "sub" / "b.wav", _tone(2.0, 300))
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "start", "end", "caption", "label", "source_id", "licence"])
        writer.writeheader()
        writer.writerow({"path": "a.wav", "caption": "a tone", "label": "beep", "source_id": "s1", "licence": "CC0"})
        writer.writerow({"path": "sub/b.wav", "start": "0.5", "end": "1.25", "caption": "", "source_id": "s2"})
    ds = load_audio_dataset(manifest)
    _check_schema(ds)
    assert len(ds) == 2
    first, second = ds[0], ds[1]
    assert first["audio_path"] == str((tmp_path / "a.wav").resolve())
    assert (first["caption"], first["label"], first["instruction"]) == ("a tone", "beep", None)
    assert first["source_id"] == "m.csv:2" and first["input_source_id"] == "s1" and first["licence"] == "CC0"
    assert (first["start"], first["end"], first["windowing"], first["padded"]) == (0.0, 0.5, "whole", False)
    assert second["caption"] is None  # empty text is null, not ""
    assert (second["start"], second["end"], second["sampling_rate"]) == (0.5, 1.25, RATE)
    audio, rate = read_row_audio(second)
    assert rate == RATE and audio.shape == (1, 6000)
    np.testing.assert_allclose(audio[0], _tone(2.0, 300)[4000:10000], atol=1e-7)


def test_jsonl_manifest_list_labels_instruction_and_bad_lines(tmp_path):
    _write(tmp_path / "a.wav", _tone(0.25))
    lines = [
        json.dumps({"path": "a.wav", "label": ["dog", "bark"], "instruction": "What is it?", "response": "A dog.",
                    "meta": {"k": 1}}),
        "{not json",
        json.dumps({"path": "missing.wav", "caption": "x"}),
        "",
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines))
    ds, rejected = load_audio_dataset(tmp_path / "m.jsonl", return_rejected=True)
    _check_schema(ds)
    assert len(ds) == 1
    assert ds[0]["label"] == "dog, bark"
    assert (ds[0]["instruction"], ds[0]["response"]) == ("What is it?", "A dog.")
    assert json.loads(ds[0]["meta"]) == {"k": 1}
    reasons = {item["source_id"]: (item["category"], item["reason"]) for item in rejected}
    assert reasons["m.jsonl:2"][0] == "bad_row" and reasons["m.jsonl:2"][1].startswith("invalid JSON")
    assert reasons["m.jsonl:3"][0] == "unreadable" and reasons["m.jsonl:3"][1].startswith("no such file")


def test_audio_folder_with_and_without_metadata(tmp_path):
    folder = tmp_path / "with"
    _write(folder / "x.wav", _tone(0.3))
    (folder / "metadata.csv").write_text("file_name,caption\nx.wav,a short tone\n")
    ds = load_audio_dataset(folder)
    _check_schema(ds)
    assert ds["caption"] == ["a short tone"]

    plain = tmp_path / "plain"
    _write(plain / "dog" / "1.wav", _tone(0.2))
    _write(plain / "cat" / "2.flac", _tone(0.2))
    ds = load_audio_dataset(plain)
    _check_schema(ds)
    assert sorted(zip(ds["label"], ds["source_id"])) == [("cat", "plain/cat/2.flac"), ("dog", "plain/dog/1.wav")]


def test_hub_style_dataset_with_audio_column(tmp_path):
    path = _write(tmp_path / "a.wav", _tone(0.5))
    buffer = io.BytesIO()
    sf.write(buffer, _tone(0.5, 600), RATE, format="WAV", subtype="FLOAT")
    features = datasets.Features(
        {"audio": datasets.Audio(), "caption": datasets.Value("string"), "sentence": datasets.Value("string")}
    )
    source = datasets.Dataset.from_dict(
        {"audio": [{"path": str(path), "bytes": None}, {"bytes": buffer.getvalue(), "path": None}],
         "caption": ["file", "bytes"], "sentence": ["s1", "s2"]},
        features=features,
    )
    ds = load_audio_dataset(source, column_map={"label": "sentence"})
    _check_schema(ds)
    assert ds["source_id"] == ["hub:0", "hub:1"] and ds["label"] == ["s1", "s2"]
    by_file, by_bytes = ds[0], ds[1]
    assert by_file["audio_path"] is not None or by_file["audio_bytes"] is not None
    assert by_bytes["audio_path"] is None and by_bytes["audio_bytes"] is not None
    audio, rate = read_row_audio(by_bytes)
    np.testing.assert_allclose(audio[0], _tone(0.5, 600), atol=1e-7)
    audio, _ = read_row_audio(by_file)
    np.testing.assert_allclose(audio[0], _tone(0.5), atol=1e-7)

    wrapped = datasets.DatasetDict({"train": source})
    with pytest.raises(ValueError, match="pass split"):
        load_audio_dataset(wrapped)
    assert len(load_audio_dataset(wrapped, split="train")) == 2
    with pytest.raises(ValueError, match="no audio column 'sound'"):
        load_audio_dataset(source, audio_column="sound")


def test_window_spans_edges():
    assert window_spans(0, 8000, RATE, 1.0, None) == [(0, 8000)]  # exactly one window
    assert window_spans(0, 8001, RATE, 1.0, None) == [(0, 8000), (8000, 8001)]  # one sample over
    assert window_spans(0, 7999, RATE, 1.0, None) == [(0, 7999)]
    assert window_spans(100, 20100, RATE, 1.0, 0.5) == [
        (100, 8100), (4100, 12100), (8100, 16100), (12100, 20100)  # stops at the first window that reaches the end
    ]
    assert window_spans(0, 20000, RATE, None, None) == [(0, 20000)]


def test_windows_cut_and_padded_with_the_choice_recorded(tmp_path):
    _write(tmp_path / "long.wav", _tone(2.5))
    _write(tmp_path / "short.wav", _tone(0.4))
    (tmp_path / "m.csv").write_text("path,caption\nlong.wav,long\nshort.wav,short\n")
    ds = load_audio_dataset(tmp_path / "m.csv", window_seconds=1.0)
    _check_schema(ds)
    rows = [(r["caption"], r["start"], r["end"], r["window_index"], r["num_windows"], r["windowing"], r["padded"])
            for r in ds]
    assert rows == [
        ("long", 0.0, 1.0, 0, 3, "cut", False),
        ("long", 1.0, 2.0, 1, 3, "cut", False),
        ("long", 2.0, 2.5, 2, 3, "cut", True),
        ("short", 0.0, 0.4, 0, 1, "whole", True),
    ]
    assert len(set(ds["key"])) == 4
    last, _ = read_row_audio(ds[2])
    assert last.shape == (1, 4000)

    # a last window shorter than min_window_seconds is dropped; a short clip's only window never is
    ds = load_audio_dataset(tmp_path / "m.csv", window_seconds=1.0, min_window_seconds=0.6)
    assert [(r["caption"], r["num_windows"]) for r in ds] == [("long", 2), ("long", 2), ("short", 1)]
    # overlapping windows
    ds = load_audio_dataset(tmp_path / "m.csv", window_seconds=1.0, hop_seconds=0.75)
    assert [r["start"] for r in ds if r["caption"] == "long"] == [0.0, 0.75, 1.5]


def test_keys_follow_content_and_window_not_path(tmp_path):
    import shutil

    _write(tmp_path / "a.wav", _tone(0.5))
    shutil.copy(tmp_path / "a.wav", tmp_path / "copy.wav")  # same bytes (a rewrite may differ: PEAK timestamp)
    _write(tmp_path / "other.wav", _tone(0.5, 500))
    (tmp_path / "m.csv").write_text("path,start\na.wav,\ncopy.wav,\nother.wav,\na.wav,0.25\n")
    keys = load_audio_dataset(tmp_path / "m.csv")["key"]
    assert keys[0] == keys[1] and len({keys[0], keys[2], keys[3]}) == 3
    assert load_audio_dataset(tmp_path / "m.csv")["key"] == keys  # stable across runs


def test_load_time_rejections_are_reported_not_raised(tmp_path):
    _write(tmp_path / "good.wav", _tone(0.5))
    (tmp_path / "garbage.wav").write_bytes(b"RIFF not really a wav file")
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), RATE)
    (tmp_path / "m.csv").write_text(
        "path,start,end\ngood.wav,,\ngarbage.wav,,\nempty.wav,,\nmissing.wav,,\ngood.wav,3.0,\n"
        "good.wav,0.3,0.2\ngood.wav,soon,\n,,\n"
    )
    ds, rejected = load_audio_dataset(tmp_path / "m.csv", return_rejected=True)
    assert len(ds) == 1
    categories = sorted((item["source_id"], item["category"]) for item in rejected)
    assert categories == [
        ("m.csv:3", "unreadable"), ("m.csv:4", "empty"), ("m.csv:5", "unreadable"), ("m.csv:6", "bad_window"),
        ("m.csv:7", "bad_window"), ("m.csv:8", "bad_window"), ("m.csv:9", "bad_row"),
    ]
    reasons = {item["source_id"]: item["reason"] for item in rejected}
    assert reasons["m.csv:6"].startswith("zero-length after trimming")
    assert reasons["m.csv:7"].startswith("zero-length window") and reasons["m.csv:8"].startswith("bad start")
    assert load_audio_dataset(tmp_path / "m.csv")["key"] == ds["key"]  # without return_rejected: same rows


def test_decode_time_problems_name_their_category(tmp_path):
    noisy = _tone(0.5)
    noisy[100:200] = np.nan
    _write(tmp_path / "nan.wav", noisy)
    (tmp_path / "m.csv").write_text("path\nnan.wav\n")
    row = load_audio_dataset(tmp_path / "m.csv")[0]
    with pytest.raises(AudioInputError, match=r"nan\.wav contains 100 NaN") as error:
        read_row_audio(row)
    assert error.value.category == "non_finite" and isinstance(error.value, ValueError)
    with pytest.raises(AudioInputError, match="gone.wav") as error:
        read_row_audio({**row, "audio_path": str(tmp_path / "gone.wav")})
    assert error.value.category == "unreadable"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_seconds": 0}, "window_seconds must be a finite number of seconds > 0"),
        ({"window_seconds": float("nan")}, "window_seconds"),
        ({"hop_seconds": 1.0}, "needs window_seconds"),
        ({"min_window_seconds": -1.0}, "min_window_seconds must be a finite number of seconds >= 0"),
    ],
)
def test_argument_errors(tmp_path, kwargs, message):
    _write(tmp_path / "a.wav", _tone(0.1))
    (tmp_path / "m.csv").write_text("path\na.wav\n")
    with pytest.raises(ValueError, match=message):
        load_audio_dataset(tmp_path / "m.csv", **kwargs)


def test_source_errors(tmp_path):
    with pytest.raises(TypeError, match="source must be"):
        load_audio_dataset(42)
    with pytest.raises(ValueError, match="is not an existing folder or manifest"):
        load_audio_dataset(tmp_path / "nothing.csv")
    (tmp_path / "m.csv").write_text("file,caption\na.wav,x\n")
    with pytest.raises(ValueError, match="needs an audio path column"):
        load_audio_dataset(tmp_path / "m.csv")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ValueError, match=r"must end in \.csv or \.jsonl"):
        load_audio_dataset(tmp_path / "m.txt")
    (tmp_path / "emptyfolder").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        load_audio_dataset(tmp_path / "emptyfolder")


def test_formats_soundfile_cannot_read_are_decoded_by_torchcodec(tmp_path):
    """AAC in an .m4a file: soundfile cannot read it; torchcodec (with ffmpeg) can."""
    import shutil
    import subprocess

    pytest.importorskip("torchcodec", reason="torchcodec is not installed (scripts/test.sh installs soundlm[audio])")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (scripts/test.sh installs it)")
    wav = _write(tmp_path / "a.wav", _tone(1.0, 440, 16000), 16000)
    m4a = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    with pytest.raises(sf.LibsndfileError):
        sf.info(m4a)
    source = datasets.Dataset.from_dict(
        {"audio": [{"bytes": m4a.read_bytes(), "path": None}]}, features=datasets.Features({"audio": datasets.Audio()})
    )
    row = load_audio_dataset(source)[0]
    assert row["sampling_rate"] == 16000 and row["duration"] == pytest.approx(1.0, abs=0.05)
    audio, rate = read_row_audio(row)
    assert rate == 16000 and audio.shape[0] == 1 and abs(audio.shape[1] - 16000) < 1100
    assert 0.15 < float(np.sqrt(np.mean(audio**2))) < 0.25  # the 0.3-amplitude tone survived (rms 0.21)


def test_manifests_need_no_torchcodec(tmp_path):
    """The manifest path runs in a process where importing torchcodec fails."""
    import subprocess
    import sys

    _write(tmp_path / "a.wav", _tone(0.5))
    (tmp_path / "m.csv").write_text("path,caption\na.wav,x\n")
    code = (
        "import sys; sys.modules['torchcodec'] = None\n"
        "from soundlm.processing.audio_datasets import load_audio_dataset, read_row_audio\n"
        f"row = load_audio_dataset({str(tmp_path / 'm.csv')!r}, window_seconds=0.2)[2]\n"
        "print(read_row_audio(row)[0].shape, row['padded'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(1, 800) True"


def test_hub_dataset_id_goes_through_load_dataset(tmp_path, monkeypatch):
    """A Hub id is loaded with datasets.load_dataset(id, split=...) (replaced here: tests are offline)."""
    path = _write(tmp_path / "a.wav", _tone(0.5))
    hub = datasets.Dataset.from_dict(
        {"audio": [{"path": str(path), "bytes": None}], "caption": ["from the hub"]},
        features=datasets.Features({"audio": datasets.Audio(), "caption": datasets.Value("string")}),
    )
    calls = []

    def fake_load_dataset(name, split=None):
        calls.append((name, split))
        return hub

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_audio_dataset("some-org/some-audio-captions", split="validation")
    assert calls == [("some-org/some-audio-captions", "validation")]
    assert ds["caption"] == ["from the hub"] and ds["source_id"] == ["hub:0"]
    load_audio_dataset("some-org/some-audio-captions")
    assert calls[-1] == ("some-org/some-audio-captions", "train")


def test_read_row_audio_resamples_and_maps_channels(tmp_path):
    stereo = np.stack([_tone(0.5), _tone(0.5, 880)], axis=1)  # (samples, 2)
    _write(tmp_path / "s.wav", stereo)
    (tmp_path / "m.csv").write_text("path\ns.wav\n")
    row = load_audio_dataset(tmp_path / "m.csv")[0]
    audio, rate = read_row_audio(row, sampling_rate=16000, channels=1)
    assert rate == 16000 and audio.shape == (1, 8000)
    native, native_rate = read_row_audio(row)
    assert native_rate == RATE and native.shape == (2, 4000)
    # the mono mix at the file's rate is the mean of the two channels
    np.testing.assert_allclose(read_row_audio(row, channels=1)[0][0], native.mean(0), atol=1e-6)


def test_manifest_rows_reads_paths_and_columns_without_audio(tmp_path):
    from soundlm.processing.audio_datasets import manifest_rows

    (tmp_path / "m.csv").write_text("file_name,caption\nsub/a.wav,a dog\n/abs/b.wav,rain\n")
    rows = manifest_rows(tmp_path / "m.csv")
    assert [path for path, _ in rows] == [str((tmp_path / "sub" / "a.wav").resolve()), "/abs/b.wav"]
    assert rows[0][1]["caption"] == "a dog"
    (tmp_path / "m.jsonl").write_text('{"path": "a.wav"}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"m\.jsonl:2: invalid JSON: expected an object"):
        manifest_rows(tmp_path / "m.jsonl")
    (tmp_path / "n.jsonl").write_text('{"caption": "x"}\n')
    with pytest.raises(ValueError, match=r"n\.jsonl:1: no audio path"):
        manifest_rows(tmp_path / "n.jsonl")
    with pytest.raises(ValueError, match="must end in .csv or .jsonl"):
        manifest_rows(tmp_path / "m.txt")


@pytest.mark.reliability(
    "a manifest of more rows than `load_audio_dataset` holds at once (`ROWS_PER_ARROW_FILE`)",
    "rows go to Arrow files as they come and return memory-mapped, the same rows as one chunk; memory per 100k rows "
    "measured by `benchmarks/bench_streaming.py`",
)
def test_rows_go_to_disk_in_chunks_and_come_back_memory_mapped(tmp_path, monkeypatch):
    """A manifest larger than one chunk gives the same rows as one chunk, read memory-mapped from several Arrow files;
    an input column that only later rows carry is null in the earlier ones; a file rewritten between two loads is
    read again (the per-file header and hash memo lives for one call)."""
    import os

    from soundlm.processing import audio_datasets

    _write(tmp_path / "a.wav", _tone(1.0))
    lines = [{"path": "a.wav", "start": i * 0.1, "end": i * 0.1 + 0.1, "caption": f"part {i}"} for i in range(7)]
    lines[5]["mood"] = "calm"
    (tmp_path / "m.jsonl").write_text("\n".join(map(json.dumps, lines)))
    whole = load_audio_dataset(tmp_path / "m.jsonl")
    monkeypatch.setattr(audio_datasets, "ROWS_PER_ARROW_FILE", 2)
    chunked = load_audio_dataset(tmp_path / "m.jsonl")
    assert chunked.features == whole.features and chunked.to_list() == whole.to_list()
    assert len({item["filename"] for item in chunked.cache_files}) == 4  # 7 rows, 2 per file
    assert [row["mood"] for row in chunked] == [None] * 5 + ["calm", None]
    _check_schema(chunked)

    _write(tmp_path / "a.wav", _tone(1.0, 500))
    os.utime(tmp_path / "a.wav", ns=(0, os.stat(tmp_path / "a.wav").st_mtime_ns + 10**9))
    again = load_audio_dataset(tmp_path / "m.jsonl")
    assert again[0]["content_hash"] != whole[0]["content_hash"]
