"""Ray tier: rollout actors (replacement on crash), fail-fast resources, train/kill/resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tbread import tb_tags, tb_texts

import envs
from trainers.policies import RandomPolicy
from trainers.rollout import Job, RolloutPool
from trainers.runtime import LOCAL_ONLY_ENV

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.ray


def _jobs(n=12):
    return [Job(RandomPolicy(16), 200, seed, {"q": 0.5}, returns_only=True) for seed in range(n)]


def test_killed_rollout_actor_is_replaced_and_results_are_unchanged(ray_local):
    spec = envs.spec("RobustLinearMDP-v0")
    expected = RolloutPool(spec, num_workers=0).map(_jobs())
    pool = RolloutPool(spec, num_workers=2)
    victims = pool.worker_pids()
    killed = []

    def kill_one(i, _):
        if not killed:
            os.kill(victims[0], signal.SIGKILL)  # a real crash of a worker process mid-run
            killed.append(victims[0])

    try:
        got = pool.map(_jobs(), on_result=kill_one)
        assert killed and pool.replacements >= 1
        assert victims[0] not in pool.worker_pids()
        for a, b in zip(expected, got):
            np.testing.assert_array_equal(a, b)
    finally:
        pool.close()


def test_embedded_ray_starts_its_own_instance_beside_a_stale_cluster_record(beside_stale_ray_record):
    """Ray's ray.init() without an address attaches to the cluster named in
    $RAY_TMPDIR/ray/ray_current_cluster (the last one started on the machine) and retries
    forever when it is gone: a stale record, as a killed test cluster leaves, hung a run
    here. The embedded default must start its own instance with the CPUs it asked for."""
    script = (
        "import ray\nfrom trainers.runtime import init_ray\n"
        "print('MODE', init_ray(num_cpus=1), int(ray.cluster_resources()['CPU']))\nray.shutdown()\n"
    )
    proc = beside_stale_ray_record(script, timeout=180)
    assert "MODE embedded 1" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


LISTENING_SCRIPT = r"""
import json, os, socket, struct
import ray
from ray._private import ray_constants
from trainers.runtime import LOCAL_ONLY_ENV, init_ray

def tree(root):  # the driver and every process below it (GCS, raylet, workers, agents)
    kids = {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            kids.setdefault(int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
        except OSError:
            pass
    out, todo = [], [root]
    while todo:
        out.append(todo.pop())
        todo += kids.get(out[-1], [])
    return out

def listening(pids):  # (address, port) of every TCP socket in LISTEN state these pids hold
    inodes = set()
    for p in pids:
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                hexip, port = f[1].split(":")
                words = struct.unpack(">" + "I" * (len(hexip) // 8), bytes.fromhex(hexip))
                raw = b"".join(struct.pack("<I", w) for w in words)  # /proc prints host-order words
                found.append([socket.inet_ntop(family, raw), int(port, 16)])
    return found

init_ray(num_cpus=1)
ray.get(ray.remote(lambda: 1).remote())  # a worker process with its own server
out = {
    "listening": listening(tree(os.getpid())),
    "node": ray.nodes()[0]["NodeManagerAddress"],
    "env_restored": LOCAL_ONLY_ENV not in os.environ,  # unset before init_ray
    "flag_restored": ray_constants.ENABLE_RAY_CLUSTER is True,
}
ray.shutdown()
print("RESULT " + json.dumps(out))
"""


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads Linux's /proc/net/tcp")
def test_embedded_ray_listens_on_loopback_only(script_result):
    """The standard: Ray's servers bound to 127.0.0.1 by default. A plain local ray.init() on
    Linux takes the machine's routable IP and its GCS, raylet and workers listen on every
    interface (measured: 0.0.0.0, :: and the node IP); the embedded Ray must not, and must
    leave no trace of its one-node switch for a later attach to a real cluster."""
    out = script_result(LISTENING_SCRIPT, env={LOCAL_ONLY_ENV: None}, timeout=180)  # unset: Ray's default
    hosts = {host for host, _ in out["listening"]}
    assert len(out["listening"]) >= 3, out  # at least GCS, raylet and the worker: the scan saw them
    assert hosts <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, out
    assert out["node"] == "127.0.0.1"
    assert out["flag_restored"] and out["env_restored"], out


def test_impossible_worker_request_fails_fast(ray_local):
    from trainers.runtime import ResourceError, plan

    t = time.time()
    with pytest.raises(ResourceError, match=r"ray.num_workers=5 needs 6 CPUs per trial .* the cluster has 2"):
        plan(1, 5)
    assert time.time() - t < 5
    layout = plan(4, None)
    assert layout.concurrent_trials == 2 and layout.workers_per_trial == 0
    assert plan(1, None).workers_per_trial == 1


def _train_cmd(*args):
    return [sys.executable, "-m", "trainers", "train", *args]


def test_killed_run_resumes_from_its_checkpoints_and_matches_an_uninterrupted_run(tmp_path):
    cfg = ROOT / "configs/r2pvi/linear_mdp.yaml"
    sets = [
        "--set",
        f"runs_dir={tmp_path / 'runs'}",
        "--set",
        "agent_config.replications=40",
        "--set",
        "eval.episodes=200",
    ]
    proc = subprocess.Popen(
        _train_cmd(str(cfg), *sets),
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    run_dir = None
    while time.time() < deadline:
        dirs = list((tmp_path / "runs").glob("RobustLinearMDP-v0__r2pvi__0__*"))
        if dirs and len(list((dirs[0] / "checkpoints").glob("rep_*.json"))) >= 3:
            run_dir = dirs[0]
            break
        if proc.poll() is not None:
            pytest.fail(f"train exited early:\n{proc.stdout.read()}")
        time.sleep(0.05)
    assert run_dir is not None, "no checkpoint appeared"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # Ray workers may outlive the process group by a moment (they exit when their raylet
    # is gone): wait until the checkpoint count is stable before counting.
    n_before, stable_since = -1, time.time()
    while time.time() - stable_since < 3:
        n = len(list((run_dir / "checkpoints").glob("rep_*.json")))
        if n != n_before:
            n_before, stable_since = n, time.time()
        time.sleep(0.2)
    assert 3 <= n_before < 40 and not (run_dir / "results.json").exists()

    out = subprocess.run(
        _train_cmd("--resume", str(run_dir)), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"resuming {run_dir.name}: {n_before}/40 replications" in (run_dir / "progress.log").read_text()
    resumed = json.loads((run_dir / "results.json").read_text())
    assert resumed["replications"] == 40

    # The same config run in-process from scratch gives the same numbers (seeds never depend
    # on workers, crashes or resumption).
    from trainers.run import execute_run

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(run_dir / "config.yaml", fresh / "config.yaml")
    clean = execute_run(fresh, num_workers=0)
    for label, m in clean["methods"].items():
        np.testing.assert_allclose(resumed["methods"][label]["mean"], m["mean"], rtol=0, atol=1e-12)

    # evaluate and compare work on the finished run.
    ev = subprocess.run(
        [sys.executable, "-m", "trainers", "evaluate", str(run_dir), "--shift", "q=0,1", "--exact"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert ev.returncode == 0, ev.stderr
    res = json.loads(ev.stdout)
    assert res["shifts"] == [0.0, 1.0] and set(res["methods"]) == set(resumed["methods"])
    cmp_out = tmp_path / "cmp"
    cmp = subprocess.run(
        [sys.executable, "-m", "trainers", "compare", str(run_dir), str(fresh), "--out", str(cmp_out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert cmp.returncode == 0, cmp.stderr
    assert (cmp_out / "comparison.png").stat().st_size > 1000
    assert "| run/method | q=0 |" in (cmp_out / "comparison.md").read_text()
    assert list((cmp_out / "tb").rglob("events.out.tfevents.*"))
    tags = tb_tags(run_dir)
    assert {"robust/return", "robust/return_std", "charts/fit_seconds"} <= set(tags)
    assert [s for s, _ in tags["robust/return"]][:11] == [round(1000 * q) for q in np.linspace(0, 1, 11)]
    fit_terms = [t for t in tags if t.startswith("losses/")]  # every method's fit diagnostics
    assert {f"losses/{m}/mean_next_value" for m in resumed["methods"]} <= set(fit_terms)
    assert all(np.isfinite(v) for t in fit_terms for _, v in tags[t])
    assert "config/text_summary" in tb_texts(run_dir)


def test_collect_writes_a_valid_dataset_through_ray(ray_local, tmp_path):
    from envs import datasets
    from trainers.commands.collect import collect

    def run(name, workers):
        return collect(
            "AmericanPutOption-v0",
            str(tmp_path / name),
            30,
            policy="constant:0",
            seed=3,
            shift={"p_up": 0.4},
            num_workers=workers,
            chunk=7,
        )

    ds = datasets.load(run("put", 2))
    assert ds.n_episodes == 30 and (ds.episodes.lengths == 20).all()
    assert ds.metadata["shift"] == {"p_up": 0.4} and ds.metadata["env_id"] == "AmericanPutOption-v0"
    again = run("put2", 1)  # another worker count, the same data
    np.testing.assert_array_equal(datasets.load(again).episodes.observations, ds.episodes.observations)


def test_seeds_run_as_separate_tune_trials(ray_local, tmp_path):
    from trainers.run import train

    dirs = train(
        str(ROOT / "configs/r2pvi/linear_mdp.yaml"),
        ["agent_config.replications=2", f"runs_dir={tmp_path}", "eval.episodes=20"],
        seeds=2,
    )
    assert [d.name.split("__")[2] for d in dirs] == ["0", "1"]
    res = [json.loads((d / "results.json").read_text()) for d in dirs]
    assert [r["seed"] for r in res] == [0, 1]
    assert res[0]["methods"]["pevi"]["mean"] != res[1]["methods"]["pevi"]["mean"]


def test_a_stalled_call_raises_instead_of_hanging():
    """The deadline around RLlib's training iterations: a value or an error passes through,
    a call that never returns becomes StalledError after the deadline (not a hang), and 0
    means no deadline."""
    import threading

    from trainers.runtime import StalledError, with_deadline

    assert with_deadline(lambda: 3, 5.0, "x") == 3
    assert with_deadline(lambda: 4, 0, "x") == 4
    with pytest.raises(KeyError, match="inner"):
        with_deadline(lambda: {}["inner"], 5.0, "x")
    never = threading.Event()
    t0 = time.time()
    with pytest.raises(StalledError, match=r"algo\.train did not return within 0\.3 s"):
        with_deadline(never.wait, 0.3, "algo.train")
    assert time.time() - t0 < 5.0

    # the RLlib loops' iteration: the error says where it stalled and how to resume
    from trainers.loops.rllib import train_iteration

    class StuckAlgorithm:
        def train(self):
            never.wait()

    with pytest.raises(StalledError, match=r"at iteration 3 .*iteration_timeout=0\.2.*shiftrl train --resume /runs/x"):
        train_iteration(StuckAlgorithm(), 0.2, "iteration 3", Path("/runs/x"))
    never.set()


@pytest.mark.parametrize("loop", ["rllib", "rllib_offline"])
def test_iteration_timeout_must_not_be_negative(loop):
    if loop == "rllib":
        from trainers.loops.rllib import RLlibPPOConfig as Config
    else:
        from trainers.loops.rllib_offline import RLlibOfflineConfig as Config
    with pytest.raises(ValueError, match="iteration_timeout must be >= 0"):
        Config(iteration_timeout=-1)
