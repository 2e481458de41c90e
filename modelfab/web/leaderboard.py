"""The live leaderboard of a training job: a trials table built while the search runs.

Sources, from the richest to the plainest (the search itself is not changed):

* FLAML's trial log (``trials.jsonl`` in the search's temporary folder): the worker
  points the process's temporary folder into the job's folder, so the log of each
  trial (learner, validation loss, wall-clock time) can be read as it grows;
* the anomaly search's progress messages (``"<candidate> <aggregation>: <score>"``),
  one per candidate evaluated;
* the progress callback's best score and learner (when neither of the above is there).

``rows()`` gives at most ``MAX_ROWS`` rows, best first.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

MAX_ROWS = 15
_ANOMALY_MSG = re.compile(r"^(?P<cand>.+) (?P<agg>[A-Za-z0-9_.]+): (?P<score>-?\d+(?:\.\d+)?)$")


def greater_is_better(metric: str | None) -> bool:
    from ..automl.search import CLASSIFICATION_METRICS, REGRESSION_METRICS

    for table in (CLASSIFICATION_METRICS, REGRESSION_METRICS):
        if metric in table:
            return bool(table[metric][1])
    return True  # cv_auc, synthetic_auc, ...


class LiveBoard:
    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir
        self.by_key: dict[str, dict] = {}
        self.metric: str | None = None
        self.greater = True
        self._logs: dict[Path, int] = {}  # trial log -> bytes read
        self.from_log = False

    # -- sources ---------------------------------------------------------------
    def update(self, *, elapsed_s: float, trials: int, best_score, best_learner, metric, message: str) -> None:
        if metric and metric != self.metric:
            self.metric, self.greater = metric, greater_is_better(metric)
        self._read_logs()
        m = _ANOMALY_MSG.match(message or "")
        if m and not self.from_log:
            self._add(m.group("cand"), float(m.group("score")), elapsed_s, detail=m.group("agg"), count=False)
            return
        if self.from_log or best_learner is None or not _finite(best_score):
            return
        self._add(str(best_learner), float(best_score), elapsed_s, detail="", count=False, trials=trials)

    def _read_logs(self) -> None:
        if self.log_dir is None:
            return
        try:
            logs = sorted(self.log_dir.glob("modelfab-search-*/trials.jsonl"))
        except OSError:
            return
        for path in logs:
            pos = self._logs.get(path, 0)
            try:
                with open(path, "rb") as fh:
                    fh.seek(pos)
                    chunk = fh.read()
            except OSError:
                continue
            end = chunk.rfind(b"\n") + 1  # whole lines only
            self._logs[path] = pos + end
            for line in chunk[:end].splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                loss = rec.get("validation_loss") if isinstance(rec, dict) else None
                if not _finite(loss) or not rec.get("learner"):
                    continue
                score = (1.0 - float(loss)) if self.greater else float(loss)
                self.from_log = True
                self._add(str(rec["learner"]), score, float(rec.get("wall_clock_time") or 0.0), detail="", count=True,
                          trial_time=rec.get("trial_time"))

    def _add(self, key: str, score: float, at_s: float, *, detail: str, count: bool, trials: int | None = None,
             trial_time=None) -> None:
        row = self.by_key.get(key)
        if row is None:
            row = self.by_key[key] = {"learner": key[:80], "detail": detail[:40], "trials": 0, "best": score,
                                      "last": score, "at_s": round(at_s, 1), "trial_s": None}
        if count:
            row["trials"] += 1
        elif trials is not None:
            row["trials"] = max(row["trials"], 1)
        else:
            row["trials"] += 1
        row["last"] = score
        if (score > row["best"]) if self.greater else (score < row["best"]):
            row["best"], row["at_s"], row["detail"] = score, round(at_s, 1), detail[:40] or row["detail"]
        if _finite(trial_time):
            row["trial_s"] = round(float(trial_time), 3)

    # -- output ------------------------------------------------------------------
    def rows(self) -> list[dict]:
        # best first; among equal scores the one that reached it first (as the search keeps its first best)
        sign = 1 if self.greater else -1
        rows = sorted(self.by_key.values(), key=lambda r: (-sign * r["best"], r["at_s"]))[:MAX_ROWS]
        return [dict(r, rank=i + 1, best=_round(r["best"]), last=_round(r["last"])) for i, r in enumerate(rows)]


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _round(v: float) -> float:
    return float(f"{v:.6g}")
