"""The workspace: the one object users hold. Wires metadata, blobs and settings.

``Workspace.init(path)`` creates one; ``Workspace.open(path)`` opens it.
Nothing happens at import time.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidInput, Unauthorized, WorkspaceError
from .settings import Settings
from .storage.blobs import BlobStore, open_blob_store, sha256_file
from .storage.metadata import MetadataStore, public_db_url, refuse_password, sqlite_url, utcnow

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .automl.search import ProgressFn
    from .datasets import DatasetVersion, ImportResult
    from .model import Model

MARKER = "workspace.json"
WORKSPACE_FORMAT = 1
TOKEN_SCOPES = ("predict", "admin")


def _check_path(path, what: str, argument: str = "path") -> None:
    """An import's path argument must be a str or a Path: anything else is the caller's mistake, said plainly
    (not pathlib's TypeError)."""
    if isinstance(path, os.PathLike) or (isinstance(path, str) and path.strip()):
        return
    got = ("an empty string" if isinstance(path, str) else "None" if path is None
           else f"{type(path).__name__} {path!r:.40}")
    raise InvalidInput(f"{argument}: expected the path of {what} (a str or Path); got {got}.")


def _read_only_folder(root: Path) -> bool:
    """A workspace folder this process cannot write (read-only mount, or no write permission)."""
    try:
        return bool(os.statvfs(root).f_flag & os.ST_RDONLY) or not os.access(root, os.W_OK)
    except OSError:
        return False


def resolve_path(path: str | os.PathLike | None) -> Path:
    if path:
        return Path(path).expanduser()
    env = os.environ.get("MODELFAB_HOME")
    return Path(env).expanduser() if env else Path.cwd()


class Workspace:
    def __init__(self, root: Path, meta: MetadataStore, blobs: BlobStore, settings: Settings) -> None:
        self.root = root
        self.meta = meta
        self.blobs = blobs
        self.settings = settings
        self._verified: set[str] = set()

    # -- lifecycle --------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike | None = None, *, db_url: str | None = None,
             blobs_url: str | None = None, settings: Settings | None = None) -> "Workspace":
        """Create a workspace; metadata in ``db_url`` (default $MODELFAB_DB, else SQLite in the folder), blobs
        in ``blobs_url`` (default $MODELFAB_BLOBS, else a folder; ``s3://BUCKET/PREFIX`` for S3). Passwords
        and keys are never written to workspace.json: see docs/scaling.md."""
        root = resolve_path(path)
        db_url = db_url or os.environ.get("MODELFAB_DB") or None
        blobs_url = blobs_url or os.environ.get("MODELFAB_BLOBS") or None
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"Cannot create a workspace at {root}: it is a file, expected a folder.",
                                 hint="Choose another path.")
        refuse_password(db_url, "--db" if "MODELFAB_DB" not in os.environ else "--db / MODELFAB_DB")
        if (root / MARKER).is_file():
            ws = cls.open(root, settings=settings)
            cls._check_same_storage(ws, db_url, blobs_url)
            return ws
        created = not root.exists()
        try:
            root.mkdir(parents=True, exist_ok=True)
            for sub in ("blobs", "cache", "tmp", "reports"):
                (root / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"Cannot create a workspace at {root}: {exc.strerror}.") from None
        try:
            return cls._init_storage(root, db_url, blobs_url, settings)
        except BaseException:  # the database or bucket refused: leave no half-made folder behind
            if created:
                import shutil

                shutil.rmtree(root, ignore_errors=True)
            raise

    @classmethod
    def _init_storage(cls, root: Path, db_url: str | None, blobs_url: str | None,
                      settings: Settings | None) -> "Workspace":
        config = {"format": WORKSPACE_FORMAT, "db": public_db_url(db_url or "sqlite:///metadata.db"),
                  "blobs": blobs_url or "blobs", "created_at": utcnow()}
        if os.environ.get("MODELFAB_S3_ENDPOINT") and config["blobs"].startswith("s3://"):
            config["s3_endpoint"] = os.environ["MODELFAB_S3_ENDPOINT"]
        blobs = cls._blob_store(root, config)
        if hasattr(blobs, "ensure_bucket"):
            blobs.ensure_bucket()
        meta = MetadataStore(cls._db_url(root, db_url or config["db"]))
        meta.upgrade()
        tmp = root / (MARKER + ".tmp")
        tmp.write_text(json.dumps(config, indent=2), encoding="utf-8")
        os.replace(tmp, root / MARKER)  # the marker last: a half-made workspace is not one
        return cls(root, meta, blobs, settings or Settings.from_env())

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, *, settings: Settings | None = None,
             allow_older_schema: bool = False) -> "Workspace":
        """Open a workspace; ``allow_older_schema``: also one whose schema needs `modelfab migrate` (backup)."""
        root = resolve_path(path)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"Workspace path {root} is a file, expected a workspace folder.",
                                 hint="Pass the folder made by `modelfab init`.")
        marker = root / MARKER
        if not marker.is_file():
            raise WorkspaceError(f"No modelfab workspace at {root}.",
                                 hint="Run `modelfab init` there, or pass --workspace / set MODELFAB_HOME.")
        try:
            config = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"{marker} is unreadable ({exc}).") from None
        if not isinstance(config, dict) or config.get("format", 0) > WORKSPACE_FORMAT:
            raise WorkspaceError(f"The workspace at {root} was made by a newer modelfab.", hint="Upgrade modelfab.")
        url = cls._db_url(root, config.get("db", "sqlite:///metadata.db"))
        if url.startswith("sqlite:///") and _read_only_folder(root):  # read commands work; writes say read-only
            from .storage.metadata import sqlite_read_only_url

            url = sqlite_read_only_url(url[len("sqlite:///"):])
        meta = MetadataStore(url)
        try:
            meta.check_schema(allow_older=allow_older_schema)
        except BaseException:
            meta.close()
            raise
        return cls(root, meta, cls._blob_store(root, config), settings or Settings.from_env())

    @staticmethod
    def _check_same_storage(ws: "Workspace", db_url: str | None, blobs_url: str | None) -> None:
        """``init`` on an existing workspace opens it; storage URLs that differ from the recorded ones are
        refused (they were once silently ignored)."""
        from .storage.metadata import normalize_db_url

        def same_db(url: str) -> bool:
            if url.startswith("sqlite"):
                return ws.meta.dialect == "sqlite" and Path(
                    Workspace._db_url(ws.root, url)[len("sqlite:///"):]).resolve() == Path(
                    ws.meta.engine.url.database).resolve()
            return normalize_db_url(public_db_url(url)) == normalize_db_url(ws.meta.url)

        def same_blobs(url: str) -> bool:
            if url.startswith("s3://") or not hasattr(ws.blobs, "root"):
                return url.rstrip("/") == str(ws.blobs.url).rstrip("/")
            p = Path(url).expanduser()
            return (p if p.is_absolute() else ws.root / p).resolve() == Path(ws.blobs.root).resolve()

        if db_url and not same_db(db_url):
            kind = "SQLite" if ws.meta.dialect == "sqlite" else "PostgreSQL"
            ws.close()
            raise WorkspaceError(
                f"{ws.root} is already a {kind} workspace (metadata {ws.meta.url}); --db "
                f"{public_db_url(db_url)} was not applied.",
                hint="To move it, back it up and run `modelfab migrate-storage --db URL -w DIR`; for another "
                     "workspace, init a new folder.")
        if blobs_url and not same_blobs(blobs_url):
            ws.close()
            raise WorkspaceError(
                f"{ws.root} is already a workspace, with its blobs in {ws.blobs.url}; --blobs {blobs_url} was not "
                "applied.", hint="To move them, back it up and run `modelfab migrate-storage --blobs URL -w DIR`.")

    @staticmethod
    def _blob_store(root: Path, config: dict) -> BlobStore:
        return open_blob_store(config.get("blobs", "blobs"), root, s3_endpoint=config.get("s3_endpoint"),
                               cache_dir=root / "cache" / "blobs")

    @staticmethod
    def _db_url(root: Path, db: str) -> str:
        if db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
            return sqlite_url(root / db[len("sqlite:///"):])
        return db

    def close(self) -> None:
        self.meta.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def tmp_dir(self) -> Path:
        d = self.root / "tmp"
        d.mkdir(exist_ok=True)
        return d

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def blob_path(self, sha: str) -> Path:
        """Local path of a blob, its hash checked once per process."""
        path = self.blobs.local_path(sha)
        if sha not in self._verified:
            if sha256_file(path) != sha:
                from .errors import IntegrityError

                raise IntegrityError(f"Blob {sha[:12]} does not match its sha256: it was changed on disk.",
                                     hint="Restore the workspace from a backup.")
            self._verified.add(sha)
        return path

    # -- datasets ---------------------------------------------------------
    def import_table(self, path: str | os.PathLike, name: str | None = None, *,
                     sheet: str | None = None, header_row: int | None = None,
                     kinds: dict[str, str] | None = None) -> "ImportResult":
        """Import a CSV/TSV, Parquet or Excel table; ``sheet``: the Excel sheet (default: the one with the most
        cells; ``ImportResult.notes`` says which was read); ``header_row``: the 1-based row holding the column
        names, when title rows come first (default: found, and said in the notes); ``kinds``: column -> kind
        where the inferred one is wrong (e.g. ``{"report": "text"}`` for short texts that repeat, read as a
        category; kinds: numeric, categorical, text, datetime, boolean, id)."""
        from .datasets import import_table

        _check_path(path, "a table file (CSV, TSV, Parquet or Excel)")
        if header_row is not None and (isinstance(header_row, bool) or not isinstance(header_row, int)
                                       or header_row < 1):
            raise InvalidInput(f"header_row must be a row number from 1; got {header_row!r}.")
        if kinds is not None and (not isinstance(kinds, dict)
                                  or not all(isinstance(k, str) and isinstance(v, str) for k, v in kinds.items())):
            raise InvalidInput(f"kinds maps column names to kinds; expected a dict of str to str, got "
                               f"{type(kinds).__name__}.", hint="Pass kinds={'report': 'text'}.")
        return import_table(self, path, name, kinds=kinds or None, sheet=sheet, header_row=header_row)

    def dataset(self, ref: "str | DatasetVersion") -> "DatasetVersion":
        from .datasets import DatasetVersion

        if isinstance(ref, DatasetVersion):
            return ref
        name, _, ver = str(ref).partition(":")
        if ver and not ver.isdigit():
            raise InvalidInput(f"Dataset version in {ref!r} must be a whole number.")
        return DatasetVersion.from_row(self.meta.get_dataset(name, int(ver) if ver else None))

    def datasets(self) -> list["DatasetVersion"]:
        from .datasets import DatasetVersion

        return [DatasetVersion.from_row(r) for r in self.meta.list_datasets()]

    def load_frame(self, ref: "str | DatasetVersion") -> "pd.DataFrame":
        from .datasets import load_frame

        return load_frame(self, self.dataset(ref))

    # -- training and models ----------------------------------------------
    def train(self, dataset: "str | DatasetVersion", *, target: str | None = None, task: str = "auto",
              budget: float | str = 60, metric: str | None = None, name: str | None = None, seed: int = 0,
              normal_label: str = "normal", max_false_alarm: float = 0.01,
              learners: tuple[str, ...] | None = None, ensemble: bool = True,
              progress: "ProgressFn | None" = None, budget_clock=None, executor=None,
              exclude: tuple[str, ...] = ()) -> "Model":
        """Train within ``budget`` seconds and register the result as a new model version.

        ``exclude`` (tables): input columns to leave out, e.g. one that copies the target (training notes
        name such columns).

        ``executor`` (tables): ``"local"`` (default), ``"process"``, ``"ray"`` or an executor from
        ``modelfab.execution.get_executor``; see docs/execution.md.

        Tables need ``target``. Recordings train a fault classifier (``task="classification"``,
        labels from the import) or an anomaly detector from normal recordings
        (``task="anomaly"``; files labelled ``normal_label`` are normal, other labelled files
        are used to choose the detector, never to fit it; the threshold is set on held-out
        normal files for ``max_false_alarm``).
        """
        from .training import train

        return train(self, dataset, target=target, task=task, budget=budget, metric=metric, name=name,
                     seed=seed, progress=progress, budget_clock=budget_clock, normal_label=normal_label,
                     max_false_alarm=max_false_alarm, learners=learners, ensemble=ensemble, executor=executor,
                     exclude=tuple(exclude))

    def import_recordings(self, folder: str | os.PathLike, name: str | None = None, *, labels: str = "folder",
                          channel: str | int | None = None, sample_rate: int | None = None,
                          variable: str | None = None, window_s: float | None = None, hop_s: float | None = None,
                          skip_bad: bool = False, progress=None,
                          features: str | tuple[str, ...] | None = None) -> "ImportResult":
        """Import a folder of recordings (audio or vibration) as a dataset version of windows.

        ``features``: feature sets or a preset (``"sound"``, the default; ``"vibration"`` for fault
        diagnosis that must carry over to other loads or machines; or e.g. ``"logmel,envelope"``).
        """
        from .recordings import SignalOptions, import_recordings

        _check_path(folder, "a folder of recordings", "folder")
        sets = (features,) if isinstance(features, str) else tuple(features or SignalOptions.feature_sets)
        opts = SignalOptions(labels=labels, channel=None if channel is None else str(channel),
                             sample_rate=sample_rate, variable=variable, window_s=window_s, hop_s=hop_s,
                             feature_sets=sets)
        return import_recordings(self, folder, name, opts, skip_bad=skip_bad, progress=progress)

    def import_images(self, path: str | os.PathLike, name: str | None = None, *, labels: str = "folder",
                      skip_bad: bool = False, progress=None) -> "ImportResult":
        """Import a folder or .zip of images (labels: ``folder``, ``none`` or a file,label CSV; masks and
        VOC/COCO/YOLO boxes are picked up, see docs/images.md) as a dataset version."""
        from .images import ImageOptions, import_images

        _check_path(path, "a folder or .zip of images")
        return import_images(self, path, name, ImageOptions(labels=str(labels)), skip_bad=skip_bad, progress=progress)

    def import_series(self, path: str | os.PathLike, name: str | None = None, *, id_column: str | None = None,
                      time_column: str | None = None, value_columns: list[str] | str | None = None,
                      label_column: str | None = None, labels_file: str | os.PathLike | None = None,
                      skip_bad: bool = False, sheet: str | None = None) -> "ImportResult":
        """Import time series: a UCR/UEA ``.ts`` file or table, a long table (``id_column``: one row per series and
        time step) or a wide table (one row per series); labels from ``label_column`` or ``labels_file`` (id,label).
        ``skip_bad``: a series that cannot be read (too short, empty, channels of different lengths) is left out
        and named in the notes, instead of refusing the file. ``sheet``: of an Excel workbook (default: the one
        with the most cells)."""
        from .modalities.series.tables import reading_sheet
        from .series import SeriesOptions, import_series

        _check_path(path, "a file of series (.ts, CSV or Parquet)")
        if labels_file is not None:
            _check_path(labels_file, "a CSV of id,label", "labels_file")
        opts = SeriesOptions(id_column=id_column, time_column=time_column,  # value_columns: a list, or one str
                             value_columns=value_columns, label_column=label_column,
                             labels_file=str(labels_file) if labels_file else None)
        if sheet is not None and not isinstance(sheet, str):
            raise InvalidInput(f"sheet names a sheet of the workbook; expected a str, got {type(sheet).__name__}.")
        with reading_sheet(sheet):
            return import_series(self, path, name, opts, skip_bad=skip_bad)

    def model(self, ref: str) -> "Model":
        """``NAME`` (latest), ``NAME:VERSION`` or ``NAME@ALIAS`` (the version the alias points at now)."""
        from .model import Model
        from .registry import resolve_ref

        return Model(self, resolve_ref(self.meta, ref))

    def import_package(self, path: str | os.PathLike, name: str | None = None) -> "Model":
        """Register a ``.mfpkg`` from another workspace (verified before anything is written)."""
        import shutil

        from .artifacts import extract_mfpkg
        from .datasets import current_user
        from .model import Model
        from .registry import register_package, registered_copy

        _check_path(path, "a .mfpkg model package")
        folder = extract_mfpkg(Path(path), self.tmp_dir)
        try:
            manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
            from .predictor import load_predictor

            load_predictor(folder, manifest)  # it must load here, not only verify
            default = manifest.get("exported_name") or manifest.get("data", {}).get("dataset") or Path(path).stem
            name = name or default
            same = registered_copy(self.meta.list_models(name), manifest)
            if same is not None:  # importing a package twice (a re-run deployment script) adds nothing
                model = Model(self, same)
                model.already_registered = True
                return model
            row = register_package(self.meta, self.blobs, folder, name=name, dataset_id=None,
                                   created_by=current_user())
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return Model(self, row)

    def models(self, name: str | None = None) -> list["Model"]:
        from .model import Model

        return [Model(self, r) for r in self.meta.list_models(name)]

    # -- tokens -----------------------------------------------------------
    def create_token(self, name: str, scope: str = "predict", expires_at: str | None = None) -> tuple[int, str]:
        if scope not in TOKEN_SCOPES:
            raise InvalidInput(f"Token scope must be one of {', '.join(TOKEN_SCOPES)}; got {scope!r}.")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise InvalidInput(f"A token needs a name of 1-100 characters to recognise it by; got {name!r}.",
                               hint="E.g. `modelfab tokens create mes-line3`.")
        plain = "mf_" + secrets.token_urlsafe(32)
        token_id = self.meta.add_token(name, hashlib.sha256(plain.encode()).hexdigest(), scope, expires_at)
        return token_id, plain

    def check_token(self, plain: str, needed: str = "predict") -> dict:
        row = self.meta.get_token(hashlib.sha256(plain.encode()).hexdigest()) if plain else None
        if row is None or row["revoked_at"]:
            raise Unauthorized("Missing, unknown or revoked API token.",
                               hint="Send 'Authorization: Bearer <token>' with a token from `modelfab tokens create`.")
        if row["expires_at"] and row["expires_at"] < utcnow():
            raise Unauthorized("The API token has expired.", hint="Create a new one with `modelfab tokens create`.")
        if needed == "admin" and row["scope"] != "admin":
            from .errors import Forbidden

            raise Forbidden("This action needs a token with scope 'admin'.")
        return row
