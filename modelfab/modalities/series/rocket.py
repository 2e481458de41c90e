"""MiniRocket and MultiRocket-style random convolution features, from saved parameters.

Our own implementation of the published algorithms (Dempster et al., MiniRocket 2021;
Tan et al., MultiRocket 2022): the 84 fixed kernels of length 9 (weights -1, three
positions 2), exponentially spaced dilations, biases drawn from quantiles of the
convolution output of random training series, alternating zero padding.
MiniRocket pools each (kernel, bias) with PPV (share of positive values);
MultiRocket also pools the first differences and adds MPV (mean positive value),
MIPV (mean position of positive values) and LSPV (longest stretch of positive
values); MIPV and LSPV are divided by the series length here. Series shorter
than the longest training series are zero-padded at their end (as is usual for
unequal-length UCR/UEA sets); longer ones are transformed at their own length.

Everything a fitted transform needs is a handful of integer/float arrays
(:meth:`RocketTransform.arrays`), saved as ``.npz`` without pickle; the
transform is rebuilt from them bit for bit. Series may have different lengths
(``data`` holds them side by side, ``offsets`` says where each starts). The
numeric core is compiled by numba (``cache=True``: once per install, then loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numba import njit, prange  # this module is imported only when series are trained or scored

KERNELS = np.array(list(combinations(range(9), 3)), dtype=np.int64)  # (84, 3): positions of weight 2
N_KERNELS = 84
KINDS = ("minirocket", "multirocket")
CHUNK = 32  # series per transform call when a deadline is checked between calls


@njit(cache=True, nogil=True)
def _shifted(x, d, A, G):
    """A[c, t] = -sum_k x[c, t + (k-4) d]; G[k, c, t] = 3 x[c, t + (k-4) d] (zero outside the series)."""
    C, L = x.shape
    A[:, :L] = 0.0
    G[:, :, :L] = 0.0
    for k in range(9):
        shift = (k - 4) * d
        lo = max(0, -shift)
        hi = min(L, L - shift)
        for c in range(C):
            for t in range(lo, hi):
                v = x[c, t + shift]
                A[c, t] -= v
                G[k, c, t] = 3.0 * v


@njit(cache=True, nogil=True)
def _kernel(A, G, L, k, chans, out):
    k0, k1, k2 = KERNELS[k, 0], KERNELS[k, 1], KERNELS[k, 2]
    for t in range(L):
        out[t] = 0.0
    for ci in range(chans.shape[0]):
        c = chans[ci]
        for t in range(L):
            out[t] += A[c, t] + G[k0, c, t] + G[k1, c, t] + G[k2, c, t]


@njit(cache=True, nogil=True)
def _fit_biases(data, offsets, dilations, n_per_dil, chan_counts, chan_idx, pick, qs, biases):
    # one random training series per (dilation, kernel); biases = quantiles of its convolution output
    C = data.shape[0]
    max_len = 0
    for e in range(offsets.shape[0] - 1):
        max_len = max(max_len, offsets[e + 1] - offsets[e])
    A = np.empty((C, max_len))
    G = np.empty((9, C, max_len))
    out = np.empty(max_len)
    fi = 0
    ci = 0
    for di in range(dilations.shape[0]):
        nf = n_per_dil[di]
        for k in range(84):
            e = pick[di * 84 + k]
            x = data[:, offsets[e]:offsets[e + 1]]
            L = x.shape[1]
            chans = chan_idx[ci:ci + chan_counts[di * 84 + k]]
            ci += chan_counts[di * 84 + k]
            _shifted(x, dilations[di], A, G)
            _kernel(A, G, L, k, chans, out)
            srt = np.sort(out[:L])
            for j in range(nf):  # linear interpolation, as numpy.quantile
                pos = qs[fi + j] * (L - 1)
                lo = int(np.floor(pos))
                hi = min(lo + 1, L - 1)
                biases[fi + j] = srt[lo] + (srt[hi] - srt[lo]) * (pos - lo)
            fi += nf


@njit(cache=True, nogil=True, parallel=True)
def _transform(data, offsets, dilations, n_per_dil, chan_counts, chan_idx, biases, multi, feats, col0):
    n_pool = 4 if multi else 1
    C = data.shape[0]
    for e in prange(offsets.shape[0] - 1):
        x = data[:, offsets[e]:offsets[e + 1]]
        L = x.shape[1]
        A = np.empty((C, L))
        G = np.empty((9, C, L))
        out = np.empty(L)
        fi = 0
        ci = 0
        col = col0
        for di in range(dilations.shape[0]):
            d = dilations[di]
            pad = ((9 - 1) * d) // 2
            nf = n_per_dil[di]
            _shifted(x, d, A, G)
            for k in range(84):
                chans = chan_idx[ci:ci + chan_counts[di * 84 + k]]
                ci += chan_counts[di * 84 + k]
                _kernel(A, G, L, k, chans, out)
                s, t_end = 0, L
                if (di + k) % 2 == 1 and L - 2 * pad > 0:
                    s, t_end = pad, L - pad
                m = t_end - s
                for f in range(nf):
                    b = biases[fi + f]
                    if not multi:
                        cnt = 0
                        for t in range(s, t_end):
                            if out[t] > b:
                                cnt += 1
                        feats[e, col] = cnt / m
                        col += 1
                        continue
                    cnt = 0
                    tot = 0.0
                    idx_sum = 0.0
                    run = 0
                    best = 0
                    for t in range(s, t_end):
                        z = out[t] - b
                        if z > 0:
                            cnt += 1
                            tot += z
                            idx_sum += t - s
                            run += 1
                            if run > best:
                                best = run
                        else:
                            run = 0
                    feats[e, col] = cnt / m
                    feats[e, col + 1] = tot / cnt if cnt else 0.0
                    feats[e, col + 2] = idx_sum / cnt / m if cnt else -1.0
                    feats[e, col + 3] = best / m
                    col += n_pool
                fi += nf


def _fit_dilations(length: int, n_per_kernel: int, max_dilations: int = 32) -> tuple[np.ndarray, np.ndarray]:
    true_max = max(1, min(n_per_kernel, max_dilations))
    multiplier = n_per_kernel / true_max
    max_exponent = np.log2(max(length - 1, 1) / (9 - 1))
    max_exponent = max(max_exponent, 0.0)
    dil, counts = np.unique(np.floor(np.logspace(0, max_exponent, true_max, base=2)).astype(np.int64),
                            return_counts=True)
    per = (counts * multiplier).astype(np.int64)
    rest = n_per_kernel - int(per.sum())
    i = 0
    while rest > 0:
        per[i % len(per)] += 1
        rest -= 1
        i += 1
    return dil, per


def _low_discrepancy(n: int) -> np.ndarray:
    return np.array([(i * ((np.sqrt(5) + 1) / 2)) % 1 for i in range(1, n + 1)], dtype=np.float64)


def _pad(data: np.ndarray, offsets: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad every shorter series at its end to ``length`` (longer ones are kept whole)."""
    lengths = np.diff(offsets)
    new = np.zeros_like(offsets)
    new[1:] = np.cumsum(np.maximum(lengths, length))
    out = np.zeros((data.shape[0], int(new[-1])))
    for i in range(len(lengths)):
        out[:, new[i]:new[i] + lengths[i]] = data[:, offsets[i]:offsets[i + 1]]
    return out, new


def _diff(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    parts = [np.diff(data[:, offsets[i]:offsets[i + 1]], axis=1) for i in range(len(offsets) - 1)]
    new = np.zeros_like(offsets)
    new[1:] = np.cumsum([p.shape[1] for p in parts])
    return np.ascontiguousarray(np.concatenate(parts, axis=1)), new


@dataclass
class _Rep:
    dilations: np.ndarray
    n_per_dil: np.ndarray
    chan_counts: np.ndarray
    chan_idx: np.ndarray
    biases: np.ndarray


class RocketTransform:
    """``fit(data, offsets)`` then ``transform(data, offsets) -> (n, n_features) float32``."""

    def __init__(self, kind: str = "minirocket", n_features: int | None = None, seed: int = 0) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.kind = kind
        self.n_features = n_features or (10_000 if kind == "minirocket" else 50_000)
        self.seed = int(seed)
        self.reps: list[_Rep] = []
        self.n_channels = 0
        self.pad_to = 0  # shorter series are zero-padded at the end to the longest training series

    @property
    def multi(self) -> bool:
        return self.kind == "multirocket"

    @property
    def n_outputs(self) -> int:
        return sum(int(r.biases.shape[0]) for r in self.reps) * (4 if self.multi else 1)

    def _inputs(self, data, offsets):
        data = np.ascontiguousarray(data, dtype=np.float64)
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        lengths = np.diff(offsets)
        if self.pad_to and (lengths < self.pad_to).any():
            data, offsets = _pad(data, offsets, self.pad_to)
        out = [(data, offsets)]
        if self.multi:
            out.append(_diff(data, offsets))
        return out

    def fit(self, data: np.ndarray, offsets: np.ndarray) -> "RocketTransform":
        rng = np.random.default_rng(self.seed)
        self.n_channels = int(data.shape[0])
        self.pad_to = int(np.diff(offsets).max())
        n = len(offsets) - 1
        pairs = self.n_features // (8 if self.multi else 1)  # (kernel, bias) pairs per representation
        n_per_kernel = max(1, pairs // N_KERNELS)
        self.reps = []
        for rep_data, rep_off in self._inputs(data, offsets):
            ref_len = int(np.median(np.diff(rep_off)))
            dil, per = _fit_dilations(ref_len, n_per_kernel)
            counts, idx = self._channels(rng, len(dil))
            pick = rng.integers(0, n, size=len(dil) * N_KERNELS).astype(np.int64)
            qs = _low_discrepancy(int(per.sum()) * N_KERNELS)
            biases = np.zeros(int(per.sum()) * N_KERNELS, dtype=np.float64)
            _fit_biases(rep_data, rep_off, dil, per, counts, idx, pick, qs, biases)
            self.reps.append(_Rep(dil, per, counts, idx, biases))
        return self

    def _channels(self, rng, n_dil: int) -> tuple[np.ndarray, np.ndarray]:
        c = self.n_channels
        if c == 1:
            return np.ones(n_dil * N_KERNELS, np.int64), np.zeros(n_dil * N_KERNELS, np.int64)
        max_exp = np.log2(min(c, 9) + 1)
        counts = np.floor(2 ** rng.uniform(0, max_exp, n_dil * N_KERNELS)).astype(np.int64)
        counts = np.clip(counts, 1, c)
        idx = np.concatenate([rng.choice(c, k, replace=False) for k in counts]).astype(np.int64)
        return counts, idx

    def transform(self, data: np.ndarray, offsets: np.ndarray, deadline=None) -> np.ndarray:
        """Features of every series; with ``deadline`` (a callable, True = out of time) the series are done in
        chunks and ``TimeoutError`` is raised between chunks once it says so."""
        if not self.reps:
            raise RuntimeError("RocketTransform is not fitted")
        if data.shape[0] != self.n_channels:
            raise ValueError(f"expected {self.n_channels} channel(s), got {data.shape[0]}")
        n = len(offsets) - 1
        feats = np.zeros((n, self.n_outputs), dtype=np.float64)
        step = n if deadline is None else CHUNK
        col = 0
        for rep, (rep_data, rep_off) in zip(self.reps, self._inputs(data, offsets)):
            for i in range(0, n, step):
                j = min(n, i + step)
                if deadline is not None and deadline():
                    raise TimeoutError
                o = rep_off[i:j + 1]
                _transform(np.ascontiguousarray(rep_data[:, o[0]:o[-1]]), o - o[0], rep.dilations, rep.n_per_dil,
                           rep.chan_counts, rep.chan_idx, rep.biases, self.multi, feats[i:j], col)
            col += rep.biases.shape[0] * (4 if self.multi else 1)
        return feats.astype(np.float32)

    # -- persistence: plain arrays + a small dict ---------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for i, r in enumerate(self.reps):
            for key in ("dilations", "n_per_dil", "chan_counts", "chan_idx", "biases"):
                out[f"rep{i}_{key}"] = getattr(r, key)
        return out

    def meta(self) -> dict:
        return {"kind": self.kind, "n_features": self.n_features, "seed": self.seed, "n_channels": self.n_channels,
                "n_reps": len(self.reps), "n_outputs": self.n_outputs, "pad_to": self.pad_to}

    @classmethod
    def from_saved(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "RocketTransform":
        t = cls(meta["kind"], int(meta["n_features"]), int(meta["seed"]))
        t.n_channels = int(meta["n_channels"])
        t.pad_to = int(meta.get("pad_to", 0))
        for i in range(int(meta["n_reps"])):
            t.reps.append(_Rep(*(np.ascontiguousarray(arrays[f"rep{i}_{k}"], dtype=np.float64 if k == "biases" else np.int64)
                                 for k in ("dilations", "n_per_dil", "chan_counts", "chan_idx", "biases"))))
        if t.n_outputs != int(meta["n_outputs"]):
            raise ValueError("saved transform arrays do not match their description")
        return t
