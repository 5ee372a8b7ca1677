"""Audio classification scores as a local `evaluate` module, three configurations:

    evaluate.load("<folder>/audio_classification")                   # "accuracy": label vs label
    evaluate.load("<folder>/audio_classification", "multilabel")     # mAP and macro ROC-AUC of score vectors
    evaluate.load("<folder>/audio_classification", "label_in_text")  # LM-MSN Table III rule on free text

It calls soundlm.evaluation.classification (imported by name: evaluate runs a copy of this file).
"""

import datasets
import evaluate

# evaluate runs a copy of this file from its modules cache: the library is imported by its installed name
import soundlm.evaluation.classification as _library

CONFIGS = ("accuracy", "multilabel", "label_in_text")

_CITATION = """\
Mehta, Jojic, Gamper. Make Some Noise: Towards LLM audio reasoning and generation using sound tokens
(LM-MSN; Table III: a free-text answer counts as correct when it names the true genre).
Boosting Audio-Language Model via Multi-Target Pre-Training and Instruction Tuning (MINT; Table 2: accuracy,
OpenMIC mAP ("PR") and macro ROC-AUC).
"""

_DESCRIPTION = """\
Classification scores of the LM-MSN and MINT papers. "accuracy": fraction of exact label matches. "multilabel":
macro mean average precision and macro ROC-AUC over classes (ties as scikit-learn; classes where a score is
undefined are skipped and listed). "label_in_text": an output is correct when it names its true label
(case-insensitive, word boundaries, optional aliases), with per-class accuracy and most frequent outputs.
All scores are fractions in [0, 1].
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: "accuracy": predicted labels (str or int); "multilabel": per item a list of class scores;
        "label_in_text": the model's free-text answers.
    references: "accuracy": true labels; "multilabel": per item a list of 0/1 targets (same length as its
        scores); "label_in_text": the true label of each item.
    class_names ("multilabel"): names of the classes, in score order.
    aliases, vocabulary, top_k ("label_in_text"): see soundlm.evaluation.classification.label_in_text_accuracy.
Returns:
    "accuracy": {"accuracy"}; "multilabel": {"mAP", "roc_auc", "per_class", "skipped"};
    "label_in_text": {"accuracy", "per_class", "correct"}.
Examples:
    >>> metric = evaluate.load("evaluation/metrics/audio_classification", "label_in_text")
    >>> result = metric.compute(predictions=["Some hip hop."], references=["hiphop"], aliases={"hiphop": ["hip hop"]})
    >>> result["accuracy"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AudioClassification(evaluate.Metric):
    """Accuracy, multi-label mAP / macro ROC-AUC, or the LM-MSN Table III label-in-text rule."""

    def _info(self):
        if self.config_name == "default":
            self.config_name = "accuracy"
        if self.config_name not in CONFIGS:
            raise ValueError(f"config_name must be one of {CONFIGS}, got {self.config_name!r}")
        if self.config_name == "accuracy":
            features = [
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
                datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            ]
        elif self.config_name == "multilabel":
            features = datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("float64")),
                "references": datasets.Sequence(datasets.Value("int64")),
            })
        else:
            features = datasets.Features({"predictions": datasets.Value("string"),
                                          "references": datasets.Value("string")})
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=features,
        )

    def _compute(self, predictions, references, class_names=None, aliases=None, vocabulary=None, top_k=2):
        if self.config_name == "accuracy":
            return {"accuracy": _library.accuracy(predictions, references)}
        if self.config_name == "multilabel":
            return _library.multilabel_scores(predictions, references, class_names)
        return _library.label_in_text_accuracy(predictions, references, aliases=aliases, vocabulary=vocabulary,
                                               top_k=top_k)
