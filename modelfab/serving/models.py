"""The set of models a server holds, and how it follows promotions without dropping requests.

Requests read the current mapping; a refresh loads and verifies a newly
promoted version first and only then swaps the mapping entry, so a request
is always served by a fully loaded model. A version that fails to load
(e.g. tampered files) is refused and the previous version keeps serving.
"""

from __future__ import annotations

import json
import logging

from ..errors import ModelfabError, NotFound

log = logging.getLogger("modelfab.serving")


class ModelSet:
    def __init__(self, ws, refs: list[str] | None) -> None:
        self.ws = ws
        self.follow_production = not refs
        self.models: dict = {}
        self.refused: dict[str, str] = {}  # "NAME:VERSION" -> why it is not served (for /readyz and the banner)
        if refs:
            for ref in refs:
                m = ws.model(ref)
                m.predictor  # verify and load now: a broken package fails at start, not on the first request
                self.models[m.name] = m
        else:
            rows = ws.meta.models_in_stage("production")
            if not rows:
                raise NotFound("No model is in production in this workspace.",
                               hint="Promote one (modelfab models promote NAME:VERSION) or name models to serve.")
            self.refresh()

    def get(self, name: str):
        m = self.models.get(name)
        if m is None:
            raise NotFound(f"Model {name!r} is not served here; served: {', '.join(sorted(self.models)) or 'none'}.")
        return m

    def refresh(self) -> list[str]:
        """Load production versions that changed; returns what was swapped in."""
        if not self.follow_production:
            return []
        from ..model import Model

        swapped = []
        for row in self.ws.meta.models_in_stage("production"):
            current = self.models.get(row["name"])
            if current is not None and current.row["package_sha"] == row["package_sha"]:
                continue
            candidate = Model(self.ws, row)
            try:
                candidate.predictor
            except ModelfabError as exc:
                ref = f"{row['name']}:{row['version']}"
                if self.refused.get(ref) != str(exc):  # said once, not on every refresh
                    log.error(json.dumps({"event": "model refused", "model": ref, "error": str(exc),
                                          "still_serving": current.ref if current else None}))
                self.refused[ref] = str(exc)
                continue
            for ref in [r for r in self.refused if r.rsplit(":", 1)[0] == row["name"]]:
                del self.refused[ref]
            self.models[row["name"]] = candidate  # one dict assignment: atomic for readers
            swapped.append(candidate.ref)
            log.info(json.dumps({"event": "now serving", "model": candidate.ref}))
        return swapped
