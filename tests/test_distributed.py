"""Devices and processes: the device choice, the multi-process flags, and real processes on
localhost (subprocesses with timeouts and free ports; JAX's runtime over gloo on CPU)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from genjax.train.distributed import DistributedError, ProcessGroup, process_group

TINY = [
    "train.num_steps=20", "train.log_every=10", "train.eval_every=20",
    "train.checkpoint_every=20", "train.progress=false", "eval.iwae_samples=10",
    "eval.max_examples=40",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int = 1) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("JAX_") or k == "JAX_DISABLE_MOST_OPTIMIZATIONS"}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _genjax(*args: str, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "genjax.cli", *args], env=env or _env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"timed out; stderr: {err[-2000:]}")
    return proc.returncode, out, err


def _sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


# -- flags and environment -----------------------------------------------------------------------
def test_the_group_comes_from_flags_or_the_environment():
    assert process_group(None, None, None, environ={}) is None
    assert process_group("10.0.0.1:1234", 4, 3, environ={}) == ProcessGroup("10.0.0.1:1234", 4, 3)
    env = {"JAX_COORDINATOR_ADDRESS": "h:99", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"}
    assert process_group(None, None, None, environ=env) == ProcessGroup("h:99", 2, 1)
    assert process_group(None, None, 0, environ=env).process_id == 0  # a flag wins


@pytest.mark.parametrize("args, message", [
    (("h:1", 2, None), "missing: process id"),
    ((None, 2, 0), "missing: coordinator address"),
    (("h", 2, 0), "expected HOST:PORT"),
    (("h:70000", 2, 0), "expected HOST:PORT"),
    (("h:1", 0, 0), "--num-processes=0; expected an integer >= 1"),
    (("h:1", 2, 2), "--process-id=2; expected an integer in [0, 2)"),
    (("h:1", 2, -1), "--process-id=-1; expected an integer in [0, 2)"),
])
def test_bad_process_flags_are_one_line_errors(args, message):
    with pytest.raises(DistributedError) as info:
        process_group(*args, environ={})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_process_id_on_the_command_line_fails_at_once(tmp_path):
    t0 = time.monotonic()
    code, _, err = _finish(_genjax(
        "train", "vae_digits", "--workdir", str(tmp_path / "w"), "--coordinator-address",
        "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"), timeout=120)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        "genjax train: error: --process-id=2; expected an integer in [0, 2) for "
        "--num-processes=2"]
    assert time.monotonic() - t0 < 60


@pytest.mark.parametrize("process_id, message", [
    (1, "process 1 could not meet process 0 at"),
    (0, "processes [1] of 2 did not reach the coordinator"),
])
def test_a_missing_peer_is_a_one_line_error_within_the_timeout(tmp_path, process_id, message):
    """An unreachable coordinator (or a peer that never starts) ends in one line after
    ``--distributed-timeout`` seconds, never in a hang or JAX's C++ abort."""
    t0 = time.monotonic()
    code, _, err = _finish(_genjax(
        "train", "vae_digits", "--workdir", str(tmp_path / "w"), "--coordinator-address",
        f"127.0.0.1:{_free_port()}", "--num-processes", "2", "--process-id", str(process_id),
        "--distributed-timeout", "3"), timeout=120)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err[-2000:]
    assert 3 <= time.monotonic() - t0 < 60
    assert not (tmp_path / "w").exists()


# -- devices ---------------------------------------------------------------------------------------
def test_the_device_count_divides_the_batch_on_eight_devices():
    """Every batch size starts on 8 devices (the largest count that divides it); an explicit
    count must divide it; a saved run's batch does not pin the device count."""
    code = textwrap.dedent("""
        import json
        from genjax.train.parallel import choose_devices
        out = {}
        for batch, n in [(100, 0), (20, 0), (250, 0), (80, 0), (7, 0), (100, 2)]:
            devices, line = choose_devices(batch, n)
            out[f"{batch},{n}"] = [len(devices), line]
        for batch, n in [(100, 3), (100, 16)]:
            try:
                choose_devices(batch, n)
            except ValueError as e:
                out[f"{batch},{n}"] = str(e)
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=_env(8), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {k: v[0] for k, v in out.items() if isinstance(v, list)} == {
        "100,0": 5, "20,0": 5, "250,0": 5, "80,0": 8, "7,0": 7, "100,2": 2}
    assert out["80,0"][1] == "8 of 8 cpu device(s) (all of them)"
    assert out["100,0"][1] == "5 of 8 cpu device(s) (train.batch_size=100 does not split over 8)"
    assert out["100,3"].startswith("train.num_devices=3; expected a count that divides")
    assert out["100,16"] == "train.num_devices=16; this process has 8 cpu device(s)"


# -- real processes on localhost -------------------------------------------------------------------
def _results(workdir: Path) -> dict:
    return json.loads((workdir / "results.json").read_text())["eval"]


@pytest.mark.slow  # two processes train twice (about 1 min)
def test_two_processes_equal_one_process_from_an_unprepared_shared_data_folder(tmp_path):
    """2 processes x 1 device give one process's numbers; both start on an unprepared data
    folder (one prepares, the other waits); only process 0 writes the run's files."""
    data = ["data.data_dir=" + str(tmp_path / "data")]
    port = _free_port()
    scratch = [tmp_path / f"tmp{i}" for i in range(2)]
    procs = []
    for i in range(2):
        scratch[i].mkdir()
        procs.append(_genjax("train", "vae_digits", "--workdir", str(tmp_path / "two"),
                             *_sets(TINY + data), "--coordinator-address", f"127.0.0.1:{port}",
                             "--num-processes", "2", "--process-id", str(i),
                             env={**_env(), "TMPDIR": str(scratch[i])}))
    finished = [_finish(p) for p in procs]
    for code, _, err in finished:
        assert code == 0, err[-3000:]
    assert "1 in each of 2 processes" in finished[0][2]
    assert any("waiting for another process preparing digits" in err for _, _, err in finished)
    assert list((tmp_path / "two" / "pictures").glob("*.png"))
    assert not list(scratch[1].glob("genjax-pictures-*"))  # process 1's copies are removed
    code, _, err = _finish(_genjax("train", "vae_digits", "--workdir", str(tmp_path / "one"),
                                   *_sets(TINY + data)))
    assert code == 0, err[-3000:]
    two, one = _results(tmp_path / "two"), _results(tmp_path / "one")
    assert two["nll_iwae_nats"] == pytest.approx(one["nll_iwae_nats"], rel=1e-5)
    assert two["neg_elbo_nats"] == pytest.approx(one["neg_elbo_nats"], rel=1e-5)
    summary = json.loads(finished[1][1][finished[1][1].index("{"):])  # process 1's summary
    assert summary["eval"] == two  # both processes computed the same numbers


_EVALUATION_LOOPS = r"""
import json, sys
from genjax.train.distributed import ProcessGroup, initialize
initialize(ProcessGroup(sys.argv[1], 2, int(sys.argv[2])))
import jax, jax.numpy as jnp, numpy as np
from genjax.data import ArrayDataset
from genjax.eval.likelihood import batch_outputs, dataset_means
from genjax.train import parallel
rng = np.random.default_rng(0)  # the same data and parameters in every process
images = rng.integers(0, 256, (70, 4, 4, 1), dtype=np.uint8)
w = rng.normal(size=(16, 5)).astype(np.float32)
params = parallel.replicate({"w": w}, parallel.data_mesh())
rows = batch_outputs(lambda p, b: jnp.tanh(b["x"] @ p["w"]), params,
                     {"x": images.reshape(70, -1).astype(np.float32) / 255}, batch_size=40)
expected = np.tanh(images.reshape(70, -1).astype(np.float32) / 255 @ w)
score = lambda p, key, b, i, r: {"s": jnp.sum(b["image"].reshape(-1, 16) / 255. @ p["w"], 1)}
means, n = dataset_means(score, params, ArrayDataset("toy", "test", images, None, 8, None),
                         batch_size=40, progress=False)
print(json.dumps({"devices": jax.device_count(), "shape": list(rows.shape), "n": n,
                  "rows_differ": float(np.max(np.abs(rows - expected))),
                  "mean_differ": abs(means["s"] - float((images.reshape(70, -1) / 255. @ w)
                                                          .sum(1).mean()))}))
"""


def test_the_evaluation_loops_over_two_processes_see_every_row():
    """``batch_outputs`` and ``dataset_means`` over 2 processes x 1 device: each process feeds
    its half of every batch (the last one padded) and receives every row's output."""
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-c", _EVALUATION_LOOPS, f"127.0.0.1:{port}",
                               str(i)], env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    for code, out, err in [_finish(p, timeout=180) for p in procs]:
        assert code == 0, err[-3000:]
        r = json.loads(out.strip().splitlines()[-1])
        assert (r["devices"], r["shape"], r["n"]) == (2, [70, 5], 70), r
        assert r["rows_differ"] < 1e-6 and r["mean_differ"] < 1e-4, r


@pytest.mark.slow
def test_two_processes_of_two_devices_equal_one_process_of_four(tmp_path):
    """2 processes x 2 fake devices give the numbers of 1 process x 4 devices: the same global
    batch of 100 split four ways, each process loading its half."""
    overrides = TINY + ["data.data_dir=" + str(tmp_path / "data")]
    code, _, err = _finish(_genjax("train", "vae_digits", "--workdir", str(tmp_path / "one"),
                                   *_sets(overrides), env=_env(4)))
    assert code == 0, err[-3000:]
    assert "4 of 4 cpu device(s)" in err
    port = _free_port()
    procs = [_genjax("train", "vae_digits", "--workdir", str(tmp_path / "two"), *_sets(overrides),
                     "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2",
                     "--process-id", str(i), env=_env(2)) for i in range(2)]
    finished = [_finish(p) for p in procs]
    for code, _, err in finished:
        assert code == 0, err[-3000:]
    assert "2 in each of 2 processes" in finished[0][2]
    two, one = _results(tmp_path / "two"), _results(tmp_path / "one")
    assert two["nll_iwae_nats"] == pytest.approx(one["nll_iwae_nats"], rel=1e-5)
    assert two["neg_elbo_nats"] == pytest.approx(one["neg_elbo_nats"], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("config, overrides", [
    ("dcgan_digits", ["model.base_features=8", "model.metric_samples=200",
                      "eval.max_examples=200"]),
    ("cyclegan_digits", ["model.base_features=4", "model.num_blocks=1",
                         "model.discriminator_features=4", "eval.max_examples=100"]),
])
def test_two_processes_equal_one_process_of_two_devices_for_gan_and_translation(
        tmp_path, config, overrides):
    """A GAN (samples, pictures) and CycleGAN (translations, and label accuracy by a digit
    classifier run restored in both processes) evaluated by 2 processes x 1 device: every
    number equals 1 process x 2 devices (the same programs, the same partitioning). (Against 1
    device, 20 GAN steps drift apart by float reduction order, as the first-step test above
    allows.)"""
    overrides = TINY[:5] + overrides + ["data.data_dir=" + str(tmp_path / "data")]
    if config.startswith("cyclegan"):  # the evaluation classifier: an earlier run
        classifier = str(tmp_path / "classifier")
        code, _, err = _finish(_genjax(
            "train", "classifier_digits_domains", "--workdir", classifier, *_sets([
                "model.conv_features=4", "model.dense=16", "train.num_steps=20",
                "train.batch_size=50", "train.progress=false", "eval.max_examples=100",
                "data.data_dir=" + str(tmp_path / "data")])), timeout=400)
        assert code == 0, err[-3000:]
        overrides.append(f"model.classifier_workdir={classifier}")
    code, _, err = _finish(_genjax("train", config, "--workdir", str(tmp_path / "one"),
                                   *_sets(overrides), env=_env(2)), timeout=400)
    assert code == 0, err[-3000:]
    port = _free_port()
    procs = [_genjax("train", config, "--workdir", str(tmp_path / "two"), *_sets(overrides),
                     "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2",
                     "--process-id", str(i)) for i in range(2)]
    for code, _, err in [_finish(p, timeout=400) for p in procs]:
        assert code == 0, err[-3000:]
    two, one = _results(tmp_path / "two"), _results(tmp_path / "one")
    assert two.keys() == one.keys()
    numbers = [k for k, v in one.items() if isinstance(v, float)]
    assert len(numbers) >= 2
    if config.startswith("cyclegan"):
        assert "label_accuracy_original_to_thick" in numbers
    assert {k: two[k] for k in numbers} == {k: one[k] for k in numbers}
    assert sorted(p.name for p in (tmp_path / "two" / "pictures").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "pictures").iterdir())
    if config.startswith("cyclegan"):
        # `genjax evaluate` over 2 processes restores the checkpoint, whose history pools are
        # split over both processes (its content hash gathers them), and gives the same numbers;
        # process 0 alone writes and prints them.
        port = _free_port()
        procs = [_genjax("evaluate", "--workdir", str(tmp_path / "two"),
                         "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2",
                         "--process-id", str(i)) for i in range(2)]
        outs = [_finish(p, timeout=400) for p in procs]
        assert [code for code, _, _ in outs] == [0, 0], outs[0][2][-3000:] + outs[1][2][-3000:]
        assert "{" not in outs[1][1] and "unusable" not in outs[0][2] + outs[1][2]
        evaluated = json.loads(outs[0][1][outs[0][1].index("{"):])  # after gloo's lines
        assert evaluated["step"] == 20
        assert {k: evaluated[k] for k in numbers} == {k: two[k] for k in numbers}


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while text not in (path.read_text() if path.exists() else ""):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{text!r} never appeared in {path}: {path.read_text()[-2000:]}")
        time.sleep(0.5)


@pytest.mark.slow
def test_sigterm_to_one_process_stops_both_at_one_step_and_the_resume_is_exact(tmp_path):
    """The preemption case: SIGTERM reaches process 1 only; both processes stop after the same
    step with one checkpoint of it; resuming both gives the numbers of a straight run."""
    import signal

    steps = ["train.num_steps=1500", "train.eval_every=1500", "train.checkpoint_every=1500"]
    overrides = TINY + steps + ["data.data_dir=" + str(tmp_path / "data")]

    def start(i: int, port: int) -> tuple[subprocess.Popen, Path]:
        err = tmp_path / f"p{i}.err"
        proc = subprocess.Popen(
            [sys.executable, "-m", "genjax.cli", "train", "vae_digits", "--workdir",
             str(tmp_path / "two"), *_sets(overrides), "--coordinator-address",
             f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
            env=_env(), stdout=subprocess.PIPE, stderr=err.open("w"), text=True)
        return proc, err

    port = _free_port()
    (p0, err0), (p1, _) = start(0, port), start(1, port)
    _wait_for(err0, "first dispatch", p0)
    time.sleep(2.0)
    p1.send_signal(signal.SIGTERM)
    outs = [_finish(p) for p in (p0, p1)]
    summaries = [json.loads(out[out.index("{"):]) for _, out, _ in outs]
    assert [code for code, _, _ in outs] == [130, 130], err0.read_text()[-2000:]
    assert [s["status"] for s in summaries] == ["interrupted", "interrupted"]
    stopped = summaries[0]["step"]
    assert summaries[1]["step"] == stopped and 1 < stopped < 1500
    assert sorted(int(p.name) for p in (tmp_path / "two" / "checkpoints").iterdir()) == [stopped]

    port = _free_port()
    resumed = [start(i, port)[0] for i in range(2)]
    for code, _, _ in [_finish(p) for p in resumed]:
        assert code == 0, err0.read_text()[-2000:]
    assert f"resumed from step {stopped}" in err0.read_text()
    code, _, err = _finish(_genjax("train", "vae_digits", "--workdir", str(tmp_path / "one"),
                                   *_sets(overrides)))
    assert code == 0, err[-2000:]
    two, one = _results(tmp_path / "two"), _results(tmp_path / "one")
    assert two["nll_iwae_nats"] == pytest.approx(one["nll_iwae_nats"], rel=1e-5)
    assert two["neg_elbo_nats"] == pytest.approx(one["neg_elbo_nats"], rel=1e-5)


# -- every family on 1, 2 and 4 devices ------------------------------------------------------------
_SMALL = {  # each family's digits config, made small; every batch splits over 4 devices
    "vae_digits": ["train.batch_size=40"],
    "dcgan_digits": ["train.batch_size=40", "model.base_features=8"],
    "wgan_gp (dcgan_digits)": ["train.batch_size=40", "model.base_features=8",
                               "model.variant=wgan_gp", "model.discriminator_norm=layer",
                               "model.n_critic=2"],
    "cgan_digits": ["train.batch_size=40"],
    "bigan_digits": ["train.batch_size=40"],
    "gan_toy2d": ["train.batch_size=40"],
    "realnvp_digits": ["train.batch_size=40", "model.features=8", "model.num_blocks=1"],
    "realnvp_toy2d": ["train.batch_size=40"],
    "pixelcnn_digits": ["train.batch_size=40", "model.features=8", "model.num_layers=2",
                        "model.output_features=8"],
    "gated_pixelcnn_digits": ["train.batch_size=40", "model.features=8", "model.num_layers=2",
                              "model.output_features=8"],
    "cyclegan_digits": ["train.batch_size=40", "model.base_features=4", "model.num_blocks=1",
                        "model.discriminator_features=4"],
    "stargan_digits": ["train.batch_size=40", "model.base_features=4", "model.num_blocks=1",
                       "model.discriminator_features=4"],
    "classifier_digits": ["train.batch_size=40", "model.conv_features=8", "model.dense=8"],
}

_FAMILY_SCRIPT = r"""
import json, re, sys
import jax
from genjax.experiments import load_config
from genjax.train.loop import Trainer
assert jax.device_count() == 4, jax.devices()
MOVES = re.compile(r"= (\S+) (all-gather|all-to-all|collective-permute)(?:-start)?\(")
label, overrides = sys.argv[1], json.loads(sys.argv[2])
name = label.split(" (")[-1].rstrip(")") if " (" in label else label
# Evaluation: 70 examples in batches of 40, the second padded with 10 masked rows.
config = load_config(name, overrides + ["train.progress=false", "eval.max_examples=70",
                                        "eval.batch_size=40", "eval.iwae_batch_size=40",
                                        "eval.iwae_samples=20"])
trainers = {n: Trainer(config, None, devices=jax.devices()[:n]) for n in (1, 2, 4)}


def relative(runs):
    return {n: max([abs(a - runs[1][k]) / (abs(runs[1][k]) + 1e-3) for k, a in runs[n].items()
                    if isinstance(a, float) and not k.endswith("update_norm")])
            for n in runs if n != 1}


evaluation = {}  # of the initial parameters (one step on 4 devices differs slightly)
if name.split("_")[0] in ("vae", "realnvp", "pixelcnn", "classifier"):
    evals = {n: t.evaluate() for n, t in trainers.items()}
    assert all(e.keys() == evals[1].keys() for e in evals.values())
    evaluation = relative(evals)
runs = {n: t.step() for n, t in trainers.items()}
assert all(r.keys() == runs[1].keys() for r in runs.values())
cost = {n: t._executable.cost_analysis() for n, t in trainers.items()}
cost = {n: (c[0] if isinstance(c, (list, tuple)) else c)["flops"] for n, c in cost.items()}
moves = sorted(set(MOVES.findall(trainers[4]._executable.as_text())))
print(json.dumps({"step": relative(runs), "flops": cost[4] / cost[1], "moves": moves,
                  "evaluate": evaluation}))
"""

_EVALUATED = {"vae_digits", "realnvp_digits", "realnvp_toy2d", "pixelcnn_digits",
              "classifier_digits"}


@pytest.mark.slow
@pytest.mark.parametrize("label", list(_SMALL))
def test_every_family_gives_one_devices_numbers_on_two_and_four_devices(label):
    """One step of each family's config on 1, 2 and 4 fake CPU devices (one process each).

    * The same losses and gradient and parameter norms (the same global batch and keys; only
      the order of float reductions differs: measured <= 1.5e-6 relative). Not the update
      norms: Adam's first update ``g / (|g| + eps)`` turns reduction-order noise in gradients
      near 0 (zero-initialised layers) into differences of up to 2% (Real NVP).
    * The work is split: the compiled 4-device program moves no batch between devices (no
      all-gather, all-to-all or collective-permute: only the all-reduces of gradients, losses
      and batch statistics; CycleGAN's history pools, one per batch position, are split with
      the batch); and each device's FLOPs (XLA's
      cost analysis) are near a quarter of the one-device program's (above it by the
      optimizer update every device repeats on the whole parameters).
    * The likelihood and classifier evaluations (split over the devices, padded last batch,
      one fetch) give one device's numbers.
    """
    proc = subprocess.run([sys.executable, "-c", _FAMILY_SCRIPT, label, json.dumps(_SMALL[label])],
                          env=_env(4), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(r["step"]) == {"2", "4"} and max(r["step"].values()) < 1e-5, r
    assert 0.2 < r["flops"] < 0.35, r
    assert r["moves"] == [], r
    if label in _EVALUATED:
        assert set(r["evaluate"]) == {"2", "4"} and max(r["evaluate"].values()) < 1e-5, r
    else:
        assert r["evaluate"] == {}, r


@pytest.mark.slow
def test_a_cyclegan_run_with_split_pools_evaluates_on_other_device_counts(tmp_path):
    """A CycleGAN run trained on 4 devices (its 8 history pools per domain split 2 per device)
    restores on 1 and 2 devices (the checkpoint's pools re-split, its content hash intact) and
    gives the run's translation numbers."""
    overrides = TINY[:5] + ["train.batch_size=16", "model.base_features=4", "model.num_blocks=1",
                            "model.discriminator_features=4", "eval.max_examples=40",
                            "data.data_dir=" + str(tmp_path / "data")]
    workdir = str(tmp_path / "run")
    code, _, err = _finish(_genjax("train", "cyclegan_digits", "--workdir", workdir,
                                   *_sets(overrides), env=_env(4)), timeout=400)
    assert code == 0, err[-3000:]
    assert "4 of 4 cpu device(s)" in err
    trained = _results(tmp_path / "run")
    keys = [k for k in trained if k.startswith(("pixel_l1", "cycle_l1"))]
    assert len(keys) == 6
    for devices in ("1", "2"):
        code, out, err = _finish(_genjax("evaluate", "--workdir", workdir, "--devices", devices,
                                         env=_env(4)), timeout=400)
        assert code == 0 and "unusable" not in err, err[-3000:]
        assert f"{devices} of 4 cpu device(s)" in err or f"{devices} given" in err, err[-2000:]
        evaluated = json.loads(out[out.index("{"):])
        assert evaluated["step"] == 20
        for k in keys:
            assert evaluated[k] == pytest.approx(trained[k], rel=1e-5), (devices, k)
