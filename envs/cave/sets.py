"""DRED's Cave Escape level sets, generated deterministically and stored as level-set files.

``build_sets(out_dir)`` (``shiftrl make-levels cave --out DIR``) writes one versioned file
per set (envs/levels.py format, sha256 inside):

=================  ==========================================================================
set                levels
=================  ==========================================================================
train              4 training families x 128 = 512 (DRED's training set)
test               4 training families x 512 = 2048, disjoint seeds (in-distribution test)
edge_unseen        the unseen families (pillars, open) x 256
edge_moss5         4 training families x 128 with moss fixed at 5%
edge_lava50        4 training families x 128 with lava 50% and moss 5%
edge_45x45         4 training families x 128 on 45x45 grids (env kwargs size=45)
=================  ==========================================================================

Every level's seed is ``SeedSequence([VERSION, set index, family index, i])``: the files are
identical on every machine for a given generator version, and no two sets share a seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from envs.cave.levels import TRAIN_FAMILIES, UNSEEN_FAMILIES, generate
from envs.levels import LevelSet, save_level_set

ENV_ID = "CaveEscape-v0"
GENERATOR_VERSION = 1
# name: (families, levels per family, generate() keyword arguments, description)
SETS: dict[str, tuple[tuple[str, ...], int, dict[str, Any], str]] = {
    "train": (TRAIN_FAMILIES, 128, {}, "DRED's training set: 4 layout families x 128"),
    "test": (TRAIN_FAMILIES, 512, {}, "in-distribution test set: the training families, unseen seeds"),
    "edge_unseen": (UNSEEN_FAMILIES, 256, {}, "edge case: layout families never trained on"),
    "edge_moss5": (TRAIN_FAMILIES, 128, {"moss": 0.05}, "edge case: moss on only 5% of the floor"),
    "edge_lava50": (TRAIN_FAMILIES, 128, {"moss": 0.05, "lava": 0.5}, "edge case: lava 50%, moss 5%"),
    "edge_45x45": (TRAIN_FAMILIES, 128, {"size": 45}, "edge case: 45x45 grids (evaluate with env.kwargs size=45)"),
}


def level_set(name: str, per_family: int | None = None) -> LevelSet:
    """The set ``name`` (``per_family`` overrides its size, for tests and quick looks)."""
    if name not in SETS:
        raise ValueError(f"unknown Cave Escape level set {name!r}; expected one of {list(SETS)}")
    families, n, kwargs, description = SETS[name]
    n = per_family or n
    index = list(SETS).index(name)
    levels, names = [], []
    for f, family in enumerate(families):
        for i in range(n):
            seed = np.random.SeedSequence([GENERATOR_VERSION, index, f, i])
            levels.append(generate(family, seed, **kwargs).to_params())
            names.append(f"{family}_{i:04d}")
    return LevelSet(ENV_ID, "cave", tuple(levels), tuple(names), f"{description} (generator v{GENERATOR_VERSION})")


def build_sets(
    out_dir: str | os.PathLike,
    names: list[str] | None = None,
    per_family: int | None = None,
    overwrite: bool = False,
    progress: Any = print,
) -> list[Path]:
    """Writes the sets as ``<out_dir>/<name>.json``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names or list(SETS):
        ls = level_set(name, per_family)
        paths.append(save_level_set(ls, out / f"{name}.json", overwrite=overwrite))
        progress(f"{paths[-1]}: {len(ls.levels)} levels ({ls.description})")
    return paths
