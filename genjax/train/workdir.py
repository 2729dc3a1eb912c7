"""A workdir is one run: an exclusive lock while a process trains in it, and the rules for
what a resumed run may change in the config.

* :class:`WorkdirLock`: ``genjax train`` holds an ``flock`` on ``<workdir>/.genjax.lock`` for
  its whole life. A second ``genjax train`` on the same folder is refused with one line naming
  the holder (its pid, host and start time). The kernel drops the lock when its process dies,
  so the file a crashed or killed run leaves behind blocks nothing. ``genjax evaluate`` and
  ``sample`` take no lock: they only read finished checkpoints.
* :func:`compare_configs` sorts the differences between the config a run was started with
  (``config.json``) and the one a resume asks for into three kinds:

  - refused: the method, the model (but its evaluation-only fields), the training data and
    anything that changes shapes: the checkpoints could not be restored, or would mean
    something else;
  - needs ``--allow-config-change``: the optimizer, the seed, the batch size, the compute dtype,
    the parameter average; the run continues, and the change is appended to
    ``<workdir>/config_history.jsonl``;
  - safe: the length of the run, logging, evaluation and checkpoint intervals, the evaluation
    protocol (``eval.*`` and the method's evaluation-only model fields), data folders.
"""

from __future__ import annotations

import fnmatch
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None

LOCK_NAME = ".genjax.lock"
HISTORY_NAME = "config_history.jsonl"

# Keys a resume may change freely (fnmatch patterns over dotted keys).
SAFE_KEYS = (
    "description",
    "train.num_steps",
    "train.log_every",
    "train.eval_every",
    "train.checkpoint_every",
    "train.max_to_keep",
    "train.progress",
    "train.max_seconds",
    "train.steps_per_dispatch",
    "train.num_devices",
    # Which XLA algorithms compute the same mathematics on a GPU (no effect elsewhere); a GPU
    # resume is not bitwise anyway without --xla_gpu_deterministic_ops, and runs saved before
    # the field existed must resume without a flag.
    "train.gpu_exclude_nondeterministic_ops",
    "eval.*",
    "data.data_dir",
    "data.manual_dir",
    "data.eval_split",
    "data.eval_preprocess",
    "data.max_eval_examples",
)
# Keys a resume may change only when asked explicitly (recorded in the history).
FLAGGED_KEYS = (
    "optim.*",
    "train.seed",
    "train.batch_size",
    "train.compute_dtype",
    "train.ema_decay",
)


class WorkdirBusyError(RuntimeError):
    """Another live process trains in this workdir."""


class ConfigChangeError(ValueError):
    """A resume asked for a config change that is refused or not allowed."""


class WorkdirLock:
    """An exclusive, process-lifetime lock on a workdir (``flock`` on its lock file).

    Use as a context manager or with :meth:`acquire` / :meth:`release`.
    """

    def __init__(self, workdir: str | Path):
        self.workdir = Path(workdir)
        self.path = self.workdir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> WorkdirLock:
        if fcntl is None:  # pragma: no cover
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise WorkdirBusyError(
                f"{self.workdir} is in use by another genjax run ({holder}); wait for it to "
                "finish or stop it, or train in another --workdir (genjax evaluate/sample may "
                "read it meanwhile)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError):
        return "a process whose details could not be read"


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def _matches(key: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def compare_configs(saved: dict[str, Any], requested: dict[str, Any],
                    eval_only_model_fields: tuple[str, ...] = ()) -> dict[str, dict]:
    """Sorts the differences between two configs (as written by ``to_dict``).

    Args:
      saved / requested: the config the run started with and the one now asked for.
      eval_only_model_fields: fields of the method's model section that only change its
        evaluation (e.g. a GAN's ``metric_samples``); they count as safe.

    Returns:
      ``{"refused": {...}, "flagged": {...}, "safe": {...}}``, each mapping a dotted key to
      ``(saved value, requested value)``.
    """
    a, b = _flatten(saved), _flatten(requested)
    safe = (*SAFE_KEYS, *(f"model.{f}" for f in eval_only_model_fields))
    out: dict[str, dict] = {"refused": {}, "flagged": {}, "safe": {}}
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key, "<absent>"), b.get(key, "<absent>")
        if _as_list(old) == _as_list(new):
            continue
        kind = "safe" if _matches(key, safe) else "flagged" if _matches(key, FLAGGED_KEYS) \
            else "refused"
        out[kind][key] = (old, new)
    return out


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list) else value


def _describe(changes: dict[str, tuple]) -> str:
    return ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changes.items())


def check_resume(workdir: Path, saved: dict[str, Any], requested: dict[str, Any], *,
                 allow_changes: bool, step: int | None,
                 eval_only_model_fields: tuple[str, ...] = ()) -> dict[str, dict]:
    """Refuses a resume whose config differs in a way it may not; records allowed changes.

    Raises:
      ConfigChangeError: one line listing the refused keys, or the keys that need
        ``--allow-config-change`` when it was not given.
    """
    diff = compare_configs(saved, requested, eval_only_model_fields)
    if diff["refused"]:
        raise ConfigChangeError(
            f"{workdir} holds a run of another model or data; these keys differ from its "
            f"config.json and cannot change on resume: {_describe(diff['refused'])}. Train in "
            "another --workdir."
        )
    if diff["flagged"] and not allow_changes:
        raise ConfigChangeError(
            f"resuming {workdir} with a changed training setup: {_describe(diff['flagged'])}. "
            "Pass --allow-config-change to continue the run with it (the change is recorded "
            f"in {HISTORY_NAME}), or drop these --set values."
        )
    if diff["flagged"] or diff["safe"]:
        record = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "resumed_at_step": step,
                  "changes": {k: [o, n] for kind in ("flagged", "safe")
                              for k, (o, n) in diff[kind].items()}}
        with open(workdir / HISTORY_NAME, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
    return diff


__all__ = [
    "ConfigChangeError",
    "FLAGGED_KEYS",
    "SAFE_KEYS",
    "WorkdirBusyError",
    "WorkdirLock",
    "check_resume",
    "compare_configs",
]
