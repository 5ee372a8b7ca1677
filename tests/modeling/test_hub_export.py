import json
import os
import subprocess
import sys

import pytest
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
    expected = model.encode(audio).audio_codes
    torch.save({"audio": audio, "codes": expected}, tmp_path / "io.pt")
    script = f"""
import sys, torch
from transformers import AutoFeatureExtractor, AutoModel
model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
extractor = AutoFeatureExtractor.from_pretrained({str(folder)!r}, trust_remote_code=True)
assert not any(name.split(".")[0] == "soundlm" for name in sys.modules), "soundlm imported"
io = torch.load({str(tmp_path / "io.pt")!r})
assert torch.equal(model.encode(io["audio"]).audio_codes, io["codes"])
assert extractor.sampling_rate == 8000 and extractor.audio_channels == 1
print("ok", type(model).__module__)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok transformers_modules.")


TOY_FILES = {
    "__init__.py": "",
    "models/__init__.py": "",
    "models/toy/__init__.py": "",
    "models/toy/configuration_toy.py": '''
from transformers import PretrainedConfig


class ToyConfig(PretrainedConfig):
    model_type = "toy_cross_folder"

    def __init__(self, width=4, **kwargs):
        self.width = width
        super().__init__(**kwargs)
''',
    "models/toy/modeling_toy.py": '''
import pytest
import torch
from transformers import PreTrainedModel

from ...layers.blocks import (
    ToyBlock,
)
from .configuration_toy import ToyConfig


class ToyModel(PreTrainedModel):
    config_class = ToyConfig
    hub_card_template = None  # set by the test to an absolute path

    def __init__(self, config):
        super().__init__(config)
        self.block = ToyBlock(config.width)
        self.post_init()

    def forward(self, x):
        return self.block(x)

    def hub_card_fields(self):
        return {"width": str(self.config.width)}
''',
    "layers/__init__.py": "",
    "layers/blocks.py": '''
import pytest
import torch

from ..utils.maths import double


class ToyBlock(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.linear = torch.nn.Linear(width, width)

    def forward(self, x):
        return double(self.linear(x))
''',
    "utils/__init__.py": "",
    "utils/maths.py": '''
def double(x):
    return 2 * x
''',
}


def test_export_of_a_family_whose_files_import_across_folders(tmp_path, monkeypatch):
    """A family laid out like the package (model in models/toy/, layers and utils in other folders): the export
    copies the import closure flat, rewrites the imports, and the folder loads as remote code elsewhere."""
    import importlib

    from soundlm.modeling.hub_export import code_closure, flatten_relative_imports

    root = tmp_path / "src" / "toypkg"
    for name, text in TOY_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (tmp_path / "card.md").write_text("# toy $repo_id of width $width ($code_files)\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    modeling = importlib.import_module("toypkg.models.toy.modeling_toy")
    configuration = importlib.import_module("toypkg.models.toy.configuration_toy")
    monkeypatch.setattr(modeling.ToyModel, "hub_card_template", str(tmp_path / "card.md"))

    closure = code_closure(root / "models/toy/modeling_toy.py")
    assert sorted(path.name for path in closure) == ["blocks.py", "configuration_toy.py", "maths.py", "modeling_toy.py"]
    flat = flatten_relative_imports(root / "models/toy/modeling_toy.py")
    assert "from .blocks import ToyBlock\n" in flat and "from .configuration_toy import ToyConfig" in flat

    torch.manual_seed(0)
    model = modeling.ToyModel(configuration.ToyConfig(width=3)).eval()
    folder = export_for_hub(model, tmp_path / "hub", repo_id="org/toy")
    assert sorted(p.name for p in folder.glob("*.py")) == ["blocks.py", "configuration_toy.py", "maths.py",
                                                         "modeling_toy.py"]
    assert (folder / "README.md").read_text() == (
        "# toy org/toy of width 3 (`blocks.py`, `configuration_toy.py`, `maths.py`, `modeling_toy.py`)\n"
    )
    x = torch.randn(2, 3)
    torch.save({"x": x, "y": model(x).detach()}, tmp_path / "io.pt")
    script = f"""
import sys, torch
from transformers import AutoModel
model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
assert not any(name.split(".")[0] in ("toypkg", "soundlm") for name in sys.modules)
io = torch.load({str(tmp_path / "io.pt")!r})
assert torch.equal(model(io["x"]), io["y"])
print("ok")
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_export_refuses_code_that_would_not_load_as_remote_code(tmp_path):
    from soundlm.modeling.hub_export import code_closure

    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "helpers.py").write_text("X = 1\n")
    (tmp_path / "pkg" / "a.py").write_text("from .sub import helpers\n")
    with pytest.raises(ValueError, match="does not import from a module file"):
        code_closure(tmp_path / "pkg" / "a.py")
    (tmp_path / "pkg" / "b.py").write_text("from soundlm.processing.audio_io import load_audio\n")
    with pytest.raises(ValueError, match="absolute `from soundlm.processing.audio_io import` would not load"):
        code_closure(tmp_path / "pkg" / "b.py")


def test_tokenizer_model_index_from_a_tokenizer_report(tmp_path):
    """The row whose saved config is the model's (a different model's row is not taken), its measures as metrics,
    FAD named with its embedding model; two rows with the same config need the row named."""
    import yaml

    torch.manual_seed(0)
    fm = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs()))
    mse = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(decoder_objective="mse")))
    report = {"fad_model": "YAMNet (test)", "split": "test",
              "systems": {"FM": {"latent_error": 0.36612, "fad": 111.844, "mos_ovrl": None},
                          "MSE": {"latent_error": 0.2, "fad": 74.3}},
              # as report.json holds them: through JSON (id2label's integer keys become strings)
              "configs": {"FM": {**json.loads(json.dumps(fm.config.to_dict())), "_name_or_path": "elsewhere",
                                 "transformers_version": "x"},
                          "MSE": json.loads(json.dumps(mse.config.to_dict()))}}
    dataset = {"name": "demo", "type": "demo-corpus", "split": "test"}
    results = fm.hub_model_index(report, dataset)
    assert results[0]["metrics"] == [
        {"type": "latent_error", "value": 0.3661, "name": "latent error (Table I, all clips)"},
        {"type": "fad", "value": 111.844, "name": "FAD (YAMNet (test))"}]
    assert mse.hub_model_index(report, dataset)[0]["metrics"][0]["value"] == 0.2
    folder = export_for_hub(fm, tmp_path / "hub", repo_id="org/tok", model_index=results)
    front = yaml.safe_load((folder / "README.md").read_text().split("---")[1])
    assert front["model-index"][0]["results"] == results and front["pipeline_tag"] == "audio-to-audio"
    report["configs"]["MSE"] = report["configs"]["FM"]
    with pytest.raises(ValueError, match="cannot tell this tokenizer's row"):
        fm.hub_model_index(report, dataset)
    assert fm.hub_model_index(report, dataset, row="FM") == results
