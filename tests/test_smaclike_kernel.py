"""The compiled kernel (envs/smaclike/kernel.py) against the numpy reference (core.py).

Both cores reset from the same seeds (the shared numpy reset code) and step with the same
actions and random draws; before each step the kernel's continuous state is set to the
reference's, so every step starts from identical numbers, and afterwards every array is
compared: discrete state (alive, masks, targets, outcomes) exactly, positions and health
to 1e-9 (sums over units may round differently in the last bit), observations and state
to float32 precision. Every registered scenario, both rules modes, batch 1 and 64, across
resets. The kernel compiles once per machine (numba's disk cache); later sessions load it.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.smaclike import SCENARIOS, SMACCore
from envs.smaclike.scripted import scripted_actions

DISCRETE = ("alive", "avail", "last_target", "enemy_target", "won", "done", "steps", "last_action", "invalid_actions")


def _check(ref: SMACCore, fast: SMACCore, where: str) -> None:
    for k in DISCRETE:
        a, b = getattr(ref, k), getattr(fast, k)
        if not np.array_equal(a, b):
            bad = np.argwhere(a != b)[:3].tolist()
            raise AssertionError(f"{where}: {k} differs at {bad}")
    np.testing.assert_allclose(fast.z, ref.z, rtol=0, atol=1e-9, err_msg=f"{where}: positions")
    np.testing.assert_allclose(fast._F, ref._F, rtol=1e-9, atol=1e-9, err_msg=f"{where}: hp/shield/energy/cooldown")
    np.testing.assert_allclose(fast.dist, ref.dist, rtol=0, atol=1e-9, err_msg=f"{where}: distances")
    np.testing.assert_allclose(fast.obs(), ref.obs(), rtol=1e-5, atol=1e-6, err_msg=f"{where}: observations")
    np.testing.assert_allclose(fast.state(), ref.state(), rtol=1e-5, atol=1e-6, err_msg=f"{where}: state")


def _compare(name: str, batch: int, rules: str, steps: int, seed: int = 0, threads: int = 1) -> int:
    ref = SMACCore(name, batch, rules=rules, backend="numpy")
    fast = SMACCore(name, batch, rules=rules, backend="numba", threads=threads)
    ref.reset(seeds=seed)
    fast.reset(seeds=seed)
    _check(ref, fast, f"{name} {rules} reset")
    rng = np.random.default_rng(seed)
    resets = 0
    for t in range(steps):
        acts = scripted_actions("random" if rng.random() < 0.5 else "focus_fire", ref, rng)
        fast.z[...] = ref.z
        fast._F[...] = ref._F
        out_ref, out_fast = ref.step(acts), fast.step(acts)
        np.testing.assert_allclose(out_fast[0], out_ref[0], rtol=1e-9, atol=1e-9, err_msg=f"{name} step {t}: reward")
        assert np.array_equal(out_fast[1], out_ref[1]) and np.array_equal(out_fast[2], out_ref[2]), (name, t)
        _check(ref, fast, f"{name} {rules} step {t}")
        done = np.flatnonzero(ref.done)
        if len(done):
            resets += len(done)
            ref.reset(env_ids=done)
            fast.reset(env_ids=done)
            _check(ref, fast, f"{name} {rules} reset after step {t}")
    return resets


@pytest.mark.parametrize("rules", ["sc2", "smax"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_kernel_equals_numpy_reference_at_batch_1(name, rules):
    limit = SCENARIOS[name].episode_limit
    resets = _compare(name, 1, rules, steps=min(limit + 20, 180))
    assert resets >= 1 or limit > 160  # the comparison crossed a reset


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_kernel_equals_numpy_reference_at_batch_64(name):
    assert _compare(name, 64, "sc2", steps=60, seed=3) >= 0


@pytest.mark.parametrize("name", ["3s5z", "MMM2", "reSurComb4"])
def test_parallel_kernel_equals_the_reference(name):
    _compare(name, 64, "sc2", steps=40, seed=5, threads=2)


def test_numba_is_the_default_and_reports_its_first_call():
    from envs.smaclike import kernel

    core = SMACCore("3m", 1)
    core.reset(seeds=0)
    core.step(np.ones((1, 3), np.int64))
    assert core.backend == "numba"
    assert {"refresh", "step"} <= set(kernel.compile_report())
