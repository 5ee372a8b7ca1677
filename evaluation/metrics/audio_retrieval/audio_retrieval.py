"""Text-audio retrieval scores as a local `evaluate` module: evaluate.load("<folder>/audio_retrieval").

It calls soundlm.evaluation.retrieval.bidirectional_recall (imported by name: evaluate runs a copy of this file).
"""

import datasets
import evaluate

# evaluate runs a copy of this file from its modules cache: the library is imported by its installed name
import soundlm.evaluation.retrieval as _library

_CITATION = """\
Boosting Audio-Language Model via Multi-Target Pre-Training and Instruction Tuning (MINT; Table 3: Clotho
text-to-audio R@1/5/10, zero-shot).
"""

_DESCRIPTION = """\
Recall at k in both directions (text -> audio and audio -> text) and the median rank, from a similarity matrix of
text queries x audio clips. A query is a hit at k when one of its correct items is among the k most similar; a
correct item tied with wrong ones is ranked after them by default (ties="pessimistic"; also "optimistic" and
"mean", the expectation under random tie-breaking). Recalls are fractions in [0, 1].
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: one row per text query: its similarity to every audio clip (all rows of one length).
    references: per text query, the index (int) or indices (list of int) of its correct audio clip(s).
    ks: the k of R@k (default (1, 5, 10)).
    ties: "pessimistic" (default), "optimistic" or "mean".
Returns:
    {"text_to_audio": {"R@1", "R@5", "R@10", "median_rank", "mean_rank", "queries", "ranks"},
     "audio_to_text": {... the same, "skipped_queries"}}.
Examples:
    >>> metric = evaluate.load("evaluation/metrics/audio_retrieval")
    >>> metric.compute(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[0, 1], ks=[1])["text_to_audio"]["R@1"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AudioRetrieval(evaluate.Metric):
    """R@k in both directions and median rank from a (texts x audios) similarity matrix."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Sequence(datasets.Value("float64")),
                                   "references": datasets.Sequence(datasets.Value("int64"))}),
                datasets.Features({"predictions": datasets.Sequence(datasets.Value("float64")),
                                   "references": datasets.Value("int64")}),
            ],
        )

    def _compute(self, predictions, references, ks=(1, 5, 10), ties="pessimistic"):
        return _library.bidirectional_recall(predictions, references, ks=list(ks), ties=ties)
