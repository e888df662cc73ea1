"""Shared fixtures: one embedded Ray per test session for the `ray` tier."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import envs

# Envs from SHIFTRL_PLUGINS and installed entry points are registered before collection,
# so the registry-driven tests (tests/test_env_api.py) check them too.
envs.load_plugins()


@pytest.fixture(scope="session", autouse=True)
def smaclike_kernel_compiled():
    """Compiles the SMAC-like kernel once per test session (about 25 s on a cold numba cache,
    then loaded from disk), in this process, before any Ray worker needs it."""
    import numpy as np

    from envs.smaclike import SMACCore

    core = SMACCore("3m", 1)
    core.reset(seeds=0)
    core.step(np.ones((1, core.N), np.int64))


@pytest.fixture(scope="session")
def ray_local():
    import ray

    from trainers.runtime import init_ray

    init_ray(num_cpus=2)
    yield ray
    ray.shutdown()
