import json

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import tiny_config_kwargs

from soundlm import MSNFeatureExtractor, MSNTokenizerConfig, MSNTokenizerModel
from soundlm.cli import main
from soundlm.processing.audio_datasets import load_audio_dataset
from soundlm.processing.pretokenized import load_pretokenized, pretokenize


@pytest.fixture
def saved_model(tmp_path):
    torch.manual_seed(0)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()
    model.save_pretrained(tmp_path / "model")
    MSNFeatureExtractor.from_tokenizer_config(model.config).save_pretrained(tmp_path / "model")
    return model, tmp_path / "model"


def test_tokenize_then_decode_skips_bad_files_and_counts(tmp_path, real_clips, capsys, caplog, saved_model):
    model, folder = saved_model
    sf.write(tmp_path / "a.wav", real_clips[0][:5000], 8000)
    (tmp_path / "bad.wav").write_bytes(b"nope")
    assert main(["tokenize", str(folder), str(tmp_path / "a.wav"), str(tmp_path / "bad.wav"),
                 "--out", str(tmp_path / "codes.jsonl")]) == 0
    assert "tokenized 1 file(s), skipped 1" in capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "codes.jsonl").read_text().splitlines()]
    assert len(records) == 1 and len(records[0]["codes"]) == 40  # ceil(5000 / 128) frames
    audio = torch.from_numpy(sf.read(tmp_path / "a.wav", dtype="float32")[0])
    assert records[0]["codes"] == model.encode(audio[None, None]).audio_codes[0, 0].tolist()
    with open(tmp_path / "codes.jsonl", "a") as handle:
        handle.write(json.dumps({"path": "x.wav", "codes": [0, 999], "codebook_size": 64}) + "\n")
    assert main(["decode", str(folder), str(tmp_path / "codes.jsonl"), "--out-dir",
                 str(tmp_path / "out"), "--num-steps", "2"]) == 0
    err = capsys.readouterr().err
    assert "decoded 1 item(s)" in err and "skipped 1" in err
    assert "codes must lie in [0, 64)" in caplog.text and "bad.wav" in caplog.text
    audio, rate = sf.read(tmp_path / "out" / "a.wav")
    assert rate == 8000 and len(audio) == 40 * 128


def test_cli_pretokenize_and_encode_agree_on_awkward_lengths(tmp_path, real_clips, saved_model):
    """One frame rule (`num_frames`, ceil) whichever way the audio goes in."""
    model, folder = saved_model
    signal = np.concatenate(list(real_clips))
    lengths = [1, 127, 128, 129, 255, 5000, 5120, 8191, 12345]
    lines = ["path"]
    for length in lengths:
        sf.write(tmp_path / f"n{length}.wav", signal[:length], 8000, subtype="FLOAT")
        lines.append(f"n{length}.wav")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")

    paths = [str(tmp_path / f"n{length}.wav") for length in lengths]
    assert main(["tokenize", str(folder), *paths, "--out", str(tmp_path / "cli.jsonl")]) == 0
    cli = [json.loads(line)["codes"] for line in (tmp_path / "cli.jsonl").read_text().splitlines()]

    rows = load_audio_dataset(tmp_path / "m.csv")  # whole files, one row each
    pretokenize(rows, model, tmp_path / "pt", batch_size=4, progress=False)
    stored = load_pretokenized(tmp_path / "pt")
    by_path = dict(zip((p.rsplit("/", 1)[-1] for p in stored["audio_path"]), stored["codes"], strict=True))

    for length, from_cli in zip(lengths, cli, strict=True):
        audio = torch.from_numpy(signal[:length].copy())[None, None]
        direct = model.encode(audio).audio_codes[0, 0].tolist()
        assert len(direct) == model.num_frames(length) == -(-length // 128)
        assert from_cli == direct, length
        assert by_path[f"n{length}.wav"] == direct, length


def test_merge_writes_a_plain_causal_lm(tmp_path, capsys):
    from helpers import save_tiny_audio_llm
    from transformers import AutoModelForCausalLM

    adapter, base, processor = save_tiny_audio_llm(tmp_path, codebook_size=8)
    assert main(["merge", str(adapter), str(tmp_path / "merged"), "--base-model", str(base)]) == 0
    assert "merged" in capsys.readouterr().out
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert merged.get_input_embeddings().weight.shape[0] == processor.vocab_size == 310
