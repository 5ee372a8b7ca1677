"""benchmarks/bench_tokenizer.py: the FLOP and ceiling arithmetic, and a --quick run end to end."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tokenizer.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_tokenizer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_tokenizer"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_tokenizer", None)


def test_linear_macs_counts_every_linear_per_token_or_per_clip(bench):
    module = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Sequential(nn.Linear(5, 7, bias=False)))
    assert bench.linear_macs(module) == (3 * 5 + 5 * 7, 0)
    assert bench.linear_macs(module, per_clip_names=("2.",)) == (3 * 5, 5 * 7)


def test_batching_ceiling_is_best_rate_over_one_clip_rate(bench):
    # one clip: 6 GFLOP in 0.1 s = 60 GFLOP/s; at the best rate of 150 GFLOP/s a batch can be 2.5x faster
    ceiling = bench.batching_ceiling(0.1, 6_000_000_000, 150.0, batch=8, measured_speedup=1.3)
    assert ceiling["one_clip_gflops_per_s"] == pytest.approx(60.0)
    assert ceiling["one_clip_fraction_of_best"] == pytest.approx(0.4)
    assert ceiling["ceiling"] == pytest.approx(2.5)
    # the bound itself: B clips need B * W FLOPs, so at rate R they take at least B * W / R seconds
    batch, work, t1, rate = 8, 6e9, 0.1, 150e9
    assert batch * t1 / (batch * work / rate) == pytest.approx(ceiling["ceiling"])


def test_dit_flops_analytic_matches_flop_counter(bench):
    model = bench.build_tokenizer(quick=True)
    config, frames = model.config, 5
    inputs = (torch.randn(2, frames, config.latent_dim), torch.rand(2),
              torch.randn(2, frames, config.codebook_dim), None)
    with torch.inference_mode():
        counted = bench.dit_flops_counted(model.decoder, inputs)
    assert bench.dit_flops_analytic(model.decoder, 2, frames)["total"] == counted["math_sdpa_total"]


def test_quick_run_writes_tables_and_json(bench, tmp_path, capsys):
    out = tmp_path / "quick.json"
    bench.main(["--quick", "--out", str(out)])
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    assert results["quick"] and "QUICK" in results["note"]
    for section in ("## 1. Encode", "## 2. Decode", "## 3. Batched", "ceiling on speed-up", "## 4. DiT",
                    "## 5. Tokens"):
        assert section in printed
    assert set(results["decode"]["per_steps"]) == {"1", "2", "4", "10", "32"}
    for stage in ("encoder_vq", "dit_forward"):
        ceiling = results["batching_ceiling"][stage]
        assert ceiling["ceiling"] == pytest.approx(
            ceiling["best_matmul_gflops_per_s"] / ceiling["one_clip_gflops_per_s"]
        )
    assert results["dit_flops"]["analytic_matches_counter"]
    assert results["msn_tokens"]["bitrate_bps"] == pytest.approx(
        results["msn_tokens"]["frame_rate_hz"] * torch.tensor(256.0).log2().item()
    )
