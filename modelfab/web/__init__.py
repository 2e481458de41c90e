"""The browser UI (``modelfab ui``): server-rendered pages over the Python API.

``create_web_app(ws, settings)`` builds the FastAPI app. Nothing happens at import time.
"""

from __future__ import annotations


def create_web_app(ws, settings=None):
    from .app import create_web_app as _create

    return _create(ws, settings)


__all__ = ["create_web_app"]
