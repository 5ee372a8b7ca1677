"""Classification scores of the two papers: accuracy (MINT Table 2: NSynth, FMA, GTZAN), multi-label mAP and macro
ROC-AUC (MINT Table 2: OpenMIC "PR" and "ROC"), and LM-MSN's Table III rule for free-text answers.

All scores are fractions in [0, 1]; :func:`format_label_match_table` prints percentages as the papers do.

Ties in the multi-label scores (several items with the same score for a class) are handled as scikit-learn does:

- average precision (AP) is the step-wise area sum_k (R_k - R_{k-1}) P_k over the *distinct* scores, highest
  first; tied items cross the threshold together, so a tie of one positive and one negative contributes the
  precision of the pair as a whole (never the optimistic "positive first");
- ROC-AUC is the probability that a random positive scores above a random negative, a tie counting 1/2 (the
  Mann-Whitney statistic; equal to the trapezoidal area under the ROC curve through the distinct thresholds).

A class with no positive item has no AP, and a class whose items are all positive or all negative has no ROC-AUC:
such classes are left out of the macro means and listed under ``"skipped"`` (scikit-learn warns and scores them 0).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

# GTZAN names the genre "hiphop"; LM-MSN's Table III writes "hip-hop" (our alias list, not the paper's).
GTZAN_ALIASES: dict[str, tuple[str, ...]] = {"hiphop": ("hip-hop", "hip hop")}


def _check_sequence(value: Any, name: str) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a list, got {type(value).__name__}")
    if len(value) == 0:
        raise ValueError(f"{name} is empty: expected at least one item")


def _check_same_length(first: Sequence, second: Sequence, names: tuple[str, str]) -> None:
    if len(first) != len(second):
        raise ValueError(f"{names[0]} has {len(first)} items but {names[1]} has {len(second)}: expected one each")


def accuracy(predictions: Sequence[Hashable], references: Sequence[Hashable]) -> float:
    """Fraction of items whose predicted label equals the reference label (labels: all str or all int)."""
    _check_sequence(predictions, "predictions")
    _check_sequence(references, "references")
    _check_same_length(predictions, references, ("predictions", "references"))
    kinds = set()
    for name, labels in (("predictions", predictions), ("references", references)):
        for index, label in enumerate(labels):
            label = label.item() if isinstance(label, np.generic) else label
            if isinstance(label, bool) or not isinstance(label, (str, int)):
                raise TypeError(f"{name}[{index}] is {type(label).__name__} ({label!r}): expected a str or int label")
            kinds.add(type(label))
    if len(kinds) > 1:
        raise TypeError("predictions and references mix str and int labels: expected labels of one kind")
    return float(np.mean([p == r for p, r in zip(predictions, references)]))


# ---------------------------------------------------------------------------------------------------------------
# multi-label: mAP and macro ROC-AUC


def _check_scores_targets(scores: Any, targets: Any, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Float scores and boolean targets of the same shape with ``ndim`` dimensions; NaN and non-0/1 rejected."""
    scores_array = np.asarray(scores)
    targets_array = np.asarray(targets)
    if scores_array.dtype == object or not np.issubdtype(scores_array.dtype, np.number):
        raise TypeError(f"scores must be numbers, got dtype {scores_array.dtype}")
    if scores_array.ndim != ndim:
        raise ValueError(f"scores must have {ndim} dimension(s) ({'items' if ndim == 1 else 'items x classes'}), "
                         f"got shape {scores_array.shape}")
    if targets_array.shape != scores_array.shape:
        raise ValueError(f"targets has shape {targets_array.shape} but scores has shape {scores_array.shape}: "
                         "expected the same shape")
    if scores_array.size == 0:
        raise ValueError(f"scores is empty (shape {scores_array.shape}): expected at least one item")
    scores_array = scores_array.astype(np.float64)
    if np.isnan(scores_array).any():
        where = tuple(int(i) for i in np.argwhere(np.isnan(scores_array))[0])
        raise ValueError(f"scores holds NaN (first at index {where}): expected finite scores")
    if targets_array.dtype == object or not (np.issubdtype(targets_array.dtype, np.number)
                                             or targets_array.dtype == bool):
        raise TypeError(f"targets must be 0/1 or bool, got dtype {targets_array.dtype}")
    if not np.isin(targets_array, (0, 1)).all():
        bad = targets_array[~np.isin(targets_array, (0, 1))].flat[0]
        raise ValueError(f"targets must be 0/1, got {bad!r}")
    return scores_array, targets_array.astype(bool)


def average_precision(scores: Sequence[float] | np.ndarray, targets: Sequence[int] | np.ndarray) -> float:
    """AP of one class: ``scores`` (n,) higher = more likely, ``targets`` (n,) 0/1; ties as in the module docstring.

    Raises ``ValueError`` when there is no positive (AP undefined).
    """
    scores, targets = _check_scores_targets(scores, targets, 1)
    positives = int(targets.sum())
    if positives == 0:
        raise ValueError("targets has no positive item: average precision is undefined")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_targets = scores[order], targets[order]
    true_positives = np.cumsum(sorted_targets)
    # the last index of each group of equal scores: a threshold admits the whole group
    ends = np.r_[np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]), len(scores) - 1]
    tp = true_positives[ends].astype(np.float64)
    precision = tp / (ends + 1)
    recall_steps = np.diff(np.r_[0.0, tp]) / positives
    return float(np.sum(recall_steps * precision))


def roc_auc(scores: Sequence[float] | np.ndarray, targets: Sequence[int] | np.ndarray) -> float:
    """ROC-AUC of one class: P(score of a random positive > score of a random negative), a tie counting 1/2.

    ``scores`` (n,), ``targets`` (n,) 0/1. Raises ``ValueError`` when all items are of one kind (undefined).
    """
    scores, targets = _check_scores_targets(scores, targets, 1)
    positives = int(targets.sum())
    negatives = len(targets) - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"targets has {positives} positive and {negatives} negative items: ROC-AUC needs both")
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    starts = np.r_[0, np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]) + 1]
    stops = np.r_[starts[1:], len(scores)]
    for start, stop in zip(starts, stops):  # tied scores share the mean of their 1-based ranks
        ranks[order[start:stop]] = (start + 1 + stop) / 2
    rank_sum = ranks[targets].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def multilabel_scores(
    scores: Sequence[Sequence[float]] | np.ndarray,
    targets: Sequence[Sequence[int]] | np.ndarray,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Macro mAP and macro ROC-AUC of multi-label scores.

    ``scores`` (items, classes) float, higher = more likely; ``targets`` (items, classes) 0/1.
    Returns ``{"mAP", "roc_auc", "per_class": {name: {"ap", "roc_auc", "positives"}}, "skipped": {"ap": [...],
    "roc_auc": [...]}}``; classes where a score is undefined are skipped (see the module docstring).
    """
    scores, targets = _check_scores_targets(scores, targets, 2)
    num_classes = scores.shape[1]
    if class_names is None:
        class_names = [str(index) for index in range(num_classes)]
    elif len(class_names) != num_classes:
        raise ValueError(f"class_names has {len(class_names)} names but scores has {num_classes} classes")
    per_class: dict[str, dict[str, float | int | None]] = {}
    skipped: dict[str, list[str]] = {"ap": [], "roc_auc": []}
    for index, name in enumerate(class_names):
        column, target = scores[:, index], targets[:, index]
        positives = int(target.sum())
        entry: dict[str, float | int | None] = {"positives": positives, "ap": None, "roc_auc": None}
        if positives > 0:
            entry["ap"] = average_precision(column, target)
        else:
            skipped["ap"].append(name)
        if 0 < positives < len(target):
            entry["roc_auc"] = roc_auc(column, target)
        else:
            skipped["roc_auc"].append(name)
        per_class[name] = entry
    aps = [entry["ap"] for entry in per_class.values() if entry["ap"] is not None]
    aucs = [entry["roc_auc"] for entry in per_class.values() if entry["roc_auc"] is not None]
    if not aps:
        raise ValueError("targets has no positive item in any class: mAP is undefined")
    return {"mAP": float(np.mean(aps)), "roc_auc": float(np.mean(aucs)) if aucs else math.nan,
            "per_class": per_class, "skipped": skipped}


# ---------------------------------------------------------------------------------------------------------------
# LM-MSN Table III: a free-text answer is correct when it names the true label


def _term_pattern(term: str) -> re.Pattern:
    """Case-insensitive, word-bounded, any run of whitespace between the words of ``term``."""
    words = term.split()
    if not words:
        raise ValueError(f"label or alias {term!r} is blank: expected a word")
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(word) for word in words) + r"(?!\w)", re.IGNORECASE)


def names_label(text: str, label: str, aliases: Mapping[str, Sequence[str]] | None = None) -> bool:
    """True when ``text`` names ``label`` or one of ``aliases[label]``: case-insensitive, on word boundaries.

    A word boundary is a character that is not a letter, digit or underscore (or the text's ends), so "pop" is
    named in "pop-rock" and "Pop." but not in "popular"; "rock" is not named in "rocks".
    """
    terms = [label, *((aliases or {}).get(label, ()))]
    return any(_term_pattern(term).search(text) for term in terms)


def _normalise_output(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" .,;:!?\"'")


def label_in_text_accuracy(
    outputs: Sequence[str],
    labels: Sequence[str],
    aliases: Mapping[str, Sequence[str]] | None = None,
    vocabulary: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    top_k: int = 2,
) -> dict[str, Any]:
    """LM-MSN Table III: each free-text ``outputs[i]`` is correct when it names ``labels[i]`` (:func:`names_label`).

    ``aliases``: label -> other spellings that also count (e.g. :data:`GTZAN_ALIASES`). ``vocabulary``: terms to
    tally per class as its "most frequent outputs" (a list, or canonical term -> spellings); each output counts
    every term it names once, and "(none)" when it names none. Without a vocabulary the whole output is tallied,
    case-folded, whitespace collapsed and end punctuation stripped. Ties in the tally keep first-seen order.

    Returns ``{"accuracy": fraction of all items, "per_class": {label: {"accuracy", "correct", "count",
    "top_outputs": [(output, count), ...] (top_k)}}, "correct": [bool per item]}``, classes sorted by name.
    """
    _check_sequence(outputs, "outputs")
    _check_sequence(labels, "labels")
    _check_same_length(outputs, labels, ("outputs", "labels"))
    for name, values in (("outputs", outputs), ("labels", labels)):
        for index, value in enumerate(values):
            if not isinstance(value, str):
                raise TypeError(f"{name}[{index}] is {type(value).__name__} ({value!r}): expected a str")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    aliases = dict(aliases or {})
    for label, spellings in aliases.items():
        if isinstance(spellings, str):
            raise TypeError(f"aliases[{label!r}] is a str: expected a list of spellings")
    if vocabulary is not None:
        if isinstance(vocabulary, str):
            raise TypeError("vocabulary is a str: expected a list of terms or a mapping term -> spellings")
        terms = vocabulary if isinstance(vocabulary, Mapping) else {term: () for term in vocabulary}
        vocabulary_patterns = {term: [_term_pattern(spelling) for spelling in (term, *spellings)]
                               for term, spellings in terms.items()}
    correct = [names_label(output, label, aliases) for output, label in zip(outputs, labels)]
    per_class: dict[str, dict[str, Any]] = {}
    for label in sorted(set(labels)):
        indices = [index for index, value in enumerate(labels) if value == label]
        tally: Counter[str] = Counter()
        for index in indices:
            if vocabulary is None:
                tally[_normalise_output(outputs[index])] += 1
                continue
            named = [term for term, patterns in vocabulary_patterns.items()
                     if any(pattern.search(outputs[index]) for pattern in patterns)]
            tally.update(named or ["(none)"])
        hits = sum(correct[index] for index in indices)
        per_class[label] = {"accuracy": hits / len(indices), "correct": hits, "count": len(indices),
                            "top_outputs": tally.most_common(top_k)}
    return {"accuracy": float(np.mean(correct)), "per_class": per_class, "correct": correct}


def format_label_match_table(result: Mapping[str, Any]) -> str:
    """Markdown table of :func:`label_in_text_accuracy`'s result in the layout of LM-MSN's Table III (percent)."""
    lines = ["| class | items | accuracy (%) | most frequent outputs |", "|---|---:|---:|---|"]
    for label, entry in result["per_class"].items():
        outputs = ", ".join(f"{text} ({count})" for text, count in entry["top_outputs"])
        lines.append(f"| {label} | {entry['count']} | {100 * entry['accuracy']:.2f} | {outputs} |")
    lines.append(f"| all | {sum(e['count'] for e in result['per_class'].values())} | "
                 f"{100 * result['accuracy']:.2f} | |")
    return "\n".join(lines)
