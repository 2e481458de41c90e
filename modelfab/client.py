"""A small Python client for a modelfab server (needs only httpx).

    from modelfab.client import Client
    c = Client("http://127.0.0.1:8000", token="mf_...")
    c.predict("line3", [{"temperature_c": 74.2, "line": "L3"}])
    c.predict_file("pump", "recording.wav")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


class ServerError(Exception):
    """The server answered with an error: ``status``, ``code`` and ``message`` from its JSON body."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" {hint}" if hint else ""))
        self.status, self.code, self.message, self.hint = status, code, message, hint


class Client:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check(self, r: httpx.Response) -> Any:
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
            except Exception:
                raise ServerError(r.status_code, "http", r.text[:500]) from None
            raise ServerError(r.status_code, err.get("code", "error"), err.get("message", ""), err.get("hint"))
        return r.json()

    def health(self) -> bool:
        return self._http.get("/healthz").status_code == 200

    def models(self) -> list[dict]:
        return self._check(self._http.get("/v1/models"))["models"]

    def predict(self, model: str, records: list[dict]) -> list[dict]:
        """Predictions for JSON records (one dict per row)."""
        return self._check(self._http.post(f"/v1/models/{model}/predict", json={"records": records}))["predictions"]

    def predict_file(self, model: str, path: str | Path) -> dict:
        """Score a recording, an image, a file of series or a CSV/Parquet table (for a table model). The
        answer's ``predictions`` is a list of rows, one per scored item, as ``predict`` returns."""
        p = Path(path)
        with open(p, "rb") as fh:
            return self._check(self._http.post(f"/v1/models/{model}/predict-file", files={"file": (p.name, fh)}))
