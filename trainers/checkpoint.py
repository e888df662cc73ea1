"""Checkpoints of torch agents: one file of state dicts, written atomically, read without
pickle (``torch.load(weights_only=True)``: tensors, arrays of numbers and plain Python
containers only). A corrupt or foreign file is an error naming it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from trainers.config import ConfigError
from trainers.io import atomic_write_bytes

FORMAT = "shiftrl-checkpoint-v1"


def save(path: Path, learner_state: dict[str, Any], loop_state: dict[str, Any]) -> Path:
    """Writes ``{"format", "learner", "loop"}``; a crash mid-write leaves the old file."""
    import torch

    buf = io.BytesIO()
    torch.save({"format": FORMAT, "learner": learner_state, "loop": loop_state}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(learner state, loop state) from a checkpoint file."""
    import torch

    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:
        raise ConfigError(
            f"checkpoint {path}: unreadable or corrupt ({type(exc).__name__}: {str(exc)[:200]}); "
            "delete it to restart the run from scratch"
        ) from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ConfigError(f"checkpoint {path}: not a ShiftRL checkpoint (expected format {FORMAT!r})")
    return obj["learner"], obj["loop"]
