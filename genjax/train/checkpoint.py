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
from jax.experimental import multihost_utils


def _whole(leaf: Any) -> Any:
    """A leaf's full value on the host. A leaf split over several processes' devices (a
    method's ``split_collections``) is gathered from every process: a collective, so every
    process calls :func:`tree_digest` on the same tree (as every process saves and restores)."""
    if isinstance(leaf, jax.Array) and not (leaf.is_fully_addressable
                                            or leaf.sharding.is_fully_replicated):
        return multihost_utils.process_allgather(leaf, tiled=True)
    return jax.device_get(leaf)


def tree_digest(tree: Any) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes, in a fixed order."""
    h = hashlib.sha256()
    leaves = jax.tree_util.tree_flatten_with_path(jax.tree.map(_whole, tree))[0]
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


class CheckpointMismatchError(CheckpointError):
    """A checkpoint is intact but holds arrays of other names or shapes than the model now built
    (a changed config or code): it is left in place, since nothing is damaged."""


def _key_name(key: Any) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _leaf_specs(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{"models.vae.params...": (shape, dtype)}`` for a pytree or orbax metadata tree."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {".".join(_key_name(k) for k in path): (tuple(leaf.shape), str(np.dtype(leaf.dtype)))
            for path, leaf in leaves}


class CheckpointStore:
    """Periodic, asynchronous, verified checkpoints in ``<workdir>/checkpoints``.

    Args:
      workdir: the run's folder.
      max_to_keep: how many recent steps orbax keeps.
      log: where to report problems (default: standard error).
      read_only: only read (``genjax evaluate`` / ``sample``, possibly beside a live run):
        nothing is created, saved or moved; damaged steps are skipped and left in place.
    """

    def __init__(self, workdir: str | Path, *, max_to_keep: int = 3, log=None,
                 read_only: bool = False):
        self.workdir = Path(workdir).absolute()
        self.directory = self.workdir / "checkpoints"
        self.max_to_keep = max_to_keep
        self.read_only = read_only
        self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._manager = self._make_manager()

    def _make_manager(self) -> ocp.CheckpointManager:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=self.max_to_keep, create=not self.read_only,
            enable_async_checkpointing=True, read_only=self.read_only,
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
            mismatch = self._mismatch(step, abstract)
            if mismatch:
                raise CheckpointMismatchError(
                    f"checkpoint step {step} in {self.directory} holds other arrays than this "
                    f"config builds ({mismatch}): it was made with another model config or "
                    "genjax version. Nothing was moved; train in another --workdir or resume "
                    "with the config saved in config.json."
                )
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
            msg = f"genjax: checkpoint step {step} in {self.directory} is unusable: {problem}. "
            if self.read_only:  # a reader (evaluate, sample) never moves a run's files
                msg += "Skipped (left in place); trying the previous step."
            else:
                msg += f"It was moved to {self._quarantine(step)}; trying the previous step."
            self._log(msg)
            problems.append(msg)
        raise CheckpointError(
            "no intact checkpoint in "
            f"{self.directory}:\n  " + "\n  ".join(problems) + "\nStart a new run with another "
            "--workdir, or restore a backup of the checkpoints folder."
        )

    def _mismatch(self, step: int, abstract: Any) -> str | None:
        """Differences between a step's saved array names/shapes and ``abstract``, if any.

        Reads only orbax's metadata; a step whose metadata cannot be read is left to the
        restore (which reports real damage).
        """
        try:
            metadata = ocp.StandardCheckpointHandler().metadata(self.directory / str(step) / "state")
            saved = _leaf_specs(getattr(metadata, "tree", metadata))
        except Exception:  # damaged or partial folder: not a mismatch
            return None
        wanted = _leaf_specs(abstract)
        if saved == wanted:
            return None
        diffs = [f"{k}: saved {saved[k][0]}, now {wanted[k][0]}" for k in sorted(wanted)
                 if k in saved and saved[k][0] != wanted[k][0]]
        diffs += [f"{k} missing from the checkpoint" for k in sorted(set(wanted) - set(saved))]
        diffs += [f"{k} not in this model" for k in sorted(set(saved) - set(wanted))]
        if not diffs:  # dtypes only
            diffs = [f"{k}: saved {saved[k][1]}, now {wanted[k][1]}" for k in sorted(wanted)
                     if saved[k] != wanted[k]]
        more = f" and {len(diffs) - 3} more" if len(diffs) > 3 else ""
        return "; ".join(diffs[:3]) + more

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
