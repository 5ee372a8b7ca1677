"""training/pretokenize.py: codes equal encode, incremental re-runs, resume, rejections, refusal, 2 processes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import tiny_config_kwargs

from soundlm import MSNTokenizerConfig, MSNTokenizerModel
from soundlm.processing.audio_datasets import load_audio_dataset
from soundlm.training.common.pretokenized import load_pretokenized, read_tokenizer_record
from soundlm.training.pretokenize import pretokenize

RATE = 8000


@pytest.fixture
def model():
    torch.manual_seed(0)
    return MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()


def _write(path, audio):
    # Existing files are left alone: libsndfile stamps float WAVs with the time of writing (PEAK chunk), so a
    # rewrite a second later has other bytes and, rightly, another content key.
    if not path.exists():
        sf.write(path, audio, RATE, subtype="FLOAT")


def _corpus(folder, real_clips, extra=()):
    """The 4 real 1-s clips, a 2.5-s clip made of them (3 windows of 1 s), and ``extra`` (name, audio) pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["path,caption"]
    for index, clip in enumerate(real_clips):
        _write(folder / f"c{index}.wav", clip)
        lines.append(f"c{index}.wav,clip {index}")
    _write(folder / "long.wav", np.concatenate([real_clips[0], real_clips[1], real_clips[2][:4000]]))
    lines.append("long.wav,long")
    for name, audio in extra:
        _write(folder / name, audio)
        lines.append(f"{name},extra")
    (folder / "m.csv").write_text("\n".join(lines) + "\n")
    return folder / "m.csv"


class CountingEncoder:
    """Wraps model.encode to count the rows it encodes (and optionally fail on call number ``fail_on``)."""

    def __init__(self, model, fail_on: int | None = None):
        self.model, self.fail_on, self.calls, self.rows = model, fail_on, 0, 0
        self.original = model.encode

    def __call__(self, audio):
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise KeyboardInterrupt("simulated interruption")
        self.rows += audio.shape[0]
        return self.original(audio)


def _codes(output) -> dict[str, list[int]]:
    data = load_pretokenized(output)
    return dict(zip(data["key"], data["codes"], strict=True))


def test_codes_equal_direct_encoding_and_metadata_is_kept(tmp_path, real_clips, model):
    manifest = _corpus(tmp_path / "data", real_clips)
    dataset = load_audio_dataset(manifest, window_seconds=1.0)
    summary = pretokenize(dataset, model, tmp_path / "out", batch_size=2, progress=False)
    assert (summary.rows, summary.kept, summary.encoded, summary.reused, summary.rejected) == (7, 7, 7, 0, 0)
    assert summary.encoded_audio_seconds == pytest.approx(6.5)
    data = load_pretokenized(tmp_path / "out", tokenizer=model)
    assert "audio_bytes" not in data.column_names
    assert data["caption"] == ["clip 0", "clip 1", "clip 2", "clip 3", "long", "long", "long"]
    assert data["num_frames"] == [62, 62, 62, 62, 62, 62, 31]  # 8000 // 128 frames per second
    for index in range(4):  # the 1-s clips need no padding: exactly model.encode
        direct = model.encode(torch.from_numpy(real_clips[index])[None, None])[0].tolist()
        assert data[index]["codes"] == direct
    # the padded last window: its codes are those of the padded audio cut to its real frames
    padded = torch.zeros(1, 1, RATE)
    padded[0, 0, :4000] = torch.from_numpy(real_clips[2][:4000])
    assert data[6]["codes"] == model.encode(padded)[0, :31].tolist()
    record = read_tokenizer_record(tmp_path / "out")
    assert (record["codebook_size"], record["frame_rate"], record["hop_length"]) == (64, 62.5, 128)
    assert len(record["weights_sha256"]) == 64
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["kept"] == 7


def test_codes_do_not_depend_on_batch_composition(tmp_path, real_clips, model):
    manifest = _corpus(tmp_path / "data", real_clips, extra=[("odd.wav", real_clips[3][:5000])])
    dataset = load_audio_dataset(manifest, window_seconds=1.0)
    pretokenize(dataset, model, tmp_path / "one", batch_size=1, progress=False)
    pretokenize(dataset, model, tmp_path / "many", batch_size=8, progress=False)
    assert _codes(tmp_path / "one") == _codes(tmp_path / "many")


def test_rerun_encodes_only_new_files(tmp_path, real_clips, model, monkeypatch):
    manifest = _corpus(tmp_path / "data", real_clips)
    pretokenize(load_audio_dataset(manifest, window_seconds=1.0), model, tmp_path / "out", progress=False)
    before = _codes(tmp_path / "out")

    noise = np.random.default_rng(0).normal(0, 0.1, (2, RATE)).astype(np.float32)
    manifest = _corpus(tmp_path / "data", real_clips, extra=[("new0.wav", noise[0]), ("new1.wav", noise[1])])
    counter = CountingEncoder(model)
    monkeypatch.setattr(model, "encode", counter)
    summary = pretokenize(load_audio_dataset(manifest, window_seconds=1.0), model, tmp_path / "out", progress=False)
    assert counter.rows == 2  # only the two new files went through the encoder
    assert (summary.kept, summary.encoded, summary.reused) == (9, 2, 7)
    after = _codes(tmp_path / "out")
    assert {key: after[key] for key in before} == before

    counter.rows = 0  # nothing new: nothing encoded
    pretokenize(load_audio_dataset(manifest, window_seconds=1.0), model, tmp_path / "out", progress=False)
    assert counter.rows == 0


def test_interrupted_run_resumes_where_it_stopped(tmp_path, real_clips, model, monkeypatch):
    manifest = _corpus(tmp_path / "data", real_clips)
    dataset = load_audio_dataset(manifest, window_seconds=1.0)
    reference = pretokenize(dataset, model, tmp_path / "reference", batch_size=1, part_rows=1, progress=False)

    monkeypatch.setattr(model, "encode", CountingEncoder(model, fail_on=4))
    with pytest.raises(KeyboardInterrupt):
        pretokenize(dataset, model, tmp_path / "out", batch_size=1, part_rows=1, progress=False)
    assert not (tmp_path / "out" / "data").exists()  # nothing assembled from a broken run
    counter = CountingEncoder(model)
    monkeypatch.setattr(model, "encode", counter)
    summary = pretokenize(dataset, model, tmp_path / "out", batch_size=1, part_rows=1, progress=False)
    assert counter.rows == reference.kept - 3  # three rows were saved before the interruption
    assert (summary.encoded, summary.reused) == (4, 3)
    assert _codes(tmp_path / "out") == _codes(tmp_path / "reference")


def test_bad_files_are_rejected_with_reasons_and_good_ones_kept(tmp_path, real_clips, model):
    folder = tmp_path / "data"
    manifest = _corpus(folder, real_clips)
    noisy = real_clips[0].copy()
    noisy[10:20] = np.nan
    sf.write(folder / "nan.wav", noisy, RATE, subtype="FLOAT")
    sf.write(folder / "empty.wav", np.zeros(0, np.float32), RATE)
    sf.write(folder / "tiny.wav", real_clips[0][:100], RATE, subtype="FLOAT")  # < one 128-sample frame
    (folder / "garbage.wav").write_bytes(b"\x00\x01 definitely not audio")
    with open(manifest, "a") as handle:
        handle.write("nan.wav,bad\nempty.wav,bad\ntiny.wav,bad\ngarbage.wav,bad\nmissing.wav,bad\n")
    # c0.wav from 5.0 s on, past the end of the 1-s file (a second manifest, as start is a JSONL field here)
    (folder / "late.jsonl").write_text('{"path": "c0.wav", "start": 5.0, "caption": "late"}\n')
    _, late_rejected = load_audio_dataset(folder / "late.jsonl", return_rejected=True)

    dataset, rejected = load_audio_dataset(manifest, window_seconds=1.0, return_rejected=True)
    rejected += late_rejected
    summary = pretokenize(dataset, model, tmp_path / "out", rejected=rejected, progress=False)
    assert summary.rows == 13 and summary.kept == 7 and summary.rejected == 6
    assert summary.reasons == {
        "NaN or infinite samples": 1, "empty": 1, "zero-length after trimming": 2, "unreadable": 2,
    }
    lines = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    by_file = {(item["audio_path"] or "").rsplit("/", 1)[-1] + (":late" if "past" in item["reason"] else ""):
               item["reason"].split(":")[0] for item in lines}
    assert by_file == {
        "nan.wav": "NaN or infinite samples", "empty.wav": "empty", "tiny.wav": "zero-length after trimming",
        "garbage.wav": "unreadable", "missing.wav": "unreadable", "c0.wav": "zero-length after trimming",
    }
    assert sorted(load_pretokenized(tmp_path / "out")["caption"]) == sorted(
        ["clip 0", "clip 1", "clip 2", "clip 3", "long", "long", "long"]
    )


def test_mismatched_tokenizer_is_refused(tmp_path, real_clips, model):
    manifest = _corpus(tmp_path / "data", real_clips)
    dataset = load_audio_dataset(manifest, window_seconds=1.0)
    pretokenize(dataset, model, tmp_path / "out", progress=False, checkpoint="tiny-64")

    bigger = MSNTokenizerConfig(**tiny_config_kwargs(codebook_size=128))
    with pytest.raises(ValueError, match=r"codebook_size=64 and frame_rate=62\.5000 Hz .*tiny-64.*"
                                         r"configured tokenizer has codebook_size=128 and frame_rate=62\.5000 Hz"):
        load_pretokenized(tmp_path / "out", tokenizer=bigger)
    with pytest.raises(ValueError, match=r"frame_rate=62\.5000 Hz.*frame_rate=31\.2500 Hz"):
        load_pretokenized(tmp_path / "out", codebook_size=64, frame_rate=31.25)
    assert len(load_pretokenized(tmp_path / "out", codebook_size=64, frame_rate=62.5)) == 7

    torch.manual_seed(1)
    other = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()
    with pytest.raises(ValueError, match="holds codes of another tokenizer"):
        pretokenize(dataset, other, tmp_path / "out", progress=False)
    (tmp_path / "out" / "parts" / "index-rejected.json").write_text("[]")  # what main() keeps there
    summary = pretokenize(dataset, other, tmp_path / "out", progress=False, overwrite=True)
    assert (summary.encoded, summary.reused) == (7, 0)
    assert (tmp_path / "out" / "parts" / "index-rejected.json").exists()  # overwriting drops codes, not the index


def test_argument_errors(tmp_path, model):
    import datasets

    empty = datasets.Dataset.from_dict({"x": [1]})
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        pretokenize(empty, model, tmp_path, batch_size=0)
    with pytest.raises(ValueError, match="columns of load_audio_dataset"):
        pretokenize(empty, model, tmp_path)
    with pytest.raises(ValueError, match="pad_to_seconds"):
        pretokenize(empty, model, tmp_path, pad_to_seconds=-1)
    with pytest.raises(ValueError, match="is not a pre-tokenised folder"):
        load_pretokenized(tmp_path)


def test_two_processes_with_accelerate_launch(tmp_path, real_clips, model):
    """Two CPU processes (gloo) shard the rows; the assembled codes equal a one-process run's."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    manifest = _corpus(tmp_path / "data", real_clips)
    model.save_pretrained(tmp_path / "tok")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = Path(__file__).resolve().parents[2] / "training" / "pretokenize.py"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(port), str(script), "--tokenizer", str(tmp_path / "tok"),
               "--data", str(manifest), "--output", str(tmp_path / "two"), "--batch_size", "2"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "7 kept (7 encoded now, 0 reused), 0 rejected" in result.stdout
    parts = sorted(p.name.split("-")[1] for p in (tmp_path / "two" / "parts").glob("part-*.arrow"))
    assert set(parts) == {"000", "001"}  # both processes encoded a share
    reloaded = MSNTokenizerModel.from_pretrained(tmp_path / "tok").eval()
    pretokenize(load_audio_dataset(manifest, window_seconds=1.0, min_window_seconds=1 / 62.5), reloaded,
                tmp_path / "one", progress=False)
    assert _codes(tmp_path / "two") == _codes(tmp_path / "one")
