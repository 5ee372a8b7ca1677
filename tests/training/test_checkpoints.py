"""Checkpoint folders appear only whole (training/common/checkpoints.py)."""

from __future__ import annotations

import logging

import pytest

from soundlm.training.common.checkpoints import (
    COMPLETE_MARKER,
    last_complete_checkpoint,
    partial_path,
    write_json_atomically,
    written_then_renamed,
)
from soundlm.training.common.trainer import resume_checkpoint


@pytest.mark.reliability(
    "a model or checkpoint save that fails half-way (disk full)",
    "nothing appears under the final name; the next save clears the partial folder",
)
def test_a_write_that_fails_half_way_leaves_no_folder_under_the_final_name(tmp_path):
    target = tmp_path / "final"
    with pytest.raises(RuntimeError, match="disk full"):
        with written_then_renamed(target) as folder:
            (folder / "model.safetensors").write_bytes(b"half")
            assert not target.exists()
            raise RuntimeError("disk full")
    assert not target.exists() and partial_path(target).is_dir()
    with written_then_renamed(target) as folder:
        (folder / "config.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]  # the half-written file is gone
    assert not partial_path(target).exists()
    # a second complete write replaces the first whole
    with written_then_renamed(target) as folder:
        (folder / "other.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["other.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
    # a process that does not write renames nothing
    with written_then_renamed(tmp_path / "elsewhere", write=False):
        pass
    assert not (tmp_path / "elsewhere").exists()


def test_latest_skips_checkpoints_without_the_complete_marker(tmp_path, caplog):
    for step, complete in ((2, True), (10, True), (12, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            write_json_atomically(folder / COMPLETE_MARKER, {"global_step": step})
    (tmp_path / "checkpoint-x").mkdir()  # not a checkpoint name
    with caplog.at_level(logging.WARNING):
        assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")  # 10 > 2 numerically
    assert "checkpoint-12" in caplog.text and "interrupted" in caplog.text
    log = logging.getLogger("test")
    assert resume_checkpoint("latest", tmp_path, log) == str(tmp_path / "checkpoint-10")
    assert resume_checkpoint(True, tmp_path, log) == str(tmp_path / "checkpoint-10")
    assert resume_checkpoint(None, tmp_path, log) is None
    assert resume_checkpoint(str(tmp_path / "checkpoint-2"), tmp_path, log) == str(tmp_path / "checkpoint-2")
    with pytest.raises(ValueError, match="checkpoint-12.* is incomplete"):
        resume_checkpoint(str(tmp_path / "checkpoint-12"), tmp_path, log)
    with pytest.raises(ValueError, match="no such folder"):
        resume_checkpoint(str(tmp_path / "checkpoint-99"), tmp_path, log)
    assert last_complete_checkpoint(tmp_path / "missing") is None
