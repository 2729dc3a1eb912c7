"""The ``genjax`` command: train, evaluate, sample, list.

    genjax train vae_digits --workdir runs/vae_digits --set train.num_steps=2000
    genjax evaluate --workdir runs/vae_digits --set eval.iwae_samples=5000
    genjax sample --workdir runs/vae_digits --num 64 --out samples.png
    genjax list

Multi-process: ``genjax train CONFIG --workdir DIR --coordinator-address HOST:PORT
--num-processes N --process-id I`` in each of N processes (or ``--distributed`` on a cluster
JAX detects); ``--devices N`` uses N devices of each host. ``--cpu-devices N`` trains on the
host CPU split into N devices with single-threaded kernels, data parallel (faster for
convolutional models on a few cores; see :mod:`genjax.host_devices`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genjax", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a config (resumes automatically from --workdir)")
    t.add_argument("config", help="config name (see `genjax list`) or path to a config file")
    t.add_argument("--workdir", required=True, help="folder for checkpoints, metrics, pictures")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.num_steps=100 (repeatable)")
    t.add_argument("--allow-config-change", action="store_true",
                   help="resume with changed optimizer, seed, batch size, compute dtype or EMA "
                        "settings (recorded in WORKDIR/config_history.jsonl)")

    e = sub.add_parser("evaluate", help="evaluate the newest checkpoint of a workdir")
    e.add_argument("--workdir", required=True)
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    e.add_argument("--out", help="write the metrics as JSON here (default: workdir/eval_<step>.json)")

    s = sub.add_parser("sample", help="write a grid of samples from the newest checkpoint")
    s.add_argument("--workdir", required=True)
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--num", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="PNG path (default: workdir/pictures/sample_cli_<step>.png)")
    s.add_argument("--npy", help="also save the samples as a .npy array here")

    for command in (t, e, s):
        _add_run_flags(command)
    sub.add_parser("list", help="list configs, methods and datasets")
    return p


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """Device and multi-process flags, shared by train, evaluate and sample."""
    p.add_argument("--devices", type=int, default=None, metavar="N",
                   help="use N devices of this host (default: train.num_devices; 0 or unset: "
                        "all that divide the batch)")
    p.add_argument("--cpu-devices", type=int, default=None, metavar="N",
                   help="run on this host's CPU split into N >= 2 devices, each with "
                        "single-threaded kernels, data parallel (sets XLA_FLAGS and "
                        "JAX_PLATFORMS=cpu before JAX starts; the batch must divide by N)")
    g = p.add_argument_group("multi-process runs (JAX's distributed runtime; gloo on CPU)")
    g.add_argument("--coordinator-address", metavar="HOST:PORT",
                   help="process 0's address (or $JAX_COORDINATOR_ADDRESS)")
    g.add_argument("--num-processes", type=int, metavar="N",
                   help="processes in the run (or $JAX_NUM_PROCESSES)")
    g.add_argument("--process-id", type=int, metavar="I",
                   help="this process, in [0, N) (or $JAX_PROCESS_ID)")
    g.add_argument("--distributed", action="store_true",
                   help="join the cluster JAX detects (SLURM, Open MPI, Kubernetes, TPU pods)")
    g.add_argument("--distributed-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for the other processes (default 60)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except Exception as e:
        if not isinstance(e, _user_errors()):
            raise
        print(f"genjax {args.command}: error: {e}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that say what the user should do: printed as one line (imported only when
    needed, so that `genjax list` does not import JAX)."""
    from genjax.train.checkpoint import CheckpointError
    from genjax.train.distributed import DistributedError
    from genjax.train.workdir import WorkdirBusyError

    return (ValueError, TypeError, FileNotFoundError, CheckpointError, WorkdirBusyError,
            DistributedError)


def _run(args) -> int:
    if args.command == "list":
        from genjax.data import available_datasets
        from genjax.experiments import available_configs
        from genjax.train.method import available_methods

        print("configs:  " + ", ".join(sorted(available_configs())))
        print("methods:  " + ", ".join(available_methods()))
        print("datasets: " + ", ".join(available_datasets()))
        return 0

    if args.cpu_devices is not None:  # before anything imports JAX: XLA reads its flags once
        from genjax.host_devices import split_host_cpu

        split_host_cpu(args.cpu_devices)
    from genjax.train import distributed

    group = distributed.process_group(args.coordinator_address, args.num_processes,
                                      args.process_id, timeout=args.distributed_timeout)
    if args.command == "train":  # a bad config is refused before waiting for other processes
        from genjax.experiments import load_config

        config = load_config(args.config, _device_overrides(args))
    distributed.initialize(group, auto=args.distributed)

    import jax

    from genjax.eval.images import picture_path
    from genjax.train.loop import NonFiniteError, load_trainer, train_and_evaluate

    if args.command == "train":
        try:
            summary = train_and_evaluate(config, args.workdir,
                                         allow_config_change=args.allow_config_change)
        except NonFiniteError as e:
            print(f"genjax train: {e}", file=sys.stderr)
            return 1
        print(json.dumps(summary, indent=2))
        return 130 if summary["status"] == "interrupted" else 0

    # One path for every method: a step-trained run and a fitted one restore alike.
    run = load_trainer(args.workdir, _device_overrides(args))
    step = run.current_step
    writer = jax.process_index() == 0  # every process computes; process 0 alone writes
    if writer:
        print(f"genjax {args.command}: step {step} of {args.workdir}, {run.devices_note}",
              file=sys.stderr)
    if args.command == "evaluate":
        metrics = {"step": step, **run.evaluate()}
        out = (Path(args.out) if args.out
               else picture_path(args.workdir, "eval", step, suffix=".json"))
        if writer:
            out.write_text(json.dumps(metrics, indent=2))
            print(json.dumps(metrics, indent=2))
        return 0
    if args.command == "sample":
        import numpy as np

        from genjax.eval.images import save_image_grid

        if args.num < 1:
            raise ValueError(f"--num must be >= 1, got {args.num}")
        images = run.sample(jax.random.key(args.seed), args.num)
        default = picture_path(Path(args.workdir) / "pictures", "sample_cli", step)
        out = Path(args.out) if args.out else default
        if not writer:
            return 0
        if np.ndim(images) == 2:  # points (num, D) of a toy 2-D model: a scatter plot
            from genjax.eval.plots import plot_points_2d

            plot_points_2d(out, {"samples": np.asarray(images)[:, :2]},
                           title=f"{args.num} samples, step {step}")
        else:
            save_image_grid(out, images)
        if args.npy:
            np.save(args.npy, images)
        print(f"wrote {args.num} samples from step {step} to {out}")
        return 0
    raise AssertionError(args.command)


def _device_overrides(args) -> list[str]:
    """``--set`` overrides with ``--devices N`` as ``train.num_devices=N``."""
    extra = [] if args.devices is None else [f"train.num_devices={args.devices}"]
    return [*args.overrides, *extra]


if __name__ == "__main__":
    sys.exit(main())
