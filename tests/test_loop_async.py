"""The asynchronous loop: dispatch plans, prefetching, metric windows, several steps per
dispatch, the parameter average (EMA), the wall-clock budget and the refusal of bad values."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import jax
import numpy as np
import pytest
from test_engine import REPO, TINY, assert_trees_equal, tiny_config

from genjax.experiments import load_config
from genjax.train.loop import Trainer, train_and_evaluate
from genjax.train.metrics import read_metrics
from genjax.train.pipeline import (
    MetricWindow,
    NonFiniteError,
    Prefetcher,
    dispatch_plan,
    stack_batches,
)


# -- host-side pieces ------------------------------------------------------------------------
def test_dispatch_plan_lands_on_every_boundary():
    plan = list(dispatch_plan(3, 23, 4, (5, 10)))
    assert plan == [(3, 2), (5, 4), (9, 1), (10, 4), (14, 1), (15, 4), (19, 1), (20, 3)]
    assert sum(n for _, n in plan) == 20
    assert list(dispatch_plan(0, 6, 1)) == [(i, 1) for i in range(6)]
    assert list(dispatch_plan(4, 4, 3)) == []
    with pytest.raises(ValueError, match="steps_per_dispatch"):
        list(dispatch_plan(0, 5, 0))


def test_stack_batches_pads_unused_slots_with_zeros():
    batches = [{"x": np.full((2, 3), i, np.uint8)} for i in (1, 2)]
    out = stack_batches(batches, 4)["x"]
    assert out.shape == (4, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 0, 0], [1, 2, 0, 0])


@pytest.mark.parametrize("depth", [0, 2])
def test_prefetcher_yields_the_planned_batches_in_order(depth):
    plan = dispatch_plan(0, 7, 3, (5,))
    fetched = list(Prefetcher(plan, lambda s: {"s": np.array([s])}, lambda b: b, 3, depth=depth))
    assert [(f, n) for f, n, _ in fetched] == [(0, 3), (3, 2), (5, 2)]
    np.testing.assert_array_equal(fetched[1][2]["s"][:, 0], [3, 4, 0])


def test_prefetcher_raises_the_builders_error_in_the_consumer():
    def host_batch(step):
        if step == 2:
            raise KeyError("no batch 2")
        return {"s": np.array([step])}

    prefetch = Prefetcher(dispatch_plan(0, 5, 1), host_batch, lambda b: b, 1)
    with pytest.raises(KeyError, match="no batch 2"):
        list(prefetch)
    prefetch.close()


def test_prefetcher_close_stops_a_thread_waiting_on_a_full_queue():
    prefetch = Prefetcher(dispatch_plan(0, 1000, 1), lambda s: {"s": np.array([s])},
                          lambda b: b, 1, depth=1)
    first = next(iter(prefetch))
    assert first[0] == 0
    prefetch.close()
    assert not prefetch._thread.is_alive()


def test_metric_window_means_last_values_and_first_non_finite_step():
    window = MetricWindow()
    window.add(0, 2, {"loss": np.array([1.0, 3.0, 0.0]), "kl": np.array([0.5, 0.5, 0.0])})
    window.add(2, 1, {"loss": np.array([5.0]), "kl": np.array([1.5])})
    window.fetch()
    assert window.latest == {"loss": 5.0, "kl": 1.5}
    summary = window.summary()
    assert summary["loss"] == pytest.approx(3.0) and summary["loss_last"] == 5.0
    assert summary["kl"] == pytest.approx(2.5 / 3) and summary["window_steps"] == 3
    assert window.summary() == {}
    window.add(10, 3, {"loss": np.array([1.0, 2.0, np.inf]), "kl": np.array([0.0, np.nan, 0.0])})
    with pytest.raises(NonFiniteError, match=r"step 12: kl=nan\. "):
        window.fetch()


# -- steps per dispatch ----------------------------------------------------------------------
@pytest.mark.parametrize("name, extra", [
    ("vae_digits", TINY),
    # A convolutional model with batch norm: XLA's fusion inside the loop must not change bits.
    ("dcgan_digits", ["model.base_features=8", "train.batch_size=16", "train.progress=false",
                      "eval.max_examples=64"]),
    # Masked convolutions with their custom gradients (genjax.models.convolution)
    ("pixelcnn_digits", ["model.features=8", "model.num_layers=2", "model.output_features=16",
                         "train.batch_size=8", "train.progress=false", "eval.max_examples=64"]),
])
def test_four_steps_per_dispatch_equal_four_single_steps(name, extra):
    single = Trainer(load_config(name, extra), None)
    for _ in range(6):
        single.step()
    multi = Trainer(load_config(name, [*extra, "train.steps_per_dispatch=4",
                                       "train.log_every=6"]), None)
    report = multi.train(6)  # dispatches of 4 and 2 steps
    assert report["steps"] == 6 and multi.current_step == 6 and int(multi.state.step) == 6
    assert multi.num_traces == 1  # one program for both dispatch sizes
    assert_trees_equal(jax.device_get(single.state), jax.device_get(multi.state))


def test_steps_per_dispatch_checkpoints_on_their_steps_and_resumes_exactly(tmp_path):
    extra = ("train.steps_per_dispatch=4", "train.checkpoint_every=3", "train.eval_every=1000",
             "train.num_steps=7", "train.max_to_keep=5")
    summary = train_and_evaluate(tiny_config(*extra), tmp_path / "a")
    assert summary["status"] == "finished" and summary["step"] == 7
    saved = sorted(int(p.name) for p in (tmp_path / "a" / "checkpoints").iterdir()
                   if p.name.isdigit())
    assert saved == [3, 6, 7]
    # Resume from step 3 (a copy of the run stopped there) and finish: same parameters.
    partial = tiny_config(*extra[:-2], "train.num_steps=3")
    train_and_evaluate(partial, tmp_path / "b")
    train_and_evaluate(tiny_config(*extra), tmp_path / "b")
    a, b = Trainer(tiny_config(*extra), tmp_path / "a"), Trainer(tiny_config(*extra), tmp_path / "b")
    assert a.restore() and b.restore() and a.current_step == b.current_step == 7
    a.checkpoints.close()
    b.checkpoints.close()
    assert_trees_equal(jax.device_get(a.state), jax.device_get(b.state))


def test_logged_rows_are_window_means_with_last_values(tmp_path):
    train_and_evaluate(tiny_config("train.log_every=4", "train.num_steps=10",
                                   "train.steps_per_dispatch=3", "train.eval_every=1000",
                                   "train.checkpoint_every=1000"), tmp_path)
    rows = read_metrics(tmp_path, split="train")
    assert [r["step"] for r in rows] == [4, 8, 10]
    assert [r["window_steps"] for r in rows] == [4, 4, 2]
    for row in rows:
        assert math.isfinite(row["loss"]) and math.isfinite(row["loss_last"])
    # The same steps run one at a time give the same window means.
    single = Trainer(tiny_config(), None)
    losses = [single.step()["loss"] for _ in range(10)]
    assert rows[0]["loss"] == pytest.approx(np.mean(losses[:4]), rel=1e-6)
    assert rows[2]["loss_last"] == pytest.approx(losses[-1], rel=1e-6)


def test_non_finite_step_inside_a_window_keeps_only_checked_checkpoints(tmp_path):
    config = dataclasses.replace(
        tiny_config("train.checkpoint_every=2", "train.log_every=100", "train.num_steps=10",
                    "train.steps_per_dispatch=4"),
        method="test_nan_at_step_3",
        model={},
    )
    with pytest.raises(NonFiniteError, match=r"step 3: .*loss=nan"):
        train_and_evaluate(config, tmp_path)
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert saved == [2]  # step 4's state followed the bad step 3: never saved


# -- the parameter average --------------------------------------------------------------------
def test_ema_is_the_polyak_average_and_survives_resume(tmp_path):
    decay = 0.9
    config = tiny_config(f"train.ema_decay={decay}")
    trainer = Trainer(config, None)
    expected = jax.device_get(trainer.state.models["vae"].params)
    for _ in range(5):
        trainer.step()
        params = jax.device_get(trainer.state.models["vae"].params)
        # Independent reference in float64 numpy: e <- decay * e + (1 - decay) * p.
        expected = jax.tree.map(lambda e, p: decay * np.float64(e) + (1 - decay) * p,
                                expected, params)
    got = jax.device_get(trainer.ema["vae"])
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Saved with the checkpoint, resumed bit-for-bit.
    first = Trainer(config, tmp_path)
    for _ in range(3):
        first.step()
    first.save(wait=True)
    first.checkpoints.close()
    resumed = Trainer(config, tmp_path)
    assert resumed.restore() and resumed.current_step == 3
    for _ in range(2):
        resumed.step()
    resumed.checkpoints.close()
    assert_trees_equal(jax.device_get(resumed.ema), jax.device_get(trainer.ema))
    assert_trees_equal(jax.device_get(resumed.state), jax.device_get(trainer.state))


def test_evaluation_uses_the_ema_parameters(tmp_path):
    summary = train_and_evaluate(tiny_config("train.ema_decay=0.5", "train.num_steps=4",
                                             "train.eval_every=1000"), tmp_path)
    assert summary["parameters"] == "ema (decay 0.5)"
    trainer = Trainer(tiny_config("train.ema_decay=0.5", "train.num_steps=4"), tmp_path)
    assert trainer.restore()
    trainer.checkpoints.close()
    evaluated = trainer.eval_state().models["vae"].params
    assert_trees_equal(jax.device_get(evaluated), jax.device_get(trainer.ema["vae"]))
    raw = trainer.state.models["vae"].params
    assert not np.array_equal(*(np.asarray(jax.tree.leaves(t)[0]) for t in (evaluated, raw)))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["eval"] == pytest.approx(trainer.evaluate(), rel=1e-6)


def test_ema_turned_on_at_resume_starts_from_the_restored_parameters(tmp_path, capsys):
    first = Trainer(tiny_config(), tmp_path)
    first.step()
    first.save(wait=True)
    first.checkpoints.close()
    resumed = Trainer(tiny_config("train.ema_decay=0.99"), tmp_path)
    assert resumed.restore()
    resumed.checkpoints.close()
    assert "has no parameter average" in capsys.readouterr().err
    assert_trees_equal(jax.device_get(resumed.ema["vae"]),
                       jax.device_get(resumed.state.models["vae"].params))


# -- the wall-clock budget -------------------------------------------------------------------
def test_max_seconds_stops_saves_and_evaluates(tmp_path):
    config = tiny_config("train.max_seconds=0.001", "train.num_steps=100000",
                         "train.checkpoint_every=100000", "train.eval_every=100000")
    summary = train_and_evaluate(config, tmp_path)
    assert summary["status"] == "budget"
    assert "max_seconds" in summary["budget"] and summary["step"] >= 1
    assert math.isfinite(summary["eval"]["nll_iwae_nats"])
    saved = [int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]
    assert saved == [summary["step"]]
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "budget"


# -- bad values are refused before anything is compiled ---------------------------------------
@pytest.mark.parametrize("item, message", [
    ("train.compute_dtype=float16", "train.compute_dtype='float16'"),
    ("train.ema_decay=1.0", "train.ema_decay=1.0"),
    ("train.ema_decay=-0.1", "train.ema_decay=-0.1"),
    ("train.ema_decay=nan", "train.ema_decay=nan"),
    ("train.steps_per_dispatch=0", "train.steps_per_dispatch=0"),
    ("train.max_seconds=-1", "train.max_seconds=-1.0"),
    ("train.max_seconds=inf", "train.max_seconds=inf"),
])
def test_bad_engine_values_are_refused_in_one_line(tmp_path, item, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        Trainer(tiny_config(item), None)
    proc = subprocess.run(
        [sys.executable, "-m", "genjax.cli", "train", "vae_digits", "--workdir",
         str(tmp_path / "w"), "--set", item],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("genjax train: error")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "w" / "checkpoints").exists()  # nothing ran


# -- several devices, the asynchronous loop ------------------------------------------------------
_MULTI_DEVICE_LOOP = r"""
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax, numpy as np
sys.path.insert(0, sys.argv[1])
from test_engine import tiny_config
from genjax.train.loop import Trainer
cfg = tiny_config("train.batch_size=40", "train.steps_per_dispatch=3", "train.log_every=4")
four = Trainer(cfg, None, devices=jax.devices())
four.train(10)
one = Trainer(cfg, None, devices=jax.devices()[:1])
one.train(10)
worst = 0.0
for a, b in zip(jax.tree.leaves(jax.device_get(four.state)), jax.tree.leaves(jax.device_get(one.state))):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        worst = max(worst, float(np.max(np.abs(a - b) / (np.abs(b) + 1e-3))))
    else:
        assert np.array_equal(a, b)
print("STEPS", four.current_step, one.current_step)
print("MAXREL", worst)
"""


def test_async_loop_on_four_devices_equals_one_device(tmp_path):
    script = tmp_path / "multi_loop.py"
    script.write_text(_MULTI_DEVICE_LOOP)
    proc = subprocess.run([sys.executable, str(script), str(REPO / "tests")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert lines["STEPS"] == "10 10"
    assert float(lines["MAXREL"]) < 1e-4  # same global batch; only reduction order differs
