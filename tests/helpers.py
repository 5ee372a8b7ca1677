"""Helpers shared by tests (importable because pyproject puts tests/ on pytest's pythonpath)."""


def tiny_config_kwargs(**overrides):
    """A mel-front-end tokenizer small enough to train in seconds on a CPU (8 kHz, 62.5 frames/s)."""
    kwargs = dict(
        frontend_type="mel",
        frontend_config=dict(sampling_rate=8000, n_fft=256, stft_hop_length=64, frames_per_latent=2, num_mel_bins=16),
        hidden_size=64,
        encoder_layers=2,
        decoder_layers=2,
        head_dim=32,
        intermediate_size=128,
        codebook_size=64,
        codebook_dim=8,
        clip_seconds=1.0,
    )
    kwargs.update(overrides)
    return kwargs


def save_tiny_tokenizer(folder, seed: int = 0):
    """A tiny random MSN tokenizer (`tiny_config_kwargs`) and its feature extractor saved into `folder`; returns the
    model (eval mode)."""
    import torch

    from soundlm import MSNFeatureExtractor, MSNTokenizerConfig, MSNTokenizerModel

    torch.manual_seed(seed)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs())).eval()
    model.save_pretrained(folder)
    MSNFeatureExtractor.from_tokenizer_config(model.config).save_pretrained(folder)
    return model


def write_manifest(folder, clips, rate=8000, bad_files=()):
    """Write ``clips`` (n, samples) as WAVs plus a manifest.csv (split: last clip is test); returns its path.

    ``bad_files`` are (name, bytes) written as-is and listed too, to exercise the skip path.
    """
    import csv

    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, clip in enumerate(clips):
        name = f"clip{index}.wav"
        sf.write(folder / name, clip, rate, subtype="FLOAT")
        split = "test" if index == len(clips) - 1 else "train"
        rows.append({"path": name, "split": split, "category": "speech" if index % 2 else "noise", "label": "x"})
    for name, payload in bad_files:
        (folder / name).write_bytes(payload)
        rows.append({"path": name, "split": "train", "category": "speech", "label": "bad"})
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def _write_once(path, audio, rate):
    # Existing files are left alone: libsndfile stamps float WAVs with the time of writing (PEAK chunk), so a
    # rewrite a second later has other bytes and, rightly, another content key.
    import soundfile as sf

    if not path.exists():
        sf.write(path, audio, rate, subtype="FLOAT")


def pretokenize_corpus(folder, real_clips, extra=(), rate=8000):
    """The 4 real 1-s clips, a 2.5-s clip made of them (3 windows of 1 s), and ``extra`` (name, audio) pairs,
    listed with captions in ``folder/m.csv``; returns its path."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    lines = ["path,caption"]
    for index, clip in enumerate(real_clips):
        _write_once(folder / f"c{index}.wav", clip, rate)
        lines.append(f"c{index}.wav,clip {index}")
    _write_once(folder / "long.wav", np.concatenate([real_clips[0], real_clips[1], real_clips[2][:4000]]), rate)
    lines.append("long.wav,long")
    for name, audio in extra:
        _write_once(folder / name, audio, rate)
        lines.append(f"{name},extra")
    (folder / "m.csv").write_text("\n".join(lines) + "\n")
    return folder / "m.csv"


TINY_TEXT = [
    "a dog barks loudly in the yard",
    "rain falls on a tin roof",
    "the genre of this music is jazz",
    "an audience applauding after a speech",
    "describe the sound you hear",
    "a bird calling in the forest at dawn",
    "generate the sound of a train",
]


def tiny_text_tokenizer(with_bos: bool = False):
    """A byte-level BPE tokenizer (300 tokens, eos `</s>`) trained here in milliseconds: a stand-in for a causal
    LM's tokenizer with no download. `with_bos=True` makes it prepend `<s>` as Llama's does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(TINY_TEXT, trainer)
    if with_bos:
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>")


def tiny_llama_config(vocab_size: int = 300, tie_word_embeddings: bool = True, **overrides):
    """A 2-layer Llama (hidden 32) for the LM-MSN tests."""
    from transformers import LlamaConfig

    kwargs = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  tie_word_embeddings=tie_word_embeddings, bos_token_id=0, eos_token_id=1)
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def save_tiny_audio_llm(folder, codebook_size: int = 16):
    """A tiny base Llama saved to `folder/base` and an untrained LM-MSN adapter with its processor saved to
    `folder/adapter`; returns `(adapter_dir, base_dir, processor)`."""
    from transformers import LlamaForCausalLM

    from soundlm.modeling.lm_msn import AudioTokenProcessor, LMMSNConfig, prepare_audio_llm

    processor = AudioTokenProcessor(tiny_text_tokenizer(), codebook_size=codebook_size)
    base = LlamaForCausalLM(tiny_llama_config())
    base.save_pretrained(folder / "base")
    model = prepare_audio_llm(base, processor, LMMSNConfig(lora_rank=4, lora_alpha=8))
    model.save_pretrained(folder / "adapter", save_embedding_layers=False)
    processor.save_pretrained(folder / "adapter")
    return folder / "adapter", folder / "base", processor


def save_tiny_merged_audio_llm(folder, codebook_size: int = 64):
    """`save_tiny_audio_llm` into `folder` with seed 0, then merged into `folder/merged`; returns
    `(adapter_dir, merged_dir, base_dir)`."""
    import torch

    from soundlm.modeling.lm_msn import merge_audio_llm

    torch.manual_seed(0)
    adapter, base, _ = save_tiny_audio_llm(folder, codebook_size=codebook_size)
    return adapter, merge_audio_llm(adapter, folder / "merged", base_model=base), base


def load_script(path, name: str):
    """Import a script (a benchmark) as module `name`; the caller removes it from `sys.modules` when done."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_docstring_examples(obj, name: str | None = None) -> tuple[int, int]:
    """Run the doctest examples in `obj`'s docstrings (whitespace-normalised); returns `(docstrings with examples,
    failed examples)`."""
    import doctest

    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in doctest.DocTestFinder().find(obj, name) if t.examples]
    for test in tests:
        runner.run(test)
    return len(tests), runner.summarize(verbose=False).failed


# ---------------------------------------------------------------------------------------------------- tiny MINT
TINY_BERT_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "dog", "barks", "rain", "falls", "on", "the",
                   "roof", "what", "is", "this", "sound", "describe", "audio", "of", "bird", "sings", "loud", "in",
                   "yard", "?", "generate", "caption", ":"]
TINY_MINT_QUERIES = 4


def tiny_bert_tokenizer():
    """A BERT WordPiece tokenizer over `TINY_BERT_WORDS`, made offline."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab={word: index for index, word in enumerate(TINY_BERT_WORDS)})


def tiny_mint_stage2_processor(max_text_length: int = 16, **kwargs):
    from soundlm.modeling.mint import MintProcessor
    from soundlm.processing.feature_extraction_yamnet import YamnetFeatureExtractor

    return MintProcessor(YamnetFeatureExtractor(), tiny_bert_tokenizer(), tiny_text_tokenizer(),
                         max_text_length=max_text_length, **kwargs)


def tiny_mint_stage1_processor(max_text_length: int = 8):
    from soundlm.modeling.mint import MintProcessor
    from soundlm.processing.feature_extraction_yamnet import YamnetFeatureExtractor

    tokenizer = tiny_bert_tokenizer()
    return MintProcessor(YamnetFeatureExtractor(), tokenizer, tokenizer, max_text_length=max_text_length)


def tiny_mint_clips():
    """1 s and 2.5 s of noise at 16 kHz: 2 and 5 YAMNet patches (one up to 0.975 s, one more per started 0.48 s)."""
    import numpy as np

    rng = np.random.default_rng(0)
    return [0.1 * rng.standard_normal(16000).astype(np.float32), 0.1 * rng.standard_normal(40000).astype(np.float32)]


def tiny_mint_config(processor, with_llm: bool):
    """Tiny YAMNet, a Q-Former whose vocabulary is the BERT tokenizer's ([DEC] included), and (stage 2) a Llama
    whose vocabulary is the LLM tokenizer's."""
    from soundlm.modeling.mint import MintConfig

    qformer = dict(vocab_size=len(processor.qformer_tokenizer), hidden_size=32, num_hidden_layers=2,
                   num_attention_heads=4, intermediate_size=64, bos_token_id=processor.dec_token_id,
                   encoder_hidden_size=16)
    text_config = tiny_llama_config(vocab_size=len(processor.tokenizer)) if with_llm else None
    return MintConfig(audio_config={"model_type": "yamnet", "layer_channels": [8, 16], "layer_strides": [2, 2]},
                      qformer_config=qformer, text_config=text_config, num_query_tokens=TINY_MINT_QUERIES,
                      embed_dim=16, max_text_length=processor.max_text_length)


def save_tiny_mint(folder, stage: int):
    """A tiny random MINT model with seed 0 (stage 1: `MintForPreTraining`, stage 2: `MintForConditionalGeneration`)
    and its processor saved into `folder`; returns `folder`."""
    import torch

    from soundlm.modeling.mint import MintForConditionalGeneration, MintForPreTraining

    processor = tiny_mint_stage1_processor() if stage == 1 else tiny_mint_stage2_processor()
    model_class = MintForPreTraining if stage == 1 else MintForConditionalGeneration
    torch.manual_seed(0)
    model_class(tiny_mint_config(processor, with_llm=stage == 2)).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def launch_two_processes(script_and_args, cwd, timeout: float = 300, env=None):
    """Run ``accelerate launch`` with 2 CPU processes (DDP over gloo) and return the CompletedProcess.

    ``--multi_gpu`` with ``ACCELERATE_USE_CPU=1`` starts torchrun workers on the CPU (accelerate's ``--cpu`` alone
    starts one process without mpirun). Gloo is pinned to the loopback interface (``GLOO_SOCKET_IFNAME=lo``,
    ``--main_process_ip 127.0.0.1``) so that the rendezvous does not depend on what the machine's hostname resolves
    to. On a timeout every process of the launch (workers included) gets SIGABRT
    (``PYTHONFAULTHANDLER=1`` makes each print its Python stacks), then SIGKILL if still alive, and the test fails
    with those stacks instead of a bare TimeoutExpired; no worker is left running into the next test.
    """
    import contextlib
    import os
    import signal
    import socket
    import subprocess
    import sys

    import psutil
    import pytest

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_ip", "127.0.0.1", "--main_process_port", str(port), *map(str, script_and_args)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1", "GLOO_SOCKET_IFNAME": "lo",
                   "PYTHONFAULTHANDLER": "1", **(env or {})}
    process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # torchrun starts its workers in sessions of their own: signal the whole tree, not a process group
        tree = [process, *psutil.Process(process.pid).children(recursive=True)]
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                member.send_signal(signal.SIGABRT)
        _, alive = psutil.wait_procs([psutil.Process(p.pid) for p in tree if psutil.pid_exists(p.pid)], timeout=20)
        for member in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"2-process launch hung past {timeout} s; stacks:\n{stderr[-8000:]}\nstdout:\n{stdout[-2000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
