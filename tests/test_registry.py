"""Registry aliases: NAME@ALIAS wherever a model is named (API, CLI, predict, serve)."""

import httpx
import pandas as pd
import pytest

from modelfab.errors import InvalidInput, NotFound
from modelfab.registry import check_alias, parse_ref, split_ref
from modelfab.workspace import Workspace
from tests.conftest import cli_json, run_cli


@pytest.fixture(scope="module")
def line3(trained, tmp_path_factory):
    """A fresh workspace holding two versions of `line3` (the session's trained model, then with another threshold)."""
    _ws, model = trained
    tmp = tmp_path_factory.mktemp("aliases")
    pkg = model.export(tmp / "m.mfpkg")
    ws = Workspace.init(tmp / "ws")
    ws.import_package(pkg, name="line3").with_threshold(threshold=0.4)
    assert [m.version for m in ws.models("line3")] == [1, 2]
    yield ws
    ws.close()


@pytest.mark.parametrize("ref,expected", [
    ("m", ("m", None, None)), ("m:3", ("m", 3, None)), ("m@champion", ("m", None, "champion")),
    ("m.v2@line3-current", ("m.v2", None, "line3-current")), ("m@v2", ("m", None, "v2")),
])
def test_split_ref(ref, expected):
    assert split_ref(ref) == expected


@pytest.mark.parametrize("alias", ["3", "007", "", "-x", "bad name", "a@b", "a:b", "a/b", "a\n", "..", "_x", "x" * 101])
def test_bad_alias_names_are_refused(alias):
    with pytest.raises(InvalidInput, match="Alias must be"):
        check_alias(alias)
    with pytest.raises(InvalidInput):
        split_ref(f"m@{alias}")


def test_parse_ref_resolves_aliases_with_metadata_only(line3):
    with pytest.raises(InvalidInput, match="names an alias"):
        parse_ref("line3@champion")
    line3.model("line3:1").set_alias("champion")
    assert parse_ref("line3@champion", line3.meta) == ("line3", 1)
    assert parse_ref("line3:2", line3.meta) == ("line3", 2) and parse_ref("line3") == ("line3", None)


def test_cli_alias_move_list_show_predict_unalias(line3, factory_csv, tmp_path):
    w = ["--workspace", str(line3.root)]
    j = cli_json("models", "alias", "line3:1", "prod-line", "--json", *w)
    assert (j["ref"], j["version"], j["previous_version"]) == ("line3@prod-line", 1, None)
    assert line3.model("line3@prod-line").version == 1
    moved = run_cli("models", "alias", "line3:2", "prod-line", *w).stdout
    assert "line3@prod-line: line3:1 -> line3:2" in moved  # old -> new
    assert line3.model("line3@prod-line").version == 2  # what NAME@ALIAS resolves to moved with it
    line3.model("line3:2").set_alias("line3-current")
    shown = cli_json("models", "show", "line3@prod-line", *w)
    assert shown["version"] == 2 and shown["aliases"] == ["line3-current", "prod-line"]

    listed = {m["version"]: m["aliases"] for m in cli_json("models", "list", *w)["models"]}
    assert listed[2] == ["line3-current", "prod-line"] and "prod-line" not in listed[1]
    table = run_cli("models", "list", *w).stdout
    assert "aliases" in table and "line3-current, prod-line" in table

    res = cli_json("predict", "line3@prod-line", str(factory_csv), "-o", str(tmp_path / "p.csv"), *w)
    assert res["rows"] == 1500 and len(pd.read_csv(tmp_path / "p.csv")) == 1500

    gone = run_cli("models", "unalias", "line3", "prod-line", *w).stdout
    assert "Removed line3@prod-line (pointed at line3:2)" in gone
    err = run_cli("predict", "line3@prod-line", str(factory_csv), "-o", str(tmp_path / "q.csv"), *w, check=False)
    assert err.returncode == 3 and "Traceback" not in err.stderr
    assert "No alias line3@prod-line" in err.stderr and "line3-current" in err.stderr
    assert not (tmp_path / "q.csv").exists()
    bad = run_cli("models", "alias", "line3:1", "42", *w, check=False)
    assert bad.returncode == 2 and "not digits only" in bad.stderr


def test_unknown_alias_names_the_existing_ones(line3):
    line3.model("line3:1").set_alias("staging-candidate")
    with pytest.raises(NotFound, match="No alias line3@nope; aliases of 'line3': .*staging-candidate"):
        line3.model("line3@nope")
    with pytest.raises(NotFound, match="aliases of 'line3': .*staging-candidate"):
        line3.meta.remove_alias("line3", "nope")


def test_serve_by_alias(line3):
    from tests.conftest import start_server
    from tests.serving.test_production import RECORD, _port

    line3.model("line3:1").set_alias("served")
    _id, token = line3.create_token("alias-test", "predict")
    port = _port()
    proc = start_server(line3.root, port, "line3@served")
    try:
        headers = {"Authorization": f"Bearer {token}"}
        listing = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=headers, timeout=10).json()
        assert [(m["name"], m["version"]) for m in listing["models"]] == [("line3", 1)]  # the alias, not the latest (2)
        r = httpx.post(f"http://127.0.0.1:{port}/v1/models/line3/predict", json=RECORD, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        assert "prediction" in r.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_import_registers_the_exported_models_own_name(line3, tmp_path):
    """`models import` without --name: the name the model had where it was exported, not its dataset's."""
    pkg = line3.model("line3:2").export(tmp_path / "some-file.mfpkg")
    ws = Workspace.init(tmp_path / "ws")
    m = ws.import_package(pkg)
    assert m.ref == "line3:1" and m.manifest["exported_version"] == 2  # its data set is called 'factory'
    out = cli_json("models", "import", str(pkg), "--name", "other", "-w", str(tmp_path / "ws"))
    assert (out["model"], out["version"]) == ("other", 1)
    ws.close()


def test_importing_the_same_package_again_adds_nothing(line3, tmp_path):
    """A deployment script run twice: the second import finds the version it made; a package that differs
    (another threshold) or another --name is a new registration."""
    pkg = line3.model("line3:1").export(tmp_path / "a.mfpkg")
    ws = Workspace.init(tmp_path / "ws")
    first = ws.import_package(pkg)
    again = ws.import_package(pkg)
    assert (first.ref, again.ref, first.already_registered, again.already_registered) == ("line3:1", "line3:1",
                                                                                        False, True)
    w = ["-w", str(tmp_path / "ws")]
    assert "already registered as line3:1: nothing added" in run_cli("models", "import", str(pkg), *w).stdout
    # exported again from here (other exported name/version in its manifest): still the same model
    copy = ws.model("line3:1").export(tmp_path / "b.mfpkg")
    assert cli_json("models", "import", str(copy), "--json", *w)["already_registered"] is True
    other = line3.model("line3:2").export(tmp_path / "c.mfpkg")  # another threshold: a new version
    out = cli_json("models", "import", str(other), "--name", "line3", "--json", *w)
    assert (out["version"], out["already_registered"]) == (2, False)
    assert cli_json("models", "import", str(pkg), "--name", "elsewhere", "--json", *w)["version"] == 1
    assert [m.ref for m in ws.models()] == ["elsewhere:1", "line3:1", "line3:2"]
    ws.close()


def test_a_version_that_does_another_job_says_so():
    """vib:1 a classifier of recordings, vib:2 an anomaly detector: `predict vib` changes what it answers."""
    from modelfab.training import kind_change_note

    rows = [{"name": "vib", "version": 1, "task": "classification", "manifest": {"modality": "signal"}}]
    note = kind_change_note(rows, {"modality": "signal", "task": "anomaly"})
    assert note.startswith("This version is an anomaly model of recordings; vib:1 before it is a classification model")
    assert kind_change_note(rows, {"modality": "signal", "task": "classification"}) is None
    assert kind_change_note([], {"modality": "signal", "task": "anomaly"}) is None
