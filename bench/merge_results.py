"""Build docs/benchmarks.md from bench/results/*.md (see bench/results/README.md).

    .venv/bin/python bench/merge_results.py
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["tabular", "serving", "batch", "signal", "cwru", "images", "series", "text", "storage", "execution", "web"]


def _shift(text: str) -> str:
    """Shift headings so that the file's top level becomes '##'."""
    levels = [len(m) for m in re.findall(r"^(#+) ", text, flags=re.M)]
    if not levels:
        return text
    delta = 2 - min(levels)
    return re.sub(r"^(#+) ", lambda m: "#" * max(2, len(m.group(1)) + delta) + " ", text, flags=re.M)


def main() -> None:
    res = HERE / "results"
    parts = [(res / "_header.md").read_text("utf-8").strip(), (res / "_summary.md").read_text("utf-8").strip()]
    parts += [_shift((res / f"{name}.md").read_text("utf-8").strip()) for name in ORDER if (res / f"{name}.md").exists()]
    out = HERE.parent / "docs" / "benchmarks.md"
    out.write_text("\n\n".join(parts) + "\n", "utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
