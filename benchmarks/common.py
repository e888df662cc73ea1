"""What the table benchmarks share: one subprocess per run, a pool that runs them a few at a
time, and a ledger of finished runs kept in the committed results JSON.

Run directories live under runs/ (ignored by git), so they do not survive a fresh clone or a
new machine; a table that takes longer than one session would start from nothing again. The
ledger keeps, per finished run, the numbers the table is made of, with a fingerprint of what
the run was trained on (level files, dataset, config, budget); ``--resume`` in a new clone
skips every run whose record is there and whose fingerprint still matches, and retrains the
rest. A record whose fingerprint no longer matches is kept but not used, and said so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def run_dir_of(root: Path) -> Path | None:
    """The newest run directory under a benchmark run's root (None before its first start)."""
    runs = sorted(d for d in root.iterdir() if (d / "config.yaml").is_file()) if root.is_dir() else []
    return runs[-1] if runs else None


def finished(root: Path, key: str, budget: int) -> bool:
    """Whether the run under ``root`` has a results.json whose last history row reached
    ``budget`` of ``key`` (env_steps, iteration, gradient_steps)."""
    run = run_dir_of(root)
    if run is None or not (run / "results.json").is_file():
        return False
    h = json.loads((run / "results.json").read_text()).get("history") or []
    return bool(h) and h[-1].get(key, 0) >= budget


def train_argv(root: Path, config: Path, overrides: list[str], resume: bool) -> list[str]:
    """The command that trains one run in a child process (a new run under ``root``, or the
    one already there continued from its checkpoint)."""
    if run_dir_of(root) is not None and not resume:
        sys.exit(f"{root} holds a run already: pass --resume to continue it (or delete it)")
    root.mkdir(parents=True, exist_ok=True)
    return [sys.executable, str(HERE / "common.py"), "--train-child", str(root), str(config), json.dumps(overrides)]


def train_child(run_root: str, config: str, overrides_json: str) -> None:
    """One run in this process, one torch thread (the pool runs one per core)."""
    import torch

    torch.set_num_threads(1)
    from trainers.config import load_config
    from trainers.run import execute_run, prepare_runs

    run = run_dir_of(Path(run_root))
    if run is None:
        (run,) = prepare_runs(load_config(config, json.loads(overrides_json)), 1)
    execute_run(run, 0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def locked_by(root: Path) -> list[int]:
    """Live processes named in ``root/run.lock``: a run another driver is training right now."""
    lock = root / "run.lock"
    if not lock.is_file():
        return []
    pids = [int(t) for t in lock.read_text().split() if t.isdigit()]
    return [p for p in pids if p != os.getpid() and _alive(p)]


Job = tuple[str, Sequence[list[str]], Path, Path]  # label, commands run in turn, run root, log file


def pool(
    jobs: Sequence[Job],
    parallel: int,
    on_done: Callable[[str, bool], None] | None = None,
    poll: float = 5.0,
    grace: float = 20.0,
) -> None:
    """Runs the jobs ``parallel`` at a time, each job's commands one after another, with one
    BLAS/OpenMP thread. A job whose run another live driver holds (run.lock) is skipped, so
    two drivers never train one run twice. ``on_done(label, ok)`` is called as each job ends,
    so a driver can record a finished run at once rather than when the whole pool is done.

    A driver stopped by SIGTERM or Ctrl-C stops its children too (SIGTERM, then SIGKILL after
    ``grace`` seconds) and releases their locks: no orphaned run keeps training unrecorded.
    The runs continue from their last checkpoint with ``--resume``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    todo = list(jobs)
    running: list[dict[str, Any]] = []

    def start(job: dict[str, Any]) -> None:
        argv = job["cmds"].pop(0)
        job["proc"] = subprocess.Popen(argv, stdout=job["log"], stderr=subprocess.STDOUT, env=env)
        (job["root"] / "run.lock").write_text(f"{os.getpid()} {job['proc'].pid}\n")

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signum)

    previous = signal.signal(signal.SIGTERM, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        _drive(todo, running, parallel, start, on_done, poll)
    except KeyboardInterrupt as stopped:
        signum = stopped.args[0] if stopped.args else signal.SIGINT
        log(f"stopping: ending {len(running)} running job(s); --resume continues them from their checkpoints")
        for job in running:
            job["proc"].terminate()
        deadline = time.monotonic() + grace
        for job in running:
            try:
                job["proc"].wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                job["proc"].kill()
                job["proc"].wait()
            job["log"].close()
            (job["root"] / "run.lock").unlink(missing_ok=True)
        sys.exit(128 + int(signum))  # the shell's convention: 143 for SIGTERM, 130 for Ctrl-C
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _drive(
    todo: list[Job],
    running: list[dict[str, Any]],
    parallel: int,
    start: Callable[[dict[str, Any]], None],
    on_done: Callable[[str, bool], None] | None,
    poll: float,
) -> None:
    while todo or running:
        while todo and len(running) < parallel:
            label, cmds, root, log_path = todo.pop(0)
            holders = locked_by(root)
            if holders:
                log(f"skip {label}: its run is held by live process(es) {holders} ({root / 'run.lock'})")
                continue
            root.mkdir(parents=True, exist_ok=True)
            job: dict[str, Any] = {"label": label, "cmds": list(cmds), "root": root, "log": open(log_path, "a")}
            log(f"start {label} (log {log_path})")
            start(job)
            running.append(job)
        time.sleep(poll)
        for job in list(running):
            rc = job["proc"].poll()
            if rc is None:
                continue
            if rc == 0 and job["cmds"]:
                start(job)
                continue
            job["log"].close()
            (job["root"] / "run.lock").unlink(missing_ok=True)
            running.remove(job)
            log(("done: " if rc == 0 else f"FAILED (exit {rc}): ") + job["label"])
            if on_done is not None:
                on_done(job["label"], rc == 0)


def file_digest(*paths: Path) -> str:
    """sha256 (first 16 hex digits) over the files' bytes, in the order given."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


class Ledger:
    """Finished runs' records, stored under ``"runs"`` in the results JSON next to the table.

    A record is ``{"fingerprint": {...}, "result": {...}, "recorded": date}``; ``get`` returns
    the result only while the fingerprint matches, so a record made on other level files, an
    other dataset or another budget is never mixed into the table.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.doc: dict[str, Any] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.runs: dict[str, dict[str, Any]] = dict(self.doc.get("runs") or {})

    def get(self, key: str, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
        rec = self.runs.get(key)
        if rec is None:
            return None
        if rec.get("fingerprint") != fingerprint:
            log(
                f"ledger: {key} was recorded on {rec.get('fingerprint')}, this run would be on {fingerprint}: "
                "not used (it is retrained)"
            )
            return None
        return rec["result"]

    def put(self, key: str, fingerprint: dict[str, Any], result: dict[str, Any]) -> None:
        self.runs[key] = {"fingerprint": fingerprint, "recorded": now(), "result": result}

    def write(self, result: dict[str, Any], md: str) -> None:
        """The table and every record, both files atomically. Records another driver wrote
        to the file since this one read it are kept (merged under a file lock; a record
        this driver made wins)."""
        import fcntl

        from trainers.io import atomic_write_json, atomic_write_text

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            on_disk = json.loads(self.path.read_text()).get("runs") or {} if self.path.is_file() else {}
            self.runs = {**on_disk, **self.runs}
            atomic_write_json(self.path, {**result, "runs": dict(sorted(self.runs.items()))})
            atomic_write_text(self.path.with_suffix(".md"), md)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--train-child":
        train_child(*sys.argv[2:])
    else:
        sys.exit("usage: common.py --train-child RUN_ROOT CONFIG OVERRIDES_JSON (the benchmarks' pool runs it)")
