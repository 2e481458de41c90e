"""`modelfab listen --file`: a path that is not there is a clear input error, not an internal error."""

from __future__ import annotations

from tests.conftest import run_cli


def test_listen_file_not_found_is_a_clear_error(tmp_path):
    ws = tmp_path / "ws"
    run_cli("init", str(ws))
    proc = run_cli("listen", "pump:1", "--file", str(tmp_path / "nope.wav"), "--idle-timeout", "1",
                   "--workspace", str(ws), check=False)
    assert proc.returncode == 2, proc.stderr
    assert "nope.wav: expected a WAV file being written, got no such file" in proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("listen", "pump:1", "--file", str(tmp_path), "--workspace", str(ws), check=False)
    assert proc.returncode == 2 and "got a folder" in proc.stderr
