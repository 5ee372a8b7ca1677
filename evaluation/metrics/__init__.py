"""Local ``evaluate`` modules for the metrics of ``soundlm.evaluation``, loadable offline from their folders.

    import evaluate
    from soundlm.evaluation.metrics import metric_path
    captioning = evaluate.load(metric_path("audio_captioning"))          # or the folder's path as a string
    multilabel = evaluate.load(metric_path("audio_classification"), "multilabel")

Each folder holds ``<name>/<name>.py``, an ``evaluate.Metric`` whose ``_compute`` calls the library function.
``evaluate`` copies that file into its modules cache (``$HF_HOME/modules``) and imports it from there, so a
relative import cannot work: the scripts import the library by its installed name (the one place inside the
package that names ``soundlm``; ``tests/test_layers.py`` exempts these folders and requires every other ``import``
of the library to be relative). A local folder needs nothing from the Hub (tested with ``HF_HUB_OFFLINE=1``);
``evaluate`` only checks that the script's imports resolve, and ``soundlm`` must be installed (it is, where this
runs).
It writes to ``$HF_HOME`` (``modules/`` for the copied script, ``metrics/`` for the inputs gathered by
``add_batch``), so ``HF_HOME`` must be writable (or ``HF_MODULES_CACHE`` / ``HF_METRICS_CACHE`` set).
The folders carry an ``__init__.py`` only so that the wheel ships the scripts.
"""

from __future__ import annotations

from pathlib import Path

METRICS = (
    "audio_captioning", "audio_classification", "audio_retrieval", "audio_reconstruction", "frechet_audio_distance",
)


def metric_path(name: str) -> str:
    """The folder of the local ``evaluate`` module ``name`` (one of :data:`METRICS`), for ``evaluate.load``."""
    if name not in METRICS:
        raise ValueError(f"name must be one of {METRICS}, got {name!r}")
    return str(Path(__file__).resolve().parent / name)
