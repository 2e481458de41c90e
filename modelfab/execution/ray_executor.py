"""Tasks on Ray (``pip install 'modelfab[ray]'``).

Started lazily by ``slots()``, so the start-up counts against the caller's budget. Without an
address (and without ``RAY_ADDRESS``) a private Ray is started **on 127.0.0.1 only**, without the
dashboard and its job-submission API (unauthenticated job submission is a known remote-code-
execution vector), and it is shut down by ``close()``. With an address, modelfab connects to that
cluster and only disconnects on ``close()``. See docs/execution.md for a safe cluster set-up.
"""

from __future__ import annotations

import logging
import os
import time

from ..errors import InvalidInput, ModelfabError

# Ray picks a LAN address for its own servers unless this is off; with it off, GCS, raylet,
# object manager and workers listen on 127.0.0.1 (checked by tests/execution/test_ray.py).
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _import_ray(local: bool):
    if local:
        os.environ.setdefault(_LOOPBACK_ENV, "0")  # read by Ray at import, inherited by its workers
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a private Ray does not report usage home
    try:
        import ray
    except ImportError:
        raise InvalidInput("--executor ray needs Ray, which is not installed.",
                           hint="pip install 'modelfab[ray]', or use --executor local or process.") from None
    if local and os.environ.get(_LOOPBACK_ENV) == "0":
        try:  # Ray was imported before we set the variable: the same switch, read at call time
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False
        except (ImportError, AttributeError):
            pass
    return ray


def _check_loopback(ray) -> None:
    """Refuse to run on a private Ray that is reachable from the network."""
    ip = ray.util.get_node_ip_address()
    if ip not in ("127.0.0.1", "::1"):
        ray.shutdown()
        raise ExecutionError(f"The private Ray started by modelfab would listen on {ip}, not on 127.0.0.1.",
                             hint=f"Unset {_LOOPBACK_ENV}, or start a cluster yourself (docs/execution.md) "
                                  "and pass --ray-address.")


def _call(fn, shared, item):
    return fn(shared, item)


class ExecutionError(ModelfabError):
    code = "execution"
    http_status = 502
    exit_code = 9


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_cpus = num_cpus
        self.startup_s: float | None = None
        self._ray = None
        self._owned = False
        self._remote = None

    # -- lifecycle ----------------------------------------------------------
    def start(self, timeout: float | None = None):
        """Start or connect to Ray and warm one worker per CPU. With ``timeout``: None when that took
        longer (Ray stays up; workers finish warming in the background)."""
        if self._ray is not None:
            return self._ray
        t0 = time.monotonic()
        ray = _import_ray(local=self.address is None)
        for name in ("ray", "ray._private", "ray.worker"):
            logging.getLogger(name).setLevel(logging.ERROR)
        if ray.is_initialized():  # a Ray already connected in this process (a notebook, the tests): reuse
            self._owned = False
        elif self.address is None:
            ray.init(address="local", num_cpus=self.num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     dashboard_host="127.0.0.1", log_to_driver=False, logging_level=logging.ERROR,
                     namespace="modelfab")
            self._owned = True
            _check_loopback(ray)
        else:
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.ERROR,
                         namespace="modelfab")
            except Exception as exc:  # ConnectionError, ValueError, RuntimeError...
                raise ExecutionError(f"Cannot connect to the Ray cluster at {self.address!r}: "
                                     f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                                     hint="Check the address (HOST:6379 or ray://HOST:10001) and that the "
                                          "cluster runs the same Ray and Python versions.") from None
            self._owned = True
        self._ray = ray
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_call)
        from .local import WARM_MODULES, warm_up

        # one task per CPU: the workers import LightGBM, XGBoost, FLAML now, inside the timed start-up
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        warm = [self._remote.remote(warm_up, WARM_MODULES, None) for _ in range(cpus)]
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - t0))
        ready, _ = ray.wait(warm, num_returns=len(warm), timeout=left)
        self.startup_s = time.monotonic() - t0
        return ray if len(ready) == len(warm) else None

    def slots(self) -> int:
        ray = self.start()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        if self._ray is not None and self._owned:
            self._ray.shutdown()
        self._ray, self._remote, self._owned = None, None, False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> dict:
        return {"executor": "ray", "address": self.address or "local (127.0.0.1)",
                "slots": self.slots() if self._ray is not None else None,
                "startup_s": None if self.startup_s is None else round(self.startup_s, 3)}

    # -- work ---------------------------------------------------------------
    def map(self, fn, shared, items, *, window=None, deadline=None):
        from .local import ordered_window

        ray = self.start()
        shared_ref = ray.put(shared)
        remote = self._remote

        def result(ref, timeout):
            try:
                return ray.get(ref, timeout=timeout)
            except ray.exceptions.GetTimeoutError:
                raise TimeoutError from None
            except ray.exceptions.RayTaskError as exc:  # re-raise the task's own error, not Ray's wrapper
                cause = getattr(exc, "cause", None)
                if isinstance(cause, Exception):
                    raise cause from None
                raise ExecutionError(f"A Ray task failed: {str(exc).splitlines()[0]}") from None

        def cancel(ref) -> None:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or gone
                pass

        try:
            yield from ordered_window(lambda item: remote.remote(fn, shared_ref, item), result, cancel, items,
                                      window or 2 * self.slots(), deadline)
        finally:
            del shared_ref
