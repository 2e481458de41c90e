"""Accounts, browser sessions and the labels layer, on the workspace's metadata database.

SQLAlchemy Core over the tables added by migration 0002 (``storage/tables.py``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from ..errors import Conflict, InvalidInput, NotFound
from ..storage import tables as t
from ..storage.metadata import utcnow
from .passwords import check_password_rules, dummy_hash, hash_password, verify_password

ROLES = ("viewer", "labeler", "admin")
ROLE_RANK = {r: i for i, r in enumerate(ROLES)}
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,99}$")


def _row(r) -> dict[str, Any] | None:
    return None if r is None else dict(r._mapping)


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _USER.match(name):
        raise InvalidInput(f"User name must be 1-100 letters, digits, '_', '.', '@' or '-', starting with a letter "
                           f"or digit; got {name!r}.")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"Role must be one of {', '.join(ROLES)}; got {role!r}.")
    return role


CARRIED = " (carried over)"  # the author suffix of labels Apply labels copies into the new version

class WebStore:
    def __init__(self, meta) -> None:
        self.engine = meta.engine

    # -- users --------------------------------------------------------------
    def count_users(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(t.users)
                                .where(t.users.c.disabled_at.is_(None))).scalar() or 0

    def create_user(self, name: str, password: str, role: str) -> dict:
        check_user_name(name)
        check_role(role)
        check_password_rules(password)
        values = dict(name=name, password_hash=hash_password(password), role=role, created_at=utcnow())
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(t.users.insert().values(**values)).inserted_primary_key[0]
        except SAIntegrityError:
            raise Conflict(f"A user named {name!r} already exists.",
                           hint="Pick another name, or change the password with `modelfab users passwd`.") from None
        return self.get_user(new_id)

    def get_user(self, user_id: int) -> dict:
        with self.engine.connect() as conn:
            row = _row(conn.execute(sa.select(t.users).where(t.users.c.id == user_id)).first())
        if row is None:
            raise NotFound(f"No user with id {user_id}.")
        return row

    def find_user(self, name: str) -> dict | None:
        with self.engine.connect() as conn:
            return _row(conn.execute(sa.select(t.users).where(t.users.c.name == name)).first())

    def list_users(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(t.users).order_by(t.users.c.name))]

    def set_password(self, name: str, password: str) -> None:
        check_password_rules(password)
        user = self._must(name)
        with self.engine.begin() as conn:
            conn.execute(t.users.update().where(t.users.c.id == user["id"]).values(password_hash=hash_password(password)))
            conn.execute(t.web_sessions.delete().where(t.web_sessions.c.user_id == user["id"]))

    def set_role(self, name: str, role: str) -> None:
        check_role(role)
        user = self._must(name)
        with self.engine.begin() as conn:
            conn.execute(t.users.update().where(t.users.c.id == user["id"]).values(role=role))

    def disable_user(self, name: str) -> None:
        user = self._must(name)
        with self.engine.begin() as conn:
            conn.execute(t.users.update().where(t.users.c.id == user["id"]).values(disabled_at=utcnow()))
            conn.execute(t.web_sessions.delete().where(t.web_sessions.c.user_id == user["id"]))

    def _must(self, name: str) -> dict:
        user = self.find_user(name)
        if user is None:
            raise NotFound(f"No user named {name!r}.", hint="See `modelfab users list`.")
        return user

    def authenticate(self, name: str, password: str) -> dict | None:
        user = self.find_user(name) if isinstance(name, str) and len(name) <= 100 else None
        if user is None or user["disabled_at"]:
            verify_password(password, dummy_hash())  # same time whether or not the name exists
            return None
        if not verify_password(password, user["password_hash"]):
            return None
        with self.engine.begin() as conn:
            conn.execute(t.users.update().where(t.users.c.id == user["id"]).values(last_login_at=utcnow()))
        return user

    # -- sessions -------------------------------------------------------------
    def create_session(self, user_id: int, hours: int) -> tuple[str, str]:
        """A new session: (cookie value, CSRF token). Only the cookie's sha256 is stored."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = _dt.datetime.now(_dt.timezone.utc)
        expires = (now + _dt.timedelta(hours=hours)).isoformat(timespec="seconds")
        with self.engine.begin() as conn:
            conn.execute(t.web_sessions.delete().where(t.web_sessions.c.expires_at < utcnow()))
            conn.execute(t.web_sessions.insert().values(token_hash=_sha(token), user_id=user_id, csrf_token=csrf,
                                                        created_at=utcnow(), expires_at=expires))
        return token, csrf

    def session_user(self, token: str) -> tuple[dict, dict] | None:
        """(user, session) of a live session cookie, else None."""
        if not token or len(token) > 200:
            return None
        q = (sa.select(t.web_sessions, t.users.c.name, t.users.c.role, t.users.c.disabled_at)
             .join(t.users, t.users.c.id == t.web_sessions.c.user_id)
             .where(t.web_sessions.c.token_hash == _sha(token)))
        with self.engine.connect() as conn:
            row = _row(conn.execute(q).first())
        if row is None or row["disabled_at"] or row["expires_at"] < utcnow():
            return None
        user = {"id": row["user_id"], "name": row["name"], "role": row["role"]}
        return user, {"id": row["id"], "csrf_token": row["csrf_token"], "expires_at": row["expires_at"]}

    def delete_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.web_sessions.delete().where(t.web_sessions.c.token_hash == _sha(token)))

    # -- labels -------------------------------------------------------------
    def add_label(self, dataset_id: int, item: str, label: str | None, author: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(t.labels.insert().values(dataset_id=dataset_id, item=item, label=label, author=author,
                                                         created_at=utcnow())).inserted_primary_key[0]

    def add_labels(self, dataset_id: int, items: list[str], label: str | None, author: str) -> int:
        """One label for many items, in one transaction; the id of the last row."""
        now = utcnow()
        last = 0
        with self.engine.begin() as conn:
            for item in items:
                last = conn.execute(t.labels.insert().values(dataset_id=dataset_id, item=item, label=label,
                                                             author=author, created_at=now)).inserted_primary_key[0]
        return last

    def current_labels(self, dataset_id: int) -> dict[str, str | None]:
        """Item -> its newest label (None: explicitly unlabelled) for items labelled in the UI."""
        newest = (sa.select(sa.func.max(t.labels.c.id)).where(t.labels.c.dataset_id == dataset_id)
                  .group_by(t.labels.c.item))
        q = sa.select(t.labels.c.item, t.labels.c.label).where(t.labels.c.id.in_(newest))
        with self.engine.connect() as conn:
            return {r[0]: r[1] for r in conn.execute(q)}

    def label_history(self, dataset_id: int, item: str) -> list[dict]:
        q = (sa.select(t.labels).where(t.labels.c.dataset_id == dataset_id, t.labels.c.item == item)
             .order_by(t.labels.c.id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def labels_version(self, dataset_id: int) -> tuple[int, int]:
        """(highest label row id, number of rows) of a dataset: the version of its labels layer."""
        q = sa.select(sa.func.max(t.labels.c.id), sa.func.count()).where(t.labels.c.dataset_id == dataset_id)
        with self.engine.connect() as conn:
            top, n = conn.execute(q).first()
        return int(top or 0), int(n or 0)

    def label_changes(self, dataset_id: int) -> int:
        """Label rows saved on this version (undos count too), not the ones carried over from the version it
        was made from by Apply labels (their author ends with CARRIED)."""
        q = sa.select(sa.func.count()).where(t.labels.c.dataset_id == dataset_id,
                                              sa.not_(t.labels.c.author.like("%" + CARRIED)))
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def last_label_by(self, dataset_id: int, author: str) -> dict | None:
        q = (sa.select(t.labels).where(t.labels.c.dataset_id == dataset_id, t.labels.c.author == author)
             .order_by(t.labels.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            return _row(conn.execute(q).first())
