"""RLlib's own CQL, IQL and BC on the suite's datasets (trainers/loops/rllib_offline.py):
the conversion to RLlib's columns, and runs through Tune with the offline tags, evaluation
over the shift grid, checkpoints and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tbread import tb_tags

from envs import datasets
from trainers.config import load_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "pendulum" / "medium-replay-v0"


def test_columns_hold_the_dataset_transitions_with_actions_in_unit_range(tmp_path):
    import pyarrow.parquet as pq

    from trainers.loops.rllib_offline import action_bounds, write_columns

    cfg = load_config(ROOT / "configs" / "rllib_bc" / "pendulum-medium.yaml", [f"agent_config.dataset={FIXTURE}"])
    ds = datasets.load(FIXTURE)
    tr = ds.transitions()
    low, high = action_bounds(cfg)
    assert np.allclose(low, -2.0) and np.allclose(high, 2.0)
    key = datasets.fingerprint(FIXTURE)
    out = write_columns(ds, tmp_path / "cols", low, high, key)
    assert sorted(p.name for p in out.iterdir()) == ["part-0.parquet"]
    table = pq.read_table(out).to_pydict()
    np.testing.assert_allclose(np.array(table["obs"]), tr["observations"], rtol=1e-6)
    np.testing.assert_allclose(np.array(table["new_obs"]), tr["next_observations"], rtol=1e-6)
    np.testing.assert_allclose(np.array(table["actions"]) * 2.0, tr["actions"].reshape(len(tr["rewards"]), -1), 1e-6)
    assert np.abs(np.array(table["actions"])).max() <= 1.0
    np.testing.assert_array_equal(table["terminateds"], tr["terminals"])
    np.testing.assert_array_equal(table["truncateds"], tr["timeouts"])
    eps = np.array(table["eps_id"])
    assert len(np.unique(eps)) == ds.n_episodes and np.all(np.diff(eps) >= 0)
    # the same source file is not converted twice; another one replaces the conversion
    stamp = (out / "part-0.parquet").stat().st_mtime_ns
    write_columns(ds, tmp_path / "cols", low, high, key)
    assert (out / "part-0.parquet").stat().st_mtime_ns == stamp
    write_columns(ds, tmp_path / "cols", low, high, "another dataset")
    assert json.loads((tmp_path / "cols" / "source.json").read_text())["source"] == "another dataset"


def test_config_errors_name_the_field():
    from trainers.config import ConfigError

    with pytest.raises(ConfigError, match=r"agent 'rllib_bc' is defined by algorithm='bc'; got 'sac'"):
        load_config(None, ["agent=rllib_bc", "agent_config.algorithm=sac", f"agent_config.dataset={FIXTURE}"])
    with pytest.raises(ConfigError, match=r"training: \['gamma'\] have their own fields"):
        load_config(None, ["agent=rllib_iql", "agent_config.training={gamma: 0.9}", f"agent_config.dataset={FIXTURE}"])


TINY = [
    f"agent_config.dataset={FIXTURE}",
    "agent_config.updates_per_iteration=100",
    "agent_config.checkpoint_every=100",
    "eval.every=200",
    "eval.episodes=2",
]


@pytest.mark.ray
@pytest.mark.slow
def test_rllib_bc_runs_on_gradient_steps_evaluates_the_shift_grid_and_resumes(ray_local, tmp_path):
    from trainers.commands.evaluate import evaluate
    from trainers.run import train

    cfg = str(ROOT / "configs" / "rllib_bc" / "pendulum-medium.yaml")
    (run,) = train(cfg, [*TINY, "agent_config.gradient_steps=400", f"runs_dir={tmp_path}"])
    res = json.loads((run / "results.json").read_text())
    assert res["x_axis"] == "gradient_steps" and [h["gradient_steps"] for h in res["history"]] == [200, 400]
    assert set(res["eval"]["points"]) == {"m=0.5", "m=1", "m=2"}
    assert res["eval"]["normalized_score"] is not None
    tags = tb_tags(run)
    for tag in ("charts/SPS", "eval/greedy/return", "eval/greedy/normalized_score", "eval/m_2/return"):
        assert tag in tags, (tag, sorted(tags))
    losses = [t for t in tags if t.startswith("losses/")]
    assert losses and all(np.isfinite(v) for t in losses for _, v in tags[t]), sorted(tags)
    assert [s for s, _ in tags["losses/policy_loss"]] == [100, 200, 300, 400]  # gradient steps on the x-axis
    assert (run / "rllib_data" / "parquet" / "part-0.parquet").is_file() and (
        run / "checkpoints" / "policy.pt"
    ).is_file()
    # `shiftrl evaluate` reloads policy.pt (weights_only) and reproduces the last evaluation
    assert evaluate(str(run))["overall"] == res["eval"]["overall"]
    from trainers.commands.compare import compare

    md = compare([str(run)], str(tmp_path / "cmp"))  # its x-axis is gradient steps, said so
    assert f"| {run.name} | 400 gradient steps |" in md and "m=2" in md

    (again,) = train(None, ["agent_config.gradient_steps=600"], resume=str(run), force=True)
    res2 = json.loads((again / "results.json").read_text())
    assert [h["gradient_steps"] for h in res2["history"]] == [200, 400, 600]
    assert "resuming" in (run / "progress.log").read_text()


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("agent", ["rllib_cql", "rllib_iql"])
def test_rllib_cql_and_iql_train_through_the_offline_api(ray_local, tmp_path, agent):
    """Two short iterations each: RLlib's learners accept our columns (finite losses) and the
    greedy policy is evaluated on the grid - the check that RLlib's API has not moved."""
    from trainers.run import train

    cfg = str(ROOT / "configs" / agent / "pendulum-medium.yaml")
    over = [*TINY, "agent_config.updates_per_iteration=5", "agent_config.gradient_steps=10", "eval.every=10"]
    (run,) = train(cfg, [*over, f"runs_dir={tmp_path}"])
    res = json.loads((run / "results.json").read_text())
    assert res["history"][-1]["gradient_steps"] == 10
    losses = {k: v for k, v in res["history"][-1].items() if "loss" in k}
    assert losses and all(np.isfinite(v) for v in losses.values()), res["history"][-1]
    assert np.isfinite(res["eval"]["overall"]["return"]["mean"])


def test_a_budget_that_is_not_whole_iterations_is_refused():
    from trainers.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="gradient_steps=1200 must be a multiple of updates_per_iteration=500"):
        load_config(ROOT / "configs/rllib_bc/pendulum-medium.yaml", ["agent_config.gradient_steps=1200"])


@pytest.mark.ray
@pytest.mark.slow
def test_an_in_process_rllib_run_starts_its_own_ray_beside_a_stale_cluster_record(tmp_path, beside_stale_ray_record):
    """A run executed in-process (the benchmarks' pool does this, outside Tune) used to let
    RLlib start Ray by a plain ray.init(), which attached to the cluster named in
    $RAY_TMPDIR/ray/ray_current_cluster and retried forever once it was gone (three runs
    hung here). The loop starts our embedded Ray first."""
    overrides = [*TINY, "agent_config.gradient_steps=200", "eval.every=0", "eval.shifts={}"]
    script = (
        "import sys\nfrom trainers.config import load_config, dump_config\nfrom trainers.run import execute_run\n"
        "from pathlib import Path\nrun = Path(sys.argv[1])\nrun.mkdir()\n"
        f"cfg = load_config({str(ROOT / 'configs' / 'rllib_bc' / 'pendulum-medium.yaml')!r}, {overrides!r})\n"
        "(run / 'config.yaml').write_text(dump_config(cfg))\n"
        "print('STEPS', execute_run(run, num_workers=0)['history'][-1]['gradient_steps'])\n"
    )
    proc = beside_stale_ray_record(script, str(tmp_path / "run"), timeout=300)
    assert "STEPS 200" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
