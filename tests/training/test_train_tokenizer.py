import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from helpers import launch_two_processes, tiny_config_kwargs, write_manifest
from safetensors.torch import load_file

from soundlm.processing.latent_cache import LatentCache
from soundlm.training.train_tokenizer import latest_checkpoint, main, sample_batch, train


def _config(manifest, output_dir, **train_overrides):
    model = tiny_config_kwargs()
    return {
        "data": {"source": str(manifest), "cache_dir": str(output_dir.parent / "cache"), "window_seconds": 0.5},
        "model": model,
        "train": {"output_dir": str(output_dir), "batch_size": 4, "max_steps": 6, "save_every": 3,
                  "log_every": 2, "warmup_steps": 2, **train_overrides},
    }


def test_resume_from_checkpoint_is_bit_exact(tmp_path, real_clips):
    manifest = write_manifest(tmp_path / "data", real_clips)
    straight = train(_config(manifest, tmp_path / "straight"))
    assert (tmp_path / "straight" / "checkpoints" / "step_3").is_dir()
    assert list((tmp_path / "straight" / "logs").rglob("events.out.tfevents.*"))  # TensorBoard

    # an interrupted run: only the step-3 checkpoint survived
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(tmp_path / "straight" / "checkpoints" / "step_3", resumed_dir / "checkpoints" / "step_3")
    resumed = train(_config(manifest, resumed_dir, resume_from_checkpoint="latest"))
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # and training changed the weights at all
    initial = load_file(tmp_path / "straight" / "checkpoints" / "step_3" / "model.safetensors")
    assert not torch.equal(initial["encoder.input_proj.weight"], a["encoder.input_proj.weight"])
    assert json.loads((straight / "preprocessor_config.json").read_text())["sampling_rate"] == 8000


@pytest.mark.reliability(
    "`training/train_tokenizer.py` killed with SIGKILL while accelerate writes a checkpoint",
    "only a hidden `.step_N.partial` folder exists (checkpoints are renamed into place once complete); `latest` "
    "resumes from the previous one and ends with the uninterrupted run's weights, bit for bit",
)
def test_kill_9_in_the_middle_of_a_checkpoint_write_then_resume_gives_the_same_weights(tmp_path, real_clips):
    """SIGKILL while the step-4 checkpoint is being written (accelerate has saved it, the step file is not yet
    there): no `step_4` folder exists, only its hidden partial; `latest` resumes from step 2 and the run ends with
    the uninterrupted run's weights, bit for bit."""
    manifest = write_manifest(tmp_path / "data", real_clips)
    straight = train(_config(manifest, tmp_path / "straight", save_every=2))
    config = _config(manifest, tmp_path / "killed", save_every=2)
    killer = (
        "import json, os, signal, sys\n"
        "import accelerate\n"
        "from soundlm.training.train_tokenizer import train\n"
        "original = accelerate.Accelerator.save_state\n"
        "def save_then_die(self, output_dir=None, **kwargs):\n"
        "    original(self, output_dir, **kwargs)\n"
        "    if 'step_4' in str(output_dir):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "accelerate.Accelerator.save_state = save_then_die\n"
        "train(json.loads(sys.argv[1]))\n"
    )
    # the same thread count as this process: a float sum split over other threads rounds differently
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    result = subprocess.run([sys.executable, "-c", killer, json.dumps(config)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300, env=env)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [".step_4.partial", "step_2"]
    assert latest_checkpoint(tmp_path / "killed") == checkpoints / "step_2"
    assert not (tmp_path / "killed" / "final").exists()
    resumed = train({**config, "train": {**config["train"], "resume_from_checkpoint": "latest"}})
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not (checkpoints / ".step_4.partial").exists()  # the next write of step 4 cleared it


def test_command_line_overrides_reach_the_model(tmp_path, real_clips):
    manifest = write_manifest(tmp_path / "data", real_clips)
    config_file = tmp_path / "c.yaml"
    config_file.write_text(json.dumps(_config(manifest, tmp_path / "run")))  # JSON is YAML
    final = main(["--config", str(config_file), "--train.max_steps=2", "--model.decoder_objective=mse"])
    saved = json.loads((final / "config.json").read_text())
    assert saved["decoder_objective"] == "mse"
    assert json.loads((final / "training_config.json").read_text())["train"]["max_steps"] == 2
    with pytest.raises(ValueError, match="unknown key 'max_stepz'"):
        main(["--config", str(config_file), "--train.max_stepz=2"])


def test_cache_only_encodes_once_and_training_then_reuses_it(tmp_path, real_clips, caplog):
    """`--cache_only` writes the latent cache and trains nothing; two trainings started afterwards (the demo runs
    FM and MSE side by side) encode nothing again."""
    manifest = write_manifest(tmp_path / "data", real_clips)
    config_file = tmp_path / "c.yaml"
    config_file.write_text(json.dumps(_config(manifest, tmp_path / "run")))
    with caplog.at_level("INFO", logger="soundlm.processing.latent_cache"):
        assert main(["--config", str(config_file), "--cache_only"]) == tmp_path / "cache"
        assert not (tmp_path / "run").exists()
        assert f"{len(real_clips)} encoded now, 0 from the cache" in caplog.text
        caplog.clear()
        main(["--config", str(config_file), "--train.max_steps=1", "--model.decoder_objective=mse"])
        assert f"0 encoded now, {len(real_clips)} from the cache" in caplog.text


def test_sample_batch_windows_and_masks_short_clips():
    latents = torch.arange(15, dtype=torch.float32)[:, None].repeat(1, 2)
    cache = LatentCache(latents, torch.tensor([0, 3, 15]), [{}, {}])
    generator = torch.Generator().manual_seed(0)
    batch, mask = sample_batch(cache, [0, 1], 16, 5, generator)
    assert batch.shape == (16, 5, 2) and mask.shape == (16, 5)
    for row, row_mask in zip(batch, mask):
        valid = row[row_mask][:, 0]
        assert len(valid) in (3, 5)
        assert torch.equal(valid, valid[0] + torch.arange(len(valid)))  # a contiguous window of one clip
        if len(valid) == 3:
            assert valid[0] == 0  # the short clip, whole, then padding
    again, _ = sample_batch(cache, [0, 1], 16, 5, torch.Generator().manual_seed(0))
    assert torch.equal(batch, again)


def test_two_process_training_with_accelerate_launch(tmp_path, real_clips):
    """DDP on 2 CPU processes (gloo): the same script, identical codebooks on both processes."""
    from pathlib import Path

    manifest = write_manifest(tmp_path / "data", real_clips)
    config_file = tmp_path / "c.yaml"
    config_file.write_text(json.dumps(_config(manifest, tmp_path / "ddp", max_steps=2, save_every=2)))
    script = Path(__file__).resolve().parents[2] / "training" / "train_tokenizer.py"
    result = launch_two_processes([script, "--config", config_file], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    final = tmp_path / "ddp" / "final" / "model.safetensors"
    state = load_file(final)
    assert state["quantizer.codebook"].shape == (64, 8)
    assert "codebook identical on all 2 processes" in result.stdout
    # the LR schedule advanced once per optimizer step, not once per process per step
    checkpoint = tmp_path / "ddp" / "checkpoints" / "step_2"
    scheduler_state = torch.load(checkpoint / "custom_checkpoint_0.pkl", weights_only=True)
    assert scheduler_state["last_epoch"] == 2
