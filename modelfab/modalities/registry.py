"""Which modality module loads which kind of model package.

A new kind of data registers its predictor loader here; nothing else in
the tree needs to change.
"""

from __future__ import annotations

from importlib import import_module
from typing import Callable

# modality name -> "module:function" returning a predictor for (folder, manifest)
_LOADERS = {
    "signal": "modelfab.modalities.signal_model:load_signal_predictor",
}


# modality name -> "module:function(ws, model, paths, out) -> dict" for `modelfab predict`
_BATCH = {
    "signal": "modelfab.modalities.signal_model:batch_predict",
}


def _resolve(table: dict, modality: str) -> Callable | None:
    target = table.get(modality)
    if target is None:
        return None
    module, func = target.split(":")
    return getattr(import_module(module), func)


def predictor_loader(modality: str) -> Callable | None:
    return _resolve(_LOADERS, modality)


def batch_predictor(modality: str) -> Callable:
    fn = _resolve(_BATCH, modality)
    if fn is None:
        from ..errors import InvalidInput

        raise InvalidInput(f"Batch prediction is not available for {modality!r} models.")
    return fn
