"""A registered model version, as users hold it: ``model.predict(df)``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import describe_value as _describe

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .workspace import Workspace


class Model:
    already_registered = False  # True when Workspace.import_package found this very package registered

    def __init__(self, ws: "Workspace", row: dict) -> None:
        self.ws = ws
        self.row = row

    name = property(lambda self: self.row["name"])
    version = property(lambda self: self.row["version"])
    task = property(lambda self: self.row["task"])
    stage = property(lambda self: self.row["stage"])
    manifest = property(lambda self: self.row["manifest"])
    metrics = property(lambda self: self.row["metrics"])

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def __repr__(self) -> str:
        return f"<Model {self.ref} task={self.task}>"

    @cached_property
    def folder(self) -> Path:
        from .registry import materialise

        return materialise(self.ws.meta, self.ws.blobs, self.row, self.ws.cache_dir / "models")

    @cached_property
    def predictor(self):
        from .predictor import load_predictor

        return load_predictor(self.folder)

    def predict(self, data) -> "pd.DataFrame":
        """Predictions for the kind of data the model was trained on.

        Tables and text: a DataFrame, a list of records (dicts of column -> value) or one record (a dict).
        Images and recordings: a file, folder or .zip path (str or Path) or a list of them (as
        ``predictor.predict_files``); images also a DataFrame with an ``image`` column of file paths.
        Series: see ``SeriesPredictor.predict`` (a DataFrame with one row per series, a list of series, an
        array, or the path of a file of series). Anything else is refused with what the model accepts.
        """
        import os

        import pandas as pd

        from .errors import InvalidInput

        modality = self.manifest.get("modality", "tabular")
        predictor = self.predictor
        if modality == "series":
            return predictor.predict(data)
        got = _describe(data)
        if modality in ("image", "signal"):
            kind = "images" if modality == "image" else "recordings"
            if isinstance(data, (str, os.PathLike)):
                return predictor.predict_files([data])
            if isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, os.PathLike)) for p in data):
                return predictor.predict_files(list(data))
            if modality == "image" and isinstance(data, pd.DataFrame):
                return predictor.predict(data)
            raise InvalidInput(f"{self.ref} scores {kind}: expected a file, folder or .zip path (str or Path) or a "
                               f"list of them; got {got}.",
                               hint="Use model.predict(['a.png', 'folder/']) or model.predictor.predict_files(...); "
                                    "for bytes in memory, model.predictor.predict_bytes(data, 'name.png')."
                               if modality == "image" else
                               "Use model.predict(['a.wav', 'folder/']) or model.predictor.predict_files(...).")
        if isinstance(data, pd.DataFrame):
            return predictor.predict(data)
        columns = ", ".join(repr(c["name"]) for c in predictor.input_columns[:10])
        expected = (f"{self.ref} predicts rows of a table: expected a DataFrame, a list of records (dicts of column "
                    f"-> value) or one record (a dict), with the columns {columns}")
        if isinstance(data, dict):
            if any(isinstance(v, (list, tuple, dict, set, pd.Series, np.ndarray)) for v in data.values()):
                raise InvalidInput(f"{expected}; got a dict holding lists: a dict is read as one record (one value "
                                   "per column).", hint="For columns of values use model.predict(pd.DataFrame(d)).")
            data = [data]
        if isinstance(data, (list, tuple)):
            bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
            if bad is not None:
                raise InvalidInput(f"{expected}; got a list whose item {bad} is {_describe(data[bad])}.")
            if not data:
                raise InvalidInput(f"{expected}; got an empty list.", hint="Send at least one record.")
            from .modalities.tabular import check_records

            check_records(list(data), predictor.used_columns)  # the same checks as a REST request's records
            return predictor.predict(pd.DataFrame.from_records(list(data)))
        hint = ("To score a file, read it first (e.g. pd.read_csv(path)) or run `modelfab predict MODEL FILE`."
                if isinstance(data, (str, os.PathLike)) else None)
        raise InvalidInput(f"{expected}; got {got}.", hint=hint)

    def holdout(self) -> dict[str, np.ndarray]:
        path = self.folder / "holdout.npz"
        if not path.is_file():
            return {}
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}

    def write_report(self, out_dir: str | Path | None = None) -> tuple[Path, Path]:
        import os

        from .errors import InvalidInput
        from .reporting import write_model_report

        if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
            raise InvalidInput(f"out_dir must be a folder path (a str or Path) or None; got {_describe(out_dir)}.")
        out = Path(out_dir) if out_dir else self.ws.root / "reports" / f"{self.name}-v{self.version}"
        return write_model_report(self, out)

    def with_threshold(self, *, threshold: float | None = None, max_false_alarm: float | None = None) -> "Model":
        """A new version of this model with another decision threshold (no retraining); this model itself when
        the threshold would not change (nothing is registered).

        Anomaly models: ``threshold`` is the score threshold, or ``max_false_alarm`` re-sets it on
        the stored held-out normal scores. Binary classifiers of tables: ``threshold`` is the
        probability of the second label (``labels[1]``, the "positive" one) from which a row is
        predicted as that label; ``max_false_alarm`` picks the lowest threshold that flags at most
        that share of the held-out rows of the first label. Metrics are recomputed on the holdout.
        """
        from .errors import InvalidInput
        from .training_threshold import rethreshold, rethreshold_binary

        if (threshold is None) == (max_false_alarm is None):
            raise InvalidInput("Give exactly one of --threshold or --max-false-alarm.")
        if self.task == "anomaly":
            return rethreshold(self, threshold=threshold, max_false_alarm=max_false_alarm)
        labels = self.manifest.get("labels") or []
        if self.task != "classification" or len(labels) != 2:
            what = f"a {len(labels)}-class classifier" if self.task == "classification" else f"a {self.task} model"
            raise InvalidInput(f"{self.ref} is {what}; only anomaly models and two-class classifiers have a "
                               "threshold to move.")
        modality = self.manifest.get("modality", "tabular")
        if modality != "tabular":
            raise InvalidInput(f"{self.ref} is a two-class classifier of {modality} data, whose predictions do not "
                               "use a decision threshold yet; only classifiers of tables do.",
                               hint="Retrain, or use the probabilities in the predictions with your own cut-off.")
        return rethreshold_binary(self, threshold=threshold, max_false_alarm=max_false_alarm)

    def promote(self, stage: str) -> "Model":
        """Move this version to ``staging``, ``production`` (the previous production version of the
        name is archived in the same transaction), ``archived`` or ``none``."""
        from .errors import InvalidInput
        from .registry import STAGES

        if stage not in STAGES:
            raise InvalidInput(f"Stage must be one of {', '.join(STAGES)}; got {stage!r}.")
        if stage in ("staging", "production"):  # every stored file re-read: a changed version goes no further
            from .registry import verify_stored

            verify_stored(self.ws.meta, self.ws.blobs, self.row)
        self.ws.meta.set_model_stage(self.row["id"], stage,
                                     archive_others_of=self.name if stage == "production" else None)
        self.row = self.ws.meta.get_model(self.name, self.version)
        return self

    @property
    def aliases(self) -> list[str]:
        """The aliases (``NAME@ALIAS``) pointing at this version now."""
        return [a["alias"] for a in self.ws.meta.list_aliases(self.name) if a["model_id"] == self.row["id"]]

    def set_alias(self, alias: str) -> dict:
        """Point ``NAME@alias`` at this version (moved here if it pointed elsewhere); returns it with
        ``previous_version``."""
        from .datasets import current_user
        from .registry import set_alias

        return set_alias(self.ws.meta, self.row, alias, set_by=current_user())

    def export(self, dest: str | Path) -> Path:
        """Write the verified package as a ``.mfpkg`` file."""
        from .artifacts import export_mfpkg

        return export_mfpkg(self.folder, Path(dest), name=self.name, version=self.version)

