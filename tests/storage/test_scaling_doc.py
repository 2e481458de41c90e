"""docs/scaling.md's "Move an existing workspace" commands run as written, against the test servers."""

import re
import shlex
import shutil

from tests.conftest import ROOT, run_cli

DOC_DB = "postgresql://modelfab@db.plant.local/modelfab"
DOC_BLOBS = "s3://factory-models/plant"


def test_move_workspace_commands_run_as_documented(postgres_url, s3_url, factory_csv, tmp_path):
    text = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    block = re.search(r"## Move an existing workspace.*?```bash\n(.*?)```", text, re.S).group(1)
    lines = [ln for ln in block.splitlines() if ln.startswith("modelfab ")]
    assert any("migrate-storage" in ln for ln in lines) and any("restore" in ln for ln in lines)
    shutil.copy(factory_csv, tmp_path / "line3.csv")
    for line in lines:
        args = shlex.split(line.replace(DOC_DB, postgres_url).replace(DOC_BLOBS, s3_url))[1:]
        run_cli(*args, cwd=tmp_path)
    listed = run_cli("data", "list", "--json", "-w", "plant", cwd=tmp_path).stdout
    assert '"line3"' in listed
    config = (tmp_path / "plant" / "workspace.json").read_text()
    assert postgres_url in config and s3_url in config
    assert '"line3"' in run_cli("data", "list", "--json", "-w", "plant-copy", cwd=tmp_path).stdout
