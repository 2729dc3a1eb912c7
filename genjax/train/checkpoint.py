"""Checkpoints: orbax ``CheckpointManager`` plus a content hash that genjax checks itself.

Each checkpoint step holds two items: ``state`` (the whole :class:`TrainState` pytree: every
model's params and optimizer state, the step and the rng key) and ``meta`` (JSON: the config,
the data position and the SHA-256 of the state's bytes computed at save time). Saves are
asynchronous and atomic (orbax writes into a temporary folder and renames it on success).

orbax restores a checkpoint whose bytes were overwritten in place without complaint, and it
counts an empty step folder as the latest step. So :meth:`CheckpointStore.restore_latest`
recomputes the hash of what it restored and compares it with the recorded one; a step that
fails to restore or does not match is reported, moved aside into ``<workdir>/corrupt/`` (never
deleted: nothing a user saved is lost) and the previous step is tried.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


def tree_digest(tree: Any) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes, in a fixed order."""
    h = hashlib.sha256()
    leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
    for path, leaf in leaves:
        arr = np.asarray(leaf)
        h.update(jax.tree_util.keystr(path).encode())
        h.update(str(arr.dtype).encode())
        h.update(str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


# Pytrees a checkpoint may hold beside the train state: the parameter average (train.ema_decay).
EXTRA_ITEMS = ("ema",)


class CheckpointError(RuntimeError):
    """No checkpoint in the directory could be restored and verified."""


class CheckpointStore:
    """Periodic, asynchronous, verified checkpoints in ``<workdir>/checkpoints``.

    Args:
      workdir: the run's folder.
      max_to_keep: how many recent steps orbax keeps.
      log: where to report problems (default: standard error).
    """

    def __init__(self, workdir: str | Path, *, max_to_keep: int = 3, log=None):
        self.workdir = Path(workdir).absolute()
        self.directory = self.workdir / "checkpoints"
        self.max_to_keep = max_to_keep
        self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._manager = self._make_manager()

    def _make_manager(self) -> ocp.CheckpointManager:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=self.max_to_keep, create=True, enable_async_checkpointing=True
        )
        return ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "meta", *EXTRA_ITEMS)
        )

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: Any, meta: dict[str, Any], *, wait: bool = False,
             extras: dict[str, Any] | None = None) -> None:
        """Starts an asynchronous save of ``state`` at ``step``; ``wait`` blocks until durable.

        ``extras``: further pytrees saved beside the state as their own items (names from
        ``EXTRA_ITEMS``, e.g. ``{"ema": averaged_params}``), each with its own content hash.
        """
        extras = dict(extras or {})
        unknown = set(extras) - set(EXTRA_ITEMS)
        if unknown:
            raise ValueError(f"extras {sorted(unknown)}: expected names among {EXTRA_ITEMS}")
        meta = {**meta, "step": int(step), "sha256": tree_digest(state), "saved_at": time.time(),
                "extras_sha256": {name: tree_digest(tree) for name, tree in extras.items()}}
        items = {name: ocp.args.StandardSave(tree) for name, tree in extras.items()}
        self._manager.save(
            int(step),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta), **items
            ),
            force=True,
        )
        if wait:
            self.wait()

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def restore_latest(self, target: Any, *, extras: dict[str, Any] | None = None):
        """Restores the newest step that loads and matches its recorded hash.

        Args:
          target: a state (or ``jax.ShapeDtypeStruct`` tree, with shardings) of the expected
            structure; it fixes shapes, dtypes and placement of the restored arrays.
          extras: targets of extra items (see :meth:`save`) to restore where the step has them.

        Returns:
          ``(state, meta)``, or ``(state, meta, restored_extras)`` when ``extras`` is given
          (``restored_extras`` holds the requested items the step was saved with); ``None``
          when the directory holds no checkpoint at all.

        Raises:
          CheckpointError: when checkpoints exist but none of them is intact.
        """
        steps = sorted(self.all_steps(), reverse=True)
        if not steps:
            return None
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        problems = []
        for step in steps:
            problem, restored_extras = None, {}
            try:
                meta = self._manager.restore(
                    step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
                )["meta"]
                saved_extras = meta.get("extras_sha256", {}) if isinstance(meta, dict) else {}
                wanted = {k: v for k, v in (extras or {}).items() if k in saved_extras}
                items = {
                    name: ocp.args.StandardRestore(
                        jax.tree.map(ocp.utils.to_shape_dtype_struct, tree))
                    for name, tree in wanted.items()
                }
                restored = self._manager.restore(
                    step,
                    args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), **items),
                )
                state = restored["state"]
                restored_extras = {name: restored[name] for name in wanted}
                if not isinstance(meta, dict) or "sha256" not in meta:
                    problem = "its metadata has no content hash"
                elif tree_digest(state) != meta["sha256"] or any(
                    tree_digest(tree) != saved_extras[name]
                    for name, tree in restored_extras.items()
                ):
                    problem = (
                        "its content hash does not match the one recorded at save time "
                        "(the files were changed or damaged after saving)"
                    )
            except Exception as e:  # orbax raises many types for damaged folders
                problem = f"it could not be read ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
            if problem is None:
                if problems:
                    self._log(f"genjax: resumed from step {step}, the newest intact checkpoint.")
                if extras is None:
                    return state, meta
                return state, meta, restored_extras
            moved = self._quarantine(step)
            msg = f"genjax: checkpoint step {step} in {self.directory} is unusable: {problem}. "
            msg += f"It was moved to {moved}; trying the previous step."
            self._log(msg)
            problems.append(msg)
        raise CheckpointError(
            "no intact checkpoint in "
            f"{self.directory}:\n  " + "\n  ".join(problems) + "\nStart a new run with another "
            "--workdir, or restore a backup of the checkpoints folder."
        )

    def _quarantine(self, step: int) -> Path:
        """Moves a damaged step folder out of orbax's sight; returns the new path."""
        source = self.directory / str(step)
        dest_root = self.workdir / "corrupt"
        dest_root.mkdir(parents=True, exist_ok=True)
        dest = dest_root / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
        n = 0
        while dest.exists():
            n += 1
            dest = dest_root / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        if source.exists():
            shutil.move(str(source), str(dest))
        self._manager.close()
        self._manager = self._make_manager()
        return dest

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def read_meta(workdir: str | Path) -> dict[str, Any] | None:
    """The ``meta`` JSON of the newest step folder (no verification); for ``genjax`` tools."""
    directory = Path(workdir) / "checkpoints"
    steps = sorted((int(p.name) for p in directory.glob("[0-9]*") if p.name.isdigit()), reverse=True)
    for step in steps:
        path = directory / str(step) / "meta" / "metadata"
        if path.exists():
            return json.loads(path.read_text())
    return None
