import json
import os
import subprocess
import sys

import torch
from helpers import tiny_config_kwargs

from soundlm import MSNFeatureExtractor, MSNTokenizerConfig, MSNTokenizerModel, export_for_hub


def test_export_loads_with_remote_code_in_a_fresh_process(tmp_path):
    torch.manual_seed(0)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()
    model.set_latent_statistics(torch.linspace(-3, 1, 32), torch.linspace(1, 2, 32))
    extractor = MSNFeatureExtractor.from_tokenizer_config(model.config)
    folder = export_for_hub(model, tmp_path / "hub", extractor, repo_id="org/tiny")
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_msn_tokenizer.MSNTokenizerConfig",
        "AutoModel": "modeling_msn_tokenizer.MSNTokenizerModel",
        "AutoFeatureExtractor": "feature_extraction_msn.MSNFeatureExtractor",
    }
    card = (folder / "README.md").read_text()
    assert "org/tiny" in card and "375 bit/s" in card and "$" not in card.split("```")[0]
    audio = torch.sin(torch.arange(8000) / 7.0)[None, None] * 0.3
    expected = model.encode(audio)
    torch.save({"audio": audio, "codes": expected}, tmp_path / "io.pt")
    script = f"""
import sys, torch
from transformers import AutoFeatureExtractor, AutoModel
model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
extractor = AutoFeatureExtractor.from_pretrained({str(folder)!r}, trust_remote_code=True)
assert not any(name.split(".")[0] == "soundlm" for name in sys.modules), "soundlm imported"
io = torch.load({str(tmp_path / "io.pt")!r})
assert torch.equal(model.encode(io["audio"]), io["codes"])
assert extractor.sampling_rate == 8000 and extractor.audio_channels == 1
print("ok", type(model).__module__)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok transformers_modules.")
