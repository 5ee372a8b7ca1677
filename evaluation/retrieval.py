"""Cross-modal retrieval scores (MINT Table 3: Clotho text-to-audio R@1/5/10) from a similarity matrix.

``similarity`` is (queries x items), higher = more similar; ``relevant[q]`` lists the correct items of query q
(an int for one). A query's rank is the 1-based position of its best-ranked correct item, so with several correct
items (audio -> text on Clotho: five captions per clip) a query is a hit at k when any correct item is in the top k.
R@k is the fraction of queries with rank <= k (a fraction in [0, 1]; the papers print percentages).

Ties. Let s be the highest score of a correct item, G the number of wrong items scoring above s, w the number of
wrong items tied at s and m the number of correct items tied at s. ``ties`` decides where the correct items fall
among the w wrong ones:

- ``"pessimistic"`` (default): after all of them, rank = G + w + 1. A constant similarity matrix then scores the
  chance level of the worst case instead of a perfect score, so a degenerate model cannot look good;
- ``"optimistic"``: before them, rank = G + 1;
- ``"mean"``: in a uniformly random order: R@k is the probability of a hit, 1 - prod_{i=0}^{j} (w - i) / (w + m - i)
  with j = k - G - 1 (0 when j < 0, 1 when j >= w), and the rank is its expectation, G + 1 + w / (m + 1).

The median (and mean) rank is over queries; with ``"mean"`` it is over expected ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TIE_RULES = ("pessimistic", "optimistic", "mean")
DEFAULT_KS = (1, 5, 10)


def _check_similarity(similarity: Any, name: str = "similarity") -> np.ndarray:
    try:
        array = np.asarray(similarity)
    except ValueError as error:  # numpy refuses ragged rows
        raise ValueError(f"{name} rows have different lengths: expected one score per item in every row") from error
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must be a (queries x items) array of numbers, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (queries x items), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}): expected at least one query and one item")
    array = array.astype(np.float64)
    if np.isnan(array).any():
        query, item = (int(i) for i in np.argwhere(np.isnan(array))[0])
        raise ValueError(f"{name} holds NaN (first at query {query}, item {item}): expected real scores")
    return array


def _check_relevant(relevant: Any, num_queries: int, num_items: int) -> list[np.ndarray]:
    if isinstance(relevant, (str, bytes)) or not isinstance(relevant, (Sequence, np.ndarray)):
        raise TypeError(f"relevant must be a list (one entry per query), got {type(relevant).__name__}")
    if len(relevant) != num_queries:
        raise ValueError(f"relevant has {len(relevant)} entries but similarity has {num_queries} queries: "
                         "expected one entry per query")
    checked = []
    for query, entry in enumerate(relevant):
        items = [entry] if isinstance(entry, (int, np.integer)) else entry
        if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, np.ndarray)):
            raise TypeError(f"relevant[{query}] is {type(entry).__name__}: expected an item index or a list of them")
        if len(items) == 0:
            raise ValueError(f"relevant[{query}] is empty: expected at least one correct item")
        for item in items:
            if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
                raise TypeError(f"relevant[{query}] holds {item!r} ({type(item).__name__}): expected int indices")
            if not 0 <= item < num_items:
                raise ValueError(f"relevant[{query}] holds item {item}, outside 0..{num_items - 1}")
        if len(set(int(i) for i in items)) != len(items):
            raise ValueError(f"relevant[{query}] lists an item twice: {list(items)}")
        checked.append(np.asarray(items, dtype=np.int64))
    return checked


def _tie_counts(row: np.ndarray, correct: np.ndarray) -> tuple[int, int, int]:
    """(G, w, m) of one query: wrong items above the best correct score, wrong and correct items tied with it."""
    is_correct = np.zeros(len(row), dtype=bool)
    is_correct[correct] = True
    best = row[correct].max()
    above = int((row[~is_correct] > best).sum())
    wrong_tied = int((row[~is_correct] == best).sum())
    correct_tied = int((row[is_correct] == best).sum())
    return above, wrong_tied, correct_tied


def _hit_probability(k: int, above: int, wrong_tied: int, correct_tied: int) -> float:
    """P(first correct item within the top k) when the tied block is in uniformly random order."""
    j = k - above - 1  # wrong tied items that may come before the first correct one
    if j < 0:
        return 0.0
    if j >= wrong_tied:
        return 1.0
    all_wrong = 1.0
    for i in range(j + 1):
        all_wrong *= (wrong_tied - i) / (wrong_tied + correct_tied - i)
    return 1.0 - all_wrong


def retrieval_ranks(similarity: Any, relevant: Sequence[int | Sequence[int]], ties: str = "pessimistic") -> np.ndarray:
    """Rank of each query's best-ranked correct item: (queries,) float, 1-based; ties by ``ties`` (module docstring)."""
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    similarity = _check_similarity(similarity)
    relevant = _check_relevant(relevant, *similarity.shape)
    ranks = np.empty(len(relevant), dtype=np.float64)
    for query, (row, correct) in enumerate(zip(similarity, relevant)):
        above, wrong_tied, correct_tied = _tie_counts(row, correct)
        if ties == "pessimistic":
            ranks[query] = above + wrong_tied + 1
        elif ties == "optimistic":
            ranks[query] = above + 1
        else:
            ranks[query] = above + 1 + wrong_tied / (correct_tied + 1)
    return ranks


def recall_at_k(
    similarity: Any,
    relevant: Sequence[int | Sequence[int]],
    ks: Sequence[int] = DEFAULT_KS,
    ties: str = "pessimistic",
) -> dict[str, Any]:
    """R@k for each k, median and mean rank of one retrieval direction.

    ``similarity`` (queries, items); ``relevant[q]``: the correct item(s) of query q. Returns ``{"R@1": ...,
    "median_rank", "mean_rank", "queries", "ranks": [per query]}`` (R@k as fractions).
    """
    if isinstance(ks, (int, str)) or not isinstance(ks, Sequence) or len(ks) == 0:
        raise TypeError(f"ks must be a non-empty list of positive ints, got {ks!r}")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"ks holds {k!r}: expected positive ints")
    ranks = retrieval_ranks(similarity, relevant, ties)
    result: dict[str, Any] = {}
    if ties == "mean":
        matrix = _check_similarity(similarity)
        counts = [_tie_counts(row, correct) for row, correct in zip(matrix, _check_relevant(relevant, *matrix.shape))]
        for k in ks:
            result[f"R@{k}"] = float(np.mean([_hit_probability(int(k), *count) for count in counts]))
    else:
        for k in ks:
            result[f"R@{k}"] = float(np.mean(ranks <= k))
    result.update(median_rank=float(np.median(ranks)), mean_rank=float(np.mean(ranks)), queries=len(ranks),
                  ranks=ranks.tolist())
    return result


def invert_relevance(relevant: Sequence[int | Sequence[int]], num_items: int) -> list[list[int]]:
    """For each of ``num_items`` items, the queries that list it as correct (the reverse direction's relevance)."""
    inverted: list[list[int]] = [[] for _ in range(num_items)]
    for query, entry in enumerate(relevant):
        for item in ([entry] if isinstance(entry, (int, np.integer)) else entry):
            inverted[int(item)].append(query)
    return inverted


def bidirectional_recall(
    text_audio_similarity: Any,
    text_to_audio: Sequence[int | Sequence[int]],
    ks: Sequence[int] = DEFAULT_KS,
    ties: str = "pessimistic",
) -> dict[str, dict[str, Any]]:
    """R@k in both directions from one (texts x audios) similarity matrix.

    ``text_to_audio[t]``: the audio clip(s) that caption t describes (Clotho: ``t // 5``). Text -> audio ranks
    audios per text; audio -> text ranks texts per audio (the transpose), a clip's correct texts being all
    captions that list it. Audio clips no caption lists cannot be queries: they stay in the gallery of
    text -> audio and are counted under ``"audio_to_text"]["skipped_queries"]``.
    """
    similarity = _check_similarity(text_audio_similarity, "text_audio_similarity")
    _check_relevant(text_to_audio, *similarity.shape)
    forward = recall_at_k(similarity, text_to_audio, ks, ties)
    inverted = invert_relevance(text_to_audio, similarity.shape[1])
    queries = [audio for audio, texts in enumerate(inverted) if texts]
    backward = recall_at_k(similarity.T[queries], [inverted[audio] for audio in queries], ks, ties)
    backward["skipped_queries"] = similarity.shape[1] - len(queries)
    return {"text_to_audio": forward, "audio_to_text": backward}


def format_retrieval_table(result: dict[str, dict[str, Any]]) -> str:
    """Markdown table (percent) of :func:`bidirectional_recall`'s result, one row per direction."""
    ks = [int(key[2:]) for key in next(iter(result.values())) if key.startswith("R@")]
    header = " | ".join(f"R@{k} (%)" for k in ks)
    lines = [f"| direction | queries | {header} | median rank |", "|---|---:|" + "---:|" * len(ks) + "---:|"]
    for direction, scores in result.items():
        values = " | ".join(f"{100 * scores[f'R@{k}']:.1f}" for k in ks)
        lines.append(f"| {direction.replace('_', ' ')} | {scores['queries']} | {values} | {scores['median_rank']:g} |")
    return "\n".join(lines)
