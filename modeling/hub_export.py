"""Write a Hub-ready folder for any model family of the package.

The folder holds the safetensors weights, a config whose ``auto_map`` points at code files copied beside it,
the processor's (or feature extractor's) config and code, and a model card rendered from ``hub_cards/``. It loads
with ``AutoModel.from_pretrained(folder, trust_remote_code=True)`` in a process that never imported soundlm, and
with ``AutoModel.from_pretrained(folder)`` where soundlm is imported (no remote code then).

What a family supplies, so that this file never changes when a family is added: its model class names its card
template (``hub_card_template``, a file of ``hub_cards/``) and fills it (``hub_card_fields()``, a dict of the
template's ``$fields``), and may name the task Auto class it loads with (``hub_auto_class``, e.g.
``"AutoModelForPreTraining"``; ``AutoModel`` is always mapped). Everything else is generic.

Remote code is loaded by transformers from one flat folder and follows only ``from .module import ...``
imports. A family's files may import across the package's folders (``from ..processing.audio_io import x``):
the export copies the whole relative-import closure of the model, config and processor modules into the folder
and rewrites those imports to the flat form (``from .audio_io import x``). Two copied files with the same name,
an absolute ``soundlm`` import or a relative import that does not name a module file (``from . import x``,
which transformers' loader does not follow) are refused with the file named, because the exported code would
not load.
"""

from __future__ import annotations

import ast
import inspect
import json
import string
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel

__all__ = ["code_closure", "export_for_hub", "flatten_relative_imports", "render_card"]


def _module_path(source_file: Path, node: ast.ImportFrom) -> Path:
    """The module file a relative ``from .x.y import z`` in ``source_file`` imports from (``x/y.py``)."""
    base = source_file.parent
    for _ in range(node.level - 1):
        base = base.parent
    parts = node.module.split(".") if node.module else []
    target = base.joinpath(*parts).with_suffix(".py")
    if not parts or not target.is_file():
        names = ", ".join(alias.name for alias in node.names)
        raise ValueError(
            f"{source_file}: `from {'.' * node.level}{node.module or ''} import {names}` does not import from a "
            "module file; exported code must import names from modules (e.g. `from ..processing.audio_io import "
            "load_audio`), the only form transformers' remote-code loader follows"
        )
    return target


def _relative_imports(source_file: Path) -> list[tuple[ast.ImportFrom, Path]]:
    """(import statement, the module file it imports from) of each relative import of ``source_file``."""
    tree = ast.parse(source_file.read_text(), filename=str(source_file))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node, _module_path(source_file, node).resolve()))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "soundlm":
            raise ValueError(f"{source_file}: absolute `from {node.module} import` would not load as remote code; "
                             "use a relative import")
        elif isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "soundlm" for alias in node.names):
            raise ValueError(f"{source_file}: `import soundlm` would not load as remote code")
    return found


def code_closure(*source_files: str | Path) -> list[Path]:
    """The given module files and every module file they import relatively, recursively (absolute paths)."""
    pending = [Path(f).resolve() for f in source_files]
    seen: list[Path] = []
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.append(current)
        pending.extend(path for _, path in _relative_imports(current))
    return sorted(seen)


def flatten_relative_imports(source_file: str | Path) -> str:
    """The text of ``source_file`` with each relative import rewritten to ``from .<module file stem> import ...``,
    the form transformers' remote-code loader follows in a flat folder."""
    source_file = Path(source_file)
    lines = source_file.read_text().splitlines(keepends=True)
    for node, target in sorted(_relative_imports(source_file), key=lambda item: -item[0].lineno):
        names = ", ".join(alias.name + (f" as {alias.asname}" if alias.asname else "") for alias in node.names)
        statement = f"from .{target.stem} import {names}"
        first, last = node.lineno - 1, node.end_lineno - 1
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        ending = "\n" if lines[last].endswith("\n") else ""
        lines[first : last + 1] = [f"{indent}{statement}{ending}"]
    return "".join(lines)


def _copy_code(objects: list[Any], folder: Path) -> tuple[dict[str, str], list[str]]:
    """Copy the defining modules of each object's class (or of each class given), with their relative-import
    closure, flat into ``folder``; returns ({class name: "module.Class"}, copied file names)."""
    classes = [obj if isinstance(obj, type) else type(obj) for obj in objects]
    roots = {cls.__name__: Path(inspect.getsourcefile(cls)).resolve() for cls in classes}
    files = code_closure(*roots.values())
    by_name: dict[str, Path] = {}
    for path in files:
        if path.name in by_name:
            raise ValueError(f"two exported code files share the name {path.name!r} ({by_name[path.name]} and "
                             f"{path}): rename one, remote code is loaded from one flat folder")
        by_name[path.name] = path
    for name, path in by_name.items():
        (folder / name).write_text(flatten_relative_imports(path))
    references = {class_name: f"{path.stem}.{class_name}" for class_name, path in roots.items()}
    return references, sorted(by_name)


def _processor_auto_class(processor: Any) -> str:
    from transformers import FeatureExtractionMixin, ProcessorMixin

    if isinstance(processor, ProcessorMixin):
        return "AutoProcessor"
    if isinstance(processor, FeatureExtractionMixin):
        return "AutoFeatureExtractor"
    raise TypeError(f"processor must be a transformers ProcessorMixin or FeatureExtractionMixin, got "
                    f"{type(processor).__name__}")


def _add_auto_map(json_path: Path, auto_map: dict[str, str]) -> None:
    data = json.loads(json_path.read_text())
    data["auto_map"] = auto_map
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _map_nested_feature_extractor(folder: Path, reference: str) -> None:
    """A processor's feature extractor is loaded by `AutoFeatureExtractor`, which in a process without the package
    knows its class only through an `auto_map` beside its config (nested in processor_config.json, or its own
    preprocessor_config.json)."""
    own = folder / "preprocessor_config.json"
    if own.exists():
        _add_auto_map(own, {"AutoFeatureExtractor": reference})
        return
    path = folder / "processor_config.json"
    data = json.loads(path.read_text())
    if isinstance(data.get("feature_extractor"), dict):
        data["feature_extractor"]["auto_map"] = {"AutoFeatureExtractor": reference}
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _is_transformers_class(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "transformers"


def export_for_hub(
    model: PreTrainedModel,
    folder: str | Path,
    processor: Any | None = None,
    repo_id: str = "your-org/model",
    extra_card_fields: dict[str, str] | None = None,
    model_index: list[dict[str, Any]] | None = None,
    card_template: str | None = None,
    pipelines: dict[str, tuple[type, tuple[str, ...]]] | None = None,
) -> Path:
    """
    Save ``model`` (and its ``processor`` or feature extractor) with their code and a model card into ``folder``.

    Args:
        model (`PreTrainedModel`): a model of one of the package's families (it names its card template with
            `hub_card_template` and fills it with `hub_card_fields()`).
        folder (`str` or `Path`): the folder to write (created if needed).
        processor (`ProcessorMixin` or `FeatureExtractionMixin`, *optional*): saved beside the model.
        repo_id (`str`): the Hub repository the card's usage example loads from.
        extra_card_fields (`dict`, *optional*): more template fields, e.g. `{"training_notes": ...}`.
        model_index (`list[dict]`, *optional*): measured `model-index` results (task, dataset, metrics; e.g. the
            family's `hub_model_index(report, dataset)`), written into the card's front matter.
        card_template (`str`, *optional*): the card template when the model is transformers' own class (LM-MSN's
            merged LLM: a plain causal LM whose processor is the package's); its fields come in
            ``extra_card_fields``. transformers' classes are neither copied nor mapped: they load without remote code.
        pipelines (`dict`, *optional*): ``{task name: (pipeline class, Auto class names it loads the model with)}``
            to carry as the config's ``custom_pipelines`` (their code copied too), so that
            ``pipeline(model=folder, trust_remote_code=True)`` works where soundlm is not installed. Name the tasks
            apart from the ones soundlm registers (``soundlm-audio-tokenization``): transformers takes a task named
            in ``custom_pipelines`` from the folder's code and asks for ``trust_remote_code`` even where the
            package is imported.

    Returns:
        `Path`: ``folder``.
    """
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"model must be a transformers PreTrainedModel, got {type(model).__name__}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    extractor = getattr(processor, "feature_extractor", None) if processor is not None else None
    objects = [obj for obj in (model.config, model, processor, extractor)
               if obj is not None and not _is_transformers_class(obj)]
    objects += [pipeline_class for pipeline_class, _ in (pipelines or {}).values()]
    references, code_files = _copy_code(objects, folder) if objects else ({}, [])
    auto_map = {}
    if type(model).__name__ in references:
        auto_map = {"AutoConfig": references[type(model.config).__name__],
                    "AutoModel": references[type(model).__name__]}
        # a family registered with a task Auto class (MINT stage 1: AutoModelForPreTraining) maps that one too
        auto_map[getattr(model, "hub_auto_class", "AutoModel")] = references[type(model).__name__]
    model.save_pretrained(folder)
    if processor is not None:
        processor.save_pretrained(folder)
        if type(processor).__name__ in references:
            auto_class = _processor_auto_class(processor)
            auto_map[auto_class] = references[type(processor).__name__]
            name = "processor_config.json" if auto_class == "AutoProcessor" else "preprocessor_config.json"
            _add_auto_map(folder / name, {auto_class: auto_map[auto_class]})
            if auto_class == "AutoProcessor" and extractor is not None and type(extractor).__name__ in references:
                _map_nested_feature_extractor(folder, references[type(extractor).__name__])
    if auto_map:
        _add_auto_map(folder / "config.json", auto_map)
    if pipelines:
        config = json.loads((folder / "config.json").read_text())
        config["custom_pipelines"] = {
            task: {"impl": references[pipeline_class.__name__], "pt": list(auto_classes), "tf": [], "type": "audio"}
            for task, (pipeline_class, auto_classes) in pipelines.items()
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    card = render_card(model, repo_id, code_files, extra_card_fields, model_index, card_template)
    (folder / "README.md").write_text(card)
    return folder


def render_card(
    model: PreTrainedModel, repo_id: str, code_files: list[str], extra_fields: dict[str, str] | None = None,
    model_index: list[dict[str, Any]] | None = None, card_template: str | None = None,
) -> str:
    """Fill the model's card template with its `hub_card_fields()`, and add ``model_index`` (measured results) to
    its front matter. `model.hub_card_template` is a file name in `hub_cards/` (the package's families) or an
    absolute path (a family kept elsewhere)."""
    template_name = card_template or getattr(model, "hub_card_template", None)
    if not template_name:
        raise ValueError(f"{type(model).__name__} names no card template: set hub_card_template (a file of hub_cards/)")
    if Path(template_name).is_absolute():
        template = Path(template_name).read_text()
    else:
        template = resources.files("soundlm.hub_cards").joinpath(template_name).read_text()
    fields = {
        "repo_id": repo_id,
        "code_files": ", ".join(f"`{name}`" for name in code_files),
        "date": date.today().isoformat(),
        "training_notes": "",
        **(model.hub_card_fields() if hasattr(model, "hub_card_fields") else {}),
        **(extra_fields or {}),
    }
    card = string.Template(template).substitute(fields)
    if not model_index:
        return card
    import yaml

    if not card.startswith("---\n"):
        raise ValueError(f"card template {template_name} has no front matter to add model-index to")
    end = card.index("\n---", 3)
    block = yaml.safe_dump({"model-index": [{"name": repo_id.split("/")[-1], "results": model_index}]},
                           sort_keys=False, allow_unicode=True)
    return card[: end + 1] + block + card[end + 1:]
