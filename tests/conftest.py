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


@pytest.fixture
def script_result():
    """``run(script, *args, env={...}, timeout=...)`` runs ``python -c script`` from the
    repository root in a fresh process (its own Ray), with RAY_ADDRESS dropped and ``env``
    applied (a None value unsets the variable), and returns the JSON the script printed on its
    last ``RESULT `` line; a run that fails or prints none fails the test with its output."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def run(script: str, *args: str, env: dict[str, str | None], timeout: float) -> dict:
        full = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        for k, v in env.items():
            if v is None:
                full.pop(k, None)
            else:
                full[k] = v
        proc = subprocess.run(
            [sys.executable, "-c", script, *args], capture_output=True, text=True, env=full, cwd=root, timeout=timeout
        )
        lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
        return json.loads(lines[-1][len("RESULT ") :])

    return run


@pytest.fixture
def beside_stale_ray_record():
    """``run(script, *args, timeout=...)`` runs ``python -c script`` in a fresh process whose
    $RAY_TMPDIR/ray/ray_current_cluster names a cluster that is gone, as a killed test cluster
    leaves it: Ray's plain ray.init() attaches to that record and retries forever. A run that
    hangs fails the test rather than CI."""
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    short = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # Ray's socket paths are length-limited
    (short / "ray").mkdir()
    (short / "ray" / "ray_current_cluster").write_text("127.0.0.1:9\n")  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": str(short)}

    def run(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [sys.executable, "-c", script, *args],
                capture_output=True,
                text=True,
                env=env,
                cwd=root,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"hung for {timeout} s beside a stale ray_current_cluster record")

    yield run
    shutil.rmtree(short, ignore_errors=True)
