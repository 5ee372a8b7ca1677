"""The FAD and reconstruction evaluate modules load offline from their folders and equal the library."""

import evaluate
import numpy as np
import pytest

from soundlm.evaluation.frechet import fad
from soundlm.evaluation.metrics import metric_path
from soundlm.evaluation.signal import level_difference_db, mel_distance, spectral_flatness


def test_fad_module_equals_the_library_and_needs_the_model_name():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 4)), rng.normal(0.3, 1.2, size=(90, 4))
    metric = evaluate.load(metric_path("frechet_audio_distance"))
    result = metric.compute(predictions=a.tolist(), reference_embeddings=b, model="toy")
    assert result["fad"] == pytest.approx(fad(a, b, model="toy").fad) and result["model"] == "toy"
    with pytest.raises(ValueError, match="reference_embeddings is required"):
        metric.compute(predictions=a.tolist(), model="toy")
    with pytest.raises(ValueError, match="model must name the embedding model"):
        metric.compute(predictions=a.tolist(), reference_embeddings=b)


def test_reconstruction_module_equals_the_library():
    rng = np.random.default_rng(1)
    references = [rng.normal(0, 0.1, 4000).astype(np.float32) for _ in range(3)]
    predictions = [r * g for r, g in zip(references, (0.5, 1.0, 2.0))]
    metric = evaluate.load(metric_path("audio_reconstruction"))
    result = metric.compute(predictions=[p.tolist() for p in predictions], references=[r.tolist() for r in references],
                            sampling_rate=8000)
    expected = [level_difference_db(p, r) for p, r in zip(predictions, references)]
    assert result["per_item"]["level_db"] == pytest.approx(expected, abs=1e-4)
    assert result["level_db_median"] == pytest.approx(0.0, abs=1e-4)
    assert result["mel_distance"] == pytest.approx(
        np.mean([mel_distance(p, r, 8000) for p, r in zip(predictions, references)]), rel=1e-4)
    assert result["per_item"]["flatness"] == pytest.approx([spectral_flatness(p) for p in predictions], rel=1e-4)
    tone = np.sin(2 * np.pi * 440 * np.arange(4000) / 8000).astype(np.float32)  # noise for a tone: flatness rises
    noisy = metric.compute(predictions=[references[0].tolist()], references=[tone.tolist()], sampling_rate=8000)
    assert noisy["flatness_median"] > 0.3 > 1e-3 > noisy["reference_flatness_median"]
    with pytest.raises(ValueError, match="sampling_rate is required"):
        metric.compute(predictions=[predictions[0].tolist()], references=[references[0].tolist()])
