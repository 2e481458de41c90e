"""The one metadata schema (SQLAlchemy Core) for SQLite and PostgreSQL.

Alembic migrations under ``migrations/versions`` create exactly this; a
test compares the two so they cannot drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("content_sha", sa.String(64), nullable=False),
    sa.Column("data_sha", sa.String(64), nullable=False),
    sa.Column("source_name", sa.String(1000), nullable=False),
    sa.Column("n_rows", sa.BigInteger, nullable=False),
    sa.Column("n_cols", sa.Integer, nullable=False),
    sa.Column("schema", sa.JSON, nullable=False),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.UniqueConstraint("name", "version", name="uq_datasets_name_version"),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=True),
    sa.Column("package_sha", sa.String(64), nullable=False),
    sa.Column("manifest", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("stage", sa.String(20), nullable=False, server_default="none"),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.UniqueConstraint("name", "version", name="uq_models_name_version"),
)

# Every blob a record needs, so that gc and integrity checks need no
# knowledge of each record's layout.
blob_refs = sa.Table(
    "blob_refs",
    metadata,
    sa.Column("owner", sa.String(80), nullable=False),
    sa.Column("sha", sa.String(64), nullable=False),
    sa.Column("role", sa.String(200), nullable=False),
    sa.PrimaryKeyConstraint("owner", "sha", "role", name="pk_blob_refs"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=True),
    sa.Column("revoked_at", sa.String(40), nullable=True),
)

sa.Index("ix_datasets_content", datasets.c.name, datasets.c.content_sha)
sa.Index("ix_blob_refs_sha", blob_refs.c.sha)

# -- the browser UI (migration 0002): accounts, sessions, a versioned labels layer --

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(400), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("disabled_at", sa.String(40), nullable=True),
    sa.Column("last_login_at", sa.String(40), nullable=True),
)

# Server-side browser sessions: only the sha256 of the cookie value is stored.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
)

# Append-only: the current label of an item is its newest row (label NULL = unlabelled);
# the labels "version" of a dataset is the highest id among its rows.
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("item", sa.String(1000), nullable=False),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("author", sa.String(100), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

sa.Index("ix_labels_item", labels.c.dataset_id, labels.c.item)

# -- registry aliases (migration 0003): NAME@ALIAS points at one version of NAME --

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("alias", sa.String(100), nullable=False),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("set_by", sa.String(200), nullable=False),
    sa.Column("set_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("name", "alias", name="uq_model_aliases_name_alias"),
)
