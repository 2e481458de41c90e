"""What recordings' file names say by convention (MIMII, DCASE): normal/anomaly labels and machine ids.

* Labels: MIMII flat exports name files ``normal_id_00_00000001.wav`` / ``anomaly_id_02_00000003.wav``;
  DCASE names them ``section_00_source_test_anomaly_0001_...wav``. A leading ``normal_``/``anomaly_`` or a
  ``_normal_``/``_anomaly_`` token gives the label ``normal`` or ``abnormal`` (the label anomaly training
  and ``--task auto`` take as the fault side, as for an ``abnormal/`` folder).
* Machines: ``id_00`` (MIMII) and ``section_00`` (DCASE) tokens name the machine (or section) a file
  comes from; several of them pooled in one dataset usually make a worse model than one per machine.
"""

from __future__ import annotations

import re
from pathlib import Path

NAME_LABEL = re.compile(r"(?:^|_)(normal|anomaly)(?=_|\.|$)", re.I)
MACHINE = re.compile(r"(?:^|[_/])(id|section)_(\d+)(?=_|\.|/|$)", re.I)
SPLIT_FOLDERS = {"train", "test", "dev", "eval", "source_test", "target_test", "supplemental"}


def label_from_name(name: str) -> str | None:
    """``normal`` / ``abnormal`` from a MIMII/DCASE-style file name, else None."""
    m = NAME_LABEL.search(Path(name).name)
    if m is None:
        return None
    return "normal" if m.group(1).lower() == "normal" else "abnormal"


def machine_of(rel: str) -> str | None:
    """``id_00`` / ``section_00`` from a file's relative path (its name first), else None."""
    found = MACHINE.findall(Path(rel).name) or MACHINE.findall(rel)
    return f"{found[-1][0].lower()}_{found[-1][1]}" if found else None


def machines_note(rels, what: str) -> str | None:
    """A note when the files come from several machines/sections (by their id_NN / section_NN tokens)."""
    counts: dict[str, int] = {}
    for r in rels:
        m = machine_of(str(r))
        if m is not None:
            counts[m] = counts.get(m, 0) + 1
    if len(counts) < 2:
        return None
    shown = ", ".join(f"{k} ({v})" for k, v in sorted(counts.items())[:12])
    more = f" and {len(counts) - 12} more" if len(counts) > 12 else ""
    return (f"{what} recordings of {len(counts)} machines or sections by their file names: {shown}{more}. One model "
            "per machine is usually better (each machine sounds different; pooled, a fault on one can sound like "
            "normal on another): import a folder per machine, or select one with --labels regex and train with --task "
            "anomaly, e.g. --labels 'regex:^(normal|anomaly)_id_00_' or 'regex:^section_00_.*_(normal|anomaly)_' "
            "(files that do not match stay unlabelled, and anomaly training with labels leaves them out).")
