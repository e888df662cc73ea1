"""d3rlpy's PRDC on one of our Minari datasets, run inside d3rlpy's own interpreter (d3rlpy
2.8 pins gymnasium 1.0.0; ShiftRL's Ray pins 1.2.2). Imports nothing from ShiftRL.

    <d3rlpy python> benchmarks/d3rlpy_worker.py DATASET_DIR OUT_DIR --steps N --seed S

Reads main_data.hdf5 with h5py and builds d3rlpy's MDPDataset by hand, dropping each
episode's last observation (d3rlpy's get_minari misaligns observations after the first
episode, ../shared/specs/offline-prdc.md). Settings match ours: standardised observations,
actions min-max scaled to [-1, 1] (d3rlpy's policy is tanh in [-1, 1]), alpha and beta given.
Writes OUT_DIR/d3rlpy.json (fit seconds, gradient steps/s, nearest-neighbour seconds per
256-query batch) and OUT_DIR/policy.pt (TorchScript; ShiftRL evaluates it in its own env).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def load(path: Path):
    import h5py

    data = path / "data" if (path / "data").is_dir() else path
    meta = json.loads((data / "metadata.json").read_text())
    obs, act, rew, term, tout = [], [], [], [], []
    with h5py.File(data / "main_data.hdf5", "r") as f:
        names = sorted((k for k in f if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
        for k in names:
            g = f[k]
            T = len(g["actions"])
            obs.append(g["observations"][:T])  # drop the T+1-th observation
            act.append(g["actions"][()])
            rew.append(g["rewards"][()])
            term.append(g["terminations"][()])
            tout.append(g["truncations"][()] & ~g["terminations"][()])
            if not (term[-1][-1] or tout[-1][-1]):
                tout[-1][-1] = True  # every episode ends (d3rlpy needs an end flag)
    space = json.loads(meta["action_space"])
    return tuple(np.concatenate(x) for x in (obs, act, rew, term, tout)), space


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--alpha", type=float, default=2.5)
    ap.add_argument("--beta", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import d3rlpy
    import torch

    torch.set_num_threads(args.threads)
    d3rlpy.seed(args.seed)
    (obs, act, rew, term, tout), space = load(Path(args.dataset))
    dataset = d3rlpy.dataset.MDPDataset(obs, act, rew, term.astype(np.float32), tout.astype(np.float32))
    low, high = np.asarray(space["low"], np.float32), np.asarray(space["high"], np.float32)
    algo = d3rlpy.algos.PRDCConfig(
        alpha=args.alpha,
        beta=args.beta,
        observation_scaler=d3rlpy.preprocessing.StandardObservationScaler(),
        action_scaler=d3rlpy.preprocessing.MinMaxActionScaler(minimum=low, maximum=high),
    ).create(device="cpu:0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    algo.fit(
        dataset,
        n_steps=args.steps,
        n_steps_per_epoch=args.steps,
        show_progress=False,
        save_interval=10**9,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
    )
    fit = time.perf_counter() - t0
    # the nearest-neighbour query alone: 256 keys near the data (as late in training)
    rng = np.random.default_rng(0)
    X = algo._nbsr._fit_X
    keys = X[rng.integers(0, len(X), 256)] + rng.normal(0, 0.05, (256, X.shape[1]))
    t1 = time.perf_counter()
    for _ in range(5):
        algo._nbsr.kneighbors(keys, n_neighbors=1, return_distance=False)
    nn = (time.perf_counter() - t1) / 5
    algo.save_policy(str(out / "policy.pt"))
    (out / "d3rlpy.json").write_text(
        json.dumps(
            {
                "d3rlpy": d3rlpy.__version__,
                "steps": args.steps,
                "fit_seconds": fit,
                "steps_per_s": args.steps / fit,
                "nn_seconds_per_batch": nn,
                "transitions": len(act),
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
