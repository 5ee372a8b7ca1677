"""CPU throughput of the paper-size MSN sound tokenizer, beside EnCodec, in one run.

Measures, on a batch of ``--batch`` clips of ``--seconds`` s of 44.1 kHz stereo audio (real speech from
``/usr/share/sounds/alsa/*.wav`` when present, else noise x 0.1), with random weights (seed 0), eval mode
and ``torch.inference_mode()``:

1. encode, split by stage: Oobleck VAE front end, causal encoder + VQ (``encode_latents``), end to end;
2. decode at 1, 2, 4, 10 and 32 Euler steps: DiT time per step count plus ONE VAE decode of the batch
   (it does not depend on the step count), and a least-squares fit ``t = a + b * steps``;
3. batched (one call on the batch) vs one clip at a time, for encoder + VQ, DiT decode at 4 steps and
   (with ``--full-vae``) the VAE encode, plus the VAE encode with the whole batch in one VAE call (the
   front end splits CPU batches into ``cpu_clips_per_call`` clips per call; this row shows why);
4. achieved FLOP/s of one DiT forward at the batch size, as a fraction of the fp32 matmul rate measured
   in the same run. DiT FLOPs are counted analytically, for ``B`` clips of ``F`` frames:

       FLOPs = 2 * (B * F * sum of in x out of the per-token Linears       [input_proj, qkv, out_proj,
                                                                             fc1, fc2, output_proj]
                    + B * sum of in x out of the per-clip Linears)          [time_mlp, modulation,
                                                                             final_modulation]
             + L * 2 * 2 * B * H * F * F * head_dim                         [QK^T and AV, L blocks]

   and checked against ``torch.utils.flop_counter.FlopCounterMode`` on one forward (with the math SDPA
   backend, since the counter does not see the fused CPU attention kernel);
   The same section bounds what batching can give on the machine: a stage that does ``W`` FLOPs per
   clip and takes ``t1`` s for one clip can, batched, at best run at the best fp32 matmul rate ``R``
   measured in the run, so ``speed-up = B * t1 / t_B <= B * t1 / (B * W / R) = R / (W / t1)``: the best
   matmul rate over the rate the one-clip call already reaches;
5. tokens per second, bitrate and encode / decode speed of the tokenizer beside transformers' EnCodec
   (default 24 kHz config, random weights, 6 kbps) on the same clips resampled to 24 kHz mono.

Speeds are in audio-seconds per second (x real time). Markdown tables go to stdout, progress to stderr,
raw timings and derived numbers to ``--out`` (JSON).

    python benchmarks/bench_tokenizer.py [--quick] [--batch 8] [--seconds 10] [--threads N] [--full-vae]
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

STEP_COUNTS = (1, 2, 4, 10, 32)
BATCHED_STEPS = 4  # Euler steps of the batched-vs-single DiT decode comparison
SPEEDUP_TARGET = 3.0  # batch of B vs B single-clip calls
MATMUL_FRACTION_TARGET = 0.5  # DiT FLOP/s / fp32 matmul FLOP/s
ALSA_SOUNDS = "/usr/share/sounds/alsa/*.wav"
SAMPLE_RATE = 44100
ENCODEC_BANDWIDTH = 6.0  # kbps


# ----- tokenizer API adapters ----------------------------------------------------------------------------
# Every call this benchmark makes into the tokenizer goes through these functions, so that a change of the
# tokenizer's API touches only them. Everywhere else in this file codes are (batch, frames) integer tensors.
def audio_to_latents(model: nn.Module, audio: torch.Tensor) -> torch.Tensor:
    """VAE front end: audio (batch, 2, samples) -> latents (batch, num_frames(samples), latent_dim)."""
    return model.audio_to_latents(audio)


def latents_to_audio(model: nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """VAE front end: latents (batch, frames, latent_dim) -> audio (batch, 2, frames * hop_length)."""
    return model.latents_to_audio(latents)


def latents_to_codes(model: nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """Causal encoder + VQ: latents (batch, frames, latent_dim) -> codes (batch, frames)."""
    return model.encode_latents(latents)[:, 0]  # one codebook


def codes_to_latents(
    model: nn.Module, codes: torch.Tensor, num_steps: int, generator: torch.Generator
) -> torch.Tensor:
    """DiT decode in ``num_steps`` Euler steps: codes (batch, frames) -> latents (batch, frames, latent_dim)."""
    return model.decode_latents(codes[:, None], num_steps=num_steps, generator=generator)


def dit_inputs(model: nn.Module, codes: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    """Arguments of one DiT forward on codes (batch, frames): seed-0 noisy latents and times, code vectors."""
    generator = torch.Generator().manual_seed(0)
    batch, frames = codes.shape
    return (
        torch.randn(batch, frames, model.config.latent_dim, generator=generator),
        torch.rand(batch, generator=generator),
        model.quantizer.lookup(codes),
        None,  # frame mask
    )


def first_clip_dit_inputs(inputs: tuple[torch.Tensor | None, ...]) -> tuple[torch.Tensor | None, ...]:
    """The arguments of ``dit_inputs`` cut to the first clip."""
    return (inputs[0][:1], inputs[1][:1], inputs[2][:1], None)


def dit_forward(model: nn.Module, inputs: tuple[torch.Tensor | None, ...]) -> torch.Tensor:
    """One forward of the DiT (the velocity estimator ``model.decoder``) on the arguments of ``dit_inputs``."""
    return model.decoder(*inputs)


_START = time.perf_counter()


def log(message: str) -> None:
    """Progress line on stderr, prefixed with the seconds since start."""
    print(f"[{time.perf_counter() - _START:7.1f} s] {message}", file=sys.stderr, flush=True)


# label -> (wall seconds, process CPU seconds) of the timed calls of a stage
CPU_RECORDS: dict[str, tuple[float, float]] = {}


def timed(
    fn: Callable[[], Any], repeats: int = 1, warmup: Callable[[], Any] | None = None, label: str | None = None
) -> list[float]:
    """Wall times in seconds of ``repeats`` calls of ``fn``, after one call of ``warmup`` (if given).

    With a ``label``, the total wall and process CPU time of the timed calls go to ``CPU_RECORDS``.
    """
    if warmup is not None:
        warmup()
    times = []
    cpu_start = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    if label is not None:
        CPU_RECORDS[label] = (sum(times), time.process_time() - cpu_start)
    return times


def wait_for_idle(max_wait_s: float, threshold: float) -> float:
    """Sleep (up to ``max_wait_s`` s) until the 1-minute load average is below ``threshold``; seconds waited."""
    start = time.perf_counter()
    while os.getloadavg()[0] >= threshold and time.perf_counter() - start < max_wait_s:
        time.sleep(10)
    return time.perf_counter() - start


def decode_gen() -> torch.Generator:
    """A fresh seed-0 generator, so that every decode starts from the same noise."""
    return torch.Generator().manual_seed(0)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (runnable processes)."""
    return [round(x, 2) for x in os.getloadavg()]


def machine_info(threads: int) -> dict[str, Any]:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import diffusers
    import transformers

    return {
        "cpu_model": cpu_model,
        "logical_cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "diffusers": diffusers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


# ----- audio ---------------------------------------------------------------------------------------------
def load_clips(batch: int, seconds: float) -> tuple[torch.Tensor, str]:
    """``batch`` clips (batch, 2, seconds * 44100) in [-1, 1] and a description of their source.

    Real speech from alsa-utils' test sounds (each file peak-normalised to 0.5, resampled to 44.1 kHz with
    soxr, concatenated and tiled); the right channel is the same signal 0.37 s later. Noise x 0.1 if absent.
    """
    num_samples = int(round(seconds * SAMPLE_RATE))
    files = sorted(glob.glob(ALSA_SOUNDS))
    if files:
        import soundfile
        import soxr

        pieces = []
        for path in files:
            data, rate = soundfile.read(path, dtype="float32", always_2d=True)
            mono = data.mean(axis=1)
            if rate != SAMPLE_RATE:
                mono = soxr.resample(mono, rate, SAMPLE_RATE).astype(np.float32)
            pieces.append(0.5 * mono / max(float(np.abs(mono).max()), 1e-6))
        signal = np.concatenate(pieces)
        shift = int(0.37 * SAMPLE_RATE)
        clips = np.empty((batch, 2, num_samples), dtype=np.float32)
        for i in range(batch):
            for channel, offset in enumerate((0, shift)):
                index = (np.arange(num_samples) + i * num_samples + offset) % len(signal)
                clips[i, channel] = signal[index]
        source = f"real speech: {len(files)} files of {ALSA_SOUNDS} ({len(signal) / SAMPLE_RATE:.1f} s), tiled"
        return torch.from_numpy(clips), source
    generator = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(batch, 2, num_samples, generator=generator), "Gaussian noise x 0.1"


def to_encodec_input(audio: torch.Tensor, sampling_rate: int) -> torch.Tensor:
    """(batch, 2, samples) at 44.1 kHz -> (batch, 1, samples') mono at ``sampling_rate`` (soxr)."""
    import soxr

    mono = audio.mean(dim=1).numpy().T  # (samples, batch): soxr resamples every column
    resampled = soxr.resample(np.ascontiguousarray(mono), SAMPLE_RATE, sampling_rate)
    return torch.from_numpy(np.ascontiguousarray(resampled.T, dtype=np.float32))[:, None]


# ----- models --------------------------------------------------------------------------------------------
def build_tokenizer(quick: bool) -> nn.Module:
    """Paper-size tokenizer (or a tiny one for ``--quick``), random weights from seed 0, eval mode."""
    from soundlm import MSNTokenizerConfig, MSNTokenizerModel

    torch.manual_seed(0)
    if quick:
        frontend = {
            "encoder_hidden_size": 8, "downsampling_ratios": [2, 4, 4, 8, 8], "channel_multiples": [1, 1, 1, 1, 1],
            "decoder_channels": 4, "decoder_input_channels": 4, "audio_channels": 2, "sampling_rate": SAMPLE_RATE,
        }
        config = MSNTokenizerConfig(
            frontend_config=frontend, hidden_size=128, head_dim=32, encoder_layers=2, decoder_layers=2,
            intermediate_size=256, codebook_size=256, codebook_dim=16,
        )
    else:
        config = MSNTokenizerConfig()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # diffusers' weight_norm deprecation
        return MSNTokenizerModel(config).eval()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----- FLOPs ---------------------------------------------------------------------------------------------
# applied to the (batch, hidden) timestep conditioning; "modulation" also matches final_modulation
PER_CLIP_LINEARS = ("time_mlp", "modulation")


def linear_macs(module: nn.Module, per_clip_names: tuple[str, ...] = ()) -> tuple[int, int]:
    """Multiply-adds of the ``nn.Linear`` layers of ``module`` for one input row: (per token, per clip).

    A Linear whose qualified name contains one of ``per_clip_names`` counts as per clip.
    """
    per_token = per_clip = 0
    for name, layer in module.named_modules():
        if isinstance(layer, nn.Linear):
            macs = layer.in_features * layer.out_features
            if any(part in name for part in per_clip_names):
                per_clip += macs
            else:
                per_token += macs
    return per_token, per_clip


def dit_flops_analytic(decoder: nn.Module, batch: int, frames: int) -> dict[str, int]:
    """FLOPs of one DiT forward on ``batch`` clips of ``frames`` frames (formula in the module docstring)."""
    per_token_macs, per_clip_macs = linear_macs(decoder, PER_CLIP_LINEARS)
    config = decoder.config
    attention = config.decoder_layers * 2 * 2 * batch * config.num_attention_heads * frames * frames * config.head_dim
    linear_tokens = 2 * batch * frames * per_token_macs
    linear_clips = 2 * batch * per_clip_macs
    return {
        "linear_per_token": linear_tokens,
        "linear_per_clip": linear_clips,
        "attention": attention,
        "total": linear_tokens + linear_clips + attention,
    }


def batching_ceiling(one_clip_s: float, one_clip_flops: int, best_matmul_gflops: float, batch: int,
                     measured_speedup: float) -> dict[str, Any]:
    """Upper bound on the batched / one-by-one speed-up of a stage (formula in the module docstring)."""
    rate = one_clip_flops / one_clip_s / 1e9
    return {
        "one_clip_s": one_clip_s, "one_clip_flops": one_clip_flops, "one_clip_gflops_per_s": rate,
        "best_matmul_gflops_per_s": best_matmul_gflops, "one_clip_fraction_of_best": rate / best_matmul_gflops,
        "ceiling": best_matmul_gflops / rate, "measured_speedup": measured_speedup, "batch": batch,
    }


def dit_flops_counted(model: nn.Module, inputs: tuple[torch.Tensor | None, ...]) -> dict[str, Any]:
    """FlopCounterMode totals of one DiT forward, with the default and with the math SDPA backend."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    result: dict[str, Any] = {}
    with FlopCounterMode(display=False) as counter:
        dit_forward(model, inputs)
    result["default_sdpa_total"] = int(counter.get_total_flops())
    with sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False) as counter:
        dit_forward(model, inputs)
    result["math_sdpa_total"] = int(counter.get_total_flops())
    result["math_sdpa_by_op"] = {str(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}
    return result


def matmul_rate(m: int, k: int, n: int, repeats: int) -> dict[str, Any]:
    """fp32 (m x k) @ (k x n) rate: median of ``repeats`` timed calls after one warm-up, in GFLOP/s."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=generator)
    b = torch.randn(k, n, generator=generator)
    times = timed(lambda: torch.mm(a, b), repeats, warmup=lambda: torch.mm(a, b), label=f"matmul_{m}x{k}x{n}")
    flops = 2 * m * k * n
    return {"shape": [m, k, n], "flops": flops, "times_s": times, "gflops_per_s": flops / median(times) / 1e9}


def linear_fit(x: list[float], y: list[float]) -> dict[str, float]:
    """Least-squares y = a + b x: intercept a, slope b (units of y per unit of x) and R^2."""
    slope, intercept = np.polyfit(np.asarray(x, dtype=float), np.asarray(y, dtype=float), 1)
    predicted = intercept + slope * np.asarray(x, dtype=float)
    residual = float(((np.asarray(y) - predicted) ** 2).sum())
    total = float(((np.asarray(y) - np.mean(y)) ** 2).sum())
    return {"a_s": float(intercept), "b_s_per_step": float(slope), "r2": 1.0 - residual / total if total else 1.0}


# ----- markdown ------------------------------------------------------------------------------------------
def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 3) -> str:
    """Compact number: 3 significant digits, no exponent for ordinary magnitudes."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


# ----- benchmark steps -----------------------------------------------------------------------------------
@dataclass
class Session:
    """What the measured sections share: the options, the tokenizer, the clips and the tensors made from them."""

    args: argparse.Namespace
    model: nn.Module
    audio: torch.Tensor
    latents: torch.Tensor | None = None  # VAE latents of the batch, set by measure_encode
    codes: torch.Tensor | None = None  # codes (batch, frames) of the batch, set by measure_encode

    @property
    def batch(self) -> int:
        return self.audio.shape[0]

    @property
    def audio_seconds(self) -> float:
        return self.audio.shape[0] * self.audio.shape[-1] / SAMPLE_RATE

    @property
    def frames(self) -> int:
        return self.latents.shape[1]

    @property
    def repeats(self) -> int:
        return self.args.repeats


def settle_machine(args: argparse.Namespace) -> tuple[int, float]:
    """Sets the torch threads and waits (``--wait-for-idle``) for an idle machine: (threads, seconds waited)."""
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    waited = wait_for_idle(args.wait_for_idle, args.idle_load) if args.wait_for_idle > 0 else 0.0
    if waited:
        log(f"waited {waited:.0f} s for the load average to fall below {args.idle_load}")
    return threads, waited


def set_up(args: argparse.Namespace, threads: int, waited: float, load_before: list[float]) -> tuple[Session, dict]:
    """Machine info, the clips and the tokenizer: the session and the head of the results dict."""
    info = machine_info(torch.get_num_threads())
    audio, source = load_clips(args.batch, args.seconds)
    session = Session(args, build_tokenizer(args.quick), audio)
    log(f"{'tiny (--quick)' if args.quick else 'paper-size'} tokenizer, {session.batch} x {args.seconds} s clips "
        f"({source}), {threads} threads, load {load_before}")
    results: dict[str, Any] = {
        "quick": args.quick,
        "note": "QUICK SMOKE RUN: tiny tokenizer, numbers are not representative" if args.quick else
        "full run: paper-size tokenizer with random weights",
        "machine": info,
        "load_average_before": load_before,
        "waited_for_idle_s": waited,
        "audio": {"source": source, "batch": session.batch, "seconds_per_clip": args.seconds,
                  "audio_seconds": session.audio_seconds, "sample_rate": SAMPLE_RATE, "channels": 2},
        "tokenizer": tokenizer_summary(session.model),
        "settings": {"repeats": args.repeats, "step_counts": list(STEP_COUNTS), "batched_steps": BATCHED_STEPS,
                     "full_vae": args.full_vae, "scheduler": "euler"},
    }
    return session, results


def tokenizer_summary(model: nn.Module) -> dict[str, Any]:
    """Parameter counts and sizes of the tokenizer."""
    config = model.config
    return {
        "frontend_parameters": count_parameters(model.frontend),
        "encoder_parameters": count_parameters(model.encoder),
        "decoder_parameters": count_parameters(model.decoder),
        "hidden_size": config.hidden_size, "encoder_layers": config.encoder_layers,
        "decoder_layers": config.decoder_layers, "codebook_size": config.codebook_size,
        "codebook_dim": config.codebook_dim, "latent_dim": config.latent_dim,
    }


def measure_encode(s: Session) -> dict[str, Any]:
    """Section 1: encode by stage, VAE front end then causal encoder + VQ (keeps the latents and codes)."""
    model, audio = s.model, s.audio
    warmup_audio = audio[:1, :, : min(audio.shape[-1], SAMPLE_RATE)]  # VAE warm-up on 1 s of one clip
    log("VAE encode (batch)")
    latents_holder: list[torch.Tensor] = []
    vae_encode = timed(lambda: latents_holder.append(audio_to_latents(model, audio)), 1,
                       warmup=lambda: audio_to_latents(model, warmup_audio), label="vae_encode")
    s.latents = latents = latents_holder[-1]
    log(f"encoder + VQ (batch), latents {tuple(latents.shape)}")
    codes_holder: list[torch.Tensor] = []
    encoder_vq = timed(lambda: codes_holder.append(latents_to_codes(model, latents)), s.repeats,
                       warmup=lambda: latents_to_codes(model, latents), label="encoder_vq")
    s.codes = codes_holder[-1]
    end_to_end = median(vae_encode) + median(encoder_vq)
    return {
        "vae_encode_s": vae_encode, "encoder_vq_s": encoder_vq, "frames_per_clip": s.frames,
        "vae_encode_audio_s_per_s": s.audio_seconds / median(vae_encode),
        "encoder_vq_audio_s_per_s": s.audio_seconds / median(encoder_vq),
        "end_to_end_s": end_to_end, "end_to_end_audio_s_per_s": s.audio_seconds / end_to_end,
    }


def measure_decode(s: Session) -> dict[str, Any]:
    """Section 2: one VAE decode of the batch, then the DiT decode at each Euler step count."""
    model, latents, codes = s.model, s.latents, s.codes
    log("VAE decode (batch, once)")
    vae_decode = timed(
        lambda: latents_to_audio(model, latents), 1,
        warmup=lambda: latents_to_audio(model, latents[:1, : max(1, s.frames // 10)]), label="vae_decode",
    )
    dit_times: dict[int, list[float]] = {}
    codes_to_latents(model, codes, 1, decode_gen())  # warm-up
    for steps in STEP_COUNTS:
        n = s.repeats if steps <= BATCHED_STEPS else 1
        log(f"DiT decode, {steps} Euler steps x {n}")
        dit_times[steps] = timed(lambda k=steps: codes_to_latents(model, codes, k, decode_gen()), n,
                                 label=f"dit_{steps}")
    return decode_summary(vae_decode, dit_times, s.audio_seconds)


def decode_summary(vae_decode: list[float], dit_times: dict[int, list[float]], audio_seconds: float) -> dict:
    """The decode results: DiT median per step count, + one VAE decode = end to end, and ``t = a + b * steps``."""
    dit_median = {steps: median(times) for steps, times in dit_times.items()}
    fit = linear_fit(list(dit_median), list(dit_median.values()))
    fit["ratio_t32_over_t1"] = dit_median[32] / dit_median[1] if 32 in dit_median and 1 in dit_median else None
    decode = {"vae_decode_s": vae_decode, "dit_s": {str(s): t for s, t in dit_times.items()}, "fit": fit,
              "per_steps": {}}
    for steps, dit in dit_median.items():
        total = dit + median(vae_decode)
        decode["per_steps"][str(steps)] = {
            "dit_s": dit, "end_to_end_s": total,
            "dit_audio_s_per_s": audio_seconds / dit, "end_to_end_audio_s_per_s": audio_seconds / total,
        }
    return decode


def measure_batched(s: Session, encode: dict[str, Any], decode: dict[str, Any]) -> dict[str, Any]:
    """Section 3: one call on the batch vs one clip at a time, for encoder + VQ, DiT decode (and the VAE)."""
    model, latents, codes, batch = s.model, s.latents, s.codes, s.batch
    log("encoder + VQ, one clip at a time")
    single_encoder = timed(lambda: [latents_to_codes(model, latents[i : i + 1]) for i in range(batch)], s.repeats,
                           warmup=lambda: latents_to_codes(model, latents[:1]), label="encoder_vq_singles")
    log(f"DiT decode ({BATCHED_STEPS} steps), one clip at a time")
    single_dit = timed(
        lambda: [codes_to_latents(model, codes[i : i + 1], BATCHED_STEPS, decode_gen()) for i in range(batch)], 1,
        warmup=lambda: codes_to_latents(model, codes[:1], 1, decode_gen()), label="dit_singles",
    )
    encoder_vq_s = median(encode["encoder_vq_s"])
    dit_s = decode["per_steps"][str(BATCHED_STEPS)]["dit_s"]
    batched: dict[str, Any] = {
        "encoder_vq": {"batch_s": encoder_vq_s, "singles_s": single_encoder,
                       "speedup": median(single_encoder) / encoder_vq_s},
        "dit_decode": {"steps": BATCHED_STEPS, "batch_s": dit_s, "singles_s": single_dit,
                       "speedup": median(single_dit) / dit_s},
    }
    if s.args.full_vae:
        batched.update(measure_vae_singles(s, median(encode["vae_encode_s"])))
    else:
        batched["vae_encode"] = {"skipped": "pass --full-vae (about 23 s per 10-s clip on 2 cores)"}
    return batched


def measure_vae_singles(s: Session, vae_encode_s: float) -> dict[str, Any]:
    """Section 3, ``--full-vae``: the VAE encode one clip at a time, and with the whole batch in one VAE call."""
    model, audio, batch = s.model, s.audio, s.batch
    log("VAE encode, one clip at a time (--full-vae)")
    single_vae = timed(lambda: [audio_to_latents(model, audio[i : i + 1]) for i in range(batch)], 1,
                       label="vae_encode_singles")
    result: dict[str, Any] = {
        "vae_encode": {"batch_s": vae_encode_s, "singles_s": single_vae, "speedup": median(single_vae) / vae_encode_s}
    }
    clips_per_call = getattr(model.frontend, "cpu_clips_per_call", None)
    if clips_per_call is not None and clips_per_call < batch:
        log(f"VAE encode, the whole batch in one VAE call (the front end's default is {clips_per_call})")
        model.frontend.cpu_clips_per_call = batch
        one_call = timed(lambda: audio_to_latents(model, audio), 1, label="vae_encode_one_call")
        model.frontend.cpu_clips_per_call = clips_per_call
        result["vae_encode_one_call"] = {
            "cpu_clips_per_call_default": clips_per_call, "one_call_s": one_call,
            "default_speedup_over_one_call": median(one_call) / vae_encode_s,
        }
    return result


def measure_dit_flops(s: Session, results: dict[str, Any]) -> dict[str, Any]:
    """Section 4 and the batching ceiling: DiT FLOP/s on the batch and on one clip vs the fp32 matmul rate."""
    inputs, analytic, counted, forward = measure_dit_forward(s)
    rates = measure_matmul_rates(s)
    ceiling = measure_batching_ceiling(s, inputs, forward, results["batched_vs_single"]["encoder_vq"], rates)
    return {
        "batching_ceiling": ceiling,
        "dit_flops": dit_flops_summary(s.batch, s.frames, analytic, counted, forward, results["decode"]["fit"],
                                       rates),
    }


def measure_dit_forward(s: Session) -> tuple[tuple[torch.Tensor | None, ...], dict, dict, list[float]]:
    """One DiT forward on the batch: its arguments, analytic and counted FLOPs, and its times."""
    log("DiT forward: FLOP count and timing")
    inputs = dit_inputs(s.model, s.codes)
    analytic = dit_flops_analytic(s.model.decoder, s.batch, s.frames)
    counted = dit_flops_counted(s.model, inputs)
    forward = timed(lambda: dit_forward(s.model, inputs), max(3, s.repeats),
                    warmup=lambda: dit_forward(s.model, inputs), label="dit_forward")
    return inputs, analytic, counted, forward


def measure_matmul_rates(s: Session) -> dict[str, dict[str, Any]]:
    """fp32 matmul rates: the DiT's fc1 GEMM on the batch, 2048^3, and one clip's fc1."""
    log("fp32 matmul rate")
    config, repeats = s.model.config, max(5, s.repeats)
    return {
        "dit_gemm": matmul_rate(s.batch * s.frames, config.hidden_size, config.intermediate_size, repeats),
        "square_2048": matmul_rate(2048, 2048, 2048, repeats),
        "one_clip_fc1": matmul_rate(s.frames, config.hidden_size, config.intermediate_size, repeats),
    }


def best_matmul_rate(rates: dict[str, dict[str, Any]]) -> float:
    """The best fp32 matmul rate of the run, GFLOP/s."""
    return max(rate["gflops_per_s"] for rate in rates.values())


def measure_batching_ceiling(s: Session, inputs: tuple[torch.Tensor | None, ...], forward: list[float],
                             encoder_vq: dict[str, Any], rates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One-clip DiT forward and encoder + VQ rates against the best matmul rate: what batching can give."""
    model, config, frames = s.model, s.model.config, s.frames
    log("DiT forward, one clip")
    one_clip_inputs = first_clip_dit_inputs(inputs)
    forward_one = timed(lambda: dit_forward(model, one_clip_inputs), max(3, s.repeats),
                        warmup=lambda: dit_forward(model, one_clip_inputs), label="dit_forward_one_clip")
    # encoder + VQ: only the Linears and the VQ distance GEMM are counted (attention left out), which
    # undercounts its work and so can only loosen the bound, never make it too tight
    vq_flops_per_token = 2 * config.codebook_size * config.codebook_dim
    encoder_flops = frames * (2 * linear_macs(model.encoder)[0] + vq_flops_per_token)
    best = best_matmul_rate(rates)
    return {
        "encoder_vq": batching_ceiling(median(encoder_vq["singles_s"]) / s.batch, encoder_flops, best, s.batch,
                                       encoder_vq["speedup"]),
        "dit_forward": batching_ceiling(median(forward_one), dit_flops_analytic(model.decoder, 1, frames)["total"],
                                        best, s.batch, median(forward_one) * s.batch / median(forward)),
        "matmul_one_clip_fc1": rates["one_clip_fc1"],
    }


def dit_flops_summary(batch: int, frames: int, analytic: dict[str, int], counted: dict[str, Any],
                      forward: list[float], fit: dict[str, float], rates: dict[str, dict[str, Any]]) -> dict:
    """The DiT FLOP/s results: achieved GFLOP/s (timed and from the fit slope) as fractions of the matmul rates."""
    dit_rate = analytic["total"] / median(forward) / 1e9
    return {
        "batch": batch, "frames": frames, "analytic_flops": analytic, "flop_counter": counted,
        "analytic_matches_counter": analytic["total"] == counted["math_sdpa_total"],
        "forward_s": forward, "dit_gflops_per_s": dit_rate,
        "dit_gflops_per_s_from_fit_slope": analytic["total"] / fit["b_s_per_step"] / 1e9
        if fit["b_s_per_step"] > 0 else None,
        "matmul_dit_gemm": rates["dit_gemm"], "matmul_2048": rates["square_2048"],
        "fraction_of_dit_gemm_rate": dit_rate / rates["dit_gemm"]["gflops_per_s"],
        "fraction_of_2048_rate": dit_rate / rates["square_2048"]["gflops_per_s"],
        "fraction_of_best_matmul_rate": dit_rate / best_matmul_rate(rates),
    }


def measure_encodec(s: Session) -> dict[str, Any]:
    """Section 5: transformers' EnCodec (default 24 kHz config, random weights) encode and decode, same clips."""
    log("EnCodec (transformers, default 24 kHz config, random weights)")
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(0)
    encodec = EncodecModel(EncodecConfig()).eval()
    rate = encodec.config.sampling_rate
    ec_audio = to_encodec_input(s.audio, rate)
    ec_mask = torch.ones(ec_audio.shape[0], ec_audio.shape[-1], dtype=torch.long)
    ec_warm, ec_warm_mask = ec_audio[:1, :, :rate], ec_mask[:1, :rate]
    encoded_holder: list[Any] = []
    ec_encode = timed(
        lambda: encoded_holder.append(encodec.encode(ec_audio, ec_mask, bandwidth=ENCODEC_BANDWIDTH)), s.repeats,
        warmup=lambda: encodec.encode(ec_warm, ec_warm_mask, bandwidth=ENCODEC_BANDWIDTH), label="encodec_encode",
    )
    encoded = encoded_holder[-1]
    warm_encoded = encodec.encode(ec_warm, ec_warm_mask, bandwidth=ENCODEC_BANDWIDTH)
    ec_decode = timed(
        lambda: encodec.decode(encoded.audio_codes, encoded.audio_scales, ec_mask), s.repeats,
        warmup=lambda: encodec.decode(warm_encoded.audio_codes, warm_encoded.audio_scales, ec_warm_mask),
        label="encodec_decode",
    )
    return encodec_summary(encodec, list(encoded.audio_codes.shape), ec_encode, ec_decode, s.args.seconds,
                           s.audio_seconds)


def encodec_summary(encodec: nn.Module, codes_shape: list[int], encode_s: list[float], decode_s: list[float],
                    seconds: float, audio_seconds: float) -> dict[str, Any]:
    """The EnCodec results: configuration, tokens per second, bitrate and encode / decode speed."""
    config = encodec.config
    num_quantizers, frame_rate = codes_shape[2], float(config.frame_rate)
    return {
        "config": {"sampling_rate": config.sampling_rate, "hop_length": config.hop_length,
                   "codebook_size": config.codebook_size, "bandwidth_kbps": ENCODEC_BANDWIDTH},
        "parameters": count_parameters(encodec),
        "codes_shape": codes_shape,
        "frame_rate_hz": frame_rate,
        "num_codebooks": num_quantizers,
        "tokens_per_s": num_quantizers * frame_rate,
        "measured_tokens_per_s_per_clip": num_quantizers * codes_shape[-1] / seconds,
        "bitrate_bps": num_quantizers * frame_rate * math.log2(config.codebook_size),
        "encode_s": encode_s, "decode_s": decode_s,
        "encode_audio_s_per_s": audio_seconds / median(encode_s),
        "decode_audio_s_per_s": audio_seconds / median(decode_s),
    }


def msn_token_summary(model: nn.Module, codes: torch.Tensor, seconds: float) -> dict[str, Any]:
    """Section 5: tokens per second and bitrate of the MSN tokenizer (codes (batch, frames) of the clips)."""
    return {
        "frame_rate_hz": model.frame_rate, "num_codebooks": 1, "tokens_per_s": model.frame_rate,
        "measured_tokens_per_s_per_clip": codes.shape[1] / seconds, "bitrate_bps": model.bitrate,
        "codebook_size": model.codebook_size,
    }


def run_totals(threads: int, cpu_start: float, wall_start: float) -> dict[str, Any]:
    """Load average after, peak RSS, the CPU share of the run and of each timed stage, and the wall time."""
    totals: dict[str, Any] = {
        "load_average_after": load_average(),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # ru_maxrss is in KiB
    }
    wall = time.perf_counter() - wall_start
    # share of threads x wall that this process got as CPU time: well below 1 means other jobs competed
    totals["cpu_share"] = {
        "overall": (time.process_time() - cpu_start) / (wall * threads),
        **{label: cpu / (w * threads) for label, (w, cpu) in CPU_RECORDS.items() if w > 0},
    }
    totals["wall_time_s"] = time.perf_counter() - wall_start  # excludes the wait for an idle machine
    return totals


def run(args: argparse.Namespace) -> dict[str, Any]:
    """All measured sections, in this order (it matters for the warm-ups), as one results dict."""
    threads, waited = settle_machine(args)
    load_before = load_average()
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    session, results = set_up(args, threads, waited, load_before)
    with torch.inference_mode():
        results["encode"] = measure_encode(session)
        results["decode"] = measure_decode(session)
        results["batched_vs_single"] = measure_batched(session, results["encode"], results["decode"])
        results.update(measure_dit_flops(session, results))  # "batching_ceiling", "dit_flops"
        results["encodec"] = measure_encodec(session)
        results["msn_tokens"] = msn_token_summary(session.model, session.codes, args.seconds)
    results.update(run_totals(threads, cpu_start, wall_start))
    return results


# ----- report --------------------------------------------------------------------------------------------
def report(results: dict[str, Any]) -> str:
    """The markdown tables of a results dict."""
    sections = (report_header, report_encode, report_decode, report_batched, report_batching_ceiling,
                report_dit_flops, report_tokens, report_footer)
    return "\n".join(line for section in sections for line in section(results))


def report_header(results: dict[str, Any]) -> list[str]:
    """Title, machine, load and CPU share of the run, and the clips."""
    audio, machine = results["audio"], results["machine"]
    title = "MSN tokenizer CPU benchmark" + (" (QUICK smoke run: tiny config)" if results["quick"] else "")
    return [
        f"# {title}\n",
        f"{machine['cpu_model']}, {machine['cores_available']} cores, {machine['torch_threads']} torch threads, "
        f"torch {machine['torch']}, {machine['date']}. Load average before {results['load_average_before']}, "
        f"after {results['load_average_after']}; this process got {100 * results['cpu_share']['overall']:.0f}% "
        f"of threads x wall time as CPU time (100% = no competing jobs). Batch {audio['batch']} x "
        f"{audio['seconds_per_clip']} s ({audio['source']}); random weights, seed 0. Speeds in audio-seconds per "
        f"second (x real time).\n",
    ]


def report_encode(results: dict[str, Any]) -> list[str]:
    """Section 1: encode time and speed by stage."""
    enc = results["encode"]
    return ["## 1. Encode\n", md_table(
        ["stage", "time (s)", "audio-s / s"],
        [
            ["VAE encode (front end)", fmt(median(enc["vae_encode_s"])), fmt(enc["vae_encode_audio_s_per_s"])],
            ["encoder + VQ (`encode_latents`)", fmt(median(enc["encoder_vq_s"])),
             fmt(enc["encoder_vq_audio_s_per_s"])],
            ["**end to end**", fmt(enc["end_to_end_s"]), fmt(enc["end_to_end_audio_s_per_s"])],
        ],
    )]


def report_decode(results: dict[str, Any]) -> list[str]:
    """Section 2: decode time and speed per Euler step count, and the linear fit in steps."""
    dec = results["decode"]
    rows = [[steps, fmt(d["dit_s"]), fmt(d["dit_s"] / int(steps)), fmt(d["dit_audio_s_per_s"]),
             fmt(d["end_to_end_s"]), fmt(d["end_to_end_audio_s_per_s"])] for steps, d in dec["per_steps"].items()]
    fit = dec["fit"]
    return [
        f"\n## 2. Decode (Euler ODE; VAE decode measured once per batch: {fmt(median(dec['vae_decode_s']))} s)\n",
        md_table(["steps", "DiT time (s)", "DiT s / step", "DiT audio-s / s", "+ VAE decode = end to end (s)",
                  "end-to-end audio-s / s"], rows),
        f"\nLinear fit of DiT time in steps: t = a + b * steps with b = {fmt(fit['b_s_per_step'])} s/step, "
        f"a = {fmt(fit['a_s'])} s, R^2 = {fit['r2']:.5f}; t(32) / t(1) = {fmt(fit['ratio_t32_over_t1'])}.\n",
    ]


def report_batched(results: dict[str, Any]) -> list[str]:
    """Section 3: batched vs single-clip times and speed-ups against the target."""
    batch, bat = results["audio"]["batch"], results["batched_vs_single"]
    rows = [
        ["encoder + VQ", fmt(bat["encoder_vq"]["batch_s"]), fmt(median(bat["encoder_vq"]["singles_s"])),
         f"{bat['encoder_vq']['speedup']:.2f}x", met(bat["encoder_vq"]["speedup"] >= SPEEDUP_TARGET)],
        [f"DiT decode, {bat['dit_decode']['steps']} steps", fmt(bat["dit_decode"]["batch_s"]),
         fmt(median(bat["dit_decode"]["singles_s"])), f"{bat['dit_decode']['speedup']:.2f}x",
         met(bat["dit_decode"]["speedup"] >= SPEEDUP_TARGET)],
    ]
    vae = bat["vae_encode"]
    if "skipped" in vae:
        vae_batch_s = fmt(median(results["encode"]["vae_encode_s"]))
        rows.append(["VAE encode", vae_batch_s, "skipped (pass `--full-vae`)", "-", "-"])
    else:
        rows.append(["VAE encode (`frontend.encode`)", fmt(vae["batch_s"]), fmt(median(vae["singles_s"])),
                     f"{vae['speedup']:.2f}x", met(vae["speedup"] >= SPEEDUP_TARGET)])
    one_call = bat.get("vae_encode_one_call")
    if one_call:
        rows.append([f"VAE encode, all {batch} clips in one VAE call (vs the default "
                     f"`cpu_clips_per_call={one_call['cpu_clips_per_call_default']}`)",
                     fmt(median(one_call["one_call_s"])), fmt(vae["batch_s"]),
                     f"{1 / one_call['default_speedup_over_one_call']:.2f}x", "-"])
    return [
        f"## 3. Batched (one call on {batch} clips) vs {batch} single-clip calls\n",
        md_table(["stage", "batch (s)", "singles (s)", "speed-up", f"target >= {SPEEDUP_TARGET:g}x met"], rows),
    ]


def report_batching_ceiling(results: dict[str, Any]) -> list[str]:
    """Section 3, continued: the ceiling on the batching speed-up of each stage (nothing if not measured)."""
    ceiling = results.get("batching_ceiling")
    if not ceiling:
        return []
    mm1 = ceiling["matmul_one_clip_fc1"]
    stages = (("encoder + VQ (Linears + VQ GEMM only)", ceiling["encoder_vq"]),
              ("DiT forward (all FLOPs)", ceiling["dit_forward"]))
    return [
        f"\nWhat batching can give here at most: the best fp32 matmul rate of the run over the rate one clip "
        f"already reaches (a {'x'.join(map(str, mm1['shape']))} matmul, one clip's fc1, runs at "
        f"{fmt(mm1['gflops_per_s'])} GFLOP/s).\n",
        md_table(
            ["stage (one clip)", "time (s)", "GFLOP counted", "GFLOP/s", "best matmul GFLOP/s",
             "ceiling on speed-up", "measured speed-up", f"{SPEEDUP_TARGET:g}x reachable here"],
            [[name, fmt(c["one_clip_s"]), fmt(c["one_clip_flops"] / 1e9), fmt(c["one_clip_gflops_per_s"]),
              fmt(c["best_matmul_gflops_per_s"]), f"{c['ceiling']:.2f}x", f"{c['measured_speedup']:.2f}x",
              "yes" if c["ceiling"] >= SPEEDUP_TARGET else "no"] for name, c in stages],
        ),
    ]


def report_dit_flops(results: dict[str, Any]) -> list[str]:
    """Section 4: DiT FLOPs (analytic and counted), achieved GFLOP/s and its fraction of the matmul rates."""
    flops = results["dit_flops"]
    analytic, counted = flops["analytic_flops"], flops["flop_counter"]
    return [f"\n## 4. DiT achieved FLOP/s (one forward, batch {results['audio']['batch']} x {flops['frames']} "
            f"frames)\n", md_table(
        ["quantity", "value"],
        [
            ["analytic FLOPs: per-token Linears", f"{analytic['linear_per_token']:,}"],
            ["analytic FLOPs: per-clip Linears (timestep, adaLN)", f"{analytic['linear_per_clip']:,}"],
            ["analytic FLOPs: attention QK^T + AV", f"{analytic['attention']:,}"],
            ["**analytic FLOPs total**", f"{analytic['total']:,}"],
            ["FlopCounterMode, math SDPA backend", f"{counted['math_sdpa_total']:,} "
             f"({'matches' if flops['analytic_matches_counter'] else 'DIFFERS'})"],
            ["FlopCounterMode, default SDPA (CPU fused attention not counted)", f"{counted['default_sdpa_total']:,}"],
            ["DiT forward time, median (s)", fmt(median(flops["forward_s"]))],
            ["**DiT achieved GFLOP/s**", fmt(flops["dit_gflops_per_s"])],
            ["DiT GFLOP/s from the decode fit slope b", fmt(flops["dit_gflops_per_s_from_fit_slope"] or 0.0)],
            [f"fp32 matmul {'x'.join(map(str, flops['matmul_dit_gemm']['shape']))} GFLOP/s (DiT's fc1 GEMM)",
             fmt(flops["matmul_dit_gemm"]["gflops_per_s"])],
            ["fp32 matmul 2048^3 GFLOP/s", fmt(flops["matmul_2048"]["gflops_per_s"])],
            ["DiT / DiT-GEMM matmul rate", f"{100 * flops['fraction_of_dit_gemm_rate']:.1f}%"],
            ["DiT / 2048^3 matmul rate", f"{100 * flops['fraction_of_2048_rate']:.1f}%"],
            [f"target >= {100 * MATMUL_FRACTION_TARGET:.0f}% of the best matmul rate met",
             met(flops["fraction_of_best_matmul_rate"] >= MATMUL_FRACTION_TARGET)],
        ],
    )]


def report_tokens(results: dict[str, Any]) -> list[str]:
    """Section 5: tokens per second, bitrate and encode / decode speed of the tokenizer beside EnCodec."""
    msn, ec, enc = results["msn_tokens"], results["encodec"], results["encode"]
    ours_dec = results["decode"]["per_steps"].get(str(BATCHED_STEPS), {})
    return ["\n## 5. Tokens per second and bitrate beside EnCodec (same clips, same batch)\n", md_table(
        ["tokenizer", "sample rate", "frame rate (Hz)", "codebooks", "tokens / s", "bitrate (bps)",
         "encode audio-s / s", "decode audio-s / s"],
        [
            [f"MSN (VQ {msn['codebook_size']}, {'tiny' if results['quick'] else 'paper size'})",
             "44.1 kHz stereo", fmt(msn["frame_rate_hz"], 4), 1, fmt(msn["tokens_per_s"], 4),
             fmt(msn["bitrate_bps"], 4), fmt(enc["end_to_end_audio_s_per_s"]),
             f"{fmt(ours_dec.get('end_to_end_audio_s_per_s', float('nan')))} ({BATCHED_STEPS} steps)"],
            [f"EnCodec ({ec['config']['bandwidth_kbps']:g} kbps, random weights)",
             f"{ec['config']['sampling_rate'] / 1000:g} kHz mono", fmt(ec["frame_rate_hz"], 4), ec["num_codebooks"],
             fmt(ec["tokens_per_s"], 4), fmt(ec["bitrate_bps"], 4), fmt(ec["encode_audio_s_per_s"]),
             fmt(ec["decode_audio_s_per_s"])],
            ["ratio EnCodec / MSN", "", fmt(ec["frame_rate_hz"] / msn["frame_rate_hz"]), "",
             fmt(ec["tokens_per_s"] / msn["tokens_per_s"]), fmt(ec["bitrate_bps"] / msn["bitrate_bps"]),
             fmt(ec["encode_audio_s_per_s"] / enc["end_to_end_audio_s_per_s"]),
             fmt(ec["decode_audio_s_per_s"] / ours_dec["end_to_end_audio_s_per_s"]) if ours_dec else ""],
        ],
    )]


def report_footer(results: dict[str, Any]) -> list[str]:
    """Wall time of the run and peak memory."""
    return [f"\nWall time of the run: {results['wall_time_s']:.0f} s (after {results['waited_for_idle_s']:.0f} s "
            f"waiting for an idle machine); peak RSS {results['peak_rss_gib']:.1f} GiB."]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny tokenizer, 2 x 1 s clips: a smoke test (< 1 min)")
    parser.add_argument("--batch", type=int, default=None, help="clips per batch (default 8; 2 with --quick)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per clip (default 10; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all available cores)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats of the cheap stages, median reported (default 3; 1 with --quick)")
    parser.add_argument("--wait-for-idle", type=float, default=0.0,
                        help="wait up to this many seconds for the 1-min load average to fall below --idle-load")
    parser.add_argument("--idle-load", type=float, default=0.5, help="load average counted as idle (default 0.5)")
    parser.add_argument("--full-vae", action="store_true", help="also time the VAE encode one clip at a time")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default benchmarks/results/tokenizer_cpu.json, _quick with --quick)")
    args = parser.parse_args(argv)
    args.batch = args.batch or (2 if args.quick else 8)
    args.seconds = args.seconds or (1.0 if args.quick else 10.0)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.out is None:
        name = "tokenizer_cpu_quick.json" if args.quick else "tokenizer_cpu.json"
        args.out = Path(__file__).resolve().parent / "results" / name
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = run(args)
    table = report(results)
    results["markdown"] = table
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
