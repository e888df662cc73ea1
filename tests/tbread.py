"""Reads TensorBoard event files back (tests check the documented tags of each agent)."""

from __future__ import annotations

from pathlib import Path


def tb_tags(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in a run's event files, with (step, value) pairs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for f in sorted((run_dir / "tb").rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(f))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


def tb_texts(run_dir: Path) -> list[str]:
    """Text tags (the resolved config) in a run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = []
    for f in sorted((run_dir / "tb").rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(f), size_guidance={"tensors": 0})
        acc.Reload()
        tags += acc.Tags()["tensors"]
    return tags
