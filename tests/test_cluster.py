"""Past one machine: a two-node Ray cluster on loopback (ray.cluster_utils.Cluster: two
raylets, each its own node). Rollout actors land on both nodes, their batches equal the
one-process result for the same seed, and a run trained through the cluster leaves a
complete run directory on the driver's side."""

from __future__ import annotations

import pytest

from trainers.runtime import LOCAL_ONLY_ENV

pytestmark = [pytest.mark.ray, pytest.mark.cluster]

SCRIPT = r"""
import json, sys
import numpy as np
import ray
from ray.cluster_utils import Cluster

from agents.ppo import PPOConfig, make_learner
from trainers.sampling import RunnerGroup, env_spaces

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
cluster.add_node(num_cpus=2)
cluster.wait_for_nodes()
ray.init(address=cluster.address)
alive = [n for n in ray.nodes() if n["Alive"]]
out = {"nodes": len(alive), "node_addresses": sorted({n["NodeManagerAddress"] for n in alive})}
env_id = "SMAClike-3m-v0"
policy = make_learner(PPOConfig(), env_spaces(env_id), 0).policy()
group = RunnerGroup(env_id, {}, policy, 5, 3, 4)
out["runner_nodes"] = len(set(group.node_ids()))
spread = group.sample(30)[0]
group.close()
local = RunnerGroup(env_id, {}, policy, 5, 0, 4)
runs = [local.sample(30)[0]]  # runner 0 alone in this process
out["equal_to_one_process"] = all(np.array_equal(spread[k][:4], runs[0][k]) for k in runs[0])

from trainers.run import train
(run,) = train(None, [
    "agent=ppo", "env.id=SMAClike-3m-v0", "agent_config.env_steps=480", "agent_config.n_steps=40",
    "agent_config.num_epochs=1", "ray.num_workers=2", "ray.envs_per_worker=3", "eval.episodes=2",
    "runs_dir=" + sys.argv[1],
], address=cluster.address)
out["run_files"] = sorted(p.name for p in run.iterdir())
out["checkpoint"] = (run / "checkpoints" / "state.pt").is_file()
out["history"] = len(json.loads((run / "results.json").read_text())["history"])
ray.shutdown()
cluster.shutdown()
print("RESULT " + json.dumps(out))
"""


def test_two_node_cluster_spreads_runners_and_matches_one_process(tmp_path, script_result):
    # Ray's one-node switch (trainers.runtime.loopback_only) for the whole script: both
    # raylets and the GCS on 127.0.0.1, not the machine's address. Only for the whole
    # process: a driver outside it turns 127.0.0.1 into the machine's address and never
    # reaches a GCS that listens on loopback.
    out = script_result(SCRIPT, str(tmp_path / "runs"), env={LOCAL_ONLY_ENV: "0"}, timeout=600)
    assert out["nodes"] == 2
    assert out["node_addresses"] == ["127.0.0.1"], out
    assert out["runner_nodes"] == 2, out  # 3 one-CPU actors on a 1-CPU head and a 2-CPU worker node
    assert out["equal_to_one_process"], out
    assert {"config.yaml", "progress.log", "results.json", "tb", "checkpoints"} <= set(out["run_files"])
    assert out["checkpoint"] and out["history"] == 2
