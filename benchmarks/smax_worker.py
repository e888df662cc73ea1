"""Runs JaxMARL's SMAX (HeuristicEnemySMAX) on the CPU and prints env steps/s as JSON.

Called by benchmarks/smaclike_speed.py in a separate interpreter that has
`pip install jax jaxlib jaxmarl==0.2.0` (pinned to one core with taskset there). Random
valid actions are sampled inside the jitted step, as in the spec's reference numbers.
Not part of the package: it imports jax.
"""

import json
import resource
import sys
import time

import jax
from jaxmarl import make
from jaxmarl.environments.smax import map_name_to_scenario


def main(scenario: str, batch: int, seconds: float, repeats: int) -> dict:
    env = make("HeuristicEnemySMAX", scenario=map_name_to_scenario(scenario))
    agents = env.agents

    def one_step(key, state):
        key, k_act, k_step = jax.random.split(key, 3)
        avail = env.get_avail_actions(state)
        keys = jax.random.split(k_act, len(agents))
        acts = {a: jax.random.choice(k, avail[a].shape[0], p=avail[a] / avail[a].sum()) for a, k in zip(agents, keys)}
        obs, state, _rew, _done, _info = env.step(k_step, state, acts)
        return key, state, obs["world_state"].sum() + sum(obs[a].sum() for a in agents)

    if batch == 1:
        step = jax.jit(one_step)
        key = jax.random.PRNGKey(0)
        _, state = env.reset(key)
    else:
        step = jax.jit(jax.vmap(one_step))
        key = jax.random.split(jax.random.PRNGKey(0), batch)
        _, state = jax.vmap(env.reset)(key)
    t0 = time.perf_counter()
    key, state, s = step(key, state)
    jax.block_until_ready(s)
    compile_s = time.perf_counter() - t0
    rates = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            key, state, s = step(key, state)
            jax.block_until_ready(s)
            n += 1
        rates.append(n * batch / (time.perf_counter() - t0))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "env_steps_per_s": sorted(rates)[repeats // 2],
        "n_allies": len(env.agents),
        "compile_s": compile_s,
        "rss_bytes": rss,
        "jax": jax.__version__,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))))
