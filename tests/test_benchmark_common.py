"""The benchmarks' shared pieces: the ledger that carries finished runs into a new clone, and
the pool's run lock that keeps two drivers off one run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import common


def test_ledger_round_trip_and_fingerprint_guard(tmp_path: Path) -> None:
    path = tmp_path / "results" / "table.json"
    led = common.Ledger(path)
    fp = {"levels": "abc", "updates": 300}
    led.put("dred__0", fp, {"test": {"solved": 0.5}})
    led.write({"name": "table", "table": []}, "# table\n")

    again = common.Ledger(path)  # a new clone reads the committed file
    assert again.get("dred__0", fp) == {"test": {"solved": 0.5}}
    # a record made on other levels or another budget is not mixed in ...
    assert again.get("dred__0", {"levels": "abd", "updates": 300}) is None
    assert again.get("dred__0", {"levels": "abc", "updates": 200}) is None
    assert again.get("plr__0", fp) is None
    # ... but it is kept: writing the table again does not drop it
    again.put("plr__0", fp, {"test": {"solved": 0.25}})
    again.write({"name": "table", "table": [1]}, "# table\n")
    doc = json.loads(path.read_text())
    assert set(doc["runs"]) == {"dred__0", "plr__0"}
    assert doc["table"] == [1]
    assert path.with_suffix(".md").read_text() == "# table\n"


def test_two_drivers_writing_one_ledger_keep_both_records(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    first, second = common.Ledger(path), common.Ledger(path)  # both read the file before either wrote
    first.put("dred__0", {"v": 1}, {"x": 1})
    first.write({"table": []}, "")
    second.put("plr__0", {"v": 1}, {"x": 2})
    second.write({"table": []}, "")
    assert set(json.loads(path.read_text())["runs"]) == {"dred__0", "plr__0"}


def test_pool_skips_a_run_held_by_a_live_process_and_runs_commands_in_turn(tmp_path: Path) -> None:
    held, free = tmp_path / "held", tmp_path / "free"
    held.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (held / "run.lock").write_text(f"{sleeper.pid}\n")
        assert common.locked_by(held) == [sleeper.pid]
        marks = [free / "a", free / "b"]
        touch = [[sys.executable, "-c", f"open({str(m)!r}, 'w').write('x')"] for m in marks]
        done: list[tuple[str, bool]] = []
        common.pool(
            [
                ("held", [[sys.executable, "-c", f"open({str(held / 'ran')!r}, 'w')"]], held, tmp_path / "h.log"),
                ("free", touch, free, tmp_path / "f.log"),
            ],
            parallel=2,
            poll=0.05,
            on_done=lambda label, ok: done.append((label, ok)),
        )
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not (held / "ran").exists()  # the held run was not started a second time
    assert all(m.is_file() for m in marks)  # both commands of the free job ran
    assert done == [("free", True)]
    assert not (free / "run.lock").exists()  # released when the job ended
    # a lock left by a process that is gone does not block
    assert common.locked_by(held) == []


def test_failed_command_stops_the_job(tmp_path: Path) -> None:
    root, never = tmp_path / "run", tmp_path / "never"
    done: list[tuple[str, bool]] = []
    common.pool(
        [
            (
                "job",
                [[sys.executable, "-c", "raise SystemExit(3)"], [sys.executable, "-c", f"open({str(never)!r}, 'w')"]],
                root,
                tmp_path / "j.log",
            )
        ],
        parallel=1,
        poll=0.05,
        on_done=lambda label, ok: done.append((label, ok)),
    )
    assert done == [("job", False)]
    assert not never.exists()


def test_a_stopped_driver_stops_its_runs_and_releases_their_locks(tmp_path: Path) -> None:
    """SIGTERM to a driver ends the pool's children too (no orphan keeps training unrecorded)."""
    root, pid_file = tmp_path / "run", tmp_path / "child.pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    driver = (
        f"import sys; sys.path.insert(0, {str(Path(common.__file__).parent)!r}); import common; "
        f"from pathlib import Path; common.pool([('job', [[sys.executable, '-c', {child!r}]], "
        f"Path({str(root)!r}), Path({str(tmp_path / 'j.log')!r}))], parallel=1, poll=0.05, grace=5)"
    )
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_file.is_file(), "the pool never started its job"
    child_pid = int(pid_file.read_text())
    assert common.locked_by(root) == [proc.pid, child_pid]
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 143, out
    assert "stopping" in out and "Traceback" not in out
    assert not (root / "run.lock").exists()
    deadline = time.monotonic() + 10
    while common._alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not common._alive(child_pid), "the run outlived its driver"


@pytest.mark.parametrize("bad", ["--train-child", "--nope"])
def test_common_cli_usage(bad: str) -> None:
    res = subprocess.run([sys.executable, common.__file__, bad], capture_output=True, text=True)
    assert res.returncode != 0 and "usage" in res.stderr


def test_offline_table_scores_the_nominal_dynamics_and_pools_the_grid_beside() -> None:
    """The offline table's score is D4RL's (the return on the data's own dynamics, normalised)
    and its claim check uses it; the pool over the friction grid is shown beside, not mixed in.
    A record's own ``normalized_score`` (pooled in runs before 2026-12-07) is not read."""
    import offline_prdc

    data = {"hc/medium": {"ref_min_score": -300.0, "ref_max_score": 700.0, "nominal": "friction=1"}}

    def rec(nominal: float, other: float) -> dict:
        return {
            "normalized_score": -1.0,
            "gradient_steps": 10,
            "dataset_return": 0.0,
            "shift_returns": {"friction=0.5": other, "friction=1": nominal, "friction=2": other},
        }

    records = {
        ("hc", "medium", "prdc", 0): rec(700.0, -300.0),
        ("hc", "medium", "prdc", 1): rec(500.0, -300.0),
        ("hc", "medium", "td3bc", 0): rec(200.0, 200.0),
    }
    rows = {r["agent"]: r for r in offline_prdc.summarise(records, data)}
    assert rows["prdc"]["score_mean"] == pytest.approx(90.0) and rows["prdc"]["score_std"] == pytest.approx(
        14.142, abs=1e-3
    )
    assert rows["prdc"]["pooled_score_mean"] == pytest.approx(30.0)  # mean returns 33.3 and -33.3
    assert rows["td3bc"]["score_mean"] == rows["td3bc"]["pooled_score_mean"] == pytest.approx(50.0)
    (verdict,) = offline_prdc.claim(list(rows.values()))
    assert verdict.startswith("hc medium: PRDC above TD3+BC (90.0 vs 50.0;")
