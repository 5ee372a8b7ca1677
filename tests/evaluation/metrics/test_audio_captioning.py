"""The local evaluate module loads offline from its folder and computes what the library function computes."""

import json
import os
import shutil
from pathlib import Path

import evaluate
import pytest

from soundlm.evaluation.captioning import caption_scores
from soundlm.evaluation.metrics import metric_path

DATA = Path(__file__).resolve().parents[1] / "data" / "captions.json"


@pytest.mark.skipif(shutil.which("java") is None,
                    reason="no Java runtime: apt-get install default-jre-headless (PTBTokenizer, METEOR)")
def test_loads_from_its_folder_offline_and_equals_the_library():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    items = json.loads(DATA.read_text())["items"]
    predictions, references = [i["prediction"] for i in items], [i["references"] for i in items]
    metric = evaluate.load(metric_path("audio_captioning"))
    assert "SPIDEr" in metric.description and "vedantam2015cider" in metric.citation
    metric.add_batch(predictions=predictions[:9], references=references[:9])
    metric.add_batch(predictions=predictions[9:], references=references[9:])
    result = metric.compute(spice=False)
    expected = caption_scores(predictions, references, spice=False)
    assert result == expected
    assert result["num_items"] == 16 and "bleu" in result["backends"]
