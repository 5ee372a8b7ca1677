import json

import pytest
import torch
from helpers import tiny_config_kwargs, write_manifest

from soundlm import MSNTokenizerConfig, MSNTokenizerModel
from soundlm.evaluation.reconstruction import format_table, main, reconstruction_table
from soundlm.processing.latent_cache import LatentCache


def _model(objective):
    torch.manual_seed(0)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(decoder_objective=objective)))
    for p in model.decoder.parameters():
        torch.nn.init.normal_(p, std=0.1)
    model.set_latent_statistics(torch.full((32,), -1.0), torch.full((32,), 2.0))
    return model.eval()


def test_table_matches_hand_computed_errors_per_category():
    torch.manual_seed(0)
    latents = torch.randn(30, 32)
    cache = LatentCache(latents, torch.tensor([0, 10, 18, 30]),
                        [{"category": "a"}, {"category": "b"}, {"category": "a"}])
    model = _model("mse")
    result = reconstruction_table({"VQ + MSE": model}, cache, [0, 1, 2])
    errors = []
    for index in range(3):
        clip = cache.clip(index)[None]
        decoded = model.decode_latents(model.encode_latents(clip))
        errors.append(((decoded - clip) / 2.0).pow(2).mean().item())
    rows = result["rows"]
    assert list(rows) == ["a", "b", "all"]
    assert rows["a"]["VQ + MSE"] == pytest.approx((errors[0] + errors[2]) / 2, rel=1e-5)
    assert rows["b"]["VQ + MSE"] == pytest.approx(errors[1], rel=1e-5)
    assert rows["all"]["VQ + MSE"] == pytest.approx(sum(errors) / 3, rel=1e-5)
    assert rows["a"]["clips"] == 2 and rows["all"]["seconds"] == pytest.approx(30 / 62.5)
    assert result["codebook"]["VQ + MSE"]["tokens"] == 30
    assert "| a | 2 |" in format_table(result)


def test_command_line_prints_table_writes_json_and_examples(tmp_path, real_clips, capsys):
    manifest = write_manifest(tmp_path / "data", real_clips)
    for name in ("fm", "mse"):
        _model("flow_matching" if name == "fm" else "mse").save_pretrained(tmp_path / name)
    result = main([
        "--model", f"VQ + FM={tmp_path / 'fm'}", "--model", f"VQ + MSE={tmp_path / 'mse'}",
        "--data", str(manifest), "--split", "test", "--num_steps", "2", "--cache_dir", str(tmp_path / "cache"),
        "--out", str(tmp_path / "r.json"), "--write_audio", str(tmp_path / "wav"),
    ])
    printed = capsys.readouterr().out
    assert "| category | clips | seconds | VQ + FM | VQ + MSE |" in printed
    assert json.loads((tmp_path / "r.json").read_text())["rows"]["all"]["clips"] == 1 == result["rows"]["all"]["clips"]
    assert len(list((tmp_path / "wav").glob("*.wav"))) == 3  # front end + two tokenizers
    with pytest.raises(ValueError, match="no clip of split 'valid'"):
        main(["--model", f"x={tmp_path / 'fm'}", "--data", str(manifest), "--split", "valid",
              "--cache_dir", str(tmp_path / "cache")])
