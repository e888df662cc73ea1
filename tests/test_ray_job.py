"""Cluster tier: `ray start --head` on loopback, then the README's `ray job submit` command."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from trainers.runtime import LOCAL_ONLY_ENV

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.cluster


AGENT_PORT_FLAGS = (
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "metrics-export-port",
    "runtime-env-agent-port",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def head(tmp_path):
    gcs, dash = _free_port(), _free_port()
    ray_tmp = tempfile.mkdtemp(prefix="shiftrl-ray-", dir="/tmp")  # AF_UNIX paths must stay short
    token = tmp_path / "auth_token"  # our own token, so the user's ~/.ray is left alone
    token.write_text(secrets.token_hex(32))
    # the README's one-machine recipe: token auth, and Ray's one-node switch so that every
    # server of the head listens on 127.0.0.1 only (trainers.runtime.loopback_only)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), LOCAL_ONLY_ENV: "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [
            "ray",
            "start",
            "--head",
            "--block",
            f"--port={gcs}",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dash}",
            "--include-dashboard=true",
            "--num-cpus=2",
            # Ports of its own for the node's agents: an embedded Ray of the same test
            # session (the `ray` tier) holds the default ones, and a job agent that cannot
            # bind answers every submission with "No available agent to submit job".
            *(f"--{flag}={_free_port()}" for flag in AGENT_PORT_FLAGS),
            "--disable-usage-stats",
            f"--temp-dir={ray_tmp}",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", dash), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"ray start failed:\n{proc.stdout.read()}")
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the Ray dashboard did not come up within 90 s")
    yield f"http://127.0.0.1:{dash}", env
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_ray_job_submit_runs_the_main_job(head, tmp_path):
    address, env = head
    runs = tmp_path / "runs"
    cmd = [
        "ray",
        "job",
        "submit",
        "--address",
        address,
        "--working-dir",
        str(ROOT),
        "--",
        "python",
        "-m",
        "trainers",
        "train",
        "configs/r2pvi/linear_mdp.yaml",
        "--set",
        "agent_config.replications=2",
        "--set",
        f"runs_dir={runs}",
    ]
    deadline = time.time() + 120
    while True:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
        # The dashboard answers before its job agent is up (on a loaded machine): Ray says
        # "No available agent to submit job, please try again later" - so we do.
        if "No available agent" not in out.stderr or time.time() > deadline:
            break
        time.sleep(3)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "succeeded" in out.stdout + out.stderr
    (run_dir,) = runs.glob("RobustLinearMDP-v0__r2pvi__0__*")
    res = json.loads((run_dir / "results.json").read_text())
    assert res["replications"] == 2 and len(res["shifts"]) == 11
