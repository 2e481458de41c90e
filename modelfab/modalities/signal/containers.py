"""Audio containers: what a file's first bytes say it is, and WAV header sizes against the bytes present.

Checked before libsndfile decodes anything: it reads an MP3 named .wav as about a second of silence (printing
decoder errors on stderr) and a WAV cut short as the part that is there.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ...errors import InvalidInput, UnsupportedFormat

_CONTAINERS = {".wav": "wav", ".flac": "flac", ".ogg": "ogg"}
_NAMES = {"wav": "WAV", "flac": "FLAC", "ogg": "Ogg", "mp3": "MP3", "aiff": "AIFF", "mp4": "MP4/M4A"}
UNKNOWN_DATA_SIZE = 0xFFFFFFFF  # what streaming writers put in a WAV header they cannot go back to fix


def sniff_audio(head: bytes) -> str | None:
    """The audio container of a file by its first bytes: wav, flac, ogg, mp3, aiff, mp4, or None."""
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] == b"ftyp":
        return "mp4"
    return None


def check_container(p: Path, src: str) -> None:
    """Refuse a file whose bytes are not the container its extension says (an MP3 renamed .wav was decoded
    by libsndfile as ~1 s of silence, with decoder errors on stderr)."""
    with open(p, "rb") as fh:
        head = fh.read(12)
    want = _CONTAINERS[p.suffix.lower()]
    got = sniff_audio(head)
    if got == want:
        return
    if got is None:
        raise UnsupportedFormat(f"{src}: expected {_NAMES[want]} data, but its first bytes ({head[:12]!r}) do not "
                                f"match the {_NAMES[want]} format.",
                                hint="Check that the file is really audio; re-export it as WAV.")
    fix = (f"rename it to .{got}" if got in ("wav", "flac", "ogg") else
           f"convert it to WAV or FLAC (e.g. ffmpeg -i {p.name} out.wav); {_NAMES[got]} is not read")
    raise UnsupportedFormat(f"{src}: the file is {_NAMES[got]} data, not {_NAMES[want]}.", hint=f"To use it, {fix}.")


def check_wav_size(hdr: dict, src: str) -> None:
    """A WAV whose data chunk holds fewer bytes than its header says is refused (truncated copy or recording)."""
    declared, available = hdr.get("data_declared", 0), hdr.get("data_available", 0)
    if declared <= available or declared == UNKNOWN_DATA_SIZE:
        return
    rate = hdr.get("rate") or 0
    per_s = rate * (hdr.get("block") or 0)
    secs = (lambda n: f" ({n / per_s:,.2f} s)") if per_s > 0 else (lambda n: "")
    raise InvalidInput(f"{src}: the WAV header declares {declared:,} bytes of samples{secs(declared)} but the file "
                       f"holds only {max(available, 0):,}{secs(max(available, 0))}: it is truncated.",
                       hint="Copy or export the recording again (an interrupted copy or recording ends early), "
                            "or drop it.")


def riff_header(p: Path) -> dict | None:
    """Parse just enough of a RIFF/WAVE header to vet it (fmt + data chunk)."""
    size = p.stat().st_size
    out: dict = {}
    with open(p, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        for _ in range(4096):
            fh.seek(pos)
            hdr = fh.read(8)
            if len(hdr) < 8:
                break
            cid, clen = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"fmt ":
                body = fh.read(16)
                if len(body) == 16:
                    _tag, ch, rate, _br, block, bits = struct.unpack("<HHIIHH", body)
                    out.update(channels=ch, rate=rate, block=block, bits=bits)
            elif cid == b"data":
                out.update(data_declared=clen, data_available=size - pos - 8)
                break
            pos += 8 + clen + (clen & 1)
    return out
