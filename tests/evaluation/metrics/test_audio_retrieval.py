"""The local evaluate module loads offline from its folder and equals the library function."""

import evaluate
import numpy as np

from soundlm.evaluation.metrics import metric_path
from soundlm.evaluation.retrieval import bidirectional_recall


def test_loads_from_its_folder_and_equals_the_library():
    rng = np.random.default_rng(0)
    similarity = np.round(rng.normal(size=(10, 5)), 1)  # 10 captions of 5 clips, ties from rounding
    text_to_audio = [t // 2 for t in range(10)]
    metric = evaluate.load(metric_path("audio_retrieval"))
    for ties in ("pessimistic", "mean"):
        result = metric.compute(predictions=similarity.tolist(), references=text_to_audio, ks=[1, 5], ties=ties)
        assert result == bidirectional_recall(similarity, text_to_audio, ks=[1, 5], ties=ties)
    several = [[t // 2, (t // 2 + 1) % 5] for t in range(10)]
    result = metric.compute(predictions=similarity.tolist(), references=several)
    assert result == bidirectional_recall(similarity, several)
    assert set(result["text_to_audio"]) >= {"R@1", "R@5", "R@10", "median_rank"}
