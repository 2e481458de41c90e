"""A network of automl/neural.py as ONNX: median fill, standardisation, MatMul + Add + ReLU layers (double),
the networks' outputs averaged."""

from __future__ import annotations

import numpy as np

from .onnx_trees import Graph


def mlp_graph(g: Graph, model, x64: str) -> tuple[str, str]:
    """[N, F] double -> (output, kind) as ``MLPModel.predict``: "proba1" [N, 1] probability of class 1,
    "proba" [N, k] probabilities, or "value" [N, 1]."""
    from ..automl.neural import CLIP

    filled = g.op("Where", [g.op("IsNaN", [x64]), g.const(model.fill[None, :], "fill"), x64])
    h = g.op("Div", [g.op("Sub", [filled, g.const(model.mean[None, :], "mean")]), g.const(model.scale[None, :], "scale")])
    h = g.op("Clip", [h, g.const(np.float64(-CLIP), "lo"), g.const(np.float64(CLIP), "hi")])
    total = None
    for weights, biases in model.nets:
        out = h
        for i, (w, b) in enumerate(zip(weights, biases)):
            out = g.op("Add", [g.op("MatMul", [out, g.const(w, "w")]), g.const(b[None, :], "b")])
            if i < len(weights) - 1:
                out = g.op("Max", [out, g.const(np.zeros((1, 1)), "zero")])
        if model.out == "logistic":
            out = g.op("Sigmoid", [out])
        elif model.out == "softmax":
            out = g.op("Softmax", [out], axis=1)
        else:
            out = g.op("Add", [g.op("Mul", [out, g.const(np.float64(model.y_scale), "ys")]),
                               g.const(np.float64(model.y_mean), "ym")])
        total = out if total is None else g.op("Add", [total, out])
    if len(model.nets) > 1:
        total = g.op("Div", [total, g.const(np.float64(len(model.nets)), "n")])
    return total, {"logistic": "proba1", "softmax": "proba"}.get(model.out, "value")
