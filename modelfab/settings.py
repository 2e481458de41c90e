"""Typed settings, read from the environment (``MODELFAB_*``) when asked.

Nothing is read at import time: call :func:`Settings.from_env`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

MiB = 1024 * 1024


def human_bytes(n: float) -> str:
    """A size for people: 512 B, 1.5 KiB, 3.2 MiB, 1.0 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        from .errors import InvalidInput

        raise InvalidInput(f"Environment variable {name} must be a whole number, got {raw!r}.")


@dataclass(frozen=True)
class Settings:
    # Import limits (bad input is refused before memory is spent on it).
    max_import_bytes: int = 1024 * MiB
    max_columns: int = 10_000
    max_rows: int = 50_000_000
    # Decoded signal limits (per recording).
    max_signal_samples: int = 200_000_000
    max_channels: int = 64
    # Decoded image limits (per image; Pillow's MAX_IMAGE_PIXELS is set from this).
    max_image_pixels: int = 50_000_000
    # Serving limits.
    max_request_bytes: int = 8 * MiB
    max_records_per_request: int = 10_000
    # Time steps x channels of all series in one request (REST, "Try it"): a ROCKET transform costs CPU in
    # proportion (about 15 s for 250,000 values with the default ensemble on one core). Batch prediction
    # from the CLI is not limited by this.
    max_series_values_per_request: int = 250_000
    max_upload_bytes: int = 64 * MiB
    # Batch prediction chunk size (rows).
    predict_chunk_rows: int = 100_000
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "Settings":
        s = cls()
        values = {}
        for f in fields(cls):
            if f.type in ("int", int):
                values[f.name] = _int_env(f"MODELFAB_{f.name.upper()}", getattr(s, f.name))
        for name, value in values.items():  # limits and sizes: 0 or less means nothing would ever pass
            if name != "seed" and value < 1:
                from .errors import InvalidInput

                raise InvalidInput(f"Environment variable MODELFAB_{name.upper()} must be a whole number above 0; "
                                   f"got {value}.", hint=f"Unset it (default {getattr(s, name):,}) or give a "
                                                         "positive number.")
        return replace(s, **values)
