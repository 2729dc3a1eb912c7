"""Metric output: JSON lines, TensorBoard event files and a progress bar.

``<workdir>/metrics.jsonl`` gets one JSON object per logged step (``{"step": s, "split":
"train", ...}``); ``<workdir>/tensorboard/`` gets event files readable by TensorBoard: the
scalars, and the run's pictures as images. Values are plain floats; the writer never holds
device arrays.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


class MetricWriter:
    """Appends metrics to ``metrics.jsonl`` and TensorBoard (if ``tensorboardX`` imports), and
    the run's pictures to TensorBoard as images."""

    def __init__(self, workdir: str | Path, *, enabled: bool = True):
        self.workdir = Path(workdir)
        self.enabled = enabled
        self._tb = None
        if enabled:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._jsonl = open(self.workdir / "metrics.jsonl", "a", buffering=1)
            try:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(str(self.workdir / "tensorboard"), flush_secs=10)
            except ImportError:  # pragma: no cover - tensorboardX is a dependency
                self._tb = None

    def write(self, step: int, metrics: dict[str, Any], *, split: str = "train") -> None:
        if not self.enabled:
            return
        values = {k: _to_python(v) for k, v in metrics.items()}
        self._jsonl.write(json.dumps({"step": int(step), "split": split, **values}) + "\n")
        if self._tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(f"{split}/{k}", v, int(step))

    def write_pictures(self, step: int, paths: list[Path]) -> None:
        """Adds PNG pictures to TensorBoard as images, tagged ``pictures/<name>`` (the file name
        without its ``_<step>`` suffix, so each kind of picture gets one slider over the steps)."""
        if not self.enabled or self._tb is None:
            return
        from PIL import Image

        for path in paths:
            path = Path(path)
            if path.suffix.lower() != ".png" or not path.exists():
                continue
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
            tag = "pictures/" + re.sub(r"_\d+$", "", path.stem)
            self._tb.add_image(tag, pixels, int(step), dataformats="HWC")

    def close(self) -> None:
        if not self.enabled:
            return
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def _to_python(v: Any) -> Any:
    if isinstance(v, (str, bool, int)):
        return v
    arr = np.asarray(v)
    if arr.ndim == 0:
        return float(arr)
    return arr.tolist()


def read_metrics(workdir: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """Reads ``metrics.jsonl`` back (for plots, tests and reports)."""
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if split is None or r.get("split") == split]


class Progress:
    """A progress bar with steps/s, ETA and the current loss (tqdm on a terminal, lines otherwise)."""

    def __init__(
        self, start: int, total: int, *, enabled: bool = True, desc: str = "train", unit: str = "step"
    ):
        self.total = total
        self.enabled = enabled
        self._bar = None
        self._last_print = 0.0
        self._t0 = time.perf_counter()
        self._start = start
        self.step = start
        self.desc, self.unit = desc, unit
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=start, desc=desc, unit=unit, dynamic_ncols=True)

    def restart(self, step: int) -> None:
        """Measures the rate and ETA from ``step`` now (e.g. after the compilation)."""
        self._t0 = time.perf_counter()
        self._start = step
        if self._bar is not None:  # tqdm's rate counts from `initial` at its reset time
            self._bar.reset(total=self.total)
            self._bar.initial = self._bar.n = step
            self._bar.refresh()
        self.step = step

    def update(self, step: int, postfix: dict[str, float]) -> None:
        if not self.enabled:
            return
        text = {k: f"{v:.4g}" for k, v in postfix.items()}
        if self._bar is not None:
            self._bar.update(step - self.step)
            self._bar.set_postfix(text, refresh=False)
        else:
            now = time.perf_counter()
            if now - self._last_print >= 10.0 or step >= self.total:
                rate = (step - self._start) / max(now - self._t0, 1e-9)
                eta = (self.total - step) / rate if rate > 0 else float("inf")
                fields = " ".join(f"{k}={v}" for k, v in text.items())
                print(
                    f"{self.desc}: {self.unit} {step}/{self.total} {rate:.1f} {self.unit}s/s "
                    f"ETA {_fmt_eta(eta)} {fields}",
                    file=sys.stderr,
                    flush=True,
                )
                self._last_print = now
        self.step = step

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _fmt_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
