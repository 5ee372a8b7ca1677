"""MINT stage-1 and stage-2 folders exported for the Hub: cards with the right pipeline tag and Auto class, and the
folders load as remote code in a process that never imports soundlm, with the same outputs to the bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import tiny_mint_clips, tiny_mint_config, tiny_mint_stage1_processor, tiny_mint_stage2_processor

from soundlm import export_for_hub
from soundlm.modeling.mint import MintForConditionalGeneration, MintForPreTraining

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)

STAGES = {
    1: (tiny_mint_stage1_processor, MintForPreTraining, "AutoModelForPreTraining", "zero-shot-audio-classification"),
    2: (tiny_mint_stage2_processor, MintForConditionalGeneration, "AutoModelForSpeechSeq2Seq", "audio-text-to-text"),
}
# what the fresh process computes: the stage's main output on a fixed clip and prompt
OUTPUTS = {
    1: ("model.get_audio_features(**{k: v for k, v in inputs.items() if k.startswith('audio')})"),
    2: ("model(**inputs).logits"),
}


@pytest.mark.parametrize("stage", [1, 2])
def test_exported_mint_loads_as_remote_code_with_the_same_outputs(tmp_path, stage):
    make_processor, model_class, auto_class, pipeline_tag = STAGES[stage]
    processor = make_processor()
    torch.manual_seed(0)
    model = model_class(tiny_mint_config(processor, with_llm=stage == 2)).eval()
    folder = export_for_hub(model, tmp_path / "hub", processor, repo_id=f"org/mint-stage{stage}")

    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"][auto_class] == config["auto_map"]["AutoModel"] == f"modeling_mint.{model_class.__name__}"
    processor_config = json.loads((folder / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_mint.MintProcessor"}
    assert processor_config["feature_extractor"]["auto_map"] == {
        "AutoFeatureExtractor": "feature_extraction_yamnet.YamnetFeatureExtractor"}
    card = (folder / "README.md").read_text()
    front = card.split("---")[1]
    assert f"pipeline_tag: {pipeline_tag}" in front and f"# MINT stage {stage} (`org/mint-stage{stage}`)" in card
    assert f"{auto_class}.from_pretrained(\"org/mint-stage{stage}\", trust_remote_code=True)" in card
    assert "$" not in card

    text = "this is a sound of" if stage == 1 else "describe the audio"
    inputs = processor(audio=tiny_mint_clips()[1], sampling_rate=16000, text=[text])
    with torch.no_grad():
        expected = eval(OUTPUTS[stage], {"model": model, "inputs": inputs})  # noqa: S307 (the test's own strings)
    torch.save({"inputs": dict(inputs), "expected": expected}, tmp_path / "io.pt")
    script = f"""
import sys, torch
from transformers import AutoProcessor, {auto_class}
model = {auto_class}.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained({str(folder)!r}, trust_remote_code=True)
assert not any(name.split(".")[0] == "soundlm" for name in sys.modules), "soundlm imported"
io = torch.load({str(tmp_path / "io.pt")!r})
inputs = dict(processor(text=[{text!r}]))  # the remote processor tokenizes as the local one did
with torch.no_grad():
    got = {OUTPUTS[stage].replace("inputs", "io['inputs']")}
assert torch.equal(got, io["expected"]), (got - io["expected"]).abs().max()
assert torch.equal(inputs["input_ids" if {stage} == 1 else "qformer_input_ids"],
                   io["inputs"]["input_ids" if {stage} == 1 else "qformer_input_ids"])
print("ok", type(model).__module__, type(processor).__name__)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok transformers_modules.") and result.stdout.strip().endswith("MintProcessor")


REPORT = {  # the layout of evaluation/mint_report.py's report.json, numbers made up
    "split": "test", "clips": 5,
    "classification": {"birds": {"accuracy": {"stage 1 (ALC+ALM+ATG)": 0.5, "stage 1 (ALC)": 0.25,
                                              "stage 1+2 (vocabulary ranking)": 0.75}}},
    "retrieval": {"recall": {"stage 1 (ALC+ALM+ATG)": {"R@1": 0.123456, "R@5": 0.5, "R@10": 1.0}}},
    "captions": {"scores": {"meteor": 0.2, "cider_d": 0.1}},
}
DATASET = {"name": "demo corpus", "type": "demo-corpus", "split": "test"}


@pytest.mark.parametrize("stage", [1, 2])
def test_model_index_in_the_card_holds_the_reports_numbers(tmp_path, stage):
    import yaml

    make_processor, model_class, _, _ = STAGES[stage]
    processor = make_processor()
    model = model_class(tiny_mint_config(processor, with_llm=stage == 2))
    results = model.hub_model_index(REPORT, DATASET)
    folder = export_for_hub(model, tmp_path / "hub", processor, repo_id="org/m", model_index=results)
    front = yaml.safe_load((folder / "README.md").read_text().split("---")[1])
    index = front["model-index"][0]
    assert index["name"] == "m"
    by_task = {result["task"]["type"]: result for result in index["results"]}
    accuracy = by_task["zero-shot-audio-classification"]
    assert accuracy["dataset"] == {"name": "demo corpus: birds", "type": "demo-corpus", "split": "test"}
    assert accuracy["metrics"] == [{"type": "accuracy", "value": 0.5 if stage == 1 else 0.75, "name": "accuracy"}]
    if stage == 1:  # retrieval is stage 1's; captions are stage 2's
        assert [m["value"] for m in by_task["audio-retrieval"]["metrics"]] == [0.1235, 0.5, 1.0]
        assert "audio-captioning" not in by_task
    else:
        assert by_task["audio-captioning"]["metrics"][0] == {"type": "meteor", "value": 0.2, "name": "meteor"}
        assert "audio-retrieval" not in by_task
    model.config.use_alm = False  # an ALC + ATG model has no row in this report
    if stage == 1:
        with pytest.raises(ValueError, match=r"no row 'stage 1 \(ALC\+ATG\)'"):
            model.hub_model_index(REPORT, DATASET)
