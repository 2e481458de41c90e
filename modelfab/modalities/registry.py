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


def predictor_loader(modality: str) -> Callable | None:
    target = _LOADERS.get(modality)
    if target is None:
        return None
    module, func = target.split(":")
    return getattr(import_module(module), func)
