"""App factory for multi-worker serving: uvicorn imports this in each worker process."""

from __future__ import annotations

import json
import os

CONFIG_ENV = "MODELFAB_SERVE_CONFIG"


def app_from_env():
    from ..workspace import Workspace
    from .app import configure_request_log, create_app

    configure_request_log()
    cfg = json.loads(os.environ[CONFIG_ENV])
    ws = Workspace.open(cfg["workspace"])
    return create_app(ws, cfg.get("models") or None, auth=cfg.get("auth", True))
