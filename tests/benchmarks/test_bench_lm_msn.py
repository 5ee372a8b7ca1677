"""benchmarks/bench_lm_msn.py: the paper-size parameter count (meta device) and a --quick run end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_lm_msn.py"


@pytest.fixture(scope="module")
def bench():
    yield load_script(SCRIPT, "bench_lm_msn")
    sys.modules.pop("bench_lm_msn", None)


def test_paper_configuration_counts(bench):
    params = bench.paper_trainable_parameters()
    # LoRA r64 on q, k, v, o (4096 -> 4096), gate, up (4096 -> 11008), down (11008 -> 4096) in 32 layers
    assert params["lora"] == 32 * 64 * (4 * 8192 + 3 * 15104) == 159_907_840
    assert params["new_rows"] == 2 * 8198 * 4096
    assert params["base_parameters"] == 6_738_415_616  # Llama 2 7B
    assert params["trainable_percent"] == pytest.approx(100 * (159_907_840 + 67_158_016) / params["total_parameters"])


def test_quick_run_writes_tables_and_json(bench, tmp_path, capsys):
    out = tmp_path / "quick.json"
    bench.main(["--quick", "--out", str(out)])
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    for heading in ("paper configuration", "training step", "generating 16 audio tokens", "ranking 8 answers"):
        assert heading in printed
    ranking = results["answer_ranking"]
    assert ranking["speedup"] > 0 and ranking["max_abs_difference"] < 1e-3  # the same scores both ways
    ours, naive = results["training_step"]["ours"], results["training_step"]["naive"]
    assert ours["trainable"] < naive["trainable"]  # new rows only vs whole matrices
    assert ours["first_loss"] == pytest.approx(naive["first_loss"], rel=1e-5)  # same model, data and loss
    assert results["generation"]["constrained_over_unconstrained"] > 0


def test_parts_runs_only_the_named_parts(bench, tmp_path, capsys):
    out = tmp_path / "ranking.json"
    bench.main(["--quick", "--parts", "ranking", "--out", str(out)])
    results = json.loads(out.read_text())
    assert "answer_ranking" in results and "training_step" not in results and "parameters" not in results
    assert "--parts ranking" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--parts must name some of"):
        bench.main(["--quick", "--parts", "speed"])
