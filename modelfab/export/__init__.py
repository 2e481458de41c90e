"""Exports of model packages to other runtimes (``export_onnx``)."""

from __future__ import annotations


def export_onnx(*args, **kwargs):
    """See :func:`modelfab.export.onnx.export_onnx` (imported lazily: onnx is an optional extra)."""
    from .onnx import export_onnx as _export

    return _export(*args, **kwargs)


__all__ = ["export_onnx"]
