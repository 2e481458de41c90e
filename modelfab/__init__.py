"""modelfab: a self-hosted AI model factory.

    import modelfab as mf
    ws = mf.Workspace.open("my-workspace")
    ds = ws.import_table("line3.csv", name="line3").dataset
    model = ws.train(ds, target="quality", budget=60)
    model.predict(df)

Nothing heavy is imported until it is used.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Workspace", "Budget", "ModelfabError", "__version__"]


def __getattr__(name: str):
    if name == "Workspace":
        from .workspace import Workspace

        return Workspace
    if name == "Budget":
        from .automl.budget import Budget

        return Budget
    if name == "ModelfabError":
        from .errors import ModelfabError

        return ModelfabError
    raise AttributeError(f"module 'modelfab' has no attribute {name!r}")
