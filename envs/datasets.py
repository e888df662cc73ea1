"""The suite's offline dataset format (used by R2PVI now and by PRDC for continuous control).

A dataset is a directory::

    <dir>/episodes.npz    flat arrays, Minari-style: each episode stores T + 1 observations
                          and T actions / rewards / terminations / truncations
    <dir>/metadata.json   format version, env id and kwargs, shift, behaviour policy, seed,
                          counts, spaces, and the sha256 of episodes.npz

It is written atomically (a temporary sibling directory renamed into place), read with
``allow_pickle=False``, and validated on load: a missing file, a truncated or modified
array file, or inconsistent shapes raise :class:`DatasetError` naming the file and what was
expected. Nothing here downloads anything: datasets are generated locally
(``shiftrl collect``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.episodes import Episodes

FORMAT = "shiftrl-episodes"
VERSION = 1
ARRAYS = ("observations", "actions", "rewards", "terminations", "truncations", "episode_lengths")


class DatasetError(ValueError):
    """A dataset that is missing, truncated, modified or inconsistent."""


@dataclass
class Dataset:
    """Episodes plus where they came from."""

    episodes: Episodes
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_episodes(self) -> int:
        return self.episodes.n

    @property
    def n_steps(self) -> int:
        return int(self.episodes.lengths.sum())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _flatten(ep: Episodes) -> dict[str, np.ndarray]:
    obs, act, rew, term, trunc = [], [], [], [], []
    for i, L in enumerate(ep.lengths):
        obs.append(ep.observations[i, : L + 1])
        act.append(ep.actions[i, :L])
        rew.append(ep.rewards[i, :L])
        term.append(ep.terminations[i, :L])
        trunc.append(ep.truncations[i, :L])
    return {
        "observations": np.concatenate(obs),
        "actions": np.concatenate(act),
        "rewards": np.concatenate(rew).astype(np.float64),
        "terminations": np.concatenate(term).astype(bool),
        "truncations": np.concatenate(trunc).astype(bool),
        "episode_lengths": ep.lengths.astype(np.int64),
    }


def save(dataset: Dataset, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Writes ``dataset`` to the directory ``path`` atomically and returns the path."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise DatasetError(f"dataset directory {path} already exists (pass overwrite=True / --overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        arrays = _flatten(dataset.episodes)
        npz = tmp / "episodes.npz"
        with open(npz, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        meta = {
            **dataset.metadata,
            "format": FORMAT,
            "version": VERSION,
            "n_episodes": dataset.n_episodes,
            "n_steps": dataset.n_steps,
            "observation_shape": list(arrays["observations"].shape[1:]),
            "observation_dtype": str(arrays["observations"].dtype),
            "action_shape": list(arrays["actions"].shape[1:]),
            "action_dtype": str(arrays["actions"].dtype),
            "sha256": {"episodes.npz": _sha256(npz)},
        }
        with open(tmp / "metadata.json", "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load(path: str | os.PathLike) -> Dataset:
    """Reads and validates a dataset directory (see module docstring)."""
    path = Path(path)
    meta_path, npz_path = path / "metadata.json", path / "episodes.npz"
    if not path.is_dir():
        raise DatasetError(f"dataset {path}: not a directory (expected metadata.json and episodes.npz inside)")
    for p in (meta_path, npz_path):
        if not p.is_file():
            raise DatasetError(f"dataset {path}: missing {p.name} (expected metadata.json and episodes.npz)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"dataset {meta_path}: not valid JSON ({exc})") from exc
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise DatasetError(
            f"dataset {meta_path}: format {meta.get('format')!r} v{meta.get('version')!r}, expected {FORMAT!r} v{VERSION}"
        )
    expected = meta.get("sha256", {}).get("episodes.npz")
    if expected and _sha256(npz_path) != expected:
        raise DatasetError(
            f"dataset {npz_path}: sha256 does not match metadata.json - the file is truncated or was modified"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            missing = [k for k in ARRAYS if k not in z.files]
            if missing:
                raise DatasetError(f"dataset {npz_path}: missing arrays {missing} (expected {list(ARRAYS)})")
            flat = {k: z[k] for k in ARRAYS}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"dataset {npz_path}: cannot be read as an npz archive, truncated? ({exc})") from exc
    return Dataset(_unflatten(flat, npz_path), meta)


def _unflatten(flat: dict[str, np.ndarray], where: Path) -> Episodes:
    lengths = flat["episode_lengths"]
    n_steps = int(lengths.sum())
    if lengths.ndim != 1 or (lengths < 1).any():
        raise DatasetError(f"dataset {where}: episode_lengths must be a 1-d array of positive ints")
    for key in ("actions", "rewards", "terminations", "truncations"):
        if len(flat[key]) != n_steps:
            raise DatasetError(
                f"dataset {where}: {key} has {len(flat[key])} rows, expected sum(episode_lengths) = {n_steps}"
            )
    if len(flat["observations"]) != n_steps + len(lengths):
        raise DatasetError(
            f"dataset {where}: observations has {len(flat['observations'])} rows, expected "
            f"sum(episode_lengths) + n_episodes = {n_steps + len(lengths)} (T + 1 per episode)"
        )
    n, T = len(lengths), int(lengths.max())
    obs = flat["observations"]
    out = Episodes(
        observations=np.zeros((n, T + 1, *obs.shape[1:]), dtype=obs.dtype),
        actions=np.zeros((n, T, *flat["actions"].shape[1:]), dtype=flat["actions"].dtype),
        rewards=np.zeros((n, T)),
        terminations=np.zeros((n, T), dtype=bool),
        truncations=np.zeros((n, T), dtype=bool),
        lengths=lengths.astype(np.int64),
    )
    o = s = 0
    for i, L in enumerate(lengths):
        out.observations[i, : L + 1] = obs[o : o + L + 1]
        out.observations[i, L + 1 :] = obs[o + L]
        out.actions[i, :L] = flat["actions"][s : s + L]
        out.rewards[i, :L] = flat["rewards"][s : s + L]
        out.terminations[i, :L] = flat["terminations"][s : s + L]
        out.truncations[i, :L] = flat["truncations"][s : s + L]
        o += L + 1
        s += L
    return out
