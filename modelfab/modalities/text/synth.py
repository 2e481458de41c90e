"""Generated text data for tests, docs and demos: maintenance and customer reports with labels.

Each report mixes a few class-specific phrases with shared filler, and a share of
the labels is flipped, so a model has something to learn and cannot be perfect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_ZH = {
    "好评": ["质量很好", "非常满意", "物流很快", "推荐购买", "性价比高", "做工精细", "包装完好", "客服耐心"],
    "差评": ["质量太差", "非常失望", "物流太慢", "不推荐", "做工粗糙", "已经退货", "包装破损", "客服不理人"],
}
_ZH_FILL = ["这个产品", "收到以后", "用了几天", "总的来说", "第二次购买", "给家里买的", "和描述一样", "价格还行"]
_EN = {
    "bearing": ["grinding noise from the bearing", "bearing runs hot", "high vibration at the drive end",
                "replaced the bearing", "metallic rumble when loaded"],
    "electrical": ["motor tripped the breaker", "burnt smell at the terminal box", "fuse blown again",
                   "insulation resistance low", "inverter fault code shown"],
    "leak": ["oil leak under the gearbox", "seal is dripping", "puddle of coolant on the floor",
             "hydraulic pressure drops slowly", "gasket weeping at the flange"],
}
_EN_FILL = ["operator reported that", "during the night shift", "checked on line 3", "after the restart",
            "customer says", "found at inspection", "again this week", "please check"]


def make_reports(n: int = 300, *, lang: str = "zh", noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Columns ``text``, ``hours`` (a numeric column) and ``label``; ``lang`` is "zh" (2 classes) or "en" (3)."""
    rng = np.random.default_rng(seed)
    phrases, fill, sep = (_ZH, _ZH_FILL, "，") if lang == "zh" else (_EN, _EN_FILL, ", ")
    labels = list(phrases)
    rows = []
    for i in range(n):
        lab = labels[i % len(labels)]
        parts = list(rng.choice(phrases[lab], 2, replace=False)) + list(rng.choice(fill, 2, replace=False))
        rng.shuffle(parts)
        shown = labels[rng.integers(len(labels))] if rng.random() < noise else lab
        rows.append({"text": sep.join(parts) + ("。" if lang == "zh" else "."),
                     "hours": round(float(rng.gamma(2.0, 300.0)), 1), "label": shown})
    return pd.DataFrame(rows)
