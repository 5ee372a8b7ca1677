"""benchmarks/bench_mint.py: a --tiny run end to end (both sections, the scores check, the files); no timing is
asserted."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from helpers import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_mint.py"


@pytest.fixture(scope="module")
def bench():
    threads = torch.get_num_threads()  # main() sets the thread count; give the other tests theirs back
    yield load_script(SCRIPT, "bench_mint")
    sys.modules.pop("bench_mint", None)
    torch.set_num_threads(threads)


def _positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_tiny_run_writes_both_sections(bench, tmp_path, capsys):
    out = tmp_path / "mint.json"
    bench.main(["--tiny", "--out", str(out), "--repeats", "2"])
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    assert out.with_suffix(".md").read_text().strip() == printed.strip()
    assert "vocabulary ranking" in printed and "stage-1 step" in printed and "--tiny" in printed

    ranking = results["ranking"]
    for k in (10, 100):
        row = ranking[str(k)]
        assert row["k"] == k and row["scores_allclose"] is True
        assert 0.0 <= row["max_abs_difference"] <= 1e-4  # score_candidates == the naive loop, checked before timing
        assert row["best_candidate_agrees"] is True
        assert 2.0 <= row["candidate_tokens_mean"] <= 5.0  # 1-4 tokens + eos
        for key in ("score_candidates_s_per_clip", "naive_s_per_clip", "speedup"):
            assert _positive(row[key]), (k, key, row[key])

    step = results["stage1_step"]
    assert set(step["steps"]) == {"audio_embeds/alc", "audio_embeds/alc_atg", "audio_embeds/alc_alm",
                                  "audio_embeds/all", "audio_values/alc", "audio_values/all"}
    assert set(step["steps"]["audio_embeds/alc"]["losses"]) == {"alc_loss"}
    assert set(step["steps"]["audio_embeds/all"]["losses"]) == {"alc_loss", "alm_loss", "atg_loss"}
    assert set(step["steps"]["audio_values/all"]["losses"]) == {"alc_loss", "alm_loss", "atg_loss"}
    for run in step["steps"].values():
        assert len(run["times_s"]) == 2 and _positive(run["step_s"])
    assert _positive(step["ratio_cached"]) and _positive(step["ratio_encoder_in_step"])


def test_scores_that_disagree_stop_the_run(bench, tmp_path, monkeypatch):
    """A naive loop off by more than 1e-4 fails the check, and no result file is written."""
    naive = bench.naive_scores
    monkeypatch.setattr(bench, "naive_scores", lambda *args: naive(*args) + 1e-3)
    out = tmp_path / "mint.json"
    with pytest.raises(AssertionError, match="differs from the naive loop"):
        bench.main(["--tiny", "--ks", "10", "--out", str(out)])
    assert not out.exists()
