"""Checkpoints that never look complete unless they are: written aside, then renamed (or marked) at the end.

A process killed half-way through a save (kill -9, a lost node, a full disk) must not leave a folder that
`resume_from_checkpoint latest` or a user takes for a finished checkpoint or a finished model:

- folders this package writes itself (the tokenizer's accelerate checkpoints, every script's `final` model) are
  written under a hidden sibling name and renamed into place in one `os.replace` once complete;
- the Trainer writes its `checkpoint-N` folders itself, so `CompleteCheckpointMarker` adds `checkpoint_complete.json`
  after the Trainer's own save has returned, and `last_complete_checkpoint` ignores folders without it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "checkpoint_complete.json"
_TRAINER_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def partial_path(path: str | Path) -> Path:
    """The hidden sibling a folder is written under before its rename: `<parent>/.<name>.partial`."""
    path = Path(path)
    return path.parent / f".{path.name}.partial"


@contextmanager
def written_then_renamed(path: str | Path, write: bool = True) -> Iterator[Path]:
    """Yield the folder to write into; once the block returns, it replaces `path` in one rename.

    A block that raises (or a process that dies) leaves only the hidden `.partial` folder, which the next write
    removes. ``write=False`` (a process that does not write, under DDP) yields `path`'s partial twin and renames
    nothing.
    """
    path, partial = Path(path), partial_path(path)
    if write:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    yield partial
    if not write:
        return
    if path.exists():
        # the old folder goes aside first: the new one appears under `path` in one rename, and only ever whole
        previous = path.parent / f".{path.name}.previous"
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(path, previous)
        os.replace(partial, path)
        shutil.rmtree(previous, ignore_errors=True)
    else:
        os.replace(partial, path)


def write_json_atomically(path: str | Path, value: object) -> None:
    """`path` holds either its old content or all of `value` as JSON, never a part."""
    path = Path(path)
    temporary = path.parent / f".{path.name}.tmp"
    temporary.write_text(json.dumps(value, indent=2))
    os.replace(temporary, path)


class CompleteCheckpointMarker(TrainerCallback):
    """Marks each Trainer checkpoint complete once the Trainer has written all of it (`on_save` runs after)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                write_json_atomically(folder / COMPLETE_MARKER, {"global_step": state.global_step})
        return control


class MarksCompleteCheckpoints:
    """`Trainer` mixin that installs `CompleteCheckpointMarker` ahead of the caller's callbacks (a callback that
    stops the process in its own `on_save` then finds the checkpoint already marked)."""

    def __init__(self, *args, **kwargs):
        kwargs["callbacks"] = [CompleteCheckpointMarker(), *(kwargs.get("callbacks") or [])]
        super().__init__(*args, **kwargs)


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest `checkpoint-N` folder under `output_dir` that carries the complete marker (None if none);
    newer folders without it (a save that was interrupted) are named in the log and skipped."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = sorted(
        ((int(match.group(1)), entry) for entry in output_dir.iterdir()
         if entry.is_dir() and (match := _TRAINER_CHECKPOINT.match(entry.name))),
        reverse=True,
    )
    for _, folder in found:
        if (folder / COMPLETE_MARKER).exists():
            return str(folder)
        logger.warning("skipping %s: its write was interrupted (no %s)", folder, COMPLETE_MARKER)
    return None


def check_complete_checkpoint(path: str | Path) -> str:
    """A checkpoint path given by hand, refused when its write never finished."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"train.resume_from_checkpoint={str(path)!r}: no such folder")
    if not (path / COMPLETE_MARKER).exists():
        raise ValueError(
            f"train.resume_from_checkpoint={str(path)!r} is incomplete: it has no {COMPLETE_MARKER}, so its write "
            "was interrupted; resume from an earlier checkpoint or from 'latest'"
        )
    return str(path)
