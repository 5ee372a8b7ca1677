"""Write a Hub-ready folder for a sound tokenizer.

The folder holds the safetensors weights, a config whose ``auto_map`` points at code files copied beside
it, the feature extractor's config and code, and a model card rendered from ``hub_cards/``. It loads with
``AutoModel.from_pretrained(folder, trust_remote_code=True)`` in a process that never imported soundlm
(the copied files import only each other, transformers, diffusers, torch, numpy, soundfile and soxr),
and with ``AutoModel.from_pretrained(folder)`` where soundlm is imported (no remote code then).
"""

from __future__ import annotations

import inspect
import json
import shutil
import string
from datetime import date
from importlib import resources
from pathlib import Path

from transformers import FeatureExtractionMixin, PreTrainedModel
from transformers.dynamic_module_utils import get_relative_import_files


def _copy_module_with_imports(obj: object, folder: Path) -> tuple[str, list[str]]:
    """Copy the file defining ``type(obj)`` and, recursively, the files it imports relatively (transformers'
    own resolver, the one its remote-code loader uses); returns (module name, copied file names)."""
    module_file = Path(inspect.getsourcefile(type(obj)))
    copied = []
    for path in [module_file, *map(Path, get_relative_import_files(module_file))]:
        shutil.copyfile(path, folder / path.name)
        copied.append(path.name)
    return module_file.stem, copied


def export_for_hub(
    model: PreTrainedModel,
    folder: str | Path,
    feature_extractor: FeatureExtractionMixin | None = None,
    repo_id: str = "your-org/msn-tokenizer",
    card_template: str = "msn_tokenizer.md",
    extra_card_fields: dict[str, str] | None = None,
) -> Path:
    """Save ``model`` (and ``feature_extractor``) with their code and a model card into ``folder``."""
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"model must be a transformers PreTrainedModel, got {type(model).__name__}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_module, code_files = _copy_module_with_imports(model, folder)
    config_module, config_files = _copy_module_with_imports(model.config, folder)
    auto_map = {
        "AutoConfig": f"{config_module}.{type(model.config).__name__}",
        "AutoModel": f"{model_module}.{type(model).__name__}",
    }
    if feature_extractor is not None:
        extractor_module, extractor_files = _copy_module_with_imports(feature_extractor, folder)
        code_files += extractor_files
        auto_map["AutoFeatureExtractor"] = f"{extractor_module}.{type(feature_extractor).__name__}"
    code_files = sorted(set(code_files + config_files))
    model.save_pretrained(folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = auto_map
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if feature_extractor is not None:
        feature_extractor.save_pretrained(folder)
        extractor_path = folder / "preprocessor_config.json"
        extractor_config = json.loads(extractor_path.read_text())
        extractor_config["auto_map"] = {"AutoFeatureExtractor": auto_map["AutoFeatureExtractor"]}
        extractor_path.write_text(json.dumps(extractor_config, indent=2, sort_keys=True) + "\n")
    (folder / "README.md").write_text(render_card(model, repo_id, card_template, code_files, extra_card_fields))
    return folder


def render_card(
    model: PreTrainedModel,
    repo_id: str,
    card_template: str,
    code_files: list[str],
    extra_fields: dict[str, str] | None = None,
) -> str:
    """Fill ``hub_cards/<card_template>`` with numbers computed from the model's config."""
    template = resources.files("soundlm.hub_cards").joinpath(card_template).read_text()
    config = model.config
    num_parameters = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("frontend."))
    fields = {
        "repo_id": repo_id,
        "frontend_type": config.frontend_type,
        "sample_rate": str(config.sampling_rate),
        "audio_channels": str(config.audio_channels),
        "hop_length": str(config.hop_length),
        "frame_rate": f"{config.frame_rate:.2f}",
        "codebook_size": str(config.codebook_size),
        "bitrate": f"{config.bitrate:.0f}",
        "decoder_objective": config.decoder_objective,
        "hidden_size": str(config.hidden_size),
        "encoder_layers": str(config.encoder_layers),
        "decoder_layers": str(config.decoder_layers),
        "trainable_parameters": f"{num_parameters / 1e6:.1f} M",
        "code_files": ", ".join(f"`{name}`" for name in code_files),
        "date": date.today().isoformat(),
        "training_notes": "",
    }
    fields.update(extra_fields or {})
    return string.Template(template).substitute(fields)
