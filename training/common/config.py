"""YAML configs for the training scripts, with command-line overrides.

A config is a nested dict. Overrides are ``--section.key=value`` (or ``--section.key value``) pairs whose
value is parsed as YAML, so ``--model.hidden_size=128``, ``--train.lr 3e-4`` and
``--model.frontend_config.num_mel_bins=64`` all work. An override must name a key the file already has
(a typo should fail, not train a different model silently), unless ``--allow_new_keys`` is given.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml


def load_config(path: str | Path | None, overrides: list[str] | None = None, allow_new_keys: bool = False) -> dict:
    """Read ``path`` (YAML) and apply ``overrides`` (``["--a.b=1", "--c", "x"]``)."""
    config: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"config file {str(path)!r} does not exist")
        config = yaml.safe_load(path.read_text()) or {}
        if not isinstance(config, dict):
            raise ValueError(f"config file {str(path)!r} must hold a mapping at top level, got {type(config).__name__}")
    return apply_overrides(config, overrides or [], allow_new_keys=allow_new_keys)


def apply_overrides(
    config: dict, overrides: list[str], allow_new_keys: bool = False, open_sections: tuple[str, ...] = ()
) -> dict:
    """A copy of ``config`` with ``overrides`` applied; keys under ``open_sections`` (for example ``model``,
    whose keys are a model config's arguments) may be new."""
    config = copy.deepcopy(config)
    pairs = _pairs(overrides)
    for dotted, raw in pairs:
        keys = dotted.split(".")
        new_ok = allow_new_keys or keys[0] in open_sections
        node = config
        for depth, key in enumerate(keys[:-1]):
            if key not in node or node[key] is None:
                if not new_ok:
                    section = ".".join(keys[: depth + 1])
                    raise ValueError(f"override --{dotted}: section {section!r} is not in the config")
                node[key] = {}
            node = node[key]
            if not isinstance(node, dict):
                raise ValueError(f"override --{dotted}: {'.'.join(keys[: depth + 1])!r} is not a section")
        if keys[-1] not in node and not new_ok:
            known = ", ".join(sorted(node)) or "none"
            raise ValueError(f"override --{dotted}: unknown key {keys[-1]!r} (known here: {known})")
        node[keys[-1]] = parse_value(raw)
    return config


def parse_value(raw: str):
    """YAML value of an override; numbers YAML 1.1 leaves as strings (``3e-4``) become floats."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _pairs(overrides: list[str]) -> list[tuple[str, str]]:
    pairs = []
    index = 0
    while index < len(overrides):
        item = overrides[index]
        if not item.startswith("--") or len(item) == 2:
            raise ValueError(f"overrides must look like --section.key=value, got {item!r}")
        if "=" in item:
            key, value = item[2:].split("=", 1)
            index += 1
        else:
            if index + 1 >= len(overrides):
                raise ValueError(f"override {item!r} has no value")
            key, value = item[2:], overrides[index + 1]
            index += 2
        pairs.append((key, value))
    return pairs


def merge_sections(defaults: dict, config: dict) -> dict:
    """``defaults`` (section -> key -> value) updated by ``config``; an unknown section or key is refused with the
    known ones listed (a typo should fail, not train a different model silently)."""
    merged = {section: dict(values) for section, values in defaults.items()}
    for section, values in config.items():
        if section not in merged:
            raise ValueError(f"unknown config section {section!r}; expected one of {sorted(merged)}")
        unknown = sorted(set(values or {}) - set(merged[section]))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in section {section!r}; known: {sorted(merged[section])}")
        merged[section].update(values or {})
    return merged
