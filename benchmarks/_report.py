"""Shared by the benchmark scripts: the train-step timing and the table/JSON report."""

from __future__ import annotations

import json
import platform
import time

import jax

from genjax.experiments import load_config
from genjax.train.loop import Trainer


def bench_train_steps(name: str, overrides: list[str], steps: int, warmup: int) -> dict:
    """Times ``steps`` engine steps of config ``name`` after ``warmup`` steps (and compile).

    The timed region includes the host->device batch transfer and the per-step metric fetch
    that the real loop does.
    """
    config = load_config(name, overrides + ["train.progress=false"])
    trainer = Trainer(config, None)
    t0 = time.perf_counter()
    trainer.step()
    compile_s = time.perf_counter() - t0
    for _ in range(warmup):
        trainer.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    elapsed = time.perf_counter() - t0
    batch = config.train.batch_size
    return {
        "config": name,
        "batch_size": batch,
        "devices": trainer.mesh.devices.size,
        "device_kind": jax.devices()[0].device_kind,
        "compile_plus_first_step_s": round(compile_s, 3),
        "steps_per_s": round(steps / elapsed, 2),
        "examples_per_s": round(steps * batch / elapsed, 1),
        "ms_per_step": round(1000 * elapsed / steps, 3),
    }


def bench_sampling(name: str, overrides: list[str], batches: list[int], repeats: int,
                   unit: str = "samples") -> list[dict]:
    """Times ``method.sample`` of config ``name`` (fresh parameters) for each batch size.

    One compile call, then the mean of ``repeats`` calls, each fetched to the host.
    """
    trainer = Trainer(load_config(name, overrides + ["train.progress=false"]), None)
    method, state = trainer.method, trainer.state
    rows = []
    for n in batches:
        t0 = time.perf_counter()
        method.sample(state, jax.random.key(0), n)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for r in range(repeats):
            method.sample(state, jax.random.key(r + 1), n)
        elapsed = (time.perf_counter() - t0) / repeats
        rows.append({
            "config": name, "batch": n, "device_kind": jax.devices()[0].device_kind,
            "compile_plus_first_s": round(compile_s, 3), "ms_per_batch": round(1000 * elapsed, 2),
            f"{unit}_per_s": round(n / elapsed, 1),
        })
    return rows


def sampling_header(unit: str = "samples") -> list[str]:
    return ["config", "batch", "device_kind", "compile_plus_first_s", "ms_per_batch",
            f"{unit}_per_s"]


TRAIN_HEADER = ["config", "batch_size", "devices", "device_kind", "compile_plus_first_step_s",
                "steps_per_s", "examples_per_s", "ms_per_step"]


def report(tables: dict[str, tuple[list[str], list[dict]]], out: str) -> None:
    """Prints each ``{title: (header, rows)}`` as a markdown table and writes all to ``out``."""
    for title, (header, rows) in tables.items():
        print(f"\n{title}\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for r in rows:
            print("| " + " | ".join(str(r[h]) for h in header) + " |")
    meta = {"jax": jax.__version__, "python": platform.python_version(),
            "platform": jax.devices()[0].platform, "device_kind": jax.devices()[0].device_kind,
            "cpu": platform.processor() or platform.machine()}
    with open(out, "w") as f:
        json.dump({"meta": meta, **{t: rows for t, (_, rows) in tables.items()}}, f, indent=2)
    print(f"\nwrote {out}")
