"""DRED's level generator on Cave Escape: how many of its levels are solvable, and how hard.

    python benchmarks/dred_generator.py [--levels levels/cave/train.json] [--n 3600] [--seed 0]

Trains DRED's level VAE on the training levels exactly as a ``dred`` run does (the options
of configs/dred/cave.yaml, ``agents.dred.generators.train_vae``), then generates ``--n``
levels by DRED's generation step (pairs of training levels, slerp between encoder means,
z = mu + sigma eps, decoding by sampling with masks), once with each start mask:
``reachable`` (the default: the start on a navigable cell from which the goal can be
reached) and ``navigable`` (the spec's mask: any navigable cell but the goal). The same run
measures the anchors: the training levels themselves, EL-DRED's 5 random edits of them,
and DR's random levels. Per row: solvable fraction (BFS from the start to the goal), the
median start-goal shortest path over the solvable ones and the fraction solvable within 3
steps (near-trivial levels). Target (the DRED issue): at least 90% of the VAE's levels
solvable. Writes <out>/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default=str(ROOT / "levels" / "cave" / "train.json"))
    ap.add_argument("--config", default=str(ROOT / "configs" / "dred" / "cave.yaml"))
    ap.add_argument("--n", type=int, default=3600, help="generated levels per start mask")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vae-epochs", type=int, default=None, help="override the config's vae_epochs (quick looks)")
    ap.add_argument("--name", default="dred_generator")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    if args.n < 36:
        sys.exit(f"--n must be at least one generation cycle (36 levels), got {args.n}")
    import torch
    import yaml

    torch.set_num_threads(1)
    from agents.dred.config import DREDConfig
    from agents.dred.generators import CaveCodec, LevelVAE, train_vae, vae_fidelity, vae_interpolations
    from envs.levels import load_level_set
    from trainers.io import atomic_write_json, atomic_write_text

    levels_path = Path(args.levels)
    if not levels_path.is_file():
        sys.exit(
            f"{levels_path}: no such level set (make it with `shiftrl make-levels cave --out {levels_path.parent}`)"
        )
    data = [dict(p) for p in load_level_set(levels_path).levels]
    options = (yaml.safe_load(Path(args.config).read_text()) or {}).get("agent_config") or {}
    if args.vae_epochs is not None:
        options["vae_epochs"] = args.vae_epochs
    cfg = DREDConfig(**{k: v for k, v in options.items() if k in DREDConfig.__dataclass_fields__})
    codec = CaveCodec(15, "reachable")
    torch.manual_seed(args.seed)
    vae = LevelVAE(codec, cfg.vae_latent, cfg.vae_hidden)
    load_before = os.getloadavg()[0]
    t0 = time.time()
    print(f"training the level VAE on {len(data)} levels ({cfg.vae_epochs} epochs)", flush=True)
    train_vae(vae, data, cfg.vae_epochs, cfg.vae_batch, cfg.vae_lr, cfg.vae_beta, args.seed, progress=print)
    train_s = time.time() - t0
    fid = vae_fidelity(vae, data)
    rows: list[dict[str, Any]] = [{"source": "training levels (anchor)", **codec.describe(data), "levels": len(data)}]
    for mask in ("reachable", "navigable"):
        vae.codec = CaveCodec(15, mask)  # the mask acts only when decoding: the same trained VAE
        rng = np.random.default_rng([args.seed, 1])
        out: list[dict[str, Any]] = []
        while len(out) < args.n:
            out += vae_interpolations(vae, data, min(36, args.n - len(out)), rng)
        rows.append({"source": f"DRED VAE, start mask {mask}", **vae.codec.describe(out), "levels": len(out)})
        print(rows[-1], flush=True)
    rng = np.random.default_rng([args.seed, 2])
    edits = [codec.edit(data[i], cfg.n_edits, rng) for i in rng.integers(len(data), size=args.n)]
    rows.append({"source": f"EL-DRED, {cfg.n_edits} edits", **codec.describe(edits), "levels": len(edits)})
    rand = [codec.random(rng) for _ in range(args.n)]
    rows.append({"source": "DR random levels", **codec.describe(rand), "levels": len(rand)})
    vae_rows = [r for r in rows if r["source"].startswith("DRED VAE")]
    load = [load_before, os.getloadavg()[0]]
    result = {
        "name": args.name,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "levels_file": str(levels_path),
        "seed": args.seed,
        "vae": {
            "epochs": cfg.vae_epochs,
            "latent": cfg.vae_latent,
            "hidden": cfg.vae_hidden,
            "train_seconds": round(train_s, 1),
            "reconstruction": fid,
        },
        "load_1min_before_after": load,
        "target": "DRED VAE: >= 90% of generated levels solvable",
        "target_met": {r["source"]: r["solvable"] >= 0.9 for r in vae_rows},
        "rows": rows,
    }
    md = [
        f"# {args.name}: how solvable and how hard DRED's generated Cave Escape levels are",
        "",
        f"Measured {result['date']} on {result['machine']}, seed {args.seed}. The level VAE trained "
        f"{cfg.vae_epochs} epochs on {len(data)} training levels ({train_s:.0f} s) as a dred run does; it "
        f"reconstructs {fid['layout']:.0%} of cells (a per-cell guess: {fid['layout_guess']:.0%}), the goal of "
        f"{fid['goal']:.0%} and the start of {fid['start']:.0%} of the levels. {args.n} levels per row; the "
        f"training levels are the anchor. Load average (1 min) {load[0]:.2f} before, {load[1]:.2f} after, on "
        f"{os.cpu_count()} cores (it affects only the seconds).",
        "",
        "| levels | solvable | median start-goal path | solvable within 3 steps |",
        "|---|---|---|---|",
    ]
    md += [f"| {r['source']} | {r['solvable']:.1%} | {r['path_median']:.0f} | {r['path_le3']:.1%} |" for r in rows]
    md += [""] + [
        f"Target (>= 90% of the VAE's levels solvable), start mask {r['source'].rsplit(' ', 1)[-1]}: "
        f"{'met' if r['solvable'] >= 0.9 else 'missed'} ({r['solvable']:.1%})."
        for r in vae_rows
    ]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / f"{args.name}.json", result)
    atomic_write_text(out_dir / f"{args.name}.md", "\n".join(md) + "\n")
    print("\n".join(md))
    print(json.dumps({"solvable": {r["source"]: r["solvable"] for r in rows}}))


if __name__ == "__main__":
    main()
