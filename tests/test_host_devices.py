"""``--cpu-devices N``: the host CPU as N devices with single-threaded kernels
(:mod:`genjax.host_devices`), set before JAX is imported, for ``genjax`` and the benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import pytest
from test_engine import REPO

from genjax import host_devices
from genjax.host_devices import split_environment, split_host_cpu

TINY = ["train.batch_size=20", "train.num_steps=6", "train.log_every=3", "train.eval_every=6",
        "train.checkpoint_every=6", "train.progress=false", "eval.iwae_samples=10",
        "eval.max_examples=40"]


def _env_without_jax_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}


def test_split_environment_appends_the_flags_and_keeps_the_user_s():
    env = split_environment(2, {})
    assert env == {"XLA_FLAGS": "--xla_force_host_platform_device_count=2 "
                                "--xla_cpu_multi_thread_eigen=false", "JAX_PLATFORMS": "cpu"}
    assert env["XLA_FLAGS"] == host_devices.xla_flags(2)
    mine = split_environment(4, {"XLA_FLAGS": "--xla_dump_to=/tmp/d", "JAX_PLATFORMS": "cpu"})
    assert mine["XLA_FLAGS"].split() == ["--xla_dump_to=/tmp/d",
                                         "--xla_force_host_platform_device_count=4",
                                         "--xla_cpu_multi_thread_eigen=false"]
    # the same count already there is not repeated; running it twice changes nothing
    assert split_environment(2, env) == env


@pytest.mark.parametrize("n", [1, 0, -2, "2", 2.0, True])
def test_a_count_below_two_or_not_an_int_is_refused(n):
    with pytest.raises(ValueError, match=r"--cpu-devices must be an integer >= 2") as info:
        split_environment(n, {})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("environ, message", [
    ({"XLA_FLAGS": "--xla_force_host_platform_device_count=8"},
     "XLA_FLAGS already holds --xla_force_host_platform_device_count=8; remove it from "
     "XLA_FLAGS or give --cpu-devices 8"),
    ({"JAX_PLATFORMS": "cuda"}, "JAX_PLATFORMS='cuda' asks for another platform"),
])
def test_conflicting_settings_are_one_line_errors(environ, message):
    with pytest.raises(ValueError) as info:
        split_environment(2, environ)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_after_jax_started_only_the_same_split_is_accepted():
    """XLA reads its flags once: in this process (JAX already imported) a different split is an
    error that says to start a new process; the split in place is accepted as it is."""
    n = jax.device_count()
    if n >= 2 and jax.default_backend() == "cpu":
        split_host_cpu(n)
    with pytest.raises(ValueError, match=r"JAX was imported before .* run the command in a new "
                                          r"process") as info:
        split_host_cpu(n + 1 if n >= 2 else 2)
    assert "\n" not in str(info.value)


def test_the_cli_refuses_a_bad_count_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "genjax.cli", "train", "vae_digits",
                           "--workdir", str(tmp_path / "w"), "--cpu-devices", "1"],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=_env_without_jax_settings())
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "genjax train: error: --cpu-devices must be an integer >= 2 (the host CPU as that many "
        "devices; leave it out for one device), got 1"]
    assert not (tmp_path / "w").exists()


def test_the_cli_trains_and_evaluates_on_two_host_devices(tmp_path):
    """``genjax train --cpu-devices 2`` in a fresh process: two CPU devices, the batch split
    over them, the run trained and evaluated; ``genjax evaluate`` of the same workdir on two
    devices gives the run's own test numbers."""
    workdir = tmp_path / "w"
    cmd = [sys.executable, "-m", "genjax.cli", "train", "vae_digits", "--workdir", str(workdir),
           "--cpu-devices", "2", *(a for o in TINY for a in ("--set", o))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO,
                          env=_env_without_jax_settings())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 of 2 cpu device(s)" in proc.stderr, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["status"] == "finished" and summary["step"] == 6
    nll = summary["eval"]["nll_iwae_nats"]
    assert 0 < nll < 1e4
    out = tmp_path / "e.json"
    again = subprocess.run([sys.executable, "-m", "genjax.cli", "evaluate", "--workdir",
                            str(workdir), "--cpu-devices", "2", "--out", str(out)],
                           capture_output=True, text=True, timeout=600, cwd=REPO,
                           env=_env_without_jax_settings())
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 2 cpu device(s)" in again.stderr, again.stderr[-3000:]
    metrics = json.loads(out.read_text())
    assert metrics["step"] == 6
    assert metrics["nll_iwae_nats"] == pytest.approx(nll, rel=1e-5)


def test_the_benchmark_refuses_a_split_that_contradicts_xla_flags(tmp_path):
    """``benchmarks/run.py --cpu-devices`` goes through the same set-up: a contradiction is one
    line, before JAX is imported and before anything is measured or written."""
    env = {**_env_without_jax_settings(),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = tmp_path / "b.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--configs",
                           "vae_digits", "--cpu-devices", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "run.py: error: --cpu-devices 2: XLA_FLAGS already holds "
        "--xla_force_host_platform_device_count=4; remove it from XLA_FLAGS or give "
        "--cpu-devices 4"]
    assert not out.exists()
