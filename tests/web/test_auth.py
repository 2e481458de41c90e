"""Accounts, sessions and roles of the browser UI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import sqlalchemy as sa

from modelfab.web.passwords import hash_password, verify_password

from .conftest import PASSWORD, csrf_of


def test_password_hash_is_salted_scrypt_and_verifies():
    a, b = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert a.startswith("scrypt$") and a != b  # random salt
    assert verify_password("s3cret-pass", a) and not verify_password("s3cret-pasS", a)
    assert not verify_password("x", "md5$abc") and not verify_password("x", "garbage")


def test_new_workspace_says_how_to_create_the_first_admin_and_has_no_default_password(web):
    c = web.anon()
    r = c.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/setup"
    page = c.get("/setup").text
    assert "modelfab users create" in page and "--role admin" in page
    assert c.get("/login").headers["location"] == "/setup"
    token = csrf_of(page)
    for name, pw in (("admin", "admin"), ("admin", ""), ("root", "password")):
        r = c.post("/login", data={"name": name, "password": pw, "csrf_token": token})
        assert r.status_code == 401 and "mf_session" not in r.headers.get("set-cookie", "")


def test_login_sets_a_strict_httponly_session_and_logout_ends_it(web):
    web.store.create_user("ann", PASSWORD, "viewer")
    c = web.anon()
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"name": "ann", "password": PASSWORD, "csrf_token": token, "next": "/models"})
    assert r.status_code == 303 and r.headers["location"] == "/models"
    cookie = r.headers["set-cookie"]
    assert "mf_session=" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    value = c.cookies.get("mf_session")
    with web.ws.meta.engine.connect() as conn:  # only the hash is stored
        stored = [r[0] for r in conn.execute(sa.text("SELECT token_hash FROM web_sessions"))]
    assert value not in stored and len(stored) == 1
    page = c.get("/")
    assert page.status_code == 200 and "ann" in page.text
    c.post("/logout", data={"csrf_token": csrf_of(page.text)})
    c.cookies.set("mf_session", value)  # replaying the old cookie does not work
    assert c.get("/").status_code == 303


def test_wrong_password_is_refused_and_repeated_failures_are_throttled(web):
    web.store.create_user("bob", PASSWORD, "admin")
    c = web.anon()
    token = csrf_of(c.get("/login").text)
    for _ in range(5):
        r = c.post("/login", data={"name": "bob", "password": "nope-nope", "csrf_token": token})
        assert r.status_code == 401
    r = c.post("/login", data={"name": "bob", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429  # even the right password waits a minute


def test_login_redirect_stays_on_this_site(web):
    web.store.create_user("cid", PASSWORD, "viewer")
    for nxt in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        c = web.anon()
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"name": "cid", "password": PASSWORD, "csrf_token": token, "next": nxt})
        assert r.headers["location"] == "/", nxt


def test_expired_and_disabled_sessions_are_refused(web):
    web.store.create_user("keeper", PASSWORD, "admin")
    c = web.client("viewer", "dora")
    assert c.get("/").status_code == 200
    with web.ws.meta.engine.begin() as conn:
        conn.execute(sa.text("UPDATE web_sessions SET expires_at='2000-01-01T00:00:00+00:00'"))
    assert c.get("/").status_code == 303
    c = web.client("viewer", "dora")
    web.store.disable_user("dora")
    assert c.get("/").status_code == 303
    token = csrf_of(web.anon().get("/login").text)
    c2 = web.anon()
    c2.cookies.set("mf_precsrf", token)
    r = c2.post("/login", data={"name": "dora", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 401


def test_roles_are_enforced(web):
    viewer, labeler, admin = web.client("viewer"), web.client("labeler"), web.client("admin")
    for path in ("/", "/models", "/predict"):
        assert viewer.get(path).status_code == 200
    for path in ("/import", "/train", "/users"):
        assert viewer.get(path).status_code == 403, path
    assert labeler.get("/import").status_code == 200
    assert labeler.get("/train").status_code == 403 and labeler.get("/users").status_code == 403
    assert admin.get("/train").status_code == 200 and admin.get("/users").status_code == 200
    # writes: the role check comes before anything is done
    r = viewer.post("/import", data={"csrf_token": viewer.csrf, "source": "folder", "folder": "x"})
    assert r.status_code == 403
    r = labeler.post("/train", data={"csrf_token": labeler.csrf, "dataset": "x"})
    assert r.status_code == 403
    r = labeler.post("/users", data={"csrf_token": labeler.csrf, "name": "eve", "password": PASSWORD, "role": "admin"})
    assert r.status_code == 403 and web.store.find_user("eve") is None
    r = admin.post("/users", data={"csrf_token": admin.csrf, "name": "eve", "password": PASSWORD, "role": "labeler"})
    assert r.status_code == 303 and web.store.find_user("eve")["role"] == "labeler"
    # the nav shows only what the role may do
    nav = viewer.get("/").text
    assert 'href="/train"' not in nav and 'href="/import"' not in nav and 'href="/users"' not in nav


def _cli(*args, stdin: str = "", env_home=None):
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    env.pop("MODELFAB_HOME", None)
    return subprocess.run([sys.executable, "-m", "modelfab", *args], input=stdin, text=True, capture_output=True,
                          env=env, timeout=120)


def test_cli_creates_users_with_a_password_from_stdin(tmp_path):
    from modelfab.web.store import WebStore
    from modelfab.workspace import Workspace

    root = tmp_path / "ws"
    Workspace.init(root).close()
    p = _cli("users", "create", "alice", "--role", "admin", "-w", str(root), "--json", stdin=PASSWORD + "\n")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["role"] == "admin"
    again = _cli("users", "create", "alice", "--role", "viewer", "-w", str(root), stdin=PASSWORD + "\n")
    assert again.returncode != 0 and "already exists" in again.stderr
    short = _cli("users", "create", "bob", "--role", "viewer", "-w", str(root), stdin="short\n")
    assert short.returncode != 0 and "at least 8" in short.stderr
    bad_role = _cli("users", "create", "bob", "--role", "root", "-w", str(root), stdin=PASSWORD + "\n")
    assert bad_role.returncode != 0 and "admin, labeler" not in bad_role.stdout and "Role must be" in bad_role.stderr
    listed = json.loads(_cli("users", "list", "-w", str(root), "--json").stdout)["users"]
    assert [u["name"] for u in listed] == ["alice"] and "password_hash" not in listed[0]
    ws = Workspace.open(root)
    assert WebStore(ws.meta).authenticate("alice", PASSWORD) is not None
    assert _cli("users", "passwd", "alice", "-w", str(root), stdin="another-password\n").returncode == 0
    assert WebStore(ws.meta).authenticate("alice", PASSWORD) is None
    assert WebStore(ws.meta).authenticate("alice", "another-password") is not None
    ws.close()
