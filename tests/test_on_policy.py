"""The on-policy loop end to end: Tune trial, TensorBoard tags read back from the event
files, checkpoints, resume, and every command (evaluate, compare, render) on the run;
levels as training data; a small learning test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tbread import tb_tags, tb_texts

ROOT = Path(__file__).resolve().parents[1]


TINY = [
    "agent=ppo",
    "env.id=SMAClike-3m-v0",
    "agent_config.env_steps=1200",
    "agent_config.n_steps=50",
    "agent_config.num_epochs=1",
    "agent_config.checkpoint_every=1",
    "ray.envs_per_worker=6",
    "ray.num_workers=1",
    "eval.episodes=4",
    "eval.every=600",
]


@pytest.mark.ray
@pytest.mark.slow
def test_ppo_trains_through_tune_logs_the_documented_tags_and_every_command_works(ray_local, tmp_path):
    from trainers.commands.compare import compare
    from trainers.commands.evaluate import evaluate
    from trainers.commands.render import render_gif
    from trainers.run import train

    (run,) = train(None, [*TINY, f"runs_dir={tmp_path}"])
    res = json.loads((run / "results.json").read_text())
    assert [h["iteration"] for h in res["history"]] == [1, 2, 3, 4]
    assert [h["env_steps"] for h in res["history"]] == [300, 600, 900, 1200]
    tags = tb_tags(run)
    for tag in (
        "charts/episodic_return",
        "charts/SPS",
        "charts/win_rate",
        "charts/episode_length",
        "losses/policy",
        "losses/value",
        "losses/entropy",
        "losses/approx_kl",
        "eval/greedy/return",
        "eval/greedy/win_rate",
    ):
        assert tag in tags, (tag, sorted(tags))
    assert [s for s, _ in tags["losses/policy"]] == [300, 600, 900, 1200]  # env steps on the x-axis
    assert [s for s, _ in tags["eval/greedy/return"]] == [600, 1200]
    assert all(np.isfinite(v) for s in ("losses/policy", "losses/value") for _, v in tags[s])
    assert "config/text_summary" in tb_texts(run)
    assert list((run / "tb" / "main").glob("events.out.tfevents.*"))

    ev = evaluate(str(run), episodes=6)
    assert ev["kind"] == "eval_points" and ev["points"]["greedy"]["return"]["n"] == 6
    lo, hi = ev["points"]["greedy"]["return"]["ci95"]
    assert lo <= ev["points"]["greedy"]["return"]["mean"] <= hi
    with pytest.raises(Exception, match="has no shift parameter"):
        evaluate(str(run), shift="q=0,1")
    summary = render_gif("SMAClike-3m-v0", str(run), 0, str(tmp_path / "ppo.gif"))
    assert summary["steps"] > 0 and (tmp_path / "ppo.gif").stat().st_size > 0

    # resume: refused with changed overrides unless forced; continues the counters
    with pytest.raises(Exception, match=r"overrides change \['agent_config.env_steps'\]"):
        train(None, ["agent_config.env_steps=1800"], resume=str(run))
    train(None, ["agent_config.env_steps=1800"], resume=str(run), force=True)
    res2 = json.loads((run / "results.json").read_text())
    assert [h["env_steps"] for h in res2["history"]] == [300, 600, 900, 1200, 1500, 1800]
    assert res2["history"][:4] == res["history"]
    assert "resuming" in (run / "progress.log").read_text()

    (other,) = train(None, [*TINY, f"runs_dir={tmp_path}", "agent=mappo", "seed=1"])
    (ev_file := tmp_path / "ev.json").write_text(json.dumps(ev))
    md = compare([str(run), str(other), str(ev_file)], str(tmp_path / "cmp"))
    assert "| run | env steps | return (last 100 episodes) | win rate |" in md
    assert (tmp_path / "cmp" / "curves.png").stat().st_size > 1000
    assert (tmp_path / "cmp" / "per_point.png").stat().st_size > 1000


def test_training_on_a_level_set_spreads_resets_over_its_levels(tmp_path):
    """Levels as data: a level-set file of ShiftedCartPole shifts as training levels; the
    uniform sampler sees every level and the evaluation reports one result per level."""
    import envs
    from envs.levels import save_level_set, shift_levels
    from trainers.commands.evaluate import evaluate
    from trainers.config import load_config
    from trainers.run import execute_run, prepare_runs

    levels = save_level_set(
        shift_levels(envs.spec("ShiftedCartPole-v0"), {"length": [0.5, 2.0, 4.0]}), tmp_path / "l.json"
    )
    cfg = load_config(
        None,
        [
            "agent=ppo",
            "env.id=ShiftedCartPole-v0",
            f"env.levels={levels}",
            f"eval.levels={levels}",
            "eval.episodes=3",
            "agent_config.env_steps=2048",
            "agent_config.n_steps=64",
            "agent_config.num_epochs=1",
            "agent_config.recurrent=none",
            "ray.envs_per_worker=8",
            f"runs_dir={tmp_path}",
        ],
    )
    (run,) = prepare_runs(cfg, 1)
    res = execute_run(run, 0)
    counts = res["level_sampler"]["counts"]
    assert len(counts) == 3 and min(counts) > 0
    assert list(res["eval"]["points"]) == ["length=0.5", "length=2.0", "length=4.0"]  # the level names
    ev = evaluate(str(run), episodes=2)
    assert ev["set"] == "levels" and len(ev["points"]) == 3


@pytest.mark.slow
def test_ppo_learns_cartpole_far_beyond_random_play(tmp_path):
    """Random play balances the pole for about 22 steps; PPO (MLP, cleanrl-like settings,
    the shipped config) must reach a greedy return of 200 within 40k env steps (measured:
    about 350 in about 60 s on 2 cores)."""
    from trainers.config import load_config
    from trainers.run import execute_run, prepare_runs

    cfg = load_config(
        ROOT / "configs/ppo/cartpole.yaml",
        ["agent_config.env_steps=40000", "eval.shifts={length: [1.0]}", f"runs_dir={tmp_path}"],
    )
    (run,) = prepare_runs(cfg, 1)
    res = execute_run(run, 0)
    assert res["eval"]["points"]["length=1"]["return"]["mean"] >= 200, res["eval"]


def test_cli_errors_are_one_line(tmp_path):
    """Every error a user can cause ends in one `shiftrl: error: ...` line, no traceback."""
    cases = [
        (
            ["collect", "--env", "SMAClike-3m-v0", "--out", str(tmp_path / "d")],
            "collect: 'SMAClike-3m-v0' is a pettingzoo",
        ),
        (
            ["train", "configs/r2pvi/linear_mdp.yaml", "--set", "ray.num_workers=64"],
            "ray.num_workers=64 needs 65 CPUs per trial",
        ),
        (
            [
                "train",
                "configs/r2pvi/linear_mdp.yaml",
                "--set",
                "agent_config.data.dataset=/junk/path",
                "--set",
                "agent_config.replications=1",
            ],
            "agent_config.data.dataset: /junk/path is not a dataset directory",
        ),
        (["evaluate", str(tmp_path)], "not a ShiftRL run directory"),
        (["render", "SMAClike-3m-v0", "--policy", str(tmp_path)], "not a ShiftRL run directory"),
        (["compare", str(tmp_path)], "no results.json"),
        (["train", "configs/r2pvi/linear_mdp.yaml", "--set", "agent=nope"], "unknown agent 'nope'"),
    ]
    for args, message in cases:
        out = subprocess.run(
            [sys.executable, "-m", "trainers", *args], capture_output=True, text=True, timeout=180, cwd=ROOT
        )
        lines = [x for x in out.stderr.strip().splitlines() if not x.startswith("20")]  # Ray's own log lines
        assert out.returncode == 2, (args, out.stderr[-2000:])
        assert "Traceback" not in out.stderr, (args, out.stderr[-2000:])
        assert lines and lines[-1].startswith("shiftrl: error:") and message in lines[-1], (args, out.stderr[-2000:])


@pytest.mark.slow
def test_ppo_learns_to_win_smaclike_3m(tmp_path):
    """The shipped 3m config (recurrent IPPO with value normalisation) on our runtime: random
    play wins 0 of 200 battles against the heuristic AI; after 60k env steps the greedy
    policy must win at least 20% of 32 fresh battles (measured: 0.44 and 0.41 on seeds 0
    and 1, about 55 s each on 2 cores)."""
    from trainers.config import load_config
    from trainers.run import execute_run, prepare_runs

    cfg = load_config(
        ROOT / "configs/ppo/smaclike_3m.yaml",
        ["agent_config.env_steps=60000", "eval.every=0", "eval.episodes=32", f"runs_dir={tmp_path}"],
    )
    (run,) = prepare_runs(cfg, 1)
    res = execute_run(run, 0)
    assert res["eval"]["overall"]["win_rate"]["mean"] >= 0.2, res["eval"]["overall"]
