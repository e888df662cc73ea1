"""The suite's one format for single-agent offline datasets: Minari's (0.5, HDF5).

A dataset is a Minari dataset directory::

    <dir>/data/main_data.hdf5   one group per episode: T + 1 observations, T actions,
                                rewards, terminations, truncations
    <dir>/data/metadata.json    Minari's keys (spaces, env_spec, total_steps, ref_min_score
                                / ref_max_score, ...) plus ``shiftrl``: env id and kwargs,
                                shift, behaviour policy, seed, quality, and the sha256 of
                                main_data.hdf5

so ``minari.load_dataset(id)`` reads it offline when ``MINARI_DATASETS_PATH`` points at the
root of ``<root>/<namespace>/<env>/<name>-vN`` (the id is ``<namespace>/<env>/<name>-vN``),
``recover_environment()`` rebuilds our shifted envs (their entry points are importable
strings, constructor kwargs included), and ``minari.get_normalized_score`` uses the stored
reference returns. Any directory works for ShiftRL itself (``load(path)``).

It is written through Minari's own storage class into a temporary sibling directory that is
renamed into place (atomic), and validated on load: a missing or truncated file, a modified
file, misaligned observations (not T + 1), wrong shapes or NaN/inf values raise
:class:`DatasetError` naming the file, the episode and what was expected - never a
silently wrong batch. Nothing here downloads anything: datasets are generated locally
(``shiftrl collect``).

Datasets of the suite's first format (``episodes.npz``) are converted with
``shiftrl convert-dataset OLD NEW`` (:func:`convert_legacy`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from envs.episodes import Episodes

FORMAT = "minari-hdf5"
SHIFTRL_VERSION = 2  # 1 was the episodes.npz format (convert_legacy)
DATA, HDF5, METADATA = "data", "main_data.hdf5", "metadata.json"
STEP_KEYS = ("actions", "rewards", "terminations", "truncations")


class DatasetError(ValueError):
    """A dataset that is missing, truncated, modified or inconsistent."""


@dataclass
class Dataset:
    """Episodes (flat, Minari-aligned) plus where they came from.

    Attributes:
        observations: (sum(T_i + 1), *obs) every episode's T + 1 observations, in order.
        actions: (sum(T_i), *act).
        rewards: (sum(T_i),) float64.
        terminations, truncations: (sum(T_i),) bool.
        lengths: (n_episodes,) T_i.
        metadata: free-form provenance (``env_id``, ``env_kwargs``, ``shift``,
            ``behaviour``, ``seed``, ``quality``, ``ref_min_score``, ``ref_max_score``, ...).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    lengths: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_episodes(cls, ep: Episodes, metadata: dict[str, Any] | None = None) -> Dataset:
        obs, act, rew, term, trunc = [], [], [], [], []
        for i, L in enumerate(ep.lengths):
            obs.append(ep.observations[i, : L + 1])
            act.append(ep.actions[i, :L])
            rew.append(ep.rewards[i, :L])
            term.append(ep.terminations[i, :L])
            trunc.append(ep.truncations[i, :L])
        return cls(
            np.concatenate(obs),
            np.concatenate(act),
            np.concatenate(rew).astype(np.float64),
            np.concatenate(term).astype(bool),
            np.concatenate(trunc).astype(bool),
            np.asarray(ep.lengths, np.int64),
            dict(metadata or {}),
        )

    @property
    def n_episodes(self) -> int:
        return len(self.lengths)

    @property
    def n_steps(self) -> int:
        return int(self.lengths.sum())

    def episode_returns(self) -> np.ndarray:
        ends = np.cumsum(self.lengths)
        return np.add.reduceat(self.rewards, np.r_[0, ends[:-1]]) if len(self.lengths) else np.zeros(0)

    def transitions(self) -> dict[str, np.ndarray]:
        """Flat (s, a, r, s', terminal, timeout) arrays for offline learners: next
        observations come from the T + 1 alignment, so a step's s' is never the next
        episode's first observation. ``terminals`` stops bootstrapping; a truncated step
        bootstraps from its s'."""
        starts = np.r_[0, np.cumsum(self.lengths + 1)[:-1]]
        step_obs = np.concatenate([np.arange(s, s + L) for s, L in zip(starts, self.lengths)])
        return {
            "observations": self.observations[step_obs],
            "actions": self.actions,
            "rewards": self.rewards,
            "next_observations": self.observations[step_obs + 1],
            "terminals": self.terminations,
            "timeouts": self.truncations,
        }

    @property
    def episodes(self) -> Episodes:
        """Padded episodes (what R2PVI's finite-horizon fits read)."""
        n, T = self.n_episodes, int(self.lengths.max())
        out = Episodes(
            observations=np.zeros((n, T + 1, *self.observations.shape[1:]), dtype=self.observations.dtype),
            actions=np.zeros((n, T, *self.actions.shape[1:]), dtype=self.actions.dtype),
            rewards=np.zeros((n, T)),
            terminations=np.zeros((n, T), dtype=bool),
            truncations=np.zeros((n, T), dtype=bool),
            lengths=self.lengths.copy(),
        )
        o = s = 0
        for i, L in enumerate(self.lengths):
            out.observations[i, : L + 1] = self.observations[o : o + L + 1]
            out.observations[i, L + 1 :] = self.observations[o + L]
            out.actions[i, :L] = self.actions[s : s + L]
            out.rewards[i, :L] = self.rewards[s : s + L]
            out.terminations[i, :L] = self.terminations[s : s + L]
            out.truncations[i, :L] = self.truncations[s : s + L]
            o += L + 1
            s += L
        return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dataset_id_of(path: str | os.PathLike) -> str:
    """``<namespace>/<env>/<name>`` from the last three path components (Minari's id when
    the directory sits at ``$MINARI_DATASETS_PATH/<namespace>/<env>/<name>-vN``)."""
    parts = Path(path).resolve().parts
    return "/".join(parts[-3:])


def _infer_spaces(ds: Dataset) -> tuple[gymnasium.Space, gymnasium.Space]:
    obs = ds.observations
    o_space: gymnasium.Space
    if np.issubdtype(obs.dtype, np.integer) and obs.ndim == 1:
        o_space = gymnasium.spaces.Discrete(int(obs.max()) + 1)
    else:
        o_space = gymnasium.spaces.Box(-np.inf, np.inf, obs.shape[1:], dtype=obs.dtype)  # type: ignore[arg-type]
    act = ds.actions
    a_space: gymnasium.Space
    if np.issubdtype(act.dtype, np.integer) and act.ndim == 1:
        a_space = gymnasium.spaces.Discrete(int(act.max()) + 1)
    else:
        a_space = gymnasium.spaces.Box(-np.inf, np.inf, act.shape[1:], dtype=act.dtype)  # type: ignore[arg-type]
    return o_space, a_space


def _gym_spec(env_id: str | None, env_kwargs: dict[str, Any]) -> gymnasium.envs.registration.EnvSpec | None:
    if env_id is None:
        return None
    try:
        import envs  # noqa: F401  (registers the built-in families with gymnasium)

        spec = gymnasium.spec(env_id)
    except Exception:  # noqa: BLE001 - an unregistered id just means no recoverable env
        return None
    if not isinstance(spec.entry_point, str):
        return None  # Minari stores the entry point as a string
    return dataclasses.replace(spec, kwargs={**spec.kwargs, **env_kwargs})


def save(
    dataset: Dataset,
    path: str | os.PathLike,
    overwrite: bool = False,
    observation_space: gymnasium.Space | None = None,
    action_space: gymnasium.Space | None = None,
) -> Path:
    """Writes ``dataset`` as a Minari dataset directory at ``path`` (atomically) and
    returns the path. Spaces default to the env's (``metadata["env_id"]``), else are
    inferred from the arrays."""
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    path = Path(path).resolve()  # Minari's storage joins relative paths twice
    if path.exists() and not overwrite:
        raise DatasetError(f"dataset directory {path} already exists (pass overwrite=True / --overwrite)")
    _check_arrays(dataset, str(path))
    meta = dict(dataset.metadata)
    env_id, env_kwargs = meta.get("env_id"), dict(meta.get("env_kwargs") or {})
    if (observation_space is None or action_space is None) and env_id is not None:
        try:
            import envs

            env = envs.make(env_id, **env_kwargs)
            observation_space = observation_space or env.observation_space
            action_space = action_space or env.action_space
        except Exception:  # noqa: BLE001 - fall back to spaces inferred from the data
            pass
    if observation_space is None or action_space is None:
        inferred_obs, inferred_act = _infer_spaces(dataset)
        observation_space, action_space = observation_space or inferred_obs, action_space or inferred_act
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        storage = MinariStorage.new(
            tmp / DATA,
            observation_space=observation_space,
            action_space=action_space,
            env_spec=_gym_spec(env_id, env_kwargs),
            data_format="hdf5",
        )
        buffers = []
        o = s = 0
        for L in dataset.lengths.tolist():
            buffers.append(
                EpisodeBuffer(
                    id=None,
                    seed=None,
                    observations=dataset.observations[o : o + L + 1],
                    actions=dataset.actions[s : s + L],
                    rewards=dataset.rewards[s : s + L],
                    terminations=dataset.terminations[s : s + L],
                    truncations=dataset.truncations[s : s + L],
                )
            )
            o, s = o + L + 1, s + L
        storage.update_episodes(buffers)
        ours = {
            **{k: v for k, v in meta.items() if k not in ("ref_min_score", "ref_max_score")},
            "format": FORMAT,
            "version": SHIFTRL_VERSION,
            "n_episodes": dataset.n_episodes,
            "n_steps": dataset.n_steps,
            "sha256": {HDF5: _sha256(tmp / DATA / HDF5)},
        }
        minari_meta: dict[str, Any] = {"dataset_id": dataset_id_of(path), "minari_version": _minari_version()}
        for k in ("ref_min_score", "ref_max_score"):
            if meta.get(k) is not None:
                minari_meta[k] = float(meta[k])
        if meta.get("behaviour"):
            minari_meta["algorithm_name"] = str(meta["behaviour"])
        storage.update_metadata({**minari_meta, "shiftrl": ours})
        with open(tmp / DATA / METADATA, "rb+") as f:
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


def _minari_version() -> str:
    import minari

    return str(minari.__version__)


def _check_arrays(ds: Dataset, where: str) -> None:
    """The flat arrays agree with the lengths (T + 1 observations per episode)."""
    lengths = np.asarray(ds.lengths)
    if lengths.ndim != 1 or len(lengths) == 0 or (lengths < 1).any():
        raise DatasetError(f"dataset {where}: episode lengths must be a non-empty 1-d array of positive ints")
    n_steps = int(lengths.sum())
    for key in STEP_KEYS:
        if len(getattr(ds, key)) != n_steps:
            raise DatasetError(
                f"dataset {where}: {key} has {len(getattr(ds, key))} rows, expected sum(episode lengths) = {n_steps}"
            )
    if len(ds.observations) != n_steps + len(lengths):
        raise DatasetError(
            f"dataset {where}: observations has {len(ds.observations)} rows, expected "
            f"sum(episode lengths) + n_episodes = {n_steps + len(lengths)} (T + 1 per episode)"
        )
    for key in ("observations", "actions", "rewards"):
        x = getattr(ds, key)
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0, 0])
            raise DatasetError(f"dataset {where}: {key} row {bad} is NaN or infinite")


def _resolve(path: Path) -> Path:
    """The directory holding main_data.hdf5 (``<dir>/data`` or ``<dir>`` itself)."""
    if (path / DATA / METADATA).exists() or (path / DATA / HDF5).exists():
        return path / DATA
    return path


def fingerprint(path: str | os.PathLike) -> str:
    """sha256 of a dataset's metadata.json, which records the sha256 of its data file: a
    cheap key for anything derived from the dataset (conversions, caches)."""
    meta = _resolve(Path(path)) / METADATA
    if not meta.is_file():
        raise DatasetError(f"dataset {path}: missing {METADATA}")
    return hashlib.sha256(meta.read_bytes()).hexdigest()


def data_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a dataset's data file as its metadata records it: the same for two
    datasets with the same transitions, wherever and from whichever run directory they were
    written (``fingerprint`` also covers the metadata, which names those)."""
    meta = _resolve(Path(path)) / METADATA
    if not meta.is_file():
        raise DatasetError(f"dataset {path}: missing {METADATA}")
    digest = json.loads(meta.read_text()).get("shiftrl", {}).get("sha256", {}).get(HDF5)
    if not digest:
        raise DatasetError(f"dataset {path}: {METADATA} records no sha256 of {HDF5} (not written by shiftrl collect)")
    return str(digest)


def load(path: str | os.PathLike) -> Dataset:
    """Reads and validates a dataset directory (see module docstring)."""
    import h5py

    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"dataset {path}: not a directory (expected a Minari dataset: data/main_data.hdf5)")
    if (path / "episodes.npz").exists():
        raise DatasetError(
            f"dataset {path}: this is the suite's old episodes.npz format; convert it once with "
            f"`shiftrl convert-dataset {path} NEW_DIR` (Minari's format is the only one read now)"
        )
    data = _resolve(path)
    meta_path, h5_path = data / METADATA, data / HDF5
    for p in (meta_path, h5_path):
        if not p.is_file():
            raise DatasetError(
                f"dataset {path}: missing {p.relative_to(path)} (expected data/{METADATA} and data/{HDF5})"
            )
    try:
        raw = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"dataset {meta_path}: not valid JSON ({exc})") from exc
    ours = raw.get("shiftrl") if isinstance(raw.get("shiftrl"), dict) else {}
    expected = ours.get("sha256", {}).get(HDF5)
    if expected and _sha256(h5_path) != expected:
        raise DatasetError(
            f"dataset {h5_path}: sha256 does not match {METADATA} - the file is truncated or was modified"
        )
    try:
        f = h5py.File(h5_path, "r")
    except OSError as exc:
        raise DatasetError(f"dataset {h5_path}: cannot be read as HDF5, truncated? ({exc})") from exc
    with f:
        names = [k for k in f.keys() if k.startswith("episode_")]
        try:
            names.sort(key=lambda k: int(k.split("_", 1)[1]))
        except ValueError as exc:
            raise DatasetError(f"dataset {h5_path}: unexpected group names ({exc})") from exc
        total = raw.get("total_episodes")
        if total is not None and total != len(names):
            raise DatasetError(f"dataset {h5_path}: {len(names)} episode groups, {METADATA} says {total}")
        if not names:
            raise DatasetError(f"dataset {h5_path}: no episodes")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("observations", *STEP_KEYS)}
        lengths = []
        for name in names:
            g = f[name]
            if not isinstance(g.get("observations"), h5py.Dataset):
                raise DatasetError(
                    f"dataset {h5_path}: {name}/observations is missing or a dict space (only array spaces are read)"
                )
            try:
                ep = {k: np.asarray(g[k][()]) for k in ("observations", *STEP_KEYS)}
            except KeyError as exc:
                raise DatasetError(f"dataset {h5_path}: {name} lacks {exc}") from exc
            except OSError as exc:
                raise DatasetError(f"dataset {h5_path}: {name} cannot be read, truncated? ({exc})") from exc
            T = len(ep["actions"])
            if len(ep["observations"]) != T + 1:
                raise DatasetError(
                    f"dataset {h5_path}: {name} has {len(ep['observations'])} observations for {T} actions, "
                    "expected T + 1 (Minari's alignment: the observation after the last step is stored)"
                )
            for k in ("rewards", "terminations", "truncations"):
                if len(ep[k]) != T:
                    raise DatasetError(f"dataset {h5_path}: {name}/{k} has {len(ep[k])} steps, expected {T}")
            steps = g.attrs.get("total_steps")
            if steps is not None and int(steps) != T:
                raise DatasetError(
                    f"dataset {h5_path}: {name} stores {T} steps, its total_steps attribute says {steps}"
                )
            for k, v in parts.items():
                v.append(ep[k])
            lengths.append(T)
    if raw.get("total_steps") is not None and raw["total_steps"] != sum(lengths):
        raise DatasetError(f"dataset {h5_path}: {sum(lengths)} steps, {METADATA} says {raw['total_steps']}")
    shapes = {tuple(p.shape[1:]) for p in parts["observations"]} | set()
    if len(shapes) > 1:
        raise DatasetError(f"dataset {h5_path}: observation shapes differ between episodes: {sorted(shapes)}")
    meta = {k: v for k, v in ours.items() if k != "sha256"}
    for k in ("ref_min_score", "ref_max_score", "dataset_id"):
        if k in raw:
            meta[k] = raw[k]
    ds = Dataset(
        np.concatenate(parts["observations"]),
        np.concatenate(parts["actions"]),
        np.concatenate(parts["rewards"]).astype(np.float64),
        np.concatenate(parts["terminations"]).astype(bool),
        np.concatenate(parts["truncations"]).astype(bool),
        np.asarray(lengths, np.int64),
        meta,
    )
    _check_arrays(ds, str(h5_path))
    return ds


def convert_legacy(old: str | os.PathLike, new: str | os.PathLike, overwrite: bool = False) -> Path:
    """Rewrites a dataset of the suite's first format (``episodes.npz`` + metadata.json)
    in Minari's format. The old file's sha256 is checked first."""
    old = Path(old)
    npz, meta_path = old / "episodes.npz", old / "metadata.json"
    if not npz.is_file() or not meta_path.is_file():
        raise DatasetError(f"dataset {old}: not an episodes.npz dataset (expected episodes.npz and metadata.json)")
    meta = json.loads(meta_path.read_text())
    expected = meta.get("sha256", {}).get("episodes.npz")
    if expected and _sha256(npz) != expected:
        raise DatasetError(f"dataset {npz}: sha256 does not match metadata.json - truncated or modified")
    try:
        with np.load(npz, allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DatasetError(f"dataset {npz}: cannot be read as an npz archive, truncated? ({exc})") from exc
    keep = {
        k: v
        for k, v in meta.items()
        if k not in ("format", "version", "sha256", "n_episodes", "n_steps", "observation_shape", "observation_dtype")
        and not k.startswith("action_")
    }
    try:
        ds = Dataset(
            flat["observations"],
            flat["actions"],
            flat["rewards"].astype(np.float64),
            flat["terminations"].astype(bool),
            flat["truncations"].astype(bool),
            flat["episode_lengths"].astype(np.int64),
            {**keep, "converted_from": "episodes.npz v1"},
        )
    except KeyError as exc:
        raise DatasetError(f"dataset {npz}: missing array {exc}") from exc
    return save(ds, new, overwrite=overwrite)
