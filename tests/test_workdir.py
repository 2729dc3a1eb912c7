"""A workdir is one run: the lock, reading a live run, and what a resume may change."""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from test_engine import REPO, TINY, assert_trees_equal, flip_bytes, tiny_config

import genjax.cli
from genjax.experiments import load_config
from genjax.train.checkpoint import CheckpointMismatchError, CheckpointStore
from genjax.train.loop import Fitter, Run, Trainer, load_trainer, train_and_evaluate
from genjax.train.workdir import (
    ConfigChangeError,
    WorkdirBusyError,
    WorkdirLock,
    compare_configs,
)


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    first = WorkdirLock(tmp_path).acquire()
    with pytest.raises(WorkdirBusyError, match=rf"pid {os.getpid()} on "):
        WorkdirLock(tmp_path).acquire()
    first.release()
    WorkdirLock(tmp_path).acquire().release()  # free again


def test_lock_left_by_a_killed_process_blocks_nothing(tmp_path):
    code = ("import sys, time; from genjax.train.workdir import WorkdirLock; "
            "WorkdirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(WorkdirBusyError, match=rf"pid {proc.pid} "):
        WorkdirLock(tmp_path).acquire()
    proc.kill()
    proc.wait(timeout=30)
    assert (tmp_path / ".genjax.lock").exists()  # the leftover file...
    WorkdirLock(tmp_path).acquire().release()  # ...does not block


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "genjax.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO, **kwargs)


@pytest.mark.slow  # a live training run beside evaluate (about 50 s)
def test_second_train_is_refused_while_evaluate_reads_the_live_run(tmp_path):
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "genjax.cli", "train", "vae_digits", "--workdir", str(workdir)]
    for item in TINY + ["train.num_steps=1000000", "train.checkpoint_every=5"]:
        cmd += ["--set", item]
    live = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not list((workdir / "checkpoints").glob("[0-9]*")):
            time.sleep(0.2)
        assert live.poll() is None, live.stderr.read().decode()
        second = _cli("train", "vae_digits", "--workdir", str(workdir), *sum(
            (["--set", item] for item in TINY), []))
        assert second.returncode == 2
        errors = [line for line in second.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and f"pid {live.pid}" in errors[0], second.stderr
        read = _cli("evaluate", "--workdir", str(workdir), "--out", str(tmp_path / "e.json"))
        assert read.returncode == 0, read.stderr[-2000:]
        assert json.loads((tmp_path / "e.json").read_text())["step"] >= 5
    finally:
        live.send_signal(signal.SIGTERM)
        out, err = live.communicate(timeout=120)
    assert live.returncode == 130, err.decode()[-2000:]
    assert not (workdir / "corrupt").exists()
    resumed = Trainer(tiny_config(), workdir)
    assert resumed.restore() and resumed.current_step == json.loads(out)["step"]
    resumed.checkpoints.close()


def test_compare_configs_sorts_changes():
    saved = {"method": "vae", "model": {"latent_dim": 8, "metric_samples": 10},
             "optim": {"learning_rate": 0.001}, "train": {"num_steps": 10, "seed": 0},
             "eval": {"iwae_samples": 5000}, "data": {"name": "digits", "manual_dir": ""}}
    requested = json.loads(json.dumps(saved))
    requested["model"].update(latent_dim=4, metric_samples=20)
    requested["optim"]["learning_rate"] = 0.01
    requested["train"].update(num_steps=20, seed=1)
    requested["eval"]["iwae_samples"] = 100
    requested["data"]["manual_dir"] = "/data"
    diff = compare_configs(saved, requested, eval_only_model_fields=("metric_samples",))
    assert diff["refused"] == {"model.latent_dim": (8, 4)}
    assert diff["flagged"] == {"optim.learning_rate": (0.001, 0.01), "train.seed": (0, 1)}
    assert set(diff["safe"]) == {"model.metric_samples", "train.num_steps", "eval.iwae_samples",
                                 "data.manual_dir"}
    assert compare_configs(saved, saved) == {"refused": {}, "flagged": {}, "safe": {}}


def test_a_run_saved_before_the_gpu_algorithm_field_resumes_without_the_flag():
    """``train.gpu_exclude_nondeterministic_ops`` is newer than some workdirs: absent from their
    config.json, it is a safe difference (it picks algorithms, not mathematics)."""
    from genjax.train.config import to_json

    requested = json.loads(to_json(tiny_config("train.num_steps=4")))
    saved = json.loads(json.dumps(requested))
    del saved["train"]["gpu_exclude_nondeterministic_ops"]
    diff = compare_configs(saved, requested)
    assert diff["refused"] == {} and diff["flagged"] == {}
    assert diff["safe"] == {"train.gpu_exclude_nondeterministic_ops": ("<absent>", True)}


def test_resume_refuses_model_changes_before_touching_checkpoints(tmp_path):
    train_and_evaluate(tiny_config("train.num_steps=2", "train.eval_every=1000"), tmp_path)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    with pytest.raises(ConfigChangeError, match=r"model\.latent_dim: 4 -> 3") as err:
        train_and_evaluate(tiny_config("model.latent_dim=3", "train.num_steps=4"), tmp_path)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    assert not (tmp_path / "corrupt").exists()
    with pytest.raises(ConfigChangeError, match=r"model\.latent_dim"):
        load_trainer(tmp_path, ["model.latent_dim=3"])


def test_resume_with_a_new_learning_rate_needs_the_flag_and_is_recorded(tmp_path):
    train_and_evaluate(tiny_config("train.num_steps=2", "train.eval_every=1000"), tmp_path)
    changed = tiny_config("optim.learning_rate=0.01", "train.num_steps=3", "train.eval_every=1000")
    with pytest.raises(ConfigChangeError, match=r"optim\.learning_rate: 0\.001 -> 0\.01.*"
                                                r"--allow-config-change"):
        train_and_evaluate(changed, tmp_path)
    summary = train_and_evaluate(changed, tmp_path, allow_config_change=True)
    assert summary["status"] == "finished" and summary["step"] == 3
    history = [json.loads(line) for line in (tmp_path / "config_history.jsonl").read_text()
               .splitlines()]
    assert history[-1]["resumed_at_step"] == 2
    assert history[-1]["changes"]["optim.learning_rate"] == [0.001, 0.01]
    assert history[-1]["changes"]["train.num_steps"] == [2, 3]
    assert json.loads((tmp_path / "config.json").read_text())["optim"]["learning_rate"] == 0.01


def test_safe_changes_resume_without_the_flag(tmp_path):
    train_and_evaluate(tiny_config("train.num_steps=2", "train.eval_every=1000"), tmp_path)
    summary = train_and_evaluate(tiny_config("train.num_steps=4", "train.eval_every=1000",
                                             "train.log_every=2", "eval.iwae_samples=1000"),
                                 tmp_path)
    assert summary["status"] == "finished" and summary["step"] == 4


def test_a_checkpoint_of_another_shape_is_reported_and_left_in_place(tmp_path, capsys):
    first = Trainer(tiny_config(), tmp_path)
    first.step()
    first.save(wait=True)
    first.checkpoints.close()
    other = Trainer(tiny_config("model.latent_dim=3"), tmp_path)
    with pytest.raises(CheckpointMismatchError, match=r"latent|shape|saved \(") as err:
        other.restore()
    other.checkpoints.close()
    assert "Nothing was moved" in str(err.value)
    assert (tmp_path / "checkpoints" / "1").is_dir() and not (tmp_path / "corrupt").exists()


def test_a_reader_skips_damaged_steps_without_moving_them(tmp_path, capsys):
    trainer = Trainer(tiny_config(), tmp_path)
    for _ in range(2):
        trainer.step()
        trainer.save(wait=True)
    trainer.checkpoints.close()
    flip_bytes(tmp_path / "checkpoints" / "2")
    reader = Trainer(tiny_config(), tmp_path, read_only=True)
    assert reader.restore() and reader.current_step == 1
    reader.checkpoints.close()
    assert "Skipped (left in place)" in capsys.readouterr().err
    assert (tmp_path / "checkpoints" / "2").is_dir() and not (tmp_path / "corrupt").exists()
    assert_trees_equal(jax.device_get(reader.state.step), 1)
    assert isinstance(CheckpointStore(tmp_path, read_only=True).all_steps(), list)


def test_a_fitted_and_a_trained_run_are_evaluated_and_sampled_through_one_path(
        tmp_path, monkeypatch, capsys):
    """One workdir protocol: `genjax evaluate` / `sample` restore a step-trained run and a
    fitted one with load_trainer and call the same Run methods; the CLI has no branch on the
    kind of method."""
    trained, fitted = tmp_path / "vae", tmp_path / "gmm"
    train_and_evaluate(tiny_config("train.num_steps=2", "train.eval_every=1000"), trained)
    train_and_evaluate(load_config("gmm_toy2d", ["model.num_restarts=1", "model.max_iters=5"]),
                       fitted)
    calls = []
    for name in ("evaluate", "sample"):
        real = getattr(Run, name)

        def spy(self, *args, _real=real, _name=name):
            calls.append((_name, type(self).__name__))
            return _real(self, *args)

        monkeypatch.setattr(Run, name, spy)
    for workdir in (trained, fitted):
        assert genjax.cli.main(["evaluate", "--workdir", str(workdir)]) == 0
        npy = workdir / "s.npy"
        assert genjax.cli.main(["sample", "--workdir", str(workdir), "--num", "4",
                                "--npy", str(npy)]) == 0
        assert len(np.load(npy)) == 4
        # Both write what evaluate returns beside the run, named by its step.
        step = json.loads((workdir / "results.json").read_text())["step"]
        assert (workdir / f"eval_{step:08d}.json").exists()
    assert calls == [("evaluate", "Trainer"), ("sample", "Trainer"),
                     ("evaluate", "Fitter"), ("sample", "Fitter")]
    assert isinstance(load_trainer(fitted), Fitter) and isinstance(load_trainer(trained), Trainer)
    assert "FitMethod" not in inspect.getsource(genjax.cli)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_fitted_run_checkpoint_is_verified_like_every_other(tmp_path, capsys):
    config = load_config("gmm_toy2d", ["model.num_restarts=1", "model.max_iters=5"])
    train_and_evaluate(config, tmp_path)
    for target in (tmp_path / "checkpoints" / "0" / "state").rglob("d/*"):  # every data file
        data = bytearray(target.read_bytes())
        for i in range(len(data) // 2, min(len(data), len(data) // 2 + 64)):
            data[i] ^= 0xFF
        target.write_bytes(bytes(data))
    assert genjax.cli.main(["evaluate", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint step 0" in err and "unusable" in err and "no intact checkpoint" in err
    assert (tmp_path / "checkpoints" / "0").is_dir()  # a reader moves nothing


@pytest.mark.parametrize("name", ["cyclegan_digits", "stargan_digits"])
def test_a_saved_config_with_a_retired_field_still_restores_and_resumes(name):
    """Runs saved before the translation classifier became its own run hold
    ``model.classifier_steps``: the config rebuilds without it, and resuming or evaluating with
    today's config is not refused for it."""
    from genjax.train.config import config_from_dict, to_json
    from genjax.train.loop import _unchecked_model_fields
    from genjax.train.method import get_method
    from genjax.train.workdir import compare_configs

    config = load_config(name)
    saved = json.loads(to_json(config))
    saved["model"]["classifier_steps"] = 1000
    assert config_from_dict(saved, get_method(config.method).model_config) == config
    diff = compare_configs(saved, json.loads(to_json(config)), _unchecked_model_fields(config))
    assert diff["refused"] == {} and diff["flagged"] == {}
    assert diff["safe"] == {"model.classifier_steps": (1000, "<absent>")}
    saved["model"]["no_such_field"] = 1
    with pytest.raises(ValueError, match="no_such_field"):
        config_from_dict(saved, get_method(config.method).model_config)


def test_the_engine_finds_the_methods_through_the_package_metadata():
    """The engine imports no method module by name: genjax's methods are the entry point
    ``genjax.methods`` of its metadata, loaded on the first lookup."""
    import importlib.metadata

    from genjax.train.method import available_methods

    plugins = importlib.metadata.entry_points(group="genjax.methods")
    assert [p.value for p in plugins] == ["genjax.methods"]
    assert {"gan", "cyclegan", "stargan", "vae", "gmm", "classifier"} <= set(available_methods())
    source = (REPO / "genjax" / "train" / "method.py").read_text()
    assert "import_module" not in source and "import genjax.methods" not in source
