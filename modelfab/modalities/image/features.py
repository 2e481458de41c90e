"""Image features without downloaded weights.

* :func:`image_features`: one vector per image for classification (intensity statistics, LBP,
  GLCM, a Gabor bank computed in the Fourier domain, the power spectrum, gradient-orientation
  histograms, random-convolution (ROCKET-like) features and dark/bright spot statistics), computed
  on the image resized to ``CANVAS`` x ``CANVAS`` grey levels.
* :func:`patch_features`: a map of local feature vectors (one per cell of ``CELL`` pixels) for
  anomaly detection and heat maps: multi-scale smoothed intensity, difference of Gaussians,
  gradient magnitude, Hessian (ridge/crack) responses, local contrast, pooled per cell.

Everything is deterministic (fixed seeds) so a model package can recompute features exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

CANVAS = 128
FEATURES_VERSION = 1
FEATURE_SETS = ("intensity", "lbp", "glcm", "gabor", "spectrum", "gradient", "rocket", "spots", "colour")


def resize(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    if gray.shape == (height, width):
        return gray.astype(np.float32, copy=False)
    im = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32), mode="F")
    method = Image.Resampling.BOX if width <= gray.shape[1] and height <= gray.shape[0] else Image.Resampling.BILINEAR
    return np.asarray(im.resize((width, height), method), dtype=np.float32)


def _standardise(a: np.ndarray) -> np.ndarray:
    return (a - a.mean()) / (a.std() + 1e-6)


# ------------------------------------------------------------------ global features
def _intensity(g: np.ndarray) -> dict[str, float]:
    v = g.ravel().astype(np.float64)
    c = v - v.mean()
    var = (c ** 2).mean() + 1e-12
    out = {"int_mean": v.mean(), "int_std": v.std(), "int_skew": float((c ** 3).mean() / var ** 1.5),
           "int_kurt": float((c ** 4).mean() / var ** 2 - 3)}
    for q, x in zip((1, 5, 25, 50, 75, 95, 99), np.percentile(v, (1, 5, 25, 50, 75, 95, 99))):
        out[f"int_p{q}"] = x
    hist = np.histogram(np.clip(v, 0, 1), bins=16, range=(0, 1))[0] / len(v)
    out.update({f"int_hist_{i}": h for i, h in enumerate(hist)})
    return out


def _lbp(g: np.ndarray) -> dict[str, float]:
    from skimage.feature import local_binary_pattern

    out = {}
    for scale, img in (("", g), ("h", resize(g, g.shape[1] // 2, g.shape[0] // 2))):
        u8 = np.clip(_standardise(img) * 40 + 128, 0, 255).astype(np.uint8)
        for p, r in ((8, 1), (16, 2), (24, 3)) if not scale else ((8, 1), (16, 2)):
            codes = local_binary_pattern(u8, p, r, method="uniform")
            hist = np.bincount(codes.astype(np.int64).ravel(), minlength=p + 2)[: p + 2] / codes.size
            out.update({f"lbp{scale}_{p}_{r}_{i}": h for i, h in enumerate(hist)})
    return out


def _glcm(g: np.ndarray) -> dict[str, float]:
    from skimage.feature import graycomatrix, graycoprops

    q = np.clip(_standardise(g) * 6 + 16, 0, 31).astype(np.uint8)
    dists = [1, 2, 4, 8]
    m = graycomatrix(q, dists, [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=32, symmetric=True, normed=True)
    out = {}
    for prop in ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM"):
        v = graycoprops(m, prop)  # (distances, angles)
        for i, d in enumerate(dists):
            out[f"glcm_{prop}_{d}"] = float(v[i].mean())
            out[f"glcm_{prop}_{d}_aniso"] = float(v[i].max() - v[i].min())
    return out


@lru_cache(maxsize=4)
def _gabor_bank(n: int) -> np.ndarray:
    """Log-Gabor filters in the Fourier domain: 5 scales x 6 orientations, (30, n, n)."""
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    rad = np.hypot(fx, fy)
    rad[0, 0] = 1.0
    theta = np.arctan2(fy, fx)
    bank = []
    for f0 in (0.25, 0.125, 0.0625, 0.03125, 0.015625):
        radial = np.exp(-(np.log(rad / f0) ** 2) / (2 * np.log(0.55) ** 2))
        radial[0, 0] = 0.0
        for k in range(6):
            ang = k * np.pi / 6
            d = np.arctan2(np.sin(theta - ang), np.cos(theta - ang))
            bank.append(radial * np.exp(-(d ** 2) / (2 * (np.pi / 8) ** 2)))
    return np.asarray(bank, dtype=np.float32)


def _gabor_spectrum(g: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    from scipy import fft

    n = g.shape[0]
    z = _standardise(g).astype(np.float32)
    F = fft.fft2(z)
    bank = _gabor_bank(n)
    mags = np.abs(fft.ifft2(F[None] * bank, axes=(-2, -1)))
    gab = {}
    means = mags.mean(axis=(1, 2)).reshape(5, 6)
    stds = mags.std(axis=(1, 2)).reshape(5, 6)
    for s in range(5):
        order = np.argsort(-means[s])  # rotation-normalised: strongest orientation first
        for j in range(6):
            gab[f"gabor_s{s}_o{j}_mean"] = float(means[s, order[j]])
            gab[f"gabor_s{s}_o{j}_std"] = float(stds[s, order[j]])
        gab[f"gabor_s{s}_aniso"] = float(means[s].max() / (means[s].mean() + 1e-9))
    power = np.abs(F) ** 2
    power[0, 0] = 0
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    rad = np.hypot(fx, fy)
    edges = np.geomspace(1.0 / n, 0.5 * np.sqrt(2), 17)
    total = power.sum() + 1e-9
    spec = {f"spec_r{i}": float(power[(rad >= edges[i]) & (rad < edges[i + 1])].sum() / total) for i in range(16)}
    ang = np.mod(np.arctan2(fy, fx), np.pi) * np.ones_like(rad)
    abins = np.minimum((ang / np.pi * 8).astype(int), 7)
    a = np.bincount(abins.ravel(), weights=power.ravel(), minlength=8) / total
    a = np.roll(a, -int(np.argmax(a)))
    spec.update({f"spec_a{i}": float(v) for i, v in enumerate(a)})
    return gab, spec


def _gradient(g: np.ndarray) -> dict[str, float]:
    from scipy import ndimage as ndi

    out = {}
    for s in (1.0, 2.5):
        gx = ndi.gaussian_filter(g, s, order=(0, 1))
        gy = ndi.gaussian_filter(g, s, order=(1, 0))
        mag = np.hypot(gx, gy)
        ang = np.mod(np.arctan2(gy, gx), np.pi)
        hist = np.bincount(np.minimum((ang / np.pi * 12).astype(int), 11).ravel(), weights=mag.ravel(), minlength=12)
        hist = hist / (hist.sum() + 1e-9)
        hist = np.roll(hist, -int(np.argmax(hist)))  # rotation-normalised
        out.update({f"grad{s}_h{i}": float(v) for i, v in enumerate(hist)})
        out[f"grad{s}_mean"] = float(mag.mean())
        out[f"grad{s}_std"] = float(mag.std())
        out[f"grad{s}_p90"] = float(np.percentile(mag, 90))
    return out


@lru_cache(maxsize=2)
def _rocket_kernels(n: int = 48, seed: int = 7):
    rng = np.random.default_rng(seed)
    kernels = []
    for _ in range(n):
        k = int(rng.choice([3, 5, 7]))
        w = rng.normal(size=(k, k)).astype(np.float32)
        w -= w.mean()
        dil = int(rng.choice([1, 2, 4]))
        if dil > 1:
            big = np.zeros(((k - 1) * dil + 1,) * 2, np.float32)
            big[::dil, ::dil] = w
            w = big
        kernels.append((w, float(rng.uniform(-1, 1))))
    return kernels


@lru_cache(maxsize=2)
def _rocket_fft(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fourier transforms of the random kernels on an n x n (circular) canvas, and their biases."""
    from scipy import fft

    ks, bs = [], []
    for w, b in _rocket_kernels():
        pad = np.zeros((n, n), np.float32)
        k = w.shape[0]
        pad[:k, :k] = w[::-1, ::-1] / (np.sqrt((w ** 2).sum()) + 1e-9)
        ks.append(np.roll(pad, (-(k // 2), -(k // 2)), axis=(0, 1)))
        bs.append(b)
    return fft.rfft2(np.asarray(ks), axes=(-2, -1)), np.asarray(bs, np.float32)


def _rocket(g: np.ndarray) -> dict[str, float]:
    from scipy import fft

    n = 64
    z = _standardise(resize(g, n, n)).astype(np.float32)
    K, b = _rocket_fft(n)
    r = fft.irfft2(fft.rfft2(z)[None] * K, s=(n, n), axes=(-2, -1))
    ppv = (r > b[:, None, None]).mean(axis=(1, 2))
    mx = r.max(axis=(1, 2))
    out = {}
    for i in range(len(b)):
        out[f"rocket_{i}_ppv"] = float(ppv[i])
        out[f"rocket_{i}_max"] = float(mx[i])
    return out


def _spots(g: np.ndarray) -> dict[str, float]:
    from scipy import ndimage as ndi

    z = _standardise(ndi.gaussian_filter(g, 1.5))
    out = {}
    for sign, name in ((1, "bright"), (-1, "dark")):
        for t in (1.5, 2.5):
            m = sign * z > t
            n = ndi.label(m)[1]
            out[f"spot_{name}_{t}_frac"] = float(m.mean())
            out[f"spot_{name}_{t}_n"] = float(n)
    return out


def _colour(rgb: np.ndarray | None, g: np.ndarray) -> dict[str, float]:
    a = np.stack([g, g, g], -1) if rgb is None else rgb
    out = {}
    for c, name in enumerate("rgb"):
        out[f"col_{name}_mean"] = float(a[..., c].mean())
        out[f"col_{name}_std"] = float(a[..., c].std())
    return out


def image_features(gray: np.ndarray, rgb: np.ndarray | None = None) -> dict[str, float]:
    """The classification feature vector of one image (names are stable for a FEATURES_VERSION)."""
    g = resize(gray, CANVAS, CANVAS)
    out: dict[str, float] = {}
    out.update(_intensity(g))
    out.update(_lbp(g))
    out.update(_glcm(g))
    gab, spec = _gabor_spectrum(g)
    out.update(gab)
    out.update(spec)
    out.update(_gradient(g))
    out.update(_rocket(g))
    out.update(_spots(g))
    out.update(_colour(None if rgb is None else resize_rgb(rgb, CANVAS, CANVAS), g))
    return {k: float(v) for k, v in out.items()}


_GLCM_WORDS = {"contrast": "local grey-level contrast", "dissimilarity": "grey-level differences between neighbours",
               "homogeneity": "smoothness (neighbours of similar grey)", "energy": "uniform, repetitive texture",
               "correlation": "how well a pixel predicts its neighbour", "ASM": "uniform, repetitive texture (squared)"}
_INT_WORDS = {"mean": "mean brightness", "std": "brightness spread (contrast)", "skew": "brightness skew (a few very "
              "bright or dark pixels)", "kurt": "brightness tails (rare extreme pixels)"}


def _nth(i: int) -> str:
    return "" if i == 1 else {2: "2nd ", 3: "3rd "}.get(i, f"{i}th ")


def describe_image_feature(name: str) -> str:
    """A classification feature's name (:func:`image_features`) in words, for the report; empty when unknown."""
    import re

    n = str(name)
    if m := re.fullmatch(r"int_(mean|std|skew|kurt)", n):
        return _INT_WORDS[m[1]]
    if m := re.fullmatch(r"int_p(\d+)", n):
        return f"brightness at its {m[1]} % percentile"
    if m := re.fullmatch(r"int_hist_(\d+)", n):
        return f"share of pixels in brightness band {int(m[1]) + 1} of 16 (dark to bright)"
    if m := re.fullmatch(r"lbp(h?)_(\d+)_(\d+)_(\d+)", n):
        return (f"fine texture pattern {m[4]} of {int(m[2]) + 2} (local binary pattern, {m[2]} neighbours at radius "
                f"{m[3]}{', half resolution' if m[1] else ''})")
    if m := re.fullmatch(r"glcm_(\w+?)_(\d+)(_aniso)?", n):
        what = _GLCM_WORDS.get(m[1], m[1])
        return (f"{what} at {m[2]} px" + (": how much it differs between directions" if m[3] else "")
                + " (co-occurrence matrix)")
    if m := re.fullmatch(r"gabor_s(\d)_o(\d)_(mean|std)", n):
        return (f"texture energy at scale {int(m[1]) + 1} of 5 (1 = finest), in its {_nth(int(m[2]) + 1)}strongest direction"
                + (" (spread)" if m[3] == "std" else ""))
    if m := re.fullmatch(r"gabor_s(\d)_aniso", n):
        return f"how directional the texture is at scale {int(m[1]) + 1} of 5 (streaks, scratches)"
    if m := re.fullmatch(r"spec_r(\d+)", n):
        return f"share of detail at size band {int(m[1]) + 1} of 16 (coarse to fine)"
    if m := re.fullmatch(r"spec_a(\d)", n):
        return f"share of detail in the {_nth(int(m[1]) + 1)}strongest of 8 directions"
    if m := re.fullmatch(r"grad([\d.]+)_(h(\d+)|mean|std|p90)", n):
        scale = "fine" if m[1] == "1.0" else "coarse"
        if m[3] is not None:
            return f"share of {scale} edges in the {_nth(int(m[3]) + 1)}strongest of 12 directions"
        return {"mean": f"{scale} edge strength", "std": f"{scale} edge strength spread",
                "p90": f"strongest {scale} edges (90 % percentile)"}[m[2]]
    if m := re.fullmatch(r"rocket_(\d+)_(ppv|max)", n):
        return (f"random pattern filter {m[1]}: " + ("share of the image where it responds" if m[2] == "ppv"
                                                     else "its strongest response"))
    if m := re.fullmatch(r"spot_(bright|dark)_([\d.]+)_(frac|n)", n):
        return (f"{m[1]} spots (over {m[2]} standard deviations): "
                + ("share of the image they cover" if m[3] == "frac" else "how many"))
    if m := re.fullmatch(r"col_([rgb])_(mean|std)", n):
        colour = {"r": "red", "g": "green", "b": "blue"}[m[1]]
        return f"{colour} channel {'mean' if m[2] == 'mean' else 'spread'}"
    return ""


def resize_rgb(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.stack([resize(rgb[..., c], width, height) for c in range(3)], -1)


@lru_cache(maxsize=1)
def feature_names() -> list[str]:
    return list(image_features(np.zeros((CANVAS, CANVAS), np.float32) + np.linspace(0, 1, CANVAS, dtype=np.float32)))


# ------------------------------------------------------------------ patch features (anomaly maps)
CELL = 8


def patch_maps(g: np.ndarray) -> np.ndarray:
    """Per-pixel responses (C, H, W) of a standardised grey image."""
    from scipy import ndimage as ndi

    z = _standardise(g.astype(np.float32))
    maps = []
    s = {sg: ndi.gaussian_filter(z, sg) for sg in (1.0, 2.0, 4.0, 8.0)}
    maps += [s[1.0], s[4.0]]
    maps += [s[1.0] - s[2.0], s[2.0] - s[4.0], s[4.0] - s[8.0]]
    for sg in (1.0, 2.0):
        maps.append(np.hypot(ndi.gaussian_filter(z, sg, order=(0, 1)), ndi.gaussian_filter(z, sg, order=(1, 0))))
    for sg in (1.5, 3.0):
        hxx = ndi.gaussian_filter(z, sg, order=(0, 2))
        hyy = ndi.gaussian_filter(z, sg, order=(2, 0))
        hxy = ndi.gaussian_filter(z, sg, order=(1, 1))
        tmp = np.sqrt((hxx - hyy) ** 2 + 4 * hxy ** 2)
        maps += [(hxx + hyy + tmp) / 2 * sg ** 2, (hxx + hyy - tmp) / 2 * sg ** 2]
    local_var = ndi.gaussian_filter(z * z, 2.0) - s[2.0] ** 2
    maps.append(np.sqrt(np.maximum(local_var, 0)))
    return np.asarray(maps, dtype=np.float32)


def patch_features(g: np.ndarray, cell: int = CELL) -> np.ndarray:
    """(h, w, D) cell features: mean and max-abs of each response per cell, plus a 3x3 neighbourhood mean."""
    from scipy import ndimage as ndi

    maps = patch_maps(g)
    c, H, W = maps.shape
    h, w = max(1, H // cell), max(1, W // cell)
    m = maps[:, : h * cell, : w * cell].reshape(c, h, cell, w, cell)
    mean = m.mean(axis=(2, 4))
    mx = np.abs(m).max(axis=(2, 4))
    cells = np.concatenate([mean, mx], 0)
    ctx = ndi.uniform_filter(cells, size=(1, 3, 3), mode="nearest")
    return np.concatenate([cells, ctx], 0).transpose(1, 2, 0).astype(np.float32)
