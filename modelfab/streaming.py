"""Scoring a live signal window by window (``modelfab listen``).

Samples arrive in chunks of any size; as soon as a window is complete its
features are computed and scored, so the delay after a window ends is the
compute time (milliseconds), far below one window length.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from .errors import InvalidInput, UnsupportedFormat

PCM_FORMATS = {"s16le": ("<i2", 32768.0), "s32le": ("<i4", 2147483648.0), "f32le": ("<f4", 1.0)}


class StreamScorer:
    def __init__(self, predictor, smooth: int = 5) -> None:
        self.p = predictor
        self.sr = predictor.sample_rate
        self.win, self.hop = predictor.options.window(self.sr)
        self.buf = np.zeros(0, np.float32)
        self.consumed = 0  # samples dropped from the front of buf
        self.recent: deque[float] = deque(maxlen=max(1, smooth))
        self._warm_up()

    def _warm_up(self) -> None:
        """Load the feature code and model once before the first real window arrives."""
        from .modalities.signal import extract_features

        noise = np.random.default_rng(0).normal(0, 1e-3, self.win).astype(np.float32)
        feats, _ = extract_features(noise[None, :], self.sr, self.p.options.feature_sets)
        self.p.window_outputs(feats)

    def feed(self, samples: np.ndarray) -> list[dict]:
        from .modalities.signal import extract_features

        self.buf = np.concatenate([self.buf, np.asarray(samples, np.float32).reshape(-1)])
        out = []
        while len(self.buf) >= self.win:
            t_done = time.perf_counter()
            window = self.buf[: self.win]
            t0 = self.consumed / self.sr
            row = {"start_s": round(t0, 3), "end_s": round(t0 + self.win / self.sr, 3)}
            bad = np.flatnonzero(~np.isfinite(window))
            if len(bad):  # a dropout of the recorder: say so for this window and go on listening
                row["error"] = (f"{len(bad)} sample(s) are not numbers (NaN or inf), the first at "
                                f"{t0 + bad[0] / self.sr:.3f} s: window not scored")
                out.append(row)
                self.buf = self.buf[self.hop:]
                self.consumed += self.hop
                continue
            feats, _ = extract_features(window[None, :], self.sr, self.p.options.feature_sets)
            res = self.p.window_outputs(feats)
            if self.p.task == "anomaly":
                score = float(res[0])
                self.recent.append(score)
                level = float(np.mean(self.recent))
                row.update(score=round(score, 4), level=round(level, 4), threshold=round(self.p.threshold, 4),
                           is_anomaly=bool(level > self.p.threshold))
            else:
                labels = [str(v) for v in self.p.labels]
                j = int(np.argmax(res[0]))
                row.update(label=labels[j], confidence=round(float(res[0][j]), 4))
            row["latency_ms"] = round((time.perf_counter() - t_done) * 1000, 2)
            out.append(row)
            self.buf = self.buf[self.hop:]
            self.consumed += self.hop
        return out


    def leftover_s(self) -> float:
        """Seconds received after the last complete window (not scored when the stream ends)."""
        return max(0, len(self.buf) - (self.win - self.hop)) / self.sr


def check_pcm(fmt: str, channels: int) -> None:
    if fmt not in PCM_FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(PCM_FORMATS)}; got {fmt!r}.")
    if not 1 <= channels <= 64:
        raise InvalidInput(f"--channels must be 1..64; got {channels}.")


def pcm_chunks(stream: BinaryIO, fmt: str, channels: int, chunk_samples: int) -> Iterator[np.ndarray]:
    check_pcm(fmt, channels)
    dtype, scale = PCM_FORMATS[fmt]
    frame = np.dtype(dtype).itemsize * channels
    pending = b""
    while True:
        data = stream.read(chunk_samples * frame)
        if not data:
            break
        pending += data
        usable = len(pending) - len(pending) % frame
        if not usable:
            continue
        x = np.frombuffer(pending[:usable], dtype=dtype).astype(np.float32) / scale
        pending = pending[usable:]
        yield x.reshape(-1, channels).mean(axis=1) if channels > 1 else x


def _wav_data_header(fh: BinaryIO, wait_s: float) -> tuple[int, int, str, float]:
    """(channels, rate, numpy dtype, scale) of a (possibly still growing) PCM WAV file; fh left at the data."""
    deadline = time.monotonic() + wait_s
    head = b""
    while True:
        fh.seek(0)
        head = fh.read(4096)
        if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            pos, fmt = 12, None
            while pos + 8 <= len(head):
                cid, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
                if cid == b"fmt " and pos + 8 + 16 <= len(head):
                    fmt = struct.unpack("<HHIIHH", head[pos + 8:pos + 24])
                if cid == b"data" and fmt is not None:
                    tag, ch, rate, _, _, bits = fmt
                    if tag == 0xFFFE and pos >= 0:
                        tag = 3 if bits == 32 and head.find(b"\x03\x00\x00\x00\x00\x00\x10\x00") > 0 else 1
                    dtype = {(1, 16): ("<i2", 32768.0), (1, 32): ("<i4", 2147483648.0), (3, 32): ("<f4", 1.0)}.get((tag, bits))
                    if dtype is None or not 1 <= ch <= 64 or rate <= 0:
                        raise UnsupportedFormat(f"Live WAV must be 16/32-bit PCM or 32-bit float, 1-64 channels; "
                                                f"got format {tag}, {bits} bits, {ch} channels.")
                    fh.seek(pos + 8)
                    return ch, rate, dtype[0], dtype[1]
                pos += 8 + size + (size & 1)
        elif len(head) >= 12:
            raise UnsupportedFormat("The live file is not a WAV file (no RIFF/WAVE header).")
        if time.monotonic() > deadline:
            raise InvalidInput("The live WAV file has no complete header yet.")
        time.sleep(0.05)


def follow_wav(path: Path, idle_timeout: float, chunk_samples: int) -> tuple[int, Iterator[np.ndarray]]:
    """Sample rate and a generator of new samples of a WAV file that is still being written."""
    fh = open(path, "rb")
    ch, rate, dtype, scale = _wav_data_header(fh, idle_timeout)
    frame = np.dtype(dtype).itemsize * ch

    def gen() -> Iterator[np.ndarray]:
        pending = b""
        last = time.monotonic()
        try:
            while True:
                data = fh.read(chunk_samples * frame)
                if not data:
                    if time.monotonic() - last > idle_timeout:
                        return
                    time.sleep(0.02)
                    continue
                last = time.monotonic()
                pending += data
                usable = len(pending) - len(pending) % frame
                x = np.frombuffer(pending[:usable], dtype=dtype).astype(np.float32) / scale
                pending = pending[usable:]
                if len(x):
                    yield x.reshape(-1, ch).mean(axis=1) if ch > 1 else x
        finally:
            fh.close()

    return rate, gen()
