"""R@k and median rank: hand cases with ties under each rule, brute force over tie orders, both directions."""

import itertools

import numpy as np
import pytest

from soundlm.evaluation.retrieval import (
    bidirectional_recall,
    format_retrieval_table,
    invert_relevance,
    recall_at_k,
    retrieval_ranks,
)


def test_ranks_and_recall_by_hand_with_ties():
    similarity = [[0.9, 0.5, 0.5, 0.1],   # correct 2: 0.9 above, tied with wrong item 1
                  [0.3, 0.3, 0.3, 0.3],   # correct 0 and 3 among 4 equal scores
                  [0.1, 0.2, 0.3, 0.4]]   # correct 3: rank 1, no tie
    relevant = [2, [0, 3], 3]
    assert retrieval_ranks(similarity, relevant, "pessimistic").tolist() == [3, 3, 1]
    assert retrieval_ranks(similarity, relevant, "optimistic").tolist() == [2, 1, 1]
    # mean: G + 1 + w / (m + 1): 1 + 1 + 1/2, 0 + 1 + 2/3, 1
    assert retrieval_ranks(similarity, relevant, "mean").tolist() == pytest.approx([2.5, 5 / 3, 1])

    pessimistic = recall_at_k(similarity, relevant, ks=(1, 2, 3))
    assert [pessimistic[f"R@{k}"] for k in (1, 2, 3)] == pytest.approx([1 / 3, 1 / 3, 1])
    assert pessimistic["median_rank"] == 3 and pessimistic["mean_rank"] == pytest.approx(7 / 3)
    optimistic = recall_at_k(similarity, relevant, ks=(1, 2), ties="optimistic")
    assert [optimistic["R@1"], optimistic["R@2"]] == pytest.approx([2 / 3, 1])
    # mean, R@1: query 0 cannot (one item above), query 1: 1 - P(a wrong one first) = 1 - 2/4, query 2 yes
    # R@2: query 0: 1/2, query 1: 1 - (2/4)(1/3) = 5/6, query 2: 1
    mean = recall_at_k(similarity, relevant, ks=(1, 2), ties="mean")
    assert mean["R@1"] == pytest.approx((0 + 1 / 2 + 1) / 3)
    assert mean["R@2"] == pytest.approx((1 / 2 + 5 / 6 + 1) / 3)
    assert mean["median_rank"] == pytest.approx(5 / 3)


def test_tie_rules_agree_with_brute_force_over_tie_orders():
    rng = np.random.default_rng(1)
    similarity = rng.integers(0, 3, size=(6, 5)).astype(float)  # scores 0, 1, 2: ties everywhere
    relevant = [[int(i) for i in rng.choice(5, size=rng.integers(1, 3), replace=False)] for _ in range(6)]
    orders = list(itertools.permutations(range(5)))  # every way of breaking ties
    for ks in ((1,), (2,), (3,)):
        hits, worst, best = [], [], []
        for row, correct in zip(similarity, relevant):
            ranks = []
            for order in orders:
                ranking = sorted(range(5), key=lambda item: (-row[item], order[item]))
                ranks.append(min(ranking.index(item) for item in correct) + 1)
            hits.append(np.mean([rank <= ks[0] for rank in ranks]))
            worst.append(max(ranks) <= ks[0])
            best.append(min(ranks) <= ks[0])
        key = f"R@{ks[0]}"
        assert recall_at_k(similarity, relevant, ks, "mean")[key] == pytest.approx(np.mean(hits))
        assert recall_at_k(similarity, relevant, ks, "pessimistic")[key] == pytest.approx(np.mean(worst))
        assert recall_at_k(similarity, relevant, ks, "optimistic")[key] == pytest.approx(np.mean(best))


def test_both_directions_with_several_captions_per_clip():
    # 4 captions of 2 clips (Clotho style: caption t describes clip t // 2) and a distractor clip 2 no caption lists
    similarity = np.array([[0.9, 0.1, 0.0],
                           [0.2, 0.3, 0.1],
                           [0.1, 0.8, 0.0],
                           [0.7, 0.6, 0.9]])
    text_to_audio = [0, 0, 1, 1]
    result = bidirectional_recall(similarity, text_to_audio, ks=(1, 2))
    assert result["text_to_audio"]["ranks"] == [1, 2, 1, 3]
    assert result["text_to_audio"]["R@1"] == 0.5 and result["text_to_audio"]["median_rank"] == 1.5
    # clip 0: captions 0, 1 correct, scores 0.9 0.2 0.1 0.7 -> rank 1; clip 1: captions 2, 3 correct,
    # scores 0.1 0.3 0.8 0.6 -> rank 1
    assert result["audio_to_text"]["ranks"] == [1, 1]
    assert result["audio_to_text"]["queries"] == 2 and result["audio_to_text"]["skipped_queries"] == 1
    assert invert_relevance(text_to_audio, 3) == [[0, 1], [2, 3], []]
    table = format_retrieval_table(result)
    assert "| text to audio | 4 | 50.0 | 75.0 | 1.5 |" in table and "| audio to text | 2 | 100.0 | 100.0 | 1 |" in table


@pytest.mark.parametrize("similarity, relevant, kwargs, error, match", [
    ([[0.1, np.nan]], [0], {}, ValueError, r"holds NaN \(first at query 0, item 1\)"),
    ([[0.1, 0.2], [0.3]], [0, 0], {}, ValueError, "rows have different lengths"),
    ([[0.1, 0.2]], [0, 1], {}, ValueError, "relevant has 2 entries but similarity has 1 queries"),
    ([[0.1, 0.2]], [2], {}, ValueError, r"relevant\[0\] holds item 2, outside 0..1"),
    ([[0.1, 0.2]], [[]], {}, ValueError, r"relevant\[0\] is empty"),
    ([[0.1, 0.2]], [[1, 1]], {}, ValueError, "lists an item twice"),
    ([[0.1, 0.2]], [[0.0]], {}, TypeError, "expected int indices"),
    ([[0.1, 0.2]], [0], {"ties": "random"}, ValueError, "ties must be one of"),
    ([[0.1, 0.2]], [0], {"ks": (0,)}, ValueError, "ks holds 0"),
    ([[0.1, 0.2]], [0], {"ks": 5}, TypeError, "ks must be a non-empty list"),
    ([], [], {}, ValueError, "must be 2-D"),
    ([["a", "b"]], [0], {}, TypeError, "array of numbers"),
])
def test_bad_inputs_are_rejected(similarity, relevant, kwargs, error, match):
    with pytest.raises(error, match=match):
        recall_at_k(similarity, relevant, **kwargs)
