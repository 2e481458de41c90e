"""The README's Python example runs as written (on generated data)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path, monkeypatch, factory_csv):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Use it from Python\s+```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    df = __import__("pandas").read_csv(factory_csv).rename(columns={"quality": "quality"})
    df.to_csv(tmp_path / "line3.csv", index=False)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["model"].ref == "line3:1"
    assert len(namespace["scored"]) == 5 and "prediction" in namespace["scored"].columns
    assert Path(namespace["html"]).is_file()


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text(encoding="utf-8").split("\n")[:8]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)
