"""processing/pretokenized.py: codes equal encode, incremental re-runs, resume, rejections, refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import pretokenize_corpus as _corpus
from helpers import tiny_config_kwargs

from soundlm import MSNTokenizerConfig, MSNTokenizerModel
from soundlm.processing.audio_datasets import load_audio_dataset
from soundlm.processing.pretokenized import load_pretokenized, pretokenize, read_tokenizer_record

RATE = 8000


@pytest.fixture
def model():
    torch.manual_seed(0)
    return MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()


class CountingEncoder:
    """Wraps model.encode to count the rows it encodes (and optionally fail on call number ``fail_on``)."""

    def __init__(self, model, fail_on: int | None = None):
        self.model, self.fail_on, self.calls, self.rows = model, fail_on, 0, 0
        self.original = model.encode

    def __call__(self, audio, *args, **kwargs):
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise KeyboardInterrupt("simulated interruption")
        self.rows += audio.shape[0]
        return self.original(audio, *args, **kwargs)


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
    assert data["num_frames"] == [63, 63, 63, 63, 63, 63, 32]  # ceil(8000 / 128), ceil(4000 / 128)
    for index in range(4):  # the 1-s clips need no padding: exactly model.encode
        direct = model.encode(torch.from_numpy(real_clips[index])[None, None]).audio_codes[0, 0].tolist()
        assert data[index]["codes"] == direct
    # the short last window: exactly model.encode of the window alone (its partial last frame zero-padded)
    alone = model.encode(torch.from_numpy(real_clips[2][:4000])[None, None]).audio_codes[0, 0].tolist()
    assert data[6]["codes"] == alone
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


@pytest.mark.reliability(
    "`pretokenize` (and `soundlm pretokenize`) interrupted after 3 of its rows",
    "parts are written then renamed, so the rerun encodes only the missing rows and gives the same codes; no `data/` "
    "from the broken run",
)
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
    sf.write(folder / "tiny.wav", real_clips[0][:100], RATE, subtype="FLOAT")  # < one frame: one zero-padded code
    (folder / "garbage.wav").write_bytes(b"\x00\x01 definitely not audio")
    with open(manifest, "a") as handle:
        handle.write("nan.wav,bad\nempty.wav,bad\ntiny.wav,short\ngarbage.wav,bad\nmissing.wav,bad\n")
    # c0.wav from 5.0 s on, past the end of the 1-s file (a second manifest, as start is a JSONL field here)
    (folder / "late.jsonl").write_text('{"path": "c0.wav", "start": 5.0, "caption": "late"}\n')
    _, late_rejected = load_audio_dataset(folder / "late.jsonl", return_rejected=True)

    dataset, rejected = load_audio_dataset(manifest, window_seconds=1.0, return_rejected=True)
    rejected += late_rejected
    summary = pretokenize(dataset, model, tmp_path / "out", rejected=rejected, progress=False)
    assert summary.rows == 13 and summary.kept == 8 and summary.rejected == 5
    assert summary.reasons == {"non_finite": 1, "empty": 1, "bad_window": 1, "unreadable": 2}
    lines = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    by_file = {(item["audio_path"] or "").rsplit("/", 1)[-1]: item["category"] for item in lines}
    assert by_file == {
        "nan.wav": "non_finite", "empty.wav": "empty", "garbage.wav": "unreadable", "missing.wav": "unreadable",
        "c0.wav": "bad_window",
    }
    assert all(item["reason"] for item in lines)
    kept = load_pretokenized(tmp_path / "out")
    assert sorted(kept["caption"]) == sorted(["clip 0", "clip 1", "clip 2", "clip 3", "long", "long", "long", "short"])
    assert kept["num_frames"][kept["caption"].index("short")] == 1


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
