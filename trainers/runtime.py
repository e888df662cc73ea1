"""Ray start-up and resource arithmetic: embedded local Ray by default, attach when asked.

Facts this follows (../shared/specs/ray-runtime.md): ``ray.init()`` with an address must not
be given resources (ValueError); a request that does not fit a 2-CPU node hangs silently
(Tune trials stay PENDING), so every worker count is derived from
``ray.cluster_resources()`` and a request that cannot fit fails fast here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import ray

log = logging.getLogger("shiftrl")


class ResourceError(RuntimeError):
    """A resource request the cluster cannot satisfy (raised instead of hanging)."""


class StalledError(RuntimeError):
    """A call into Ray that did not return within its deadline (raised instead of hanging)."""


T = TypeVar("T")


def with_deadline(fn: Callable[[], T], seconds: float, what: str) -> T:
    """``fn()``, or StalledError if it has not returned after ``seconds`` (0: no deadline).

    Seen here: after the process was paused, an RLlib offline run's Ray Data actor stayed
    pending forever and ``algo.train()`` never returned. The call runs in a daemon thread
    that is abandoned on timeout, so the caller must treat what ``fn`` used as broken (stop
    the run; it resumes from its last checkpoint).
    """
    if not seconds:
        return fn()
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001  (re-raised in the caller's thread)
            box["error"] = e

    worker = threading.Thread(target=target, name=f"deadline:{what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise StalledError(f"{what} did not return within {seconds:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def init_ray(address: str | None = None, include_dashboard: bool = False, num_cpus: int | None = None) -> str:
    """Starts or attaches to Ray once per process; returns "embedded" or the address.

    Args:
        address: cluster address ("auto", "ray://...", "127.0.0.1:6379"); falls back to the
            RAY_ADDRESS environment variable; None and unset = embedded local Ray, always a
            new one: plain ``ray.init()`` would attach to the last cluster started on this
            machine (Ray's /tmp/ray/ray_current_cluster), with its resources, and retry
            forever once that cluster is gone.
        include_dashboard: embedded Ray only; the dashboard binds to 127.0.0.1, as every
            other server of the embedded Ray does (:func:`loopback_only`).
        num_cpus: embedded Ray only; default = all cores of this machine.
    """
    target = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        return target or "embedded"
    env_vars = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if target:
        ray.init(address=target, runtime_env={"env_vars": env_vars}, log_to_driver=True)
        log.info("attached to Ray cluster at %s", target)
        return target
    with loopback_only():
        ray.init(
            address="local",  # a new instance even when another one runs on this machine
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=include_dashboard,
            dashboard_host="127.0.0.1",
            runtime_env={"env_vars": env_vars},
            log_to_driver=True,
            configure_logging=True,
            logging_level=logging.WARNING,
        )
    return "embedded"


LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # Ray's switch for one-node-only Ray


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Every server of a Ray instance started inside binds to 127.0.0.1 only.

    On Linux Ray takes the machine's routable IP as the node's address even for a local
    instance (``_node_ip_address="127.0.0.1"`` is turned back into it), and its GCS, raylet
    and worker gRPC servers listen on every interface: measured here with ``ss -ltn`` (Ray
    2.60), a plain embedded Ray exposed them all to the network. Ray's one-node mode, the one
    it uses on Windows and macOS (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), takes the
    loopback address instead, and then every listening socket is on 127.0.0.1. The switch
    is read when ``ray._private.ray_constants`` is imported, so it is set in the environment
    the Ray processes inherit and in that module of this process, and both are restored on
    exit: a later attach to a real cluster (``address=``) must advertise the routable IP.
    """
    from ray._private import ray_constants  # Ray's private module; the one place it is touched

    old_env, old_flag = os.environ.get(LOCAL_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOCAL_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(LOCAL_ONLY_ENV, None)
        else:
            os.environ[LOCAL_ONLY_ENV] = old_env


@dataclass(frozen=True)
class Layout:
    """How one run's work is laid out on the cluster.

    Attributes:
        cpus: CPUs the cluster reports.
        concurrent_trials: trials that run at once.
        workers_per_trial: rollout actors per trial (0 = rollouts in the trial process).
    """

    cpus: int
    concurrent_trials: int
    workers_per_trial: int

    @property
    def cpus_per_trial(self) -> int:
        return 1 + self.workers_per_trial


def plan(n_trials: int, num_workers: int | None) -> Layout:
    """Derives concurrency from the cluster's CPUs; fails fast when a request cannot fit."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise ResourceError("the Ray cluster reports no CPUs; cannot run trials")
    if num_workers is None:
        concurrent = max(1, min(n_trials, cpus))
        workers = max(0, cpus // concurrent - 1)
    else:
        workers = num_workers
        need = 1 + workers
        if need > cpus:
            raise ResourceError(
                f"ray.num_workers={workers} needs {need} CPUs per trial (1 trial process + {workers} rollout "
                f"actors) but the cluster has {cpus}; use ray.num_workers <= {cpus - 1} or a larger cluster"
            )
        concurrent = max(1, min(n_trials, cpus // need))
    return Layout(cpus=cpus, concurrent_trials=concurrent, workers_per_trial=workers)
