"""Accuracy, mAP / ROC-AUC by hand and against scikit-learn (ties included), the LM-MSN Table III rule."""

import numpy as np
import pytest

from soundlm.evaluation.classification import (
    GTZAN_ALIASES,
    accuracy,
    average_precision,
    format_label_match_table,
    label_in_text_accuracy,
    multilabel_scores,
    names_label,
    roc_auc,
)


def test_accuracy():
    assert accuracy(["jazz", "rock", "pop", "pop"], ["jazz", "pop", "pop", "rock"]) == 0.5
    assert accuracy(np.array([1, 2, 3]), [1, 2, 4]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("predictions, references, error, match", [
    (["a"], ["a", "b"], ValueError, "predictions has 1 items but references has 2"),
    ([], [], ValueError, "predictions is empty"),
    ("ab", ["a", "b"], TypeError, "predictions must be a list"),
    ([1, "b"], [1, "b"], TypeError, "mix str and int"),
    ([1.5], [1], TypeError, r"predictions\[0\] is float"),
    ([True], [1], TypeError, r"predictions\[0\] is bool"),
])
def test_accuracy_rejects_bad_inputs(predictions, references, error, match):
    with pytest.raises(error, match=match):
        accuracy(predictions, references)


def test_average_precision_by_hand():
    # ranking 1 0 1 0: precision 1/1 at recall 1/2, 2/3 at recall 1
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # a positive tied with a negative at the top: the tie is one threshold, precision 1/2 at recall 1/2
    assert average_precision([0.8, 0.8, 0.3], [1, 0, 1]) == pytest.approx(0.5 * 1 / 2 + 0.5 * 2 / 3)
    # two positives and a negative tied: 2/3 at recall 2/3, then 3/4 at recall 1
    assert average_precision([0.5, 0.5, 0.5, 0.1], [1, 1, 0, 1]) == pytest.approx(2 / 3 * 2 / 3 + 1 / 3 * 3 / 4)
    assert average_precision([0.2, 0.1], [True, False]) == 1.0


def test_roc_auc_by_hand():
    # positives {0.8, 0.3}, negatives {0.8, 0.1}: pairs 0.5 (tie) + 1 + 0 + 1 = 2.5 of 4
    assert roc_auc([0.8, 0.8, 0.3, 0.1], [1, 0, 1, 0]) == pytest.approx(2.5 / 4)
    assert roc_auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert roc_auc([5, 5, 5], [0, 1, 0]) == 0.5
    assert roc_auc([-np.inf, -np.inf, 0.0], [1, 0, 1]) == pytest.approx(0.75)  # tied infinities are a tie


def test_multilabel_by_hand_with_skipped_classes():
    scores = [[0.9, 0.1, 0.3], [0.8, 0.7, 0.2], [0.2, 0.7, 0.9]]
    targets = [[1, 0, 0], [0, 1, 0], [1, 1, 0]]
    result = multilabel_scores(scores, targets, class_names=["guitar", "piano", "drums"])
    # guitar: ranking 1 0 1 -> AP 0.5 * 1 + 0.5 * 2/3; AUC: 0.9 > 0.8, 0.2 < 0.8 -> 1/2
    # piano: 0.7, 0.7 tied positives above 0.1 -> AP 1, AUC 1; drums: no positive -> skipped for both
    assert result["per_class"]["guitar"]["ap"] == pytest.approx(5 / 6)
    assert result["per_class"]["guitar"]["roc_auc"] == pytest.approx(0.5)
    assert result["per_class"]["piano"] == {"positives": 2, "ap": 1.0, "roc_auc": 1.0}
    assert result["skipped"] == {"ap": ["drums"], "roc_auc": ["drums"]}
    assert result["mAP"] == pytest.approx((5 / 6 + 1) / 2) and result["roc_auc"] == pytest.approx(0.75)


def test_multilabel_matches_scikit_learn_with_ties():
    metrics = pytest.importorskip(
        "sklearn.metrics", reason="scikit-learn comes with librosa in the [eval] extra; scripts/test.sh installs it")
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((60, 5)), 1)  # 11 distinct values: many ties
    targets = (rng.random((60, 5)) < 0.3).astype(int)
    targets[0], targets[1] = 1, 0  # every class has positives and negatives
    result = multilabel_scores(scores, targets)
    assert result["mAP"] == pytest.approx(metrics.average_precision_score(targets, scores, average="macro"), rel=1e-12)
    assert result["roc_auc"] == pytest.approx(metrics.roc_auc_score(targets, scores, average="macro"), rel=1e-12)
    for index in range(5):
        assert average_precision(scores[:, index], targets[:, index]) == pytest.approx(
            metrics.average_precision_score(targets[:, index], scores[:, index]), rel=1e-12)


@pytest.mark.parametrize("scores, targets, error, match", [
    ([[0.1, np.nan]], [[0, 1]], ValueError, r"scores holds NaN \(first at index \(0, 1\)\)"),
    ([[0.1, 0.2]], [[0, 1, 1]], ValueError, "targets has shape"),
    ([[0.1, 0.2]], [[0, 2]], ValueError, "targets must be 0/1"),
    ([0.1, 0.2], [0, 1], ValueError, "scores must have 2 dimension"),
    ([[0.1, 0.2]], [[0, 0]], ValueError, "no positive item in any class"),
    ([["a", "b"]], [[0, 1]], TypeError, "scores must be numbers"),
    (np.zeros((0, 3)), np.zeros((0, 3)), ValueError, "scores is empty"),
])
def test_multilabel_rejects_bad_inputs(scores, targets, error, match):
    with pytest.raises(error, match=match):
        multilabel_scores(scores, targets)


def test_single_class_scores_reject_undefined_cases():
    with pytest.raises(ValueError, match="no positive"):
        average_precision([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="ROC-AUC needs both"):
        roc_auc([0.1, 0.2], [1, 1])


def test_names_label_word_boundaries_and_aliases():
    assert names_label("Sounds like Jazz.", "jazz")
    assert not names_label("a jazzy folk tune", "jazz")
    assert not names_label("popular music", "pop") and names_label("pop-rock", "pop")
    assert not names_label("it rocks", "rock")
    assert names_label("HIP   HOP beats", "hip hop")
    assert not names_label("hip-hop", "hiphop") and names_label("hip-hop", "hiphop", GTZAN_ALIASES)


def test_table_three_rule_on_hand_made_outputs():
    outputs = ["This is a Hip-Hop track with rap vocals.", "hip hop beat", "An energetic pop song",
               "Heavy rock with distorted guitars, garage feel", "METAL!",
               "a jazzy folk tune", "Smooth jazz saxophone",
               "popular music"]
    labels = ["hiphop", "hiphop", "hiphop", "metal", "metal", "jazz", "jazz", "pop"]
    vocabulary = {"hip-hop": ["hip hop", "hiphop"], "pop": [], "rock": [], "garage": [], "folk": [], "jazz": [],
                  "metal": []}
    result = label_in_text_accuracy(outputs, labels, aliases=GTZAN_ALIASES, vocabulary=vocabulary)
    assert result["correct"] == [True, True, False, False, True, False, True, False]
    assert result["accuracy"] == 0.5
    per_class = result["per_class"]
    assert list(per_class) == ["hiphop", "jazz", "metal", "pop"]
    assert per_class["hiphop"] == {"accuracy": 2 / 3, "correct": 2, "count": 3,
                                   "top_outputs": [("hip-hop", 2), ("pop", 1)]}
    assert per_class["metal"]["top_outputs"] == [("rock", 1), ("garage", 1)]  # ties keep first-seen order
    assert per_class["jazz"]["top_outputs"] == [("folk", 1), ("jazz", 1)]
    assert per_class["pop"]["top_outputs"] == [("(none)", 1)]

    plain = label_in_text_accuracy(outputs, labels, top_k=1)  # no aliases: "hiphop" is never written that way
    assert plain["per_class"]["hiphop"]["accuracy"] == 0.0
    assert plain["per_class"]["metal"]["top_outputs"] == [("heavy rock with distorted guitars, garage feel", 1)]
    table = format_label_match_table(result)
    assert "| hiphop | 3 | 66.67 | hip-hop (2), pop (1) |" in table and "| all | 8 | 50.00 | |" in table


@pytest.mark.parametrize("outputs, labels, kwargs, error, match", [
    (["a"], ["a", "b"], {}, ValueError, "outputs has 1 items but labels has 2"),
    ([], [], {}, ValueError, "outputs is empty"),
    ([None], ["jazz"], {}, TypeError, r"outputs\[0\] is NoneType"),
    (["jazz"], ["jazz"], {"top_k": 0}, ValueError, "top_k must be a positive int"),
    (["jazz"], ["jazz"], {"aliases": {"jazz": "bebop"}}, TypeError, r"aliases\['jazz'\] is a str"),
    (["jazz"], ["jazz"], {"vocabulary": "jazz"}, TypeError, "vocabulary is a str"),
])
def test_table_three_rule_rejects_bad_inputs(outputs, labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        label_in_text_accuracy(outputs, labels, **kwargs)
