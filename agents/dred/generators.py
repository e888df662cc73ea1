"""Level generators over any env that declares a level type: a codec per level type turns
levels into arrays and back, and the generators (DRED's VAE, EL-DRED's and ACCEL's random
edits, DR's random levels, ACCEL's empty rooms) work on codecs only.

Codecs (``codec_for(spec, dataset)``):

- ``"cave"`` (:class:`CaveCodec`): the grid interior as one of 4 tile classes per cell
  (empty, wall, lava, moss) plus the goal cell and the start cell;
- ``"shift"`` (:class:`ShiftCodec`): a vector of dynamics parameters scaled to [0, 1] by
  the env's declared ranges (a robust env's level is its dict of shift parameters).

The VAE (:class:`LevelVAE`) is the spec's allowed substitute for DRED's graph VAE: an MLP
encoder over the codec's one-hot (or scaled) input, a Gaussian latent, and the codec's
decoder heads - for caves a 4-way layout head per cell, a goal head over cells and a start
head over cells, weighted 0.04 / 0.013 / 0.013 with KL beta 0.0448 (DRED's loss weights).
Decoding samples every head, with masks that keep the goal on an empty cell and the start
on a navigable cell other than the goal (DRED, sec. 4.2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from envs.cave.levels import EMPTY, LAVA, MOSS, WALL, CaveLevel, CaveLevelError, bfs
from envs.registry import EnvSpec

# DRED's loss weights (paper appendix; released config): layout, goal, start, KL
W_LAYOUT, W_GOAL, W_START = 0.04, 0.013, 0.013


class CaveCodec:
    """Cave Escape levels of one grid size <-> (layout classes, goal cell, start cell)."""

    kind = "cave"

    def __init__(self, size: int = 15, start_mask: str = "reachable") -> None:
        if start_mask not in ("reachable", "navigable"):
            raise ValueError(f"start_mask must be 'reachable' or 'navigable', got {start_mask!r}")
        self.start_mask = start_mask
        self.size, self.n = size, size - 2
        self.cells = self.n * self.n
        self.input_dim = self.cells * 4 + 2 * self.cells

    # -- levels <-> arrays ----------------------------------------------------------------------
    def encode(self, params: dict[str, Any]) -> dict[str, np.ndarray]:
        lv = CaveLevel.from_params(params)
        if lv.size != self.size:
            raise CaveLevelError(f"the generator works on {self.size}x{self.size} levels, got {lv.size}x{lv.size}")
        inner = lv.tiles[1:-1, 1:-1].astype(np.int64)
        goal = (lv.goal[0] - 1) * self.n + lv.goal[1] - 1
        start = (lv.start[0] - 1) * self.n + lv.start[1] - 1
        return {"layout": inner.reshape(-1), "goal": np.array(goal), "start": np.array(start)}

    def decode(self, layout: np.ndarray, goal: int, start: int, direction: int) -> dict[str, Any]:
        """A valid level from arrays: the goal cell becomes empty, the start cell navigable."""
        inner = np.asarray(layout, np.int8).reshape(self.n, self.n).copy()
        g, s = divmod(int(goal), self.n), divmod(int(start), self.n)
        inner[g] = EMPTY
        if inner[s] not in (EMPTY, MOSS):
            inner[s] = EMPTY
        tiles = np.full((self.size, self.size), WALL, np.int8)
        tiles[1:-1, 1:-1] = inner
        lv = CaveLevel(tiles, (g[0] + 1, g[1] + 1), (s[0] + 1, s[1] + 1), int(direction))
        return lv.to_params()

    def inputs(self, levels: list[dict[str, Any]]) -> torch.Tensor:
        """(L, input_dim) one-hot VAE inputs."""
        rows = []
        for p in levels:
            e = self.encode(p)
            x = np.zeros(self.input_dim, np.float32)
            x[np.arange(self.cells) * 4 + e["layout"]] = 1.0
            x[self.cells * 4 + e["goal"]] = 1.0
            x[self.cells * 5 + e["start"]] = 1.0
            rows.append(x)
        return torch.as_tensor(np.stack(rows))

    def head_sizes(self) -> dict[str, int]:
        return {"layout": self.cells * 4, "goal": self.cells, "start": self.cells}

    def recon_loss(self, out: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Weighted cross-entropies (summed over cells), mean over the batch."""
        L = x.shape[0]
        layout_t = x[:, : self.cells * 4].reshape(L, self.cells, 4).argmax(-1)
        goal_t = x[:, self.cells * 4 : self.cells * 5].argmax(-1)
        start_t = x[:, self.cells * 5 :].argmax(-1)
        ce = nn.functional.cross_entropy
        layout = ce(out["layout"].reshape(L * self.cells, 4), layout_t.reshape(-1), reduction="sum") / L
        return (
            W_LAYOUT * layout
            + W_GOAL * ce(out["goal"], goal_t, reduction="sum") / L
            + W_START * ce(out["start"], start_t, reduction="sum") / L
        )

    def sample(self, out: dict[str, torch.Tensor], rng: np.random.Generator) -> list[dict[str, Any]]:
        """Decoding by sampling with masks: the goal on an empty cell; the start on a
        navigable cell other than the goal, and (``start_mask="reachable"``, the default)
        one from which the goal can be reached - DRED's masks keep start and goal valid;
        ``"navigable"`` drops the reachability condition."""
        L = out["goal"].shape[0]
        levels = []
        for i in range(L):
            p_layout = torch.softmax(out["layout"][i].reshape(self.cells, 4), -1).numpy().astype(float)
            u = rng.random((self.cells, 1))
            layout = (np.cumsum(p_layout, 1) < u).sum(1).clip(0, 3)
            goal = _masked_draw(out["goal"][i], layout == EMPTY, rng)
            nav = (layout == EMPTY) | (layout == MOSS)
            allowed = nav.copy()
            if self.start_mask == "reachable":
                allowed &= bfs(nav.reshape(self.n, self.n), divmod(goal, self.n)).reshape(-1) >= 0
            allowed[goal] = False
            if not allowed.any():  # the goal is walled in: any navigable start (an unsolvable level)
                allowed = nav.copy()
                allowed[goal] = False
            start = _masked_draw(out["start"][i], allowed, rng)
            levels.append(self.decode(layout, goal, start, int(rng.integers(4))))
        return levels

    # -- levels without a model -----------------------------------------------------------------
    def random(self, rng: np.random.Generator) -> dict[str, Any]:
        """Domain randomisation: i.i.d. walls (density U(0.1, 0.4)), lava U(0, 0.1), moss
        U(0, 0.2), goal and start uniform; not necessarily solvable (DR's property)."""
        u = rng.random(self.cells)
        wall, lava, moss = rng.uniform(0.1, 0.4), rng.uniform(0.0, 0.1), rng.uniform(0.0, 0.2)
        layout = np.full(self.cells, EMPTY)
        layout[u < wall + lava + moss] = MOSS
        layout[u < wall + lava] = LAVA
        layout[u < wall] = WALL
        goal, start = rng.choice(self.cells, 2, replace=False)
        return self.decode(layout, goal, start, int(rng.integers(4)))

    def empty(self, rng: np.random.Generator) -> dict[str, Any]:
        """ACCEL's starting point: an empty room with a random goal and start."""
        goal, start = rng.choice(self.cells, 2, replace=False)
        return self.decode(np.full(self.cells, EMPTY), goal, start, int(rng.integers(4)))

    def edit(self, params: dict[str, Any], n_edits: int, rng: np.random.Generator) -> dict[str, Any]:
        """``n_edits`` random edits (EL-DRED, ACCEL): each sets a random interior cell other
        than the goal and start to a random tile (empty, wall, lava or moss)."""
        e = self.encode(params)
        layout = e["layout"].copy()
        keep = {int(e["goal"]), int(e["start"])}
        for _ in range(n_edits):
            cell = int(rng.integers(self.cells))
            if cell not in keep:
                layout[cell] = int(rng.integers(4))
        return self.decode(layout, int(e["goal"]), int(e["start"]), int(params.get("dir", 0)))

    def solvable(self, params: dict[str, Any]) -> bool:
        return CaveLevel.from_params(params).solvable()

    # -- how well a VAE learned the levels ------------------------------------------------------
    def fidelity(self, out: dict[str, torch.Tensor], levels: list[dict[str, Any]]) -> dict[str, float]:
        """Argmax reconstruction accuracy of decoder outputs ``out`` for ``levels``: the
        fraction of interior cells with the right tile (``layout``), of levels with the right
        goal and start cell, and ``layout_guess``: the best input-blind guess (each cell's most
        common tile over ``levels``), which a collapsed posterior cannot beat."""
        enc = [self.encode(p) for p in levels]
        tiles = np.stack([e["layout"] for e in enc])
        guess = np.array([np.bincount(col, minlength=4).argmax() for col in tiles.T])
        layout = out["layout"].reshape(len(levels), self.cells, 4).argmax(-1).numpy()
        return {
            "layout": float((layout == tiles).mean()),
            "layout_guess": float((guess == tiles).mean()),
            "goal": float((out["goal"].argmax(-1).numpy() == [int(e["goal"]) for e in enc]).mean()),
            "start": float((out["start"].argmax(-1).numpy() == [int(e["start"]) for e in enc]).mean()),
        }

    def describe(self, levels: list[dict[str, Any]]) -> dict[str, float]:
        """Solvable fraction and the start-to-goal shortest path over the solvable levels
        (median, and the fraction of all levels solvable within 3 steps: near-trivial ones)."""
        d = np.array([CaveLevel.from_params(p).distances()[CaveLevel.from_params(p).start] for p in levels])
        ok = d >= 0
        return {
            "solvable": float(ok.mean()),
            "path_median": float(np.median(d[ok])) if ok.any() else float("nan"),
            "path_le3": float((ok & (d <= 3)).mean()),
        }

    @staticmethod
    def undertrained(fid: dict[str, float]) -> str | None:
        """Why a VAE with reconstruction accuracies ``fid`` has not learned the levels, or None."""
        why = []
        if fid["layout"] < fid["layout_guess"] + 0.2:
            why.append(f"layout {fid['layout']:.0%} of cells against {fid['layout_guess']:.0%} for a per-cell guess")
        if min(fid["goal"], fid["start"]) < 0.5:
            why.append(f"goal {fid['goal']:.0%} and start {fid['start']:.0%} of levels")
        return "; ".join(why) or None


def _masked_draw(logits: torch.Tensor, allowed: np.ndarray, rng: np.random.Generator) -> int:
    """A categorical draw over ``allowed`` cells (all cells when none is allowed)."""
    if not allowed.any():
        allowed = np.ones_like(allowed)
    z = logits.numpy().astype(float) + rng.gumbel(size=allowed.shape)
    z[~allowed] = -np.inf
    return int(np.argmax(z))


class ShiftCodec:
    """Dynamics-parameter levels (level type "shift") <-> vectors in [0, 1]^d scaled by the
    env's declared ranges; the keys are those of the dataset levels."""

    kind = "shift"

    def __init__(self, spec: EnvSpec, keys: list[str]) -> None:
        by_name = {s.name: s for s in spec.shifts}
        unknown = [k for k in keys if k not in by_name]
        if unknown or not keys:
            raise ValueError(
                f"env {spec.id!r}: levels must set shift parameters among {sorted(by_name)}, got {keys or 'none'}"
            )
        self.keys = list(keys)
        self.low = np.array([by_name[k].low for k in keys], float)
        self.high = np.array([by_name[k].high for k in keys], float)
        self.nominal = {k: by_name[k].nominal for k in keys}
        self.input_dim = len(keys)

    def _vec(self, params: dict[str, Any]) -> np.ndarray:
        return (np.array([float(params[k]) for k in self.keys]) - self.low) / np.maximum(self.high - self.low, 1e-12)

    def _params(self, v: np.ndarray) -> dict[str, Any]:
        x = self.low + np.clip(v, 0.0, 1.0) * (self.high - self.low)
        return {k: float(val) for k, val in zip(self.keys, x)}

    def inputs(self, levels: list[dict[str, Any]]) -> torch.Tensor:
        return torch.as_tensor(np.stack([self._vec(p) for p in levels]), dtype=torch.float32)

    def head_sizes(self) -> dict[str, int]:
        return {"mean": self.input_dim}

    def recon_loss(self, out: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return ((torch.sigmoid(out["mean"]) - x) ** 2).sum(-1).mean() / 0.01  # Gaussian, sd 0.1

    def sample(self, out: dict[str, torch.Tensor], rng: np.random.Generator) -> list[dict[str, Any]]:
        mean = torch.sigmoid(out["mean"]).numpy()
        return [self._params(m + 0.1 * rng.standard_normal(m.shape)) for m in mean]

    def random(self, rng: np.random.Generator) -> dict[str, Any]:
        return self._params(rng.random(self.input_dim))

    def empty(self, rng: np.random.Generator) -> dict[str, Any]:
        """The nominal dynamics (ACCEL's simplest level), mid-range where none is declared."""
        out = {}
        for k, lo, hi in zip(self.keys, self.low, self.high):
            nominal = self.nominal[k]
            out[k] = float(nominal) if nominal is not None else float((lo + hi) / 2)
        return out

    def edit(self, params: dict[str, Any], n_edits: int, rng: np.random.Generator) -> dict[str, Any]:
        """``n_edits`` edits, each moving one parameter by N(0, 0.1) of its range."""
        v = self._vec(params)
        for _ in range(n_edits):
            v[rng.integers(len(v))] += 0.1 * rng.standard_normal()
        return self._params(v)

    def solvable(self, params: dict[str, Any]) -> bool | None:
        """None: a vector of dynamics parameters is always playable; solvability is not
        defined for it (nor reported)."""
        return None

    def fidelity(self, out: dict[str, torch.Tensor], levels: list[dict[str, Any]]) -> dict[str, float]:
        """Mean absolute reconstruction error in range units, and that of the best
        input-blind guess (the levels' mean vector)."""
        x = self.inputs(levels).numpy()
        return {
            "mae": float(np.abs(torch.sigmoid(out["mean"]).numpy() - x).mean()),
            "mae_guess": float(np.abs(x.mean(0) - x).mean()),
        }

    def describe(self, levels: list[dict[str, Any]]) -> dict[str, float]:
        return {}  # no solvability or path length for dynamics vectors

    @staticmethod
    def undertrained(fid: dict[str, float]) -> str | None:
        if fid["mae"] > 0.8 * fid["mae_guess"]:  # no better than the mean level, about
            return f"mean error {fid['mae']:.3f} of the range against {fid['mae_guess']:.3f} for the mean level"
        return None


class Codec(Protocol):
    """What the generators need of a level type (CaveCodec and ShiftCodec are the built-in
    ones; :func:`register_codec` adds one for a plugin's level type).

    ``inputs``/``head_sizes``/``recon_loss``/``sample`` serve DRED's VAE; ``random`` DR and
    robust PLR; ``empty`` and ``edit`` ACCEL and EL-DRED; ``solvable`` the reports (None
    where a level type has no such notion); ``fidelity``/``describe``/``undertrained`` the
    VAE's report after training."""

    kind: str
    input_dim: int

    def inputs(self, levels: list[dict[str, Any]]) -> torch.Tensor: ...
    def head_sizes(self) -> dict[str, int]: ...
    def recon_loss(self, out: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor: ...
    def sample(self, out: dict[str, torch.Tensor], rng: np.random.Generator) -> list[dict[str, Any]]: ...
    def random(self, rng: np.random.Generator) -> dict[str, Any]: ...
    def empty(self, rng: np.random.Generator) -> dict[str, Any]: ...
    def edit(self, params: dict[str, Any], n_edits: int, rng: np.random.Generator) -> dict[str, Any]: ...
    def solvable(self, params: dict[str, Any]) -> bool | None: ...
    def fidelity(self, out: dict[str, torch.Tensor], levels: list[dict[str, Any]]) -> dict[str, float]: ...
    def describe(self, levels: list[dict[str, Any]]) -> dict[str, float]: ...
    def undertrained(self, fid: dict[str, float]) -> str | None: ...


# level type -> factory(spec, dataset, env_kwargs, start_mask) -> codec
CodecFactory = Callable[[EnvSpec, list[dict[str, Any]], dict[str, Any], str], Codec]


def _cave_codec(spec: EnvSpec, dataset: list[dict[str, Any]], env_kwargs: dict[str, Any], start_mask: str) -> Codec:
    return CaveCodec(int({**dict(spec.kwargs), **env_kwargs}.get("size", 15)), start_mask)


def _shift_codec(spec: EnvSpec, dataset: list[dict[str, Any]], env_kwargs: dict[str, Any], start_mask: str) -> Codec:
    keys = sorted({k for p in dataset for k in p}) if dataset else [s.name for s in spec.shifts]
    return ShiftCodec(spec, keys)


_CODECS: dict[str, CodecFactory] = {"cave": _cave_codec, "shift": _shift_codec}


def register_codec(level_type: str, factory: CodecFactory, override: bool = False) -> None:
    """Makes the level generators (DRED's VAE, the edits, DR's random levels) work on envs of
    ``level_type``: ``factory(spec, dataset, env_kwargs, start_mask)`` returns a
    :class:`Codec`. Only the learner's process needs it: register it in a plugin module the
    run imports (the config's ``imports``), not in the env's module under envs/ (envs must
    not import agents). U and PLR need no codec."""
    if not isinstance(level_type, str) or not level_type:
        raise ValueError(f"level_type must be a non-empty string, got {level_type!r}")
    if level_type in _CODECS and not override:
        raise ValueError(f"a codec for level type {level_type!r} is already registered (pass override=True)")
    _CODECS[level_type] = factory


def codec_for(
    spec: EnvSpec,
    dataset: list[dict[str, Any]],
    env_kwargs: dict[str, Any] | None = None,
    start_mask: str = "reachable",
) -> Codec:
    """The codec of the env's level type; a clear error for a type without one."""
    factory = _CODECS.get(str(spec.level_type))
    if factory is None:
        raise ValueError(
            f"env {spec.id!r} has level type {spec.level_type!r}; the level generators know {sorted(_CODECS)} "
            "(agents.dred.generators.register_codec adds one; uniform and plr need none)"
        )
    return factory(spec, dataset, dict(env_kwargs or {}), start_mask)


class LevelVAE(nn.Module):
    """An MLP VAE over a codec's inputs with the codec's decoder heads."""

    def __init__(self, codec: Codec, latent: int, hidden: int) -> None:
        super().__init__()
        self.codec = codec
        d = codec.input_dim
        self.enc = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.heads = nn.ModuleDict({k: nn.Linear(hidden, n) for k, n in codec.head_sizes().items()})

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        return self.mu(h), self.logvar(h).clamp(-10, 10)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.dec(z)
        return {k: head(h) for k, head in self.heads.items()}

    def loss(self, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
        mu, logvar = self.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        recon = self.codec.recon_loss(self.decode(z), x)
        kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(-1)).mean()
        return recon + beta * kl, {"recon": float(recon.detach()), "kl": float(kl.detach())}


def train_vae(
    vae: LevelVAE,
    levels: list[dict[str, Any]],
    epochs: int,
    batch: int,
    lr: float,
    beta: float,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """DRED's VAE training on the training levels (Adam; ``epochs`` passes in shuffled
    batches); deterministic under ``seed``. Returns the last epoch's mean loss terms;
    ``progress`` gets a line five times along the way."""
    gen = torch.Generator().manual_seed(seed)
    x = vae.codec.inputs(levels)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    last: dict[str, float] = {}
    every = max(1, epochs // 5)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for epoch in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            terms: dict[str, list[float]] = {}
            for mb in order.split(batch):
                loss, named = vae.loss(x[mb], beta)
                opt.zero_grad()
                loss.backward()
                opt.step()
                for k, v in (named | {"loss": float(loss.detach())}).items():
                    terms.setdefault(k, []).append(v)
            last = {k: float(np.mean(v)) for k, v in terms.items()}
            if progress is not None and (epoch + 1) % every == 0:
                progress(f"level VAE epoch {epoch + 1}/{epochs}: recon {last['recon']:.3f}, KL {last['kl']:.2f}")
    return last


@torch.no_grad()
def vae_fidelity(vae: LevelVAE, levels: list[dict[str, Any]], seed: int = 0) -> dict[str, float]:
    """The codec's reconstruction accuracies of ``levels`` decoded from z = mu + sigma eps,
    as generation decodes (the decoder is trained on such z: at the bare means, where the
    unused latent dimensions lose their unit noise, it can be off its inputs' distribution)."""
    mu, logvar = vae.encode(vae.codec.inputs(levels))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed))
    return vae.codec.fidelity(vae.decode(mu + (0.5 * logvar).exp() * eps), levels)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between latent means (lerp when nearly parallel), DRED sec. 4.2."""
    an, bn = a / a.norm().clamp_min(1e-12), b / b.norm().clamp_min(1e-12)
    dot = float((an * bn).sum().clamp(-1.0, 1.0))
    if abs(dot) > 0.9995:
        return (1 - t) * a + t * b
    omega = float(np.arccos(dot))
    so = float(np.sin(omega))
    return (np.sin((1 - t) * omega) / so) * a + (np.sin(t * omega) / so) * b


@torch.no_grad()
def vae_interpolations(
    vae: LevelVAE, levels: list[dict[str, Any]], n: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """DRED's generation step: ``2 * pairs`` training levels paired (i, last - i), ``points``
    interpolation points linspace(0, 1) per pair, slerp between the encoder means, lerp
    between the standard deviations, z = mu + sigma eps, decoded by sampling. With the
    default n = 36: 12 levels, 6 pairs, 6 points."""
    pairs = max(1, round(float(np.sqrt(n))))
    points = max(1, -(-n // pairs))
    pick = rng.choice(len(levels), min(2 * pairs, len(levels)), replace=len(levels) < 2 * pairs)
    x = vae.codec.inputs([levels[i] for i in pick])
    mu, logvar = vae.encode(x)
    sd = (0.5 * logvar).exp()
    zs = []
    for i in range(pairs):
        j = len(pick) - 1 - i
        for t in np.linspace(0.0, 1.0, points):
            m = slerp(mu[i], mu[j], float(t))
            s = (1 - t) * sd[i] + t * sd[j]
            zs.append(m + s * torch.as_tensor(rng.standard_normal(m.shape), dtype=torch.float32))
    out = vae.decode(torch.stack(zs[:n]))
    return vae.codec.sample(out, rng)
