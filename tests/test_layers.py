"""Data flows one way: processing -> modeling -> pipelines / training / evaluation / cli. No module imports a layer
above it, and library modules import each other relatively (so that a Hub export can copy them)."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# layer -> layers it must never import
FORBIDDEN = {
    "processing": {"modeling", "pipelines", "training", "evaluation", "cli"},
    "modeling": {"pipelines", "training", "evaluation", "cli"},
    "pipelines": {"training", "evaluation", "cli"},
    "evaluation": {"pipelines", "training", "cli"},
    "hub_cards": {"modeling", "processing", "training", "evaluation", "cli"},
}
SCRIPTS = {"training/train_tokenizer.py", "training/pretokenize.py", "training/build_task_data.py"}


def _imported_layers(path: Path) -> set[tuple[str, int]]:
    """(top-level soundlm folder, line) of every import of the package in ``path``."""
    package = path.relative_to(REPO).parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = list(package[: len(package) - node.level + 1]) + (node.module or "").split(".")
            parts = [part for part in parts if part]
            if parts:
                found.add((parts[0], node.lineno))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("soundlm."):
            found.add((node.module.split(".")[1], node.lineno))
    return found


def test_no_layer_imports_a_layer_above_it():
    wrong = []
    for layer, forbidden in FORBIDDEN.items():
        for path in (REPO / layer).rglob("*.py"):
            wrong += [f"{path.relative_to(REPO)}:{line} imports {target}"
                      for target, line in _imported_layers(path) if target in forbidden]
    assert not wrong, wrong


def test_library_modules_import_the_package_relatively():
    absolute = []
    for layer in ("modeling", "processing", "pipelines", "evaluation"):
        for path in (REPO / layer).rglob("*.py"):
            if path.parent.parent == REPO / "evaluation" / "metrics":
                continue  # `evaluate` loading scripts: evaluate runs a copy elsewhere, so they import by name
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                    if any(name.split(".")[0] == "soundlm" for name in names):
                        absolute.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not absolute, absolute
    # the training scripts run as files (`accelerate launch training/x.py`), so they are the exception
    assert all((REPO / script).is_file() for script in SCRIPTS)
