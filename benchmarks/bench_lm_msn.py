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

The small config is SmolLM2-135M's architecture (30 layers, hidden 576, vocabulary 49152) with random weights
and the paper's 8196-code audio vocabulary (57350 tokens in all), so the vocabulary-sized costs are realistic.

    python benchmarks/bench_lm_msn.py [--steps 4] [--out benchmarks/results/lm_msn_cpu.json] > lm_msn_cpu.md
    python benchmarks/bench_lm_msn.py --quick   # a tiny config, < 1 min smoke test
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
    parser.add_argument("--worker", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.worker:
        print(json.dumps(training_step_worker(args.worker, args.quick, args.steps, args.batch, args.length)))
        return
    if args.quick:
        args.steps, args.batch, args.length, args.generate, args.repeats = 1, 2, 64, 16, 1
    started = time.perf_counter()
    _log("1/3 paper-size trainable parameters (meta device)")
    params = paper_trainable_parameters()
    _log("2/3 training steps: ours, then naive (a fresh process each)")
    steps = {variant: training_step(variant, args) for variant in ("ours", "naive")}
    _log("3/3 generation")
    gen = generation(args.quick, args.generate, args.repeats)
    ours, naive = steps["ours"], steps["naive"]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    lines = [
        f"LM-MSN audio LLM benchmark ({datetime.date.today()}, {machine}; "
        f"`python benchmarks/bench_lm_msn.py{' --quick' if args.quick else ''}`)",
        "",
        "| paper configuration (Vicuna-7B shape, LoRA r64 all linear, 8198 new rows in and out) | value |",
        "|---|---:|",
        f"| parameters (base {params['base_parameters'] / 1e9:.3f} B + new rows + LoRA) | "
        f"{params['total_parameters']:,} |",
        f"| LoRA | {params['lora']:,} ({params['lora_percent']:.2f} %) |",
        f"| new rows (input + output) | {params['new_rows']:,} |",
        f"| trainable | {params['trainable']:,} ({params['trainable_percent']:.2f} %) |",
        "| paper | 2-3 % |",
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
        "",
        f"| generating {args.generate} audio tokens, batch 1, greedy | tokens/s | ratio |",
        "|---|---:|---:|",
        f"| constrained (AudioSpanLogitsProcessor), KV cache | {gen['constrained_cache']:.1f} | "
        f"{gen['constrained_over_unconstrained']:.2f}x of unconstrained |",
        f"| unconstrained, KV cache | {gen['unconstrained_cache']:.1f} | 1.00x |",
        f"| unconstrained, no KV cache | {gen['unconstrained_no_cache']:.1f} | "
        f"cache is {gen['cache_over_no_cache']:.1f}x faster |",
        "",
        f"wall time {time.perf_counter() - started:.0f} s",
    ]
    print("\n".join(lines))
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / (
        "lm_msn_cpu_quick.json" if args.quick else "lm_msn_cpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": str(datetime.date.today()), "machine": machine, "args": vars(args),
                               "parameters": params, "training_step": steps, "generation": gen}, indent=2) + "\n")


if __name__ == "__main__":
    main()
