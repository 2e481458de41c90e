"""The container instructions (Dockerfile header, docs/deploy.md) can work as written: there is no Docker
engine here, so the commands are checked against the image's ENTRYPOINT and the real CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
DEPLOY = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def _container_section() -> str:
    return DEPLOY.split("## As a container", 1)[1].split("\n## ", 1)[0]


def _docker_runs(text: str) -> list[list[str]]:
    runs = []
    for line in text.splitlines():
        line = line.lstrip("# ").split("  #")[0].strip()
        if line.startswith("docker run"):
            runs.append(shlex.split(line))
    return runs


def _image_args(argv: list[str]) -> list[str]:
    """What follows the image name (the image is the first word that is not an option or an option's value)."""
    takes_value = {"-p", "-v", "-e", "--name", "--env-file", "-w", "--user", "-u"}
    i = 2
    while i < len(argv):
        if argv[i] in takes_value:
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return argv[i + 1:]
    raise AssertionError(f"no image in {argv}")


def test_dockerfile_entrypoint_and_extras():
    assert 'ENTRYPOINT ["modelfab"]' in DOCKERFILE
    assert re.search(r"^ARG EXTRAS=\S+", DOCKERFILE, re.M) and 'pip install ".[${EXTRAS}]"' in DOCKERFILE
    extras = re.search(r"^ARG EXTRAS=(\S+)", DOCKERFILE, re.M).group(1).split(",")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert all(re.search(rf"^{e} = \[", pyproject, re.M) for e in extras), extras
    section = _container_section()
    assert "--build-arg EXTRAS=" in section and ", ".join(f"`{e}`" for e in extras[:1]) in section


def test_docker_run_commands_are_modelfab_commands():
    import typer

    from modelfab.cli import _register, app

    _register()
    commands = set(typer.main.get_command(app).commands)
    runs = _docker_runs(DOCKERFILE) + _docker_runs(_container_section())
    assert runs
    for argv in runs:
        args = _image_args(argv)
        assert not args or args[0] != "modelfab", f"`modelfab modelfab ...` (the ENTRYPOINT is modelfab): {argv}"
        assert not args or args[0] in commands, f"not a modelfab command: {args[0]} in {argv}"


def test_the_volume_is_set_up_before_the_server_starts():
    for text in (DOCKERFILE, _container_section()):
        runs = [" ".join(r) for r in _docker_runs(text)]
        detached = next(i for i, r in enumerate(runs) if " -d " in r)
        before = runs[:detached]
        assert any(" init /workspace" in r for r in before), runs
        assert any(" models promote " in r for r in before), runs
        assert "10001" in text  # the host folder must be writable by the container's user
