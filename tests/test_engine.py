"""The engine: compile once, exact resume, verified checkpoints, signals, non-finite stops."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.experiments import load_config
from genjax.train.checkpoint import CheckpointError, CheckpointStore
from genjax.train.loop import NonFiniteError, Trainer, train_and_evaluate
from genjax.train.method import Method, register
from genjax.train.metrics import MetricWriter
from genjax.train.state import ModelState, apply_gradients

REPO = Path(__file__).resolve().parent.parent

TINY = [
    "model.hidden=(32,)",
    "model.latent_dim=4",
    "train.batch_size=20",
    "train.log_every=1",
    "train.progress=false",
    "eval.iwae_samples=500",
    "eval.iwae_batch_size=50",
    "eval.num_samples=16",
    "eval.max_examples=100",
]


def tiny_config(*extra: str):
    return load_config("vae_digits", TINY + list(extra))


def params_of(trainer: Trainer):
    return jax.device_get(trainer.state.models["vae"].params)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_step_compiles_once():
    trainer = Trainer(tiny_config(), None)
    for _ in range(4):
        metrics = trainer.step()
    assert trainer.num_traces == 1
    assert int(trainer.state.step) == 4
    for key in ("loss", "kl", "reconstruction_loss", "grad_norm", "param_norm", "update_norm"):
        assert key in metrics and np.isfinite(metrics[key])


def test_resume_is_bitwise_exact(tmp_path):
    n, k = 7, 3
    straight = Trainer(tiny_config(), None)
    for _ in range(n):
        straight.step()

    first = Trainer(tiny_config(), tmp_path)
    for _ in range(k):
        first.step()
    first.save(wait=True)
    first.checkpoints.close()

    resumed = Trainer(tiny_config(), tmp_path)
    assert resumed.restore()
    assert int(resumed.state.step) == k
    for _ in range(n - k):
        resumed.step()
    resumed.checkpoints.close()
    assert_trees_equal(params_of(straight), params_of(resumed))
    assert_trees_equal(
        jax.device_get(straight.state.models["vae"].opt_state),
        jax.device_get(resumed.state.models["vae"].opt_state),
    )


def _two_checkpoints(workdir: Path) -> Trainer:
    trainer = Trainer(tiny_config(), workdir)
    trainer.step()
    trainer.save(wait=True)
    trainer.step()
    trainer.save(wait=True)
    trainer.checkpoints.close()
    return trainer


def _largest_data_file(step_dir: Path) -> Path:
    files = [p for p in step_dir.rglob("*") if p.is_file() and "ocdbt.process" in str(p)]
    return max(files, key=lambda p: p.stat().st_size)


def flip_bytes(step_dir: Path) -> None:
    """Same size, other bytes: 64 bytes in the middle of *every* array file of a checkpoint
    step. Which file holds which array is orbax's choice, and a data file may also hold bytes
    no restore reads (seen once on Python 3.12 / jax 0.12: 64 bytes flipped in the largest file
    alone left the restored arrays, and so their content hash, unchanged), so one file alone
    may miss the restored arrays."""
    files = [p for p in step_dir.rglob("*") if p.is_file() and "ocdbt.process" in str(p)]
    for target in files:
        data = bytearray(target.read_bytes())
        for i in range(len(data) // 2, min(len(data), len(data) // 2 + 64)):
            data[i] ^= 0xFF
        target.write_bytes(bytes(data))


# Reading the deliberately truncated file fails inside orbax's asynchronous readers; newer orbax
# (Python 3.12 installs) leaves those coroutines' exceptions for the garbage collector, which
# pytest reports as unraisable (during the test or at exit). genjax catches the restore error
# itself (asserted below).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("damage", ["overwrite", "truncate", "empty_step", "delete_meta"])
def test_damaged_checkpoint_falls_back_to_previous_step(tmp_path, damage, capsys):
    _two_checkpoints(tmp_path)
    ckpt = tmp_path / "checkpoints"
    if damage == "overwrite":  # same size, different bytes: orbax alone would not notice
        flip_bytes(ckpt / "2")
    elif damage == "truncate":
        target = _largest_data_file(ckpt / "2")
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "empty_step":
        (ckpt / "3").mkdir()
    else:
        (ckpt / "2" / "meta" / "metadata").unlink()

    trainer = Trainer(tiny_config(), tmp_path)
    assert trainer.restore()
    trainer.checkpoints.close()
    expected = 2 if damage == "empty_step" else 1
    assert int(trainer.state.step) == expected
    err = capsys.readouterr().err
    assert "unusable" in err and "moved to" in err
    # Nothing is deleted: the damaged folder was moved aside.
    assert any((tmp_path / "corrupt").iterdir())
    gc.collect()  # collect orbax's failed readers here, under this test's warning filter


def test_no_intact_checkpoint_is_a_clear_error(tmp_path):
    store = CheckpointStore(tmp_path)
    (tmp_path / "checkpoints" / "5").mkdir(parents=True)
    store = CheckpointStore(tmp_path)
    trainer = Trainer(tiny_config(), None)
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        store.restore_latest(trainer.state)


@register
class _NaNAtStep3(Method):
    """A test method whose loss becomes NaN at its third step."""

    name = "test_nan_at_step_3"
    model_config = dict

    def __init__(self, config, data):  # noqa: D107 - accepts any model section
        self.config, self.data = config, data
        import optax

        self.tx = optax.sgd(0.1)

    def init(self, key, batch):
        return {"m": ModelState.create({"params": {"w": jnp.ones(3)}}, self.tx)}

    def train_step(self, state, batch):
        model = state.models["m"]
        bad = jnp.where(state.step >= 2, jnp.nan, 0.0)
        loss, grads = jax.value_and_grad(lambda p: jnp.sum(p["w"] ** 2) + bad)(model.params)
        model, norms = apply_gradients(model, grads, self.tx)
        return state.replace_model("m", model), {"loss": loss, "kl_term": loss * 0 + 1, **norms}

    def evaluate(self, state, dataset, key):
        return {}

    def sample(self, state, key, num):
        return np.zeros((num, 8, 8, 1))

    def write_pictures(self, state, outdir, *, dataset, key, step):
        return []


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    config = dataclasses.replace(
        tiny_config("train.checkpoint_every=1", "train.num_steps=10"),
        method="test_nan_at_step_3",
        model={},
    )
    closed = []
    close = MetricWriter.close
    monkeypatch.setattr(MetricWriter, "close", lambda self: (closed.append(self), close(self)))
    with pytest.raises(NonFiniteError, match=r"step 3: .*loss=nan"):
        train_and_evaluate(config, tmp_path)
    trainer_steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir())
    assert trainer_steps == [1, 2]
    # The metric writer is closed although the run failed (an open TensorBoard writer fails in
    # its atexit hook on Python 3.12, and its last events are lost).
    assert len(closed) == 1


@register
class _SignalAtEvaluation(_NaNAtStep3):
    """A finite test method that receives SIGTERM while evaluating (as a user's Ctrl-C may)."""

    name = "test_signal_at_evaluation"

    def train_step(self, state, batch):
        model = state.models["m"]
        loss, grads = jax.value_and_grad(lambda p: jnp.sum(p["w"] ** 2))(model.params)
        model, norms = apply_gradients(model, grads, self.tx)
        return state.replace_model("m", model), {"loss": loss, "kl_term": loss * 0 + 1, **norms}

    def evaluate(self, state, dataset, key):
        handler = signal.getsignal(signal.SIGTERM)
        # Only signal into the loop's own handler: the default one would kill the test process.
        assert getattr(handler, "__self__", None).__class__.__name__ == "_StopFlag", handler
        signal.raise_signal(signal.SIGTERM)
        return {}


def test_signal_during_evaluation_at_a_checkpoint_step_saves_once(tmp_path):
    """The step that was just saved is not saved again (orbax refuses a second save of it)."""
    config = dataclasses.replace(
        tiny_config("train.checkpoint_every=2", "train.eval_every=2", "train.num_steps=10"),
        method="test_signal_at_evaluation",
        model={},
    )
    summary = train_and_evaluate(config, tmp_path)
    assert summary == {"status": "interrupted", "step": 2}
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert saved == [2]
    resumed = Trainer(dataclasses.replace(config, method="test_nan_at_step_3"), tmp_path)
    assert resumed.restore() and int(resumed.state.step) == 2


def test_sigterm_saves_a_checkpoint(tmp_path):
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "genjax.cli", "train", "vae_digits", "--workdir", str(workdir)]
    for item in TINY + ["train.num_steps=1000000", "train.checkpoint_every=1000000"]:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.2)
    assert metrics.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no start"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert "received SIGTERM" in err.decode()
    summary = json.loads(out.decode())
    assert summary["status"] == "interrupted"
    saved = [int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]
    assert saved == [summary["step"]] and summary["step"] > 0


_MULTI_DEVICE_SCRIPT = r"""
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax, numpy as np
sys.path.insert(0, sys.argv[1])
from test_engine import tiny_config
from genjax.train.loop import Trainer
assert jax.device_count() == 4, jax.devices()
def run(devices):
    t = Trainer(tiny_config("train.batch_size=40"), None, devices=devices)
    out = [t.step() for _ in range(5)]
    return t, out
four, m4 = run(jax.devices())
one, m1 = run(jax.devices()[:1])
sharding = four.state.models["vae"].params["encoder"]["mean"]["kernel"].sharding
print("REPLICATED", sharding.is_fully_replicated, len(sharding.device_set))
worst = 0.0
for a, b in zip(jax.tree.leaves(jax.device_get(four.state)), jax.tree.leaves(jax.device_get(one.state))):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        worst = max(worst, float(np.max(np.abs(a - b) / (np.abs(b) + 1e-3))))
    else:
        assert np.array_equal(a, b)
print("MAXREL", worst)
print("LOSSES", max(abs(x["loss"] - y["loss"]) for x, y in zip(m4, m1)))
"""


def test_four_devices_equal_one_device(tmp_path):
    script = tmp_path / "multi.py"
    script.write_text(_MULTI_DEVICE_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    proc = subprocess.run(
        [sys.executable, str(script), str(REPO / "tests")],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert lines["REPLICATED"] == "True 4"
    # Same global batch, same keys: only the order of float reductions differs.
    assert float(lines["MAXREL"]) < 1e-4
    assert float(lines["LOSSES"]) < 1e-3


@pytest.mark.parametrize(
    "schedule, extra, expected",
    [
        ("constant", {}, {0: 1.0, 50: 1.0, 99: 1.0}),
        ("cosine", {}, {0: 1.0, 50: 0.5, 100: 0.0}),
        ("exponential", {"decay_steps": 10, "decay_rate": 0.5}, {0: 1.0, 10: 0.5, 30: 0.125}),
        # CycleGAN: hold for 60 steps, then linearly to 0 over the last 40.
        ("linear", {"decay_steps": 40}, {0: 1.0, 60: 1.0, 80: 0.5, 100: 0.0}),
        # With 10 warm-up steps the hold shortens so that the decay still ends at step 100.
        ("linear", {"decay_steps": 40, "warmup_steps": 10}, {0: 0.0, 5: 0.5, 10: 1.0, 80: 0.5,
                                                             100: 0.0}),
    ],
)
def test_learning_rate_schedules(schedule, extra, expected):
    from genjax.train.config import OptimConfig
    from genjax.train.optim import learning_rate_schedule

    fn = learning_rate_schedule(OptimConfig(learning_rate=1.0, schedule=schedule, **extra), 100)
    for step, value in expected.items():
        assert float(fn(step)) == pytest.approx(value, abs=1e-6), step
    with pytest.raises(ValueError, match="optim.schedule"):
        learning_rate_schedule(OptimConfig(schedule="step"), 100)


def test_progress_rate_and_eta_leave_out_the_compilation(monkeypatch, capsys):
    """A 100 s compile, then 10 steps in 1 s: the line says 10 steps/s and 8.9 s left, not the
    0.11 steps/s and 14 min that counting the compile would give."""
    from genjax.train import metrics as metrics_module

    clock = [1000.0]
    monkeypatch.setattr(metrics_module.time, "perf_counter", lambda: clock[0])
    progress = metrics_module.Progress(0, 100, enabled=True)
    clock[0] += 100.0  # the first dispatch (compilation) ends at step 1
    progress.restart(1)
    clock[0] += 1.0
    progress.update(11, {"loss": 2.5})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == "train: step 11/100 10.0 steps/s ETA 0:08 loss=2.5"


def test_the_loop_restarts_the_progress_rate_after_the_first_dispatch(tmp_path, monkeypatch):
    from genjax.train import metrics as metrics_module

    restarts = []
    real = metrics_module.Progress.restart
    monkeypatch.setattr(metrics_module.Progress, "restart",
                        lambda self, step: restarts.append(step) or real(self, step))
    train_and_evaluate(tiny_config("train.num_steps=3", "train.eval_every=3",
                                   "train.checkpoint_every=3"), tmp_path)
    assert restarts == [1]  # once, at the step the first dispatch ended
