"""benchmarks/bench_tokenizer.py: the FLOP and ceiling arithmetic, and a --quick run end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from helpers import load_script
from torch import nn

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tokenizer.py"


@pytest.fixture(scope="module")
def bench():
    yield load_script(SCRIPT, "bench_tokenizer")
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
        counted = bench.dit_flops_counted(model, inputs)
    assert bench.dit_flops_analytic(model.decoder, 2, frames)["total"] == counted["math_sdpa_total"]


def test_api_adapters_keep_codes_batch_by_frames(bench):
    # the only calls into the tokenizer: whatever its API, codes stay (batch, frames) inside the benchmark
    model = bench.build_tokenizer(quick=True)
    audio = 0.1 * torch.randn(2, 2, 3 * model.hop_length, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        latents = bench.audio_to_latents(model, audio)
        codes = bench.latents_to_codes(model, latents)
        assert codes.shape == latents.shape[:2] == (2, 3) and not codes.is_floating_point()
        assert bench.latents_to_audio(model, latents).shape == audio.shape
        assert bench.codes_to_latents(model, codes, 2, bench.decode_gen()).shape == latents.shape
        inputs = bench.dit_inputs(model, codes)
        assert bench.dit_forward(model, inputs).shape == latents.shape
        assert bench.dit_forward(model, bench.first_clip_dit_inputs(inputs)).shape == latents[:1].shape


def test_decode_summary_fits_dit_time_in_steps_and_adds_one_vae_decode(bench):
    # DiT: 0.5 s + 0.25 s per step (the median of each list); VAE decode: median 2 s; 10 audio-seconds
    dit_times = {steps: [0.0, 0.5 + 0.25 * steps, 100.0] for steps in bench.STEP_COUNTS}
    decode = bench.decode_summary([3.0, 2.0, 1.0], dit_times, audio_seconds=10.0)
    fit = decode["fit"]
    assert (fit["a_s"], fit["b_s_per_step"], fit["r2"]) == pytest.approx((0.5, 0.25, 1.0))
    assert fit["ratio_t32_over_t1"] == pytest.approx(8.5 / 0.75)
    assert list(decode["per_steps"]) == ["1", "2", "4", "10", "32"] and decode["dit_s"]["4"] == dit_times[4]
    four = decode["per_steps"]["4"]
    assert (four["dit_s"], four["end_to_end_s"]) == pytest.approx((1.5, 3.5))
    assert (four["dit_audio_s_per_s"], four["end_to_end_audio_s_per_s"]) == pytest.approx((10 / 1.5, 10 / 3.5))


def test_dit_flops_summary_rates_against_each_matmul(bench):
    # 2 GFLOP in 0.1 s = 20 GFLOP/s; the decode fit's 0.2 s per step gives 10 GFLOP/s
    rates = {"dit_gemm": {"gflops_per_s": 40.0}, "square_2048": {"gflops_per_s": 80.0},
             "one_clip_fc1": {"gflops_per_s": 100.0}}
    analytic, counted = {"total": 2_000_000_000}, {"math_sdpa_total": 2_000_000_000}
    flops = bench.dit_flops_summary(2, 7, analytic, counted, [0.3, 0.1, 0.05], {"b_s_per_step": 0.2}, rates)
    assert flops["analytic_matches_counter"] and (flops["batch"], flops["frames"]) == (2, 7)
    assert (flops["dit_gflops_per_s"], flops["dit_gflops_per_s_from_fit_slope"]) == pytest.approx((20.0, 10.0))
    assert (flops["fraction_of_dit_gemm_rate"], flops["fraction_of_2048_rate"],
            flops["fraction_of_best_matmul_rate"]) == pytest.approx((0.5, 0.25, 0.2))
    # a noisy decode can give a slope <= 0: no rate from it
    assert bench.dit_flops_summary(2, 7, analytic, counted, [0.1], {"b_s_per_step": -0.1}, rates)[
        "dit_gflops_per_s_from_fit_slope"] is None


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
