"""MINT (audio encoder -> Q-Former -> LLM): vocabulary ranking with `score_candidates` vs the naive loop, and the cost
of the stage-1 objectives.

1. **Vocabulary ranking** of K = 10 and K = 100 short label-like candidates (1-4 tokens + eos) for a batch of clips:
   `MintForConditionalGeneration.score_candidates` (audio encoder, Q-Former and prompt run once per clip, the
   candidates scored in chunks against the prompt's KV cache) vs the naive way, one full forward pass per clip and
   candidate (`model(input_ids=prompt + candidate, qformer_input_ids=..., audio_values=...)`, which reruns the audio
   encoder, the Q-Former and the prompt every time) summing the candidate tokens' log-probabilities. The scores
   must agree (`torch.allclose`, atol 1e-4) before any time is reported. Time per clip and speed ratio (target:
   >= 6x at K = 10).
2. **Stage-1 step** (forward + backward, train mode) of `MintForPreTraining` with all three objectives
   (ALC + ALM + ATG) vs ALC alone (`use_alm=False, use_atg=False`), on the same batch, with the frozen encoder's
   output given as `audio_embeds` (cached, as the training scripts do) and with the encoder run inside the step
   (`audio_values`); target <= 2.5x. The single objectives' shares (ALC + ATG, ALC + ALM) and the audio encoder
   alone are timed too. One warm-up step, then the median of `--repeats` steps. `--paper-step` times the step again
   at the paper's sizes (`paper_stage1_size`: data2vec-audio-base on 10 s, BERT-base Q-Former, batch 8 x 30).

The default ("demo") sizes are the demo's real architecture built from configs with random weights (the same
compute as the real weights, no files needed): YAMNet at its default config (1024-d, 10 log-mel patches of
96 x 64, about 5 s of audio per clip), a Q-Former the size of all-MiniLM-L6-v2 (384 x 6 layers, 12 heads, MLP 1536,
vocabulary 30523 with `[DEC]` 30522, cross-attention every other layer), 32 queries, embed_dim 256, stage-1 batch
16 captions of <= 15 tokens; the LLM SmolLM2-135M's architecture (30 layers, hidden 576, vocabulary 49152) for
ranking, a 6-token prompt. `--tiny` shrinks everything to the unit tests' configs (seconds).

It runs on one intra-op thread by default (`--threads` to change): on the shared 2-core machine it was written on,
with another job holding one core, a second OpenMP thread made every operation wait at its barrier (a demo-size
`score_candidates` call at K = 10 took 17-19 s on 2 threads against 1.3 s on one), which would measure the
neighbour, not the code. The load average before and after and the share of CPU time the process got are recorded.

    python benchmarks/bench_mint.py             # -> benchmarks/results/mint_cpu.json and .md (about 4 min)
    python benchmarks/bench_mint.py --paper-step   # + the paper-size step (about 10 min more)
    python benchmarks/bench_mint.py --tiny --out /tmp/mint_tiny.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RANKING_TARGET = 6.0  # score_candidates over naive at K = 10, at least
STEP_TARGET = 2.5  # ALC + ALM + ATG over ALC alone, at most
ATOL = 1e-4


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ configurations


def sizes(tiny: bool) -> dict:
    """Everything size-like of a run: the model configs and the input shapes."""
    from transformers import LlamaConfig

    if tiny:
        return {
            "audio_config": {"model_type": "yamnet", "layer_channels": [8, 16], "layer_strides": [2, 2]},
            "qformer_config": dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=64, bos_token_id=99, encoder_hidden_size=16),
            "num_query_tokens": 4, "embed_dim": 16,
            "llm_config": LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2),
            "patches": 2, "qformer_vocab": (3, 99), "cls": 2, "sep": 3,
        }
    return {
        "audio_config": {"model_type": "yamnet"},  # YAMNet's default: 14 MobileNetV1 layers, 1024-d embeddings
        # all-MiniLM-L6-v2's sizes (a 6-layer 384-d BERT) plus the [DEC] row
        "qformer_config": dict(vocab_size=30523, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                               intermediate_size=1536, bos_token_id=30522, cross_attention_frequency=2,
                               encoder_hidden_size=1024),
        "num_query_tokens": 32, "embed_dim": 256,
        # SmolLM2-135M(-Instruct)'s architecture
        "llm_config": LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                  num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                                  rope_theta=100000.0, tie_word_embeddings=True, rms_norm_eps=1e-5,
                                  bos_token_id=1, eos_token_id=2, pad_token_id=2),
        "patches": 10, "qformer_vocab": (1000, 30000), "cls": 101, "sep": 102,
    }


def paper_stage1_size() -> dict:
    """The paper's stage-1 shapes (PAPERS.md): data2vec-audio-base (12 x 768) on 10 s of 16 kHz audio (499 frames),
    a BERT-base Q-Former (12 x 768, cross-attention every other block), 32 queries, text <= 30 tokens, batch 64 over
    8 GPUs = 8 per process. Random weights: the compute is the real one."""
    from transformers import Data2VecAudioConfig

    return {
        "audio_config": Data2VecAudioConfig(),  # transformers' default = data2vec-audio-base's architecture
        "qformer_config": dict(vocab_size=30523, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                               intermediate_size=3072, bos_token_id=30522, cross_attention_frequency=2,
                               encoder_hidden_size=768),
        "num_query_tokens": 32, "embed_dim": 256,
        "waveform_samples": 160000, "qformer_vocab": (1000, 30000), "cls": 101, "sep": 102,
    }


def audio_input(size: dict, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, str]:
    """A batch of the audio encoder's input and how to describe it: YAMNet patches or 16 kHz waveforms."""
    if "waveform_samples" in size:
        samples = size["waveform_samples"]
        return torch.randn(batch, samples, generator=generator), f"{samples / 16000:g} s of 16 kHz audio"
    return torch.randn(batch, size["patches"], 96, 64, generator=generator), f"{size['patches']} YAMNet patches"


def mint_config(size: dict, text_config=None):
    from soundlm.modeling.mint import MintConfig

    audio = size["audio_config"]
    return MintConfig(audio_config=audio if not isinstance(audio, dict) else dict(audio),
                      qformer_config=dict(size["qformer_config"]),
                      text_config=text_config, num_query_tokens=size["num_query_tokens"],
                      embed_dim=size["embed_dim"])


def qformer_text(size: dict, batch: int, length: int, generator: torch.Generator, pad: bool):
    """Q-Former token ids `[CLS] words [SEP]` (batch, length) and their mask; with `pad`, rows end at random lengths
    between 2/3 of `length` and `length` (right padding, as the processor pads)."""
    low, high = size["qformer_vocab"]
    ids = torch.randint(low, high, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    for row in range(batch):
        end = int(torch.randint(max(3, 2 * length // 3), length + 1, (1,), generator=generator)) if pad else length
        ids[row, 0], ids[row, end - 1] = size["cls"], size["sep"]
        ids[row, end:], mask[row, end:] = 0, 0
    return ids, mask


def label_candidates(count: int, vocab_size: int, eos: int, generator: torch.Generator) -> list[list[int]]:
    """`count` distinct label-like candidates: 1-4 tokens, then eos."""
    seen: set[tuple[int, ...]] = set()
    candidates = []
    while len(candidates) < count:
        length = int(torch.randint(1, 5, (1,), generator=generator))
        words = tuple(int(t) for t in torch.randint(3, vocab_size, (length,), generator=generator))
        if words not in seen:
            seen.add(words)
            candidates.append([*words, eos])
    return candidates


# ------------------------------------------------------------------------------------------------ 1. ranking


def naive_scores(model, candidates, prompt, qformer_ids, qformer_mask, audio_values) -> torch.Tensor:
    """One full forward per (clip, candidate): audio encoder, Q-Former, soft prompt, prompt and candidate each time;
    the candidate's score is the sum of its tokens' log-probabilities."""
    scores = torch.empty(len(audio_values), len(candidates))
    for b in range(len(audio_values)):
        for k, candidate in enumerate(candidates):
            c = torch.tensor(candidate)
            out = model(input_ids=torch.cat([prompt[b], c])[None], qformer_input_ids=qformer_ids[b:b + 1],
                        qformer_attention_mask=qformer_mask[b:b + 1], audio_values=audio_values[b:b + 1])
            log_probs = out.logits[0, -len(c) - 1:-1].float().log_softmax(-1)
            scores[b, k] = log_probs.gather(-1, c[:, None]).sum()
    return scores


def build_stage2(size: dict):
    from transformers import LlamaForCausalLM

    from soundlm.modeling.mint import MintForConditionalGeneration, MintForPreTraining

    torch.manual_seed(0)
    stage1 = MintForPreTraining(mint_config(size))
    llm = LlamaForCausalLM(size["llm_config"])
    began = time.perf_counter()
    model = MintForConditionalGeneration.from_stage1(stage1, llm).eval()
    return model, time.perf_counter() - began


def ranking(size: dict, ks: list[int], clips: int, naive_clips: int, repeats: int, prompt_length: int) -> dict:
    torch.manual_seed(0)
    model, from_stage1_s = build_stage2(size)
    llm_config = size["llm_config"]
    generator = torch.Generator().manual_seed(1)
    audio_values = torch.randn(clips, size["patches"], 96, 64, generator=generator)
    # the same instruction and prompt for every clip, as in vocabulary ranking
    qformer_ids, qformer_mask = qformer_text(size, 1, 8, generator, pad=False)
    qformer_ids, qformer_mask = qformer_ids.expand(clips, -1), qformer_mask.expand(clips, -1)
    prompt = torch.randint(3, llm_config.vocab_size, (1, prompt_length), generator=generator).expand(clips, -1)
    all_candidates = label_candidates(max(ks), llm_config.vocab_size, llm_config.eos_token_id, generator)
    inputs = dict(input_ids=prompt, qformer_input_ids=qformer_ids, qformer_attention_mask=qformer_mask)
    results = {"clips": clips, "naive_clips": naive_clips, "prompt_tokens": prompt_length,
               "soft_prompt_tokens": size["num_query_tokens"], "audio_patches": size["patches"],
               "from_stage1_s": from_stage1_s}
    with torch.no_grad():
        # warm-up: one naive forward and one batched call
        naive_scores(model, all_candidates[:1], prompt[:1], qformer_ids[:1], qformer_mask[:1], audio_values[:1])
        model.score_candidates(all_candidates[:2], audio_values=audio_values, **inputs)
        for k in ks:
            candidates = all_candidates[:k]
            _log(f"  K = {k}: score_candidates on {clips} clips, naive loop on {naive_clips}")
            times, scores = [], None
            for _ in range(repeats):
                began = time.perf_counter()
                scores = model.score_candidates(candidates, audio_values=audio_values, **inputs)
                times.append(time.perf_counter() - began)
            began = time.perf_counter()
            naive = naive_scores(model, candidates, prompt[:naive_clips], qformer_ids[:naive_clips],
                                 qformer_mask[:naive_clips], audio_values[:naive_clips])
            naive_s = time.perf_counter() - began
            difference = float((scores[:naive_clips] - naive).abs().max())
            assert torch.allclose(scores[:naive_clips], naive, rtol=0.0, atol=ATOL), (
                f"K = {k}: score_candidates differs from the naive loop by up to {difference}")
            batched_per_clip = statistics.median(times) / clips
            naive_per_clip = naive_s / naive_clips
            results[str(k)] = {
                "k": k, "candidate_tokens_mean": sum(len(c) for c in candidates) / k,
                "max_abs_difference": difference, "scores_allclose": True,
                "score_candidates_s_per_clip": batched_per_clip, "score_candidates_times_s": times,
                "naive_s_per_clip": naive_per_clip, "naive_forward_s": naive_s / (naive_clips * k),
                "speedup": naive_per_clip / batched_per_clip,
                "best_candidate_agrees": bool((scores[:naive_clips].argmax(1) == naive.argmax(1)).all()),
            }
    return results


# ------------------------------------------------------------------------------------------------ 2. stage-1 step

STEP_VARIANTS = {  # name -> (use_alm, use_atg); ALC is always on
    "alc": (False, False),
    "alc_atg": (False, True),
    "alc_alm": (True, False),
    "all": (True, True),
}


def stage1_step(size: dict, batch: int, text_length: int, repeats: int) -> dict:
    from soundlm.modeling.mint import MintForPreTraining

    torch.manual_seed(0)
    model = MintForPreTraining(mint_config(size)).train()
    generator = torch.Generator().manual_seed(2)
    audio_values, audio_description = audio_input(size, batch, generator)
    ids, mask = qformer_text(size, batch, text_length, generator, pad=True)

    def encode() -> float:
        began = time.perf_counter()
        model.get_audio_hidden_states(audio_values)
        return time.perf_counter() - began

    encode()
    encoder_s = statistics.median(encode() for _ in range(repeats))
    embeds, embeds_mask = model.get_audio_hidden_states(audio_values)  # cached once, as the training scripts do
    sources = {"audio_embeds": {"audio_embeds": embeds, "audio_embeds_mask": embeds_mask},
               "audio_values": {"audio_values": audio_values}}

    def step(variant: str, source: str) -> tuple[float, dict]:
        model.config.use_alm, model.config.use_atg = STEP_VARIANTS[variant]
        began = time.perf_counter()
        out = model(input_ids=ids, attention_mask=mask, **sources[source])
        out.loss.backward()
        elapsed = time.perf_counter() - began
        model.zero_grad(set_to_none=True)
        losses = {name: float(getattr(out, name).detach()) for name in ("alc_loss", "alm_loss", "atg_loss")
                  if getattr(out, name) is not None}
        return elapsed, losses

    results = {"batch": batch, "text_tokens": int(ids.shape[1]), "text_tokens_real": int(mask.sum()),
               "audio": audio_description, "audio_frames": int(embeds.shape[1]),
               "qformer": {k: size["qformer_config"][k] for k in ("hidden_size", "num_hidden_layers")},
               "audio_encoder_s": encoder_s, "steps": {}}
    runs = [("audio_embeds", variant) for variant in STEP_VARIANTS] + [("audio_values", v) for v in ("alc", "all")]
    for source, variant in runs:
        _log(f"  {source}: {variant}")
        step(variant, source)  # warm-up
        timed = [step(variant, source) for _ in range(repeats)]
        results["steps"][f"{source}/{variant}"] = {
            "source": source, "objectives": variant, "step_s": statistics.median(t for t, _ in timed),
            "times_s": [t for t, _ in timed], "losses": timed[-1][1]}
    model.config.use_alm, model.config.use_atg = True, True
    step_s = {name: run["step_s"] for name, run in results["steps"].items()}
    results["ratio_cached"] = step_s["audio_embeds/all"] / step_s["audio_embeds/alc"]
    results["ratio_encoder_in_step"] = step_s["audio_values/all"] / step_s["audio_values/alc"]
    return results


# ------------------------------------------------------------------------------------------------ report


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def step_table(step: dict, label: str) -> list[str]:
    steps = step["steps"]
    qformer = step["qformer"]
    lines = [
        "",
        f"| stage-1 step at {label} (forward + backward, train mode): batch {step['batch']} x {step['text_tokens']} "
        f"text tokens, {step['audio']} ({step['audio_frames']} encoder frames), Q-Former {qformer['hidden_size']} x "
        f"{qformer['num_hidden_layers']} | step (s) | over ALC alone | target |",
        "|---|---:|---:|---|",
    ]
    names = {"alc": "ALC", "alc_atg": "ALC + ATG", "alc_alm": "ALC + ALM", "all": "ALC + ALM + ATG"}
    for source, ratio_key in (("audio_embeds", "ratio_cached"), ("audio_values", "ratio_encoder_in_step")):
        where = "cached audio_embeds" if source == "audio_embeds" else "audio encoder in the step (audio_values)"
        base = steps[f"{source}/alc"]["step_s"]
        for variant, name in names.items():
            run = steps.get(f"{source}/{variant}")
            if run is None:
                continue
            target = (f"<= {STEP_TARGET:g}x: {_met(step[ratio_key] <= STEP_TARGET)}" if variant == "all" else "-")
            lines.append(f"| {name}, {where} | {run['step_s']:.3f} | {run['step_s'] / base:.2f}x | {target} |")
    lines.append(f"| the audio encoder alone (no grad), same batch | {step['audio_encoder_s']:.3f} | - | - |")
    return lines


def report(results: dict, command: str) -> str:
    rank, step = results["ranking"], results["stage1_step"]
    ks = [key for key in rank if key.isdigit()]
    load = results["load_average"]
    lines = [
        f"MINT benchmark ({results['date']}, {results['machine']}; `{command}`)",
        "",
        f"load average {load['before'][0]:.2f} before, {load['after'][0]:.2f} after; the process got "
        f"{results['cpu_share']:.2f} of {results['threads']} threads' CPU time over the run",
        "",
        f"| vocabulary ranking, {rank['clips']} clips x {rank['audio_patches']} YAMNet patches, "
        f"{rank['soft_prompt_tokens']} soft + {rank['prompt_tokens']} prompt tokens | K | score_candidates "
        f"(s/clip) | naive, K forwards (s/clip) | speed-up | max abs diff | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for key in ks:
        r = rank[key]
        target = f">= {RANKING_TARGET:g}x: {_met(r['speedup'] >= RANKING_TARGET)}" if r["k"] == 10 else "-"
        lines.append(f"| candidates of {r['candidate_tokens_mean']:.1f} tokens (eos included), naive on "
                     f"{rank['naive_clips']} clips | {r['k']} | {r['score_candidates_s_per_clip']:.3f} | "
                     f"{r['naive_s_per_clip']:.3f} | {r['speedup']:.1f}x | {r['max_abs_difference']:.1e} | "
                     f"{target} |")
    lines += step_table(step, "demo sizes")
    if "stage1_step_paper" in results:
        lines += step_table(results["stage1_step_paper"], "the paper's sizes")
    lines += [
        "",
        f"`from_stage1` (stage 2 from the stage-1 model and the LLM) took {rank['from_stage1_s']:.2f} s; "
        f"wall time {results['wall_s']:.0f} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the unit tests' tiny configs (seconds)")
    parser.add_argument("--clips", type=int, default=4, help="clips ranked by score_candidates")
    parser.add_argument("--naive-clips", type=int, default=None,
                        help="clips ranked by the naive loop (default: all; it costs K forwards per clip)")
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 100], help="candidate counts")
    parser.add_argument("--prompt-tokens", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16, help="stage-1 captions per step")
    parser.add_argument("--text-tokens", type=int, default=15, help="stage-1 caption length (padded)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions after one warm-up")
    parser.add_argument("--paper-step", action="store_true",
                        help="also time the stage-1 step at the paper's sizes (data2vec-audio-base on 10 s, BERT-base "
                             "Q-Former, batch 8 x 30 tokens; about 10 min on one thread)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: see the module docstring)")
    parser.add_argument("--out", default=None, help="JSON path (the markdown goes next to it as .md)")
    args = parser.parse_args(argv)
    naive_clips = min(args.naive_clips or args.clips, args.clips)
    torch.set_num_threads(args.threads)
    command = " ".join(["python benchmarks/bench_mint.py", *(sys.argv[1:] if argv is None else argv)])
    size = sizes(args.tiny)
    load_before = os.getloadavg()
    cpu_before, started = time.process_time(), time.perf_counter()
    _log("1/2 vocabulary ranking")
    rank = ranking(size, args.ks, args.clips, naive_clips, args.repeats, args.prompt_tokens)
    _log("2/2 stage-1 step")
    step = stage1_step(size, args.batch, args.text_tokens, args.repeats)
    paper_step = None
    if args.paper_step:
        _log("2b stage-1 step at the paper's sizes")
        paper_step = stage1_step(paper_stage1_size(), 8, 30, args.repeats)
    wall = time.perf_counter() - started
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    results = {
        "date": str(datetime.date.today()), "machine": machine, "command": command, "args": vars(args),
        "threads": args.threads, "load_average": {"before": load_before, "after": os.getloadavg()},
        "cpu_share": (time.process_time() - cpu_before) / (wall * args.threads), "wall_s": wall,
        "targets": {"ranking_speedup_k10_at_least": RANKING_TARGET, "step_ratio_at_most": STEP_TARGET},
        "ranking": rank, "stage1_step": step,
    }
    if paper_step is not None:
        results["stage1_step_paper"] = paper_step
    table = report(results, command)
    print(table)
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / (
        "mint_cpu_tiny.json" if args.tiny else "mint_cpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    return results


if __name__ == "__main__":
    main()
