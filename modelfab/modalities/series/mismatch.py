"""What a file of series to score does not share with the model: channel names (a ``.ts`` file has none, so its
channels are read in order) and the file's own class labels. Said as notes, since the scores would otherwise look
as sure as for the model's own kind of data."""

from __future__ import annotations

import re

_GENERIC = re.compile(r"^(dim_\d+|value|channel \d+)$")


def _names(names) -> str:
    shown = ", ".join(repr(str(c)) for c in list(names)[:6])
    return shown + (" ..." if len(names) > 6 else "")


def channel_note(file_format: str, file_names: list, model_names: list) -> list[str]:
    """A note when the file's channels are not named as the model's (the same number of them: another number
    refuses each series). Names a reader makes up (``dim_0``, ``value``) are no names: a ``.ts`` file scored by
    a model trained on a named table is said; two made-up sets are not."""
    model_names = [str(c) for c in model_names or []]
    file_names = [str(c) for c in file_names or []]
    if not model_names or len(file_names) != len(model_names) or file_names == model_names:
        return []
    if all(_GENERIC.match(c) for c in model_names):
        return []
    model = _names(model_names)
    if file_format == "ts" or all(_GENERIC.match(c) for c in file_names):
        has = "A .ts file has" if file_format == "ts" else "The file has"
        return [f"{has} no channel names, so its {len(file_names)} channel(s) are read in order as the "
                f"model's {model}; expected the same measurements in that order (check that this is the right model "
                "for the file)."]
    return [f"The file's channels {_names(file_names)} are read in order as the model's {model}; expected "
            "the same measurements in that order (check the columns, or that this is the right model)."]


def _key(v) -> str:
    try:
        f = float(v)
        return str(int(f)) if f.is_integer() else str(f)
    except (TypeError, ValueError):
        return str(v).strip().lower()


def label_note(file_labels, model_labels) -> list[str]:
    """A note when a file carries its own class labels (a ``.ts`` file, a UCR table) and none of them is a class
    of the model: the file is likely other data than the model was trained on."""
    theirs = list(dict.fromkeys(str(v) for v in file_labels or [] if v is not None))
    if not theirs or not model_labels:
        return []
    known = {_key(v) for v in model_labels}
    if any(_key(v) in known for v in theirs):
        return []
    return [f"The file's own labels ({_names(theirs)}) are none of the model's classes "
            f"({_names(model_labels)}); the predictions name the model's classes: expected data of the kind the "
            "model was trained on (check that this is the right model for the file)."]
