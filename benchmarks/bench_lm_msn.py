"""LM-MSN audio LLM: trainable parameters at paper size, training-step cost ours vs the naive way, constrained
generation cost.

1. **Trainable parameters of the paper's configuration**, built on the meta device (no memory, no weights):
   Vicuna-7B v1.5's shape (Llama 2 7B: 32 layers, hidden 4096, MLP 11008, vocabulary 32000), vocabulary extended
   by 8198 tokens (8196 codes + `<soa>`, `<eoa>`), LoRA r=64 on every linear layer of the blocks, only the new
   rows trainable in the input embedding and the LM head (`prepare_audio_llm`); counted from the peft model's
   parameters, beside the paper's "2-3 %".
2. **One training step** (forward + backward + AdamW) on a small config, batch 4 x 512 tokens of LM-MSN-shaped
   data (audio spans with 10x weight, text), fp32 on the CPU, in a fresh process per variant so that peak memory
   is the process's own: **ours** (peft trainable tokens: only the new rows have gradients and optimiser state;
   chunked LM head, at most 1024 x vocab float32 logits alive) vs **naive** (the whole input embedding and LM
   head trainable with peft `modules_to_save`, the loss on full float32 logits). Tokens/s (median of the timed
   steps) and peak resident memory above the loaded model. Target: not slower, less memory.
3. **Generating 215 audio tokens** (one 10-s window of the paper's tokenizer) after a short prompt, greedy,
   batch 1: with the `AudioSpanLogitsProcessor` vs without (tokens/s ratio; target >= 0.9x), and with vs
   without the KV cache.
4. **Ranking candidate answers** (zero-shot classification, `score_answers`): one clip of 216 codes and a prompt,
   102 candidate labels (the demo corpus' training labels are 102), fp32: **ours** (the question runs once, its
   key/value cache is copied for 64 answers at a time) vs **naive** (each answer appended to the question and the
   whole sequence run, 16 at a time). Seconds per clip and the ratio; both give the same scores (asserted).

The small config is SmolLM2-135M's architecture (30 layers, hidden 576, vocabulary 49152) with random weights
and the paper's 8196-code audio vocabulary (57350 tokens in all), so the vocabulary-sized costs are realistic.

    python benchmarks/bench_lm_msn.py [--steps 4] [--out benchmarks/results/lm_msn_cpu.json] > lm_msn_cpu.md
    python benchmarks/bench_lm_msn.py --quick   # a tiny config, < 1 min smoke test
    python benchmarks/bench_lm_msn.py --parts ranking   # only some of the four parts
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
PAPER_CODEBOOK = 8196


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _text_tokenizer(vocab_size: int):
    """A word-level tokenizer of `vocab_size` tokens (ids only matter here), eos `</s>`."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "</s>": 1, **{f"w{i}": i for i in range(2, vocab_size)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", unk_token="<unk>")


def small_config(quick: bool):
    from transformers import LlamaConfig

    if quick:
        return LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    # SmolLM2-135M-Instruct's architecture
    return LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                       num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                       rope_theta=100000.0, tie_word_embeddings=True, rms_norm_eps=1e-5)


# ------------------------------------------------------------------------------------------------ 1. parameters


def paper_trainable_parameters() -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    from soundlm.modeling.lm_msn import AudioTokenProcessor, LMMSNConfig, prepare_audio_llm

    config = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=32, tie_word_embeddings=False)
    processor = AudioTokenProcessor(_text_tokenizer(32000), codebook_size=PAPER_CODEBOOK)
    with torch.device("meta"):
        base = LlamaForCausalLM(config)
    base_parameters = sum(p.numel() for p in base.parameters())
    recipe = LMMSNConfig(new_row_init="model")  # no row statistics on the meta device
    with torch.device("meta"):
        model = prepare_audio_llm(base, processor, recipe)
    lora = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "lora_" in n)
    rows = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "trainable_tokens" in n)
    total = sum(p.numel() for n, p in model.named_parameters() if "trainable_tokens_delta" not in n)
    # analytic check: r * (in + out) per adapted linear layer, new rows x hidden on each side
    r, h, m, layers = 64, 4096, 11008, 32
    expected_lora = layers * r * (4 * (h + h) + 2 * (h + m) + (m + h))
    assert lora == expected_lora, (lora, expected_lora)
    assert rows == 2 * (PAPER_CODEBOOK + 2) * h, rows
    return {"base_parameters": base_parameters, "total_parameters": total, "lora": lora, "new_rows": rows,
            "trainable": lora + rows, "trainable_percent": 100 * (lora + rows) / total,
            "lora_percent": 100 * lora / total}


# ------------------------------------------------------------------------------------------------ 2. training step


def _batch(processor, batch_size: int, length: int, seed: int):
    """LM-MSN-shaped rows: a caption, an audio span of the rest, as stage 1 presents them."""
    from soundlm.processing.tasks import TaskExample, audio_segment, text_segment

    generator = torch.Generator().manual_seed(seed)
    examples = []
    for row in range(batch_size):
        words = " ".join(f"w{int(i)}" for i in torch.randint(2, 1000, (24,), generator=generator))
        codes = torch.randint(0, processor.codebook_size, (length - 24 - 2,), generator=generator).tolist()
        segments = (text_segment(words, True), audio_segment(codes, True)) if row % 2 else (
            audio_segment(codes, True), text_segment(words, True))
        examples.append(TaskExample("t", segments))
    return processor(examples, max_length=length)


def training_step_worker(variant: str, quick: bool, steps: int, batch_size: int, length: int) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    from soundlm.modeling.lm_msn import (
        AudioTokenProcessor,
        LMMSNConfig,
        init_new_embedding_rows,
        lm_msn_loss,
        naive_lm_msn_loss,
        prepare_audio_llm,
    )

    torch.manual_seed(0)
    config = small_config(quick)
    codebook = 64 if quick else PAPER_CODEBOOK
    processor = AudioTokenProcessor(_text_tokenizer(config.vocab_size), codebook_size=codebook)
    base = LlamaForCausalLM(config)
    if variant == "ours":
        model = prepare_audio_llm(base, processor, LMMSNConfig(lora_dropout=0.0))
        loss_fn = lm_msn_loss
    else:
        num_text = base.get_input_embeddings().weight.shape[0]
        base.resize_token_embeddings(processor.vocab_size, mean_resizing=False)
        # the same start as ours (prepare_audio_llm draws the new rows with seed 0; the head is tied)
        init_new_embedding_rows(base.get_input_embeddings().weight, num_text, "mean_cov",
                                torch.Generator().manual_seed(0))
        lora = LoraConfig(r=64, lora_alpha=128, lora_dropout=0.0, target_modules="all-linear",
                          modules_to_save=["embed_tokens", "lm_head"], task_type="CAUSAL_LM")
        model = get_peft_model(base, lora)
        loss_fn = naive_lm_msn_loss
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = _batch(processor, batch_size, length, seed=0)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    times = []
    for step in range(steps + 1):  # the first step warms up (allocations, optimiser state) and is not timed
        began = time.perf_counter()
        loss = loss_fn(model, **batch, audio_id_range=processor.audio_id_range).loss
        if not step:
            first_loss = float(loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            times.append(time.perf_counter() - began)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tokens = int(batch["attention_mask"].sum())
    return {"variant": variant, "trainable": trainable, "tokens_per_step": tokens,
            "step_s": statistics.median(times), "tokens_per_s": tokens / statistics.median(times),
            "peak_rss_mib": peak / 1024, "peak_above_loaded_mib": (peak - rss_loaded) / 1024,
            "first_loss": first_loss, "last_loss": float(loss)}


def training_step(variant: str, args) -> dict:
    command = [sys.executable, __file__, "--worker", variant, "--steps", str(args.steps), "--batch", str(args.batch),
               "--length", str(args.length)] + (["--quick"] if args.quick else [])
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO.parent)})
    if result.returncode != 0:
        raise RuntimeError(f"worker {variant} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ 3. generation


def generation(quick: bool, num_tokens: int, repeats: int) -> dict:
    from transformers import LlamaForCausalLM, LogitsProcessorList

    from soundlm.modeling.lm_msn import AudioSpanLogitsProcessor, AudioTokenProcessor

    torch.manual_seed(0)
    config = small_config(quick)
    processor = AudioTokenProcessor(_text_tokenizer(config.vocab_size), codebook_size=64 if quick
                                    else PAPER_CODEBOOK)
    model = LlamaForCausalLM(config)
    model.resize_token_embeddings(processor.vocab_size, mean_resizing=False)
    model.eval()
    prompt = torch.tensor([[*range(2, 34), processor.soa_token_id]])
    constraint = AudioSpanLogitsProcessor(processor, min_audio_tokens=num_tokens, max_audio_tokens=num_tokens)

    def run(constrained: bool, use_cache: bool) -> float:
        kwargs = {"logits_processor": LogitsProcessorList([constraint])} if constrained else {}
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            with torch.no_grad():
                out = model.generate(prompt, max_new_tokens=num_tokens, min_new_tokens=num_tokens, do_sample=False,
                                     use_cache=use_cache, pad_token_id=processor.pad_token_id, **kwargs)
            best = min(best, time.perf_counter() - began)
            assert out.shape[1] - prompt.shape[1] == num_tokens
            if constrained:  # every generated token is a code (the span is closed by <eoa> at token num_tokens + 1)
                generated = out[0, prompt.shape[1]:]
                assert bool(((generated >= processor.audio_token_offset)
                             & (generated < processor.audio_token_offset + processor.codebook_size)).all())
        return num_tokens / best

    results = {"constrained_cache": run(True, True), "unconstrained_cache": run(False, True),
               "unconstrained_no_cache": run(False, False)}
    results["constrained_over_unconstrained"] = results["constrained_cache"] / results["unconstrained_cache"]
    results["cache_over_no_cache"] = results["unconstrained_cache"] / results["unconstrained_no_cache"]
    return results


# ------------------------------------------------------------------------------------------- 4. answer ranking


def answer_ranking(quick: bool, num_answers: int, audio_tokens: int, repeats: int) -> dict:
    from transformers import LlamaForCausalLM

    from soundlm.modeling.lm_msn import AudioTokenProcessor, score_answers
    from soundlm.processing.tasks import TaskExample, audio_segment, text_segment

    torch.manual_seed(0)
    config = small_config(quick)
    codebook = 64 if quick else PAPER_CODEBOOK
    processor = AudioTokenProcessor(_text_tokenizer(config.vocab_size), codebook_size=codebook)
    model = LlamaForCausalLM(config)
    model.resize_token_embeddings(processor.vocab_size, mean_resizing=False)
    model.eval()
    generator = torch.Generator().manual_seed(0)
    question = [audio_segment(torch.randint(0, codebook, (audio_tokens,), generator=generator).tolist()),
                text_segment("\nw5 w6 w7 w8 w9")]
    answers = [" ".join(f"w{10 + (7 * i + j) % 900}" for j in range(1 + i % 4)) for i in range(num_answers)]

    def naive() -> torch.Tensor:
        encoded = [processor.encode_example(TaskExample("a", processor.chat_segments(question, [text_segment(a)])))
                   for a in answers]
        scores = []
        for start in range(0, len(encoded), 16):
            batch = processor.pad(encoded[start:start + 16])
            with torch.no_grad():
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            targets = batch["labels"][:, 1:]
            token = logits[:, :-1].log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)
            scores.append((token * (targets != -100)).sum(-1))
        return torch.cat(scores)

    def timed(run) -> tuple[float, torch.Tensor]:
        best, out = float("inf"), None
        for _ in range(repeats):
            began = time.perf_counter()
            out = run()
            best = min(best, time.perf_counter() - began)
        return best, out

    ours_s, ours = timed(lambda: score_answers(model, processor, [question], answers)[0])
    naive_s, reference = timed(naive)
    torch.testing.assert_close(ours, reference, atol=1e-3, rtol=1e-4)  # the same scores, two ways
    return {"answers": num_answers, "audio_tokens": audio_tokens, "ours_s": ours_s, "naive_s": naive_s,
            "speedup": naive_s / ours_s, "max_abs_difference": float((ours - reference).abs().max())}


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}" if denominator > 0 else "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--generate", type=int, default=215)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--answers", type=int, default=102)
    parser.add_argument("--parts", default="parameters,training,generation,ranking",
                        help="comma-separated parts to run (default: all four)")
    parser.add_argument("--worker", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.worker:
        print(json.dumps(training_step_worker(args.worker, args.quick, args.steps, args.batch, args.length)))
        return
    if args.quick:
        args.steps, args.batch, args.length, args.generate, args.repeats, args.answers = 1, 2, 64, 16, 1, 8
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    known = ("parameters", "training", "generation", "ranking")
    if not parts or any(part not in known for part in parts):
        raise SystemExit(f"--parts must name some of {', '.join(known)}, got {args.parts!r}")
    started = time.perf_counter()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    command = "python benchmarks/bench_lm_msn.py" + (" --quick" if args.quick else "") + (
        f" --parts {args.parts}" if len(parts) < len(known) else "")
    lines = [f"LM-MSN audio LLM benchmark ({datetime.date.today()}, {machine}; `{command}`)"]
    results: dict = {"date": str(datetime.date.today()), "machine": machine, "args": vars(args)}
    if "parameters" in parts:
        _log("paper-size trainable parameters (meta device)")
        results["parameters"] = params = paper_trainable_parameters()
        lines += _parameter_table(params)
    if "training" in parts:
        _log("training steps: ours, then naive (a fresh process each)")
        results["training_step"] = steps = {variant: training_step(variant, args) for variant in ("ours", "naive")}
        lines += _training_table(steps, args)
    if "generation" in parts:
        _log("generation")
        results["generation"] = gen = generation(args.quick, args.generate, args.repeats)
        lines += _generation_table(gen, args)
    if "ranking" in parts:
        _log("answer ranking: shared question cache, then full passes")
        results["answer_ranking"] = ranking = answer_ranking(args.quick, args.answers, 16 if args.quick else 216,
                                                             args.repeats)
        lines += ["", f"| ranking {ranking['answers']} answers after {ranking['audio_tokens']} audio tokens, one clip, "
                  "fp32 | s per clip |", "|---|---:|",
                  f"| ours (`score_answers`: the question's cache shared by 64 answers at a time) | "
                  f"{ranking['ours_s']:.2f} |",
                  f"| naive (question + answer run whole, 16 at a time) | {ranking['naive_s']:.2f} |",
                  f"| naive / ours | **{ranking['speedup']:.1f}x** (same scores: max difference "
                  f"{ranking['max_abs_difference']:.1e}) |"]
    lines += ["", f"wall time {time.perf_counter() - started:.0f} s"]
    print("\n".join(lines))
    name = "lm_msn_cpu" + ("_quick" if args.quick else "") + (
        "_" + "_".join(parts) if len(parts) < len(known) else "")  # a partial run keeps the full run's file
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


def _parameter_table(params: dict) -> list[str]:
    return [
        "",
        "| paper configuration (Vicuna-7B shape, LoRA r64 all linear, 8198 new rows in and out) | value |",
        "|---|---:|",
        f"| parameters (base {params['base_parameters'] / 1e9:.3f} B + new rows + LoRA) | "
        f"{params['total_parameters']:,} |",
        f"| LoRA | {params['lora']:,} ({params['lora_percent']:.2f} %) |",
        f"| new rows (input + output) | {params['new_rows']:,} |",
        f"| trainable | {params['trainable']:,} ({params['trainable_percent']:.2f} %) |",
        "| paper | 2-3 % |",
    ]


def _training_table(steps: dict, args) -> list[str]:
    ours, naive = steps["ours"], steps["naive"]
    return [
        "",
        f"| training step, batch {args.batch} x {args.length}, fp32 CPU | ours | naive | ours / naive |",
        "|---|---:|---:|---:|",
        f"| trainable parameters | {ours['trainable']:,} | {naive['trainable']:,} | "
        f"{ours['trainable'] / naive['trainable']:.3f} |",
        f"| tokens/s (median of {args.steps} steps) | {ours['tokens_per_s']:.1f} | {naive['tokens_per_s']:.1f} | "
        f"{ours['tokens_per_s'] / naive['tokens_per_s']:.2f}x |",
        f"| peak memory above the loaded model (MiB) | {ours['peak_above_loaded_mib']:.0f} | "
        f"{naive['peak_above_loaded_mib']:.0f} | "
        f"{_ratio(ours['peak_above_loaded_mib'], naive['peak_above_loaded_mib'])} |",
        f"| peak resident memory (MiB) | {ours['peak_rss_mib']:.0f} | {naive['peak_rss_mib']:.0f} | "
        f"{ours['peak_rss_mib'] / naive['peak_rss_mib']:.2f} |",
    ]


def _generation_table(gen: dict, args) -> list[str]:
    return [
        "",
        f"| generating {args.generate} audio tokens, batch 1, greedy | tokens/s | ratio |",
        "|---|---:|---:|",
        f"| constrained (AudioSpanLogitsProcessor), KV cache | {gen['constrained_cache']:.1f} | "
        f"{gen['constrained_over_unconstrained']:.2f}x of unconstrained |",
        f"| unconstrained, KV cache | {gen['unconstrained_cache']:.1f} | 1.00x |",
        f"| unconstrained, no KV cache | {gen['unconstrained_no_cache']:.1f} | "
        f"cache is {gen['cache_over_no_cache']:.1f}x faster |",
    ]


if __name__ == "__main__":
    main()
