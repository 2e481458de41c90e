"""Readiness: can this server answer predictions now? (``/readyz``)

Ready means at least one model is loaded and the metadata store answers (every request checks its
token there). The store check is one ``SELECT 1`` with a 2 s timeout, its result kept for
``ttl`` seconds so a load balancer polling many times a second costs one query a second or two.
"""

from __future__ import annotations

import threading
import time

from ..errors import ModelfabError


class StoreHealth:
    def __init__(self, meta, ttl: float = 1.5, timeout: float = 2.0) -> None:
        self.meta, self.ttl, self.timeout = meta, ttl, timeout
        self._lock = threading.Lock()
        self._at = -1e9
        self._error: ModelfabError | None = None

    def check(self) -> ModelfabError | None:
        """None when the metadata store answers, else the error that says why not."""
        with self._lock:  # one check at a time; the others read its result
            if time.monotonic() - self._at < self.ttl:
                return self._error
            try:
                self.meta.ping(self.timeout)
                self._error = None
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready", said in the answer
                from ..storage.errors import StorageError, translate

                self._error = translate(exc) or StorageError(
                    f"The metadata store does not answer ({type(exc).__name__}).",
                    hint="Check the database the workspace uses (workspace.json 'db').")
            self._at = time.monotonic()
            return self._error


def readiness(models, store: StoreHealth) -> tuple[int, dict]:
    """(HTTP status, body) of ``/readyz``: 200 ready, 503 with the reason otherwise."""
    served = sorted(f"{m.name}:{m.version}" for m in models.models.values())
    body: dict = {"status": "ready", "models": served}
    if not served:
        refused = "; ".join(f"{ref}: {why}" for ref, why in sorted(models.refused.items()))
        body.update(status="not_ready", error={
            "code": "no_model",
            "message": "No model can be served" + (f": refused {refused}" if refused else "."),
            "hint": "Promote a version whose files verify (modelfab models promote NAME:VERSION); the server "
                    "picks it up without a restart."})
        return 503, body
    err = store.check()
    if err is not None:
        body.update(status="not_ready", error=err.to_dict())
        return 503, body
    return 200, body
