import json

import soundfile as sf
import torch
from helpers import tiny_config_kwargs

from soundlm import MSNFeatureExtractor, MSNTokenizerConfig, MSNTokenizerModel
from soundlm.cli import main


def test_tokenize_then_decode_skips_bad_files_and_counts(tmp_path, real_clips, capsys, caplog):
    torch.manual_seed(0)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()
    model.save_pretrained(tmp_path / "model")
    MSNFeatureExtractor.from_tokenizer_config(model.config).save_pretrained(tmp_path / "model")
    sf.write(tmp_path / "a.wav", real_clips[0][:5000], 8000)
    (tmp_path / "bad.wav").write_bytes(b"nope")
    assert main(["tokenize", str(tmp_path / "model"), str(tmp_path / "a.wav"), str(tmp_path / "bad.wav"),
                 "--out", str(tmp_path / "codes.jsonl")]) == 0
    assert "tokenized 1 file(s), skipped 1" in capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "codes.jsonl").read_text().splitlines()]
    assert len(records) == 1 and len(records[0]["codes"]) == 40  # ceil(5000 / 128) frames of real audio
    audio = torch.from_numpy(sf.read(tmp_path / "a.wav", dtype="float32")[0])
    expected = model.encode(torch.nn.functional.pad(audio, (0, 120))[None, None])[0]  # padded to 40 frames
    assert records[0]["codes"] == expected.tolist()
    with open(tmp_path / "codes.jsonl", "a") as handle:
        handle.write(json.dumps({"path": "x.wav", "codes": [0, 999], "codebook_size": 64}) + "\n")
    assert main(["decode", str(tmp_path / "model"), str(tmp_path / "codes.jsonl"), "--out-dir",
                 str(tmp_path / "out"), "--num-steps", "2"]) == 0
    err = capsys.readouterr().err
    assert "decoded 1 item(s)" in err and "skipped 1" in err
    assert "codes must lie in [0, 64)" in caplog.text and "bad.wav" in caplog.text
    audio, rate = sf.read(tmp_path / "out" / "a.wav")
    assert rate == 8000 and len(audio) == 40 * 128
