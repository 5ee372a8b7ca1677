"""The local evaluate module (three configurations) loads offline from its folder and equals the library."""

import evaluate
import numpy as np
import pytest

from soundlm.evaluation.classification import GTZAN_ALIASES, accuracy, label_in_text_accuracy, multilabel_scores
from soundlm.evaluation.metrics import metric_path


def test_accuracy_configuration():
    metric = evaluate.load(metric_path("audio_classification"))
    assert metric.config_name == "accuracy"
    assert metric.compute(predictions=["jazz", "rock"], references=["jazz", "pop"]) == {"accuracy": 0.5}
    assert metric.compute(predictions=[3, 1, 2], references=[3, 1, 1]) == {"accuracy": accuracy([3, 1, 2], [3, 1, 1])}


def test_multilabel_configuration():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((20, 4)), 1)
    targets = (rng.random((20, 4)) < 0.4).astype(int)
    targets[0], targets[1] = 1, 0
    metric = evaluate.load(metric_path("audio_classification"), "multilabel")
    result = metric.compute(predictions=scores.tolist(), references=targets.tolist(), class_names=list("abcd"))
    assert result == multilabel_scores(scores, targets, class_names=list("abcd"))


def test_label_in_text_configuration():
    outputs = ["Some Hip-Hop.", "rock and garage", "classical piano"]
    labels = ["hiphop", "metal", "classical"]
    metric = evaluate.load(metric_path("audio_classification"), "label_in_text")
    result = metric.compute(predictions=outputs, references=labels, aliases=GTZAN_ALIASES)
    expected = label_in_text_accuracy(outputs, labels, aliases=GTZAN_ALIASES)
    assert result["accuracy"] == expected["accuracy"] == pytest.approx(2 / 3)
    assert result["correct"] == expected["correct"]
    assert result["per_class"] == expected["per_class"]


def test_unknown_configuration_and_path():
    with pytest.raises(ValueError, match="config_name must be one of"):
        evaluate.load(metric_path("audio_classification"), "top5")
    with pytest.raises(ValueError, match="name must be one of"):
        metric_path("audio_tagging")
