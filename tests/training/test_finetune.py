"""training/finetune.py on a tiny Llama: both stages, exact resume, the 2-process (gloo) path, config errors."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch
from helpers import launch_two_processes, tiny_config_kwargs, tiny_llama_config, tiny_text_tokenizer
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from soundlm.processing.task_datasets import lm_msn_task_dataset
from soundlm.training import finetune
from soundlm.training.common.checkpoints import COMPLETE_MARKER
from soundlm.training.common.trainer import resume_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "training" / "finetune.py"
CAPTIONS = ["rain on a tin roof", "a dog barks", "the genre of this music is jazz", "an audience applauding",
            "a bird calling", "a train passing"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny base LLM folder, a sound-tokenizer config (16 codes) and the two LM-MSN task sets."""
    from soundlm import MSNTokenizerConfig

    root = tmp_path_factory.mktemp("finetune")
    torch.manual_seed(0)
    LlamaForCausalLM(tiny_llama_config()).save_pretrained(root / "base")
    tiny_text_tokenizer().save_pretrained(root / "base")
    MSNTokenizerConfig(**tiny_config_kwargs(codebook_size=16)).save_pretrained(root / "sound")
    rows = datasets.Dataset.from_dict({
        "key": [f"k{i}" for i in range(len(CAPTIONS))],
        "source_id": [f"s{i}" for i in range(len(CAPTIONS))],
        "codes": [[(3 * i + j) % 16 for j in range(5 + i)] for i in range(len(CAPTIONS))],
        "caption": CAPTIONS,
        "label": ["rain", "dog", "jazz", "applause", "bird", "train"],
        "split": ["train"] * (len(CAPTIONS) - 1) + ["test"],
    })
    lm_msn_task_dataset(rows, stage=1).save_to_disk(str(root / "stage1"))
    lm_msn_task_dataset(rows, stage=2).save_to_disk(str(root / "stage2"))
    return root


def config_file(workspace: Path, out: Path, **train) -> Path:
    config = {
        "data": {"pretrain": str(workspace / "stage1"), "instruct": str(workspace / "stage2"), "max_length": 320},
        "model": {"base_model": str(workspace / "base"), "sound_tokenizer": str(workspace / "sound"),
                  "lora_rank": 4, "lora_alpha": 8, "loss_chunk_size": 16},
        "train": {"output_dir": str(out), "batch_size": 2, "max_steps": 4, "warmup_steps": 1, "save_every": 2,
                  "log_every": 1, "lr": 1e-2, **train},
    }
    path = out.parent / f"{out.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


def adapter_state(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "adapter_model.safetensors")


def test_pretrain_then_instruct(workspace, tmp_path):
    from soundlm.modeling.lm_msn import AudioTokenProcessor, LMMSNConfig, load_audio_llm

    path = config_file(workspace, tmp_path / "run")
    stage1 = finetune.main(["--config", str(path), "--stage", "pretrain"])
    assert {"adapter_model.safetensors", "adapter_config.json", "config.json", "processor_config.json",
            "tokenizer.json"} <= {p.name for p in stage1.iterdir()}
    recipe = LMMSNConfig.from_pretrained(stage1)
    assert (recipe.codebook_size, recipe.lora_rank, recipe.audio_loss_weight) == (16, 4, 10.0)
    state = adapter_state(stage1)
    assert any("trainable_tokens_delta" in name for name in state) and any("lora_A" in name for name in state)
    # TensorBoard events with the loss parts
    events = list((tmp_path / "run" / "pretrain").rglob("events.out.tfevents*"))
    assert events
    stage2 = finetune.main(["--config", str(path), "--stage", "instruct"])
    first, second = adapter_state(stage1), adapter_state(stage2)
    assert first.keys() == second.keys()
    assert any(not torch.equal(first[k], second[k]) for k in first)  # stage 2 trained on from stage 1
    model, processor = load_audio_llm(stage2)
    assert isinstance(processor, AudioTokenProcessor) and processor.codebook_size == 16
    trainer_state = json.loads((tmp_path / "run" / "instruct" / "checkpoint-4" / "trainer_state.json").read_text())
    logged = [entry for entry in trainer_state["log_history"] if "loss" in entry]
    assert logged and {"text_loss", "z_loss"} <= set(logged[0])  # audio_loss: only when the batch had audio targets
    assert any("audio_loss" in entry for entry in logged)


def test_held_out_rows_are_left_out(workspace):
    from soundlm.modeling.lm_msn import AudioTokenProcessor

    processor = AudioTokenProcessor(tiny_text_tokenizer(), codebook_size=16)
    encoded = finetune.encode_dataset(str(workspace / "stage1"), processor, dict(finetune.DEFAULTS["data"]))
    assert len(encoded) == len(CAPTIONS) - 1
    cut = finetune.encode_dataset(str(workspace / "stage1"), processor,
                                  {**finetune.DEFAULTS["data"], "max_length": 6})
    assert max(cut["length"]) == 6 and len(cut) == len(encoded)  # stage 1: every token is a target
    with pytest.raises(ValueError, match="no example .* keeps a target token"):  # stage 2: cut inside the prompt
        finetune.encode_dataset(str(workspace / "stage2"), processor, {**finetune.DEFAULTS["data"], "max_length": 6})


@pytest.fixture
def one_thread():
    """The killed run is a one-thread subprocess; the uninterrupted and the resumed runs in this process must use
    one thread too: on some CPUs (measured on an AMD EPYC, not on the Intel machine) the float sums of a step
    depend on the thread count, and "bit for bit" is only defined between runs with the same one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.reliability(
    "`training/finetune.py` killed with SIGKILL right after its step-2 checkpoint",
    "`--train.resume_from_checkpoint latest` ends with the uninterrupted run's adapter, bit for bit (CPU, seed "
    "fixed)",
)
@pytest.mark.usefixtures("one_thread")
def test_kill_9_after_a_checkpoint_then_resume_gives_the_same_weights(workspace, tmp_path):
    """The process is killed with SIGKILL right after writing the step-2 checkpoint; resuming from it gives the
    adapter of the uninterrupted 4-step run, bit for bit."""
    straight = finetune.main(["--config", str(config_file(workspace, tmp_path / "a")), "--stage", "pretrain"])
    path = config_file(workspace, tmp_path / "b")
    killer = (
        "import os, signal, sys\n"
        "from transformers import TrainerCallback\n"
        "from soundlm.training import finetune\n"
        "class Kill(TrainerCallback):\n"
        "    def on_save(self, args, state, control, **kwargs):\n"
        "        if state.global_step == 2:\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        f"finetune.main(['--config', {str(path)!r}, '--stage', 'pretrain'], callbacks=[Kill()])\n"
    )
    _run_until_killed(killer, tmp_path)
    assert (tmp_path / "b" / "pretrain" / "checkpoint-2" / COMPLETE_MARKER).is_file()
    assert not (tmp_path / "b" / "pretrain" / "final").exists()
    assert resume_checkpoint("latest", tmp_path / "b" / "pretrain", logging.getLogger()).endswith("checkpoint-2")
    _assert_resumed_equals(straight, path)


def _run_until_killed(script: str, cwd) -> None:
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd,
                            timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == -9, result.stderr[-2000:]


def _assert_resumed_equals(straight, config_path) -> None:
    """Resume the killed run from `latest`: its adapter equals the uninterrupted run's, bit for bit."""
    resumed = finetune.main(["--config", str(config_path), "--stage", "pretrain", "--train.resume_from_checkpoint",
                             "latest"])
    ours, theirs = adapter_state(straight), adapter_state(resumed)
    for name in ours:
        torch.testing.assert_close(theirs[name], ours[name], rtol=0, atol=0, msg=name)


@pytest.mark.reliability(
    "`finetune.py` killed with SIGKILL half-way through writing a checkpoint (weights and optimiser written, the "
    "rest not)",
    "the folder has no `checkpoint_complete.json`: `latest` skips it for the one before, a path to it is refused;"
    " same adapter bit for bit after resuming; no `final` folder until one is whole",
)
@pytest.mark.usefixtures("one_thread")
def test_kill_9_in_the_middle_of_a_checkpoint_write_never_leaves_a_checkpoint_that_looks_complete(workspace,
                                                                                                  tmp_path):
    """SIGKILL after the Trainer wrote the step-4 checkpoint's weights and optimiser but before the rest: that folder
    has no complete marker, `latest` skips it for step 2 (and a path to it is refused), and the resumed run still
    ends with the uninterrupted run's adapter, bit for bit; no `final` folder appears until one is whole."""
    straight = finetune.main(["--config", str(config_file(workspace, tmp_path / "a")), "--stage", "pretrain"])
    path = config_file(workspace, tmp_path / "b")
    killer = (
        "import os, signal\n"
        "from transformers import Trainer\n"
        "from soundlm.training import finetune\n"
        "original = Trainer._save_optimizer_and_scheduler\n"
        "def save_then_die(self, output_dir):\n"
        "    original(self, output_dir)\n"
        "    if self.state.global_step == 4:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "Trainer._save_optimizer_and_scheduler = save_then_die\n"
        f"finetune.main(['--config', {str(path)!r}, '--stage', 'pretrain'])\n"
    )
    _run_until_killed(killer, tmp_path)
    run = tmp_path / "b" / "pretrain"
    assert (run / "checkpoint-4" / "optimizer.pt").is_file() and not (run / "checkpoint-4" / COMPLETE_MARKER).exists()
    assert not (run / "final").exists()
    with pytest.raises(ValueError, match="checkpoint-4.* is incomplete"):
        resume_checkpoint(str(run / "checkpoint-4"), run, logging.getLogger())
    assert resume_checkpoint("latest", run, logging.getLogger()).endswith("checkpoint-2")
    _assert_resumed_equals(straight, path)


@pytest.mark.reliability(
    "LM-MSN training in bf16 autocast on CPU (with accumulation and activation checkpointing)",
    "finite losses; the adapter trains",
)
def test_accumulation_checkpointing_and_bf16_autocast(workspace, tmp_path):
    """Gradient accumulation, activation checkpointing and bf16 autocast (the CPU has it) run and train."""
    path = config_file(workspace, tmp_path / "g", max_steps=2, save_every=2, gradient_accumulation_steps=2,
                       gradient_checkpointing=True, bf16=True)
    final = finetune.main(["--config", str(path), "--stage", "pretrain"])
    state = json.loads((tmp_path / "g" / "pretrain" / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    logged = [entry for entry in state["log_history"] if "loss" in entry]
    assert logged and all(math.isfinite(entry["loss"]) for entry in logged)
    assert any("lora_B" in name and state_tensor.abs().sum() > 0 for name, state_tensor in adapter_state(final).items())


def test_per_stage_sections_lie_over_the_shared_ones():
    config = {"train": {"max_steps": 25, "lr": 5e-4},
              "stages": {"pretrain": {"train": {"max_steps": 10}}, "instruct": {"model": {"audio_loss_weight": 1.0}}}}
    pretrain, instruct = finetune.merged_config(config, "pretrain"), finetune.merged_config(config, "instruct")
    assert (pretrain["train"]["max_steps"], pretrain["train"]["lr"], pretrain["model"]["audio_loss_weight"]) == \
        (10, 5e-4, 10.0)
    assert (instruct["train"]["max_steps"], instruct["model"]["audio_loss_weight"]) == (25, 1.0)
    with pytest.raises(ValueError, match="unknown key"):
        finetune.merged_config({"stages": {"pretrain": {"train": {"steps": 3}}}}, "pretrain")
    with pytest.raises(ValueError, match="stage names"):
        finetune.merged_config({"stages": {"stage1": {}}}, "pretrain")


def test_codebook_row_init_reads_the_sound_tokenizers_code_vectors(workspace, tmp_path):
    """`model.new_row_init: codebook` builds the code rows from the tokenizer's codebook: two codes with the same
    code vector get the same row, and a tokenizer saved without weights (a bare config) is not enough."""
    from soundlm import MSNTokenizerConfig, MSNTokenizerModel

    torch.manual_seed(0)
    sound = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(codebook_size=16)))
    sound.quantizer.codebook[5] = sound.quantizer.codebook[4]
    sound.save_pretrained(tmp_path / "sound")
    path = config_file(workspace, tmp_path / "cb")
    overrides = [f"--model.sound_tokenizer={tmp_path / 'sound'}", "--model.new_row_init=codebook"]
    config = finetune.apply_overrides(finetune.merged_config(json.loads(path.read_text()), "pretrain"), overrides)
    model, processor, recipe = finetune.build_model("pretrain", config)
    assert recipe.new_row_init == "codebook"
    rows = model.get_base_model().get_input_embeddings().weight[processor.codes_to_ids([4, 5, 6])]
    assert torch.equal(rows[0], rows[1]) and not torch.equal(rows[0], rows[2])
    bare = finetune.apply_overrides(config, ["--model.sound_tokenizer=" + str(workspace / "sound")])
    with pytest.raises(OSError):
        finetune.build_model("pretrain", bare)


def test_config_errors(workspace, tmp_path):
    with pytest.raises(ValueError, match="unknown key"):
        finetune.merged_config({"train": {"learning_rate": 1.0}})
    path = config_file(workspace, tmp_path / "c")
    with pytest.raises(ValueError, match="holds no adapter"):
        finetune.main(["--config", str(path), "--stage", "instruct"])
    with pytest.raises(ValueError, match="does not exist"):
        finetune.main(["--config", str(path), "--stage", "pretrain", "--data.pretrain", str(tmp_path / "none")])


def test_two_process_training_with_accelerate_launch(workspace, tmp_path):
    """DDP on 2 CPU processes (gloo) through `accelerate launch`: the same script, one saved adapter."""
    path = config_file(workspace, tmp_path / "ddp", max_steps=2, save_every=2)
    result = launch_two_processes([SCRIPT, "--config", path, "--stage", "pretrain"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "ddp" / "pretrain" / "final" / "adapter_model.safetensors").is_file()
    state = json.loads((tmp_path / "ddp" / "pretrain" / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert "world_size: 2" in result.stdout + result.stderr or state["train_batch_size"] == 2


@pytest.mark.parametrize("name, kind", [("accelerate_ddp.yaml", "MULTI_GPU"), ("accelerate_fsdp.yaml", "FSDP")])
def test_shipped_accelerate_configs_parse(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(SCRIPT.parent / "configs" / name))
    assert config.distributed_type.name == kind and config.mixed_precision == "bf16"
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"


@pytest.mark.parametrize("bits", [4, 8])
def test_quantised_base_through_bitsandbytes(workspace, tmp_path, bits):
    """`model.load_in_bits: 4|8` (QLoRA-style: a frozen bitsandbytes base, LoRA and the new rows in full precision)
    trains, and the adapter loads back onto the unquantised base. bitsandbytes >= 0.49 runs on the CPU; it is the
    optional `quant` extra (pyproject.toml says why the set-up scripts leave it out)."""
    pytest.importorskip("bitsandbytes", reason='bitsandbytes is not installed (pip install -e ".[quant]")')
    import bitsandbytes as bnb

    path = config_file(workspace, tmp_path / f"q{bits}", max_steps=2, save_every=2)
    config = finetune.apply_overrides(finetune.merged_config(json.loads(path.read_text()), "pretrain"),
                                      [f"--model.load_in_bits={bits}"])
    model, _, _ = finetune.build_model("pretrain", config)
    layer = {4: bnb.nn.Linear4bit, 8: bnb.nn.Linear8bitLt}[bits]
    assert any(isinstance(module, layer) for module in model.modules())
    final = finetune.main(["--config", str(path), "--stage", "pretrain", f"--model.load_in_bits={bits}"])
    state = json.loads((tmp_path / f"q{bits}" / "pretrain" / "checkpoint-2" / "trainer_state.json").read_text())
    logged = [entry for entry in state["log_history"] if "loss" in entry]
    assert logged and all(math.isfinite(entry["loss"]) for entry in logged)
    assert any("lora_B" in name and tensor.abs().sum() > 0 for name, tensor in adapter_state(final).items())
    from soundlm.modeling.lm_msn import load_audio_llm

    loaded, processor = load_audio_llm(final)
    ids = torch.tensor([processor.codes_to_ids([1, 2, 3])])
    assert torch.isfinite(loaded(input_ids=ids).logits).all()
