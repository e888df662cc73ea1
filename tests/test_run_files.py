"""Run directories and the files inside them: distinct directories for runs started in
the same second, and corrupt checkpoints, results or arrays reported by file name."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from trainers.config import ConfigError, load_config
from trainers.run import execute_run, prepare_runs

ROOT = Path(__file__).resolve().parents[1]


def _prepare(runs_dir: str) -> str:
    cfg = load_config(ROOT / "configs/r2pvi/linear_mdp.yaml", [f"runs_dir={runs_dir}"])
    return str(prepare_runs(cfg, 1)[0])


def test_runs_started_in_the_same_second_get_distinct_directories(tmp_path):
    cfg = load_config(ROOT / "configs/r2pvi/linear_mdp.yaml", [f"runs_dir={tmp_path}"])
    dirs = prepare_runs(cfg, 1) + prepare_runs(cfg, 1) + prepare_runs(cfg, 1)
    with ProcessPoolExecutor(2) as pool:  # two processes racing for the same name
        dirs += [Path(d) for d in pool.map(_prepare, [str(tmp_path)] * 6)]
    names = [d.name for d in dirs]
    assert len(set(names)) == len(names) == 9
    assert all((d / "config.yaml").is_file() for d in dirs)


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    cfg = load_config(
        None,
        [
            "agent=ppo",
            "env.id=ShiftedCartPole-v0",
            "agent_config.env_steps=256",
            "agent_config.n_steps=32",
            "agent_config.num_epochs=1",
            "eval.episodes=2",
            f"runs_dir={tmp}",
        ],
    )
    (run,) = prepare_runs(cfg, 1)
    execute_run(run, 0)
    return run


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "trainers", *args], capture_output=True, text=True, timeout=180)


def test_a_corrupt_torch_checkpoint_is_named(ppo_run, tmp_path):
    import shutil

    run = tmp_path / ppo_run.name
    shutil.copytree(ppo_run, run)
    ckpt = run / "checkpoints" / "state.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:200])  # truncated
    out = _cli("evaluate", str(run), "--episodes", "1")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"shiftrl: error: checkpoint {ckpt}: unreadable or corrupt" in out.stderr
    with pytest.raises(ConfigError, match=f"checkpoint {ckpt}: unreadable or corrupt"):
        execute_run(run, 0)  # resuming names it too


def test_a_corrupt_results_json_is_named(ppo_run, tmp_path):
    import shutil

    run = tmp_path / ppo_run.name
    shutil.copytree(ppo_run, run)
    (run / "results.json").write_text('{"kind": "learning_curve", "hist')
    out = _cli("compare", str(run), "--out", str(tmp_path / "cmp"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{run / 'results.json'}: corrupt or truncated JSON" in out.stderr


def test_corrupt_r2pvi_checkpoints_are_named(tmp_path):
    cfg = load_config(
        ROOT / "configs/r2pvi/linear_mdp.yaml",
        ["agent_config.replications=2", "eval.episodes=5", f"runs_dir={tmp_path}"],
    )
    (run,) = prepare_runs(cfg, 1)
    execute_run(run, 0)
    npz = run / "checkpoints" / "rep_0001.npz"
    npz.write_bytes(npz.read_bytes()[:-64])
    out = _cli("evaluate", str(run), "--episodes", "2")
    assert out.returncode == 2 and f"checkpoint {npz}: unreadable or corrupt" in out.stderr, out.stderr[-1500:]
    rec = run / "checkpoints" / "rep_0000.json"
    rec.write_text(rec.read_text()[:20])
    (run / "results.json").unlink()
    with pytest.raises(ConfigError, match=f"{rec}: unreadable or corrupt JSON"):
        execute_run(run, 0)
