"""benchmarks/run.py (the one benchmark command) and its PyTorch twins.

The command test runs ``benchmarks/run.py`` on the embedded digits in a subprocess and checks
the JSON's structure and that every number is positive and finite; it never looks at speeds.
The converter tests need torch (``pip install -e ".[bench]"``) and are skipped without it: each
twin, given genjax's parameters, must compute genjax's forward outputs and first loss on the
same input and noise at 1e-5 relative.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
TOLERANCE = 1e-5  # relative, forward outputs and first losses of the twins


def _positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def _torch_importable() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# -- the command --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bench_json(tmp_path_factory) -> dict:
    """One run: vae_digits (both dtypes) and vae_binarized_mnist pointed at an empty data root."""
    tmp = tmp_path_factory.mktemp("bench")
    (tmp / "data" / "binarized_mnist").mkdir(parents=True)  # no .amat files in it
    out = tmp / "bench.json"
    cmd = [sys.executable, str(BENCHMARKS / "run.py"), "--configs", "vae_digits",
           "vae_binarized_mnist", "--budget-minutes", "0.3", "--data-root", str(tmp / "data"),
           "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                          timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| vae_digits | float32 |" in proc.stdout
    return json.loads(out.read_text())


@pytest.mark.slow  # the benchmark command runs (about 1 min)
def test_command_writes_the_environment(bench_json):
    meta = bench_json["meta"]
    for key in ("date", "command", "platform", "device_kind", "cpu", "cpu_count", "elapsed_s"):
        assert meta[key], key
    assert meta["complete"] is True and meta["conv_formulation"] == "auto"
    assert "run.py" in meta["command"] and "--budget-minutes" in meta["command"]
    assert set(meta["versions"]) >= {"jax", "jaxlib", "flax", "optax", "torch"}
    assert meta["versions"]["jax"] == jax.__version__
    assert set(meta["peaks"]) == {"float32", "bfloat16"}
    for peak in meta["peaks"].values():
        assert _positive(peak["flops_per_s"]) and peak["n"] >= 256


@pytest.mark.slow  # the benchmark command runs (about 1 min)
def test_command_rows_hold_positive_finite_numbers(bench_json):
    rows = {(r["config"], r["dtype"]): r for r in bench_json["rows"]}
    assert set(rows) == {(c, d) for c in ("vae_digits", "vae_binarized_mnist")
                         for d in ("float32", "bfloat16")}
    row = rows[("vae_digits", "float32")]
    assert row["status"] == "ok", row.get("error")
    # bfloat16 support is being added family by family: an error row is allowed, not a crash.
    bf16 = rows[("vae_digits", "bfloat16")]
    assert bf16["status"] == "ok" or bf16["error"]
    for r in (row, bf16) if bf16["status"] == "ok" else (row,):
        assert r["batch_size"] == 100 and r["devices"] >= 1
        assert r["steps_timed"] >= 1 and r["repeats"] >= 1
        for key in ("lower_s", "compile_s", "total_s", "engine_compile_s"):
            assert _positive(r["compile"][key]), key
        for part in ("real_loop", "engine_free"):
            assert _positive(r[part]["steps_per_s"]) and _positive(r[part]["examples_per_s"])
            assert len(r[part]["all_steps_per_s"]) == r["repeats"]
            assert all(_positive(v) for v in r[part]["all_steps_per_s"])
        assert math.isfinite(r["loop_overhead_pct"]) and r["loop_overhead_pct"] < 100
        assert _positive(r["flops_per_step"]) and _positive(r["achieved_flops_per_s"])
        assert _positive(r["fraction_of_peak"])
        step = r["memory"]["compiled_step"]
        assert step["argument_size_in_bytes"] > 0
        assert r["memory"]["step_bytes"] == (step["argument_size_in_bytes"]
                                             + step["output_size_in_bytes"]
                                             - step["alias_size_in_bytes"]
                                             + step["temp_size_in_bytes"])
        assert r["memory"]["step_bytes"] >= step["argument_size_in_bytes"]
        peak = r["memory"]["device_peak_bytes_process"]
        assert peak is None or peak > 0  # None where the backend does not report it (CPU)
        twin = r["twin"]
        if _torch_importable():
            assert twin["status"] == "ok", twin.get("reason")
            assert twin["first_loss_max_rel_diff"] <= 1e-4
            assert twin["second_loss_max_rel_diff"] <= 1e-4
            # what float32 round-off of the parameters does to genjax's own losses: measured,
            # and small for this well-conditioned VAE
            assert twin["roundoff_parameter_noise"] == 1e-7
            for which in ("first", "second"):
                assert 0 <= twin[f"{which}_loss_roundoff"] < 1e-5, twin
                assert twin[f"{which}_loss_tolerance"] == 1e-4  # so the gate stays at 1e-4
            for key in ("steps_per_s", "examples_per_s", "ratio_genjax_over_torch",
                        "ratio_engine_free_over_torch"):
                assert _positive(twin[key]), key
            assert twin["threads"] >= 1
        else:
            assert twin["status"] == "skipped" and "torch" in twin["reason"]


@pytest.mark.slow  # the benchmark command runs (about 1 min)
def test_command_reports_missing_data_as_a_row(bench_json):
    for r in bench_json["rows"]:
        if r["config"] == "vae_binarized_mnist":
            assert r["status"] == "error"
            assert r["error_stage"].startswith("trainer")
            assert "binarized_mnist_train.amat" in r["error"]


@pytest.mark.slow  # the benchmark command runs twice at once (about 1 min)
def test_commands_under_one_measure_lock_time_in_turn(tmp_path):
    """Two commands started together with --measure-lock both finish with every row timed: a
    pilot under the lock recalibrates each row and --row-seconds sets its share (that the lock
    excludes is the unit test above)."""
    lock = tmp_path / "lock"
    procs, outs = [], []
    for i in range(2):
        outs.append(tmp_path / f"b{i}.json")
        cmd = [sys.executable, str(BENCHMARKS / "run.py"), "--configs", "vae_digits",
               "--dtypes", "float32", "--budget-minutes", "1", "--row-seconds", "2",
               "--measure-lock", str(lock), "--no-twins", "--out", str(outs[-1])]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for proc, out in zip(procs, outs, strict=True):
        stdout, stderr = proc.communicate(timeout=1500)
        assert proc.returncode == 0, stderr[-4000:]
        assert "holding it alone after" in stderr
        data = json.loads(out.read_text())
        assert data["meta"]["complete"] is True and data["meta"]["lock_wait_s"] >= 0
        (row,) = data["rows"]
        assert row["status"] == "ok", row.get("error")
        assert _positive(row["real_loop"]["steps_per_s"]) and row["steps_timed"] >= 1
        assert row["calibration"]["seconds_left"] <= 2.0


@pytest.mark.slow  # the benchmark command runs (about 40 s)
def test_cpu_devices_split_the_host_and_the_row_runs_data_parallel(tmp_path):
    """--cpu-devices 2 sets XLA_FLAGS before jax is imported: two host devices, the loop and the
    jitted step data parallel over them (each step waited for, as the loop does on a
    multi-device CPU), and the twin check still passes against the whole batch."""
    out = tmp_path / "b.json"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "run.py"), "--configs", "vae_digits",
                           "--dtypes", "float32", "--budget-minutes", "0.4", "--cpu-devices", "2",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())
    meta = data["meta"]
    assert meta["num_devices"] == 2 and meta["cpu_devices"] == 2
    assert "--xla_force_host_platform_device_count=2" in meta["xla_flags"]
    assert "--xla_cpu_multi_thread_eigen=false" in meta["xla_flags"]
    (row,) = data["rows"]
    assert row["status"] == "ok" and row["devices"] == 2, row.get("error")
    assert _positive(row["real_loop"]["steps_per_s"])
    if row["twin"]["status"] != "skipped":  # torch installed: the check passed
        assert row["twin"]["status"] == "ok", row["twin"]


def test_cpu_devices_argument():
    run = _run_module()
    assert run._cpu_devices_from_argv(["--configs", "x", "--cpu-devices", "4"]) == 4
    assert run._cpu_devices_from_argv(["--cpu-devices=3"]) == 3
    assert run._cpu_devices_from_argv(["--configs", "x"]) == 0
    assert run._cpu_devices_from_argv(["--cpu-devices", "two"]) == 0
    base = ["--configs", "vae_digits", "--budget-minutes", "1", "--out", "o"]
    assert run.parse_args(base).cpu_devices == 0
    for bad in ("1", "-2", "2"):  # 2: this pytest process has one device, imported earlier
        with pytest.raises(SystemExit):
            run.parse_args([*base, "--cpu-devices", bad])


def test_twins_skipped_without_torch(monkeypatch):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run
    finally:
        sys.path.remove(str(BENCHMARKS))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    args = run.parse_args(["--configs", "vae_digits", "--budget-minutes", "1", "--out", "x"])
    twin, reason = run.make_twin_for(None, "float32", args)
    assert twin is None and reason.startswith("skipped: torch is not importable")


def test_parse_args_rows_and_errors(tmp_path, capsys):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run
    finally:
        sys.path.remove(str(BENCHMARKS))
    args = run.parse_args(["--families", "vae", "dcgan", "--budget-minutes", "2", "--out", "o"])
    assert run.plan(args) == [
        ("vae_binarized_mnist", (), "vae_binarized_mnist"),
        ("vae_binarized_mnist", ("train.batch_size=100",),
         "vae_binarized_mnist[train.batch_size=100]"),
        ("dcgan_mnist", (), "dcgan_mnist"),
    ]
    assert args.dtypes == ["float32", "bfloat16"]
    assert args.measure_lock is None and args.row_seconds is None
    assert args.conv_formulation == "auto"
    with pytest.raises(SystemExit):
        run.parse_args(["--configs", "vae_digits", "--budget-minutes", "1", "--out", "o",
                        "--conv-formulation", "gpu"])
    with pytest.raises(SystemExit):
        run.parse_args(["--configs", "vae_digits", "--budget-minutes", "0", "--out", "o"])
    with pytest.raises(SystemExit):
        run.parse_args(["--configs", "vae_digits", "--budget-minutes", "1", "--out", "o",
                        "--row-seconds", "0"])
    with pytest.raises(SystemExit):  # --out is required unless --report
        run.parse_args(["--configs", "vae_digits", "--budget-minutes", "1"])
    capsys.readouterr()
    missing = tmp_path / "no_such_folder" / "bench.lock"
    with pytest.raises(SystemExit):  # a one-line error, not a traceback at the first lock
        run.parse_args(["--configs", "vae_digits", "--budget-minutes", "1", "--out", "o",
                        "--measure-lock", str(missing)])
    assert "does not exist" in capsys.readouterr().err and not missing.parent.exists()
    assert run.parse_args(["--configs", "vae_digits", "--budget-minutes", "1", "--out", "o",
                           "--measure-lock", str(tmp_path / "b.lock")]).measure_lock
    assert run.parse_args(["--report", "a.json", "b.json"]).report == ["a.json", "b.json"]


def _run_module():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run
    finally:
        sys.path.remove(str(BENCHMARKS))
    return run


def test_measure_lock_times_only_when_nothing_else_holds_the_file(tmp_path):
    """Two commands' locks on one file: both set up under shared locks at once; one cannot
    time (exclusive) while the other still sets up, and can as soon as it is done."""
    import threading

    run = _run_module()
    path = str(tmp_path / "lock")
    first, second = run.MeasureLock(path), run.MeasureLock(path)  # shared: both granted
    timing, meta = threading.Event(), {}

    def measure():
        with second.exclusive(meta):
            timing.set()

    thread = threading.Thread(target=measure, daemon=True)
    thread.start()
    assert not timing.wait(0.5), "timed while another command still held its shared lock"
    with first.exclusive({}):  # the first command finishes set-up, times, releases
        pass
    assert timing.wait(30) and "lock_wait_s" in meta  # (how long it waited: not asserted)
    thread.join(30)
    assert first.file is None and second.file is None  # both released
    with run.MeasureLock(None).exclusive({}):  # no path: nothing to wait for
        pass


def test_roundoff_sensitivity_perturbs_the_parameters(monkeypatch):
    """The twin check's conditioning run: no noise, no movement (the runs are deterministic
    here); parameter noise moves the losses of both steps."""
    from genjax.train.parallel import shard_batch

    run = _run_module()
    trainer = _trainer("vae_digits")
    batches = [shard_batch(trainer.host_batch(s), trainer.mesh) for s in range(2)]
    step = jax.jit(trainer.method.train_step)
    monkeypatch.setattr(run, "ROUNDOFF", 0.0)
    still = run.roundoff_sensitivity(step, trainer, batches, ["loss"])
    assert still == {"roundoff": [0.0, 0.0], "rerun": [0.0, 0.0]}
    monkeypatch.setattr(run, "ROUNDOFF", 1e-2)
    state, first_run = trainer.state, []
    for b in batches:  # the twin check's own run of the same program from the same state
        state, metrics = step(state, b)
        first_run.append({"loss": float(metrics["loss"])})
    out = run.roundoff_sensitivity(step, trainer, batches, ["loss"], first_run=first_run)
    assert len(out["roundoff"]) == 2 and all(0 < m < 1 for m in out["roundoff"]), out
    assert out["rerun"] == [0.0, 0.0]  # deterministic on the CPU
    shifted = [{"loss": f["loss"] * (1 + 1e-3)} for f in first_run]  # as a nondeterministic run
    rerun = run.roundoff_sensitivity(step, trainer, batches, ["loss"], first_run=shifted)["rerun"]
    assert all(r == pytest.approx(1e-3, rel=1e-3) for r in rerun), rerun
    # the gate: 1e-4 unless round-off moves the loss by more than 1e-5 in a deterministic step
    assert run.step_tolerance(0.0) == run.step_tolerance(1e-5) == 1e-4
    assert run.step_tolerance(3.6e-4) == pytest.approx(3.6e-3)
    assert run.step_tolerance(3.6e-4, rerun=1e-7) == 1e-4  # nondeterministic: no widening


def _meta(**kw) -> dict:
    return {"device_kind": "cpu", "platform": "cpu", "num_devices": 1, "cpu": "x", "cpu_count": 2,
            "versions": {"jax": "0", "torch": None}, "date": "2026-12-04", "peaks": None,
            "command": "python run.py", **kw}


def test_report_merges_files_and_marks_unmeasured_rows(tmp_path, capsys):
    run = _run_module()
    stopped = {"meta": _meta(complete=False), "rows": [
        {"label": "dcgan_mnist", "dtype": "float32", "batch_size": 128, "status": "ok"},
        {"label": "wgangp_mnist", "dtype": "float32", "batch_size": 250, "status": "error",
         "error_stage": "trainer (data, initialisation)", "error": "no data"}]}
    (tmp_path / "a.json").write_text(json.dumps(stopped))
    (tmp_path / "b.json").write_text(json.dumps(stopped))
    assert run.report([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "(stopped before it finished)" in out and "peak (matmul): not measured" in out
    assert "| dcgan_mnist [1] | float32 | 128 | error (measure): not measured" in out
    assert "| dcgan_mnist [2] |" in out
    assert "| wgangp_mnist [2] | float32 | 250 | error (trainer (data, initialisation)): no data" \
        in out
    (tmp_path / "bad.json").write_text("{not json")
    assert run.report([str(tmp_path / "bad.json")]) == 2
    assert "is not a JSON file written by benchmarks/run.py" in capsys.readouterr().err


# -- the twins ----------------------------------------------------------------------------------
def _twins():
    pytest.importorskip("torch")
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import twins

    return twins


def _trainer(name: str, *overrides: str):
    from genjax.experiments import load_config
    from genjax.train.loop import Trainer

    return Trainer(load_config(name, ["train.progress=false", *overrides]), None)


def _close(twin_value, genjax_value, what: str) -> None:
    a = np.asarray(twin_value.detach().cpu() if hasattr(twin_value, "detach") else twin_value,
                   np.float64)
    b = np.asarray(genjax_value, np.float64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    scale = np.max(np.abs(b))
    err = np.max(np.abs(a - b)) / scale
    assert err <= TOLERANCE, f"{what}: max |twin - genjax| / max |genjax| = {err:.3g}"


def _first_loss_matches(twin, trainer) -> None:
    """The twin's first step's losses equal genjax's on genjax's batch and noise."""
    from genjax.train.parallel import shard_batch

    state = trainer.state
    host = trainer.host_batch(0)
    twin.load(state)
    inputs = twin.genjax_inputs(state, host)
    _, metrics = jax.jit(trainer.method.train_step)(state, shard_batch(host, trainer.mesh))
    out = twin.train_step(inputs)
    for name, gname in twin.losses.items():
        a, b = float(out[name]), float(metrics[gname])
        assert abs(a - b) <= TOLERANCE * abs(b), f"{name}: twin {a} vs genjax {b}"


def _perturbed(state, name: str, key, scale: float = 0.3):
    """``state`` with every parameter of model ``name`` moved by N(0, scale^2) noise (so that
    layers a zero initialisation switches off take part in the comparison)."""
    model = state.models[name]
    leaves, tree = jax.tree.flatten(model.params)
    keys = jax.random.split(key, len(leaves))
    new = [p + scale * jax.random.normal(k, p.shape, p.dtype)
           for p, k in zip(leaves, keys, strict=True)]
    return state.replace_model(name, model.replace(params=jax.tree.unflatten(tree, new)))


def test_conv_transpose_conversion_matches_flax():
    _twins()
    import flax.linen as nn
    import torch
    from twins.convert import conv_transpose_weight

    x = jax.random.normal(jax.random.key(0), (2, 5, 7, 3))
    for kernel, stride, torch_padding, crop in ((4, 2, 1, 0), (3, 2, 0, 1), (3, 1, 1, 0)):
        layer = nn.ConvTranspose(4, (kernel, kernel), strides=(stride, stride), padding="SAME")
        variables = layer.init(jax.random.key(1), x)
        want = layer.apply(variables, x)
        conv = torch.nn.ConvTranspose2d(3, 4, kernel, stride, torch_padding)
        with torch.no_grad():
            kernel = conv_transpose_weight(variables["params"]["kernel"])
            conv.weight.copy_(torch.from_numpy(kernel))
            conv.bias.copy_(torch.from_numpy(np.array(variables["params"]["bias"])))
            got = conv(torch.from_numpy(np.array(x)).permute(0, 3, 1, 2))
        if crop:  # Flax pads the dilated input (2, 1) here: torch's padding=0 output, cropped
            got = got[:, :, : want.shape[1], : want.shape[2]]
        _close(got.permute(0, 2, 3, 1), want, f"ConvTranspose k={kernel} s={stride}")


def test_dense_layout_conversions_match_flax():
    _twins()
    import torch
    from twins.convert import nhwc_to_nchw_columns, nhwc_to_nchw_rows

    h, w, c, out = 3, 4, 5, 6
    x = np.array(jax.random.normal(jax.random.key(0), (2, h, w, c)))
    kernel = np.array(jax.random.normal(jax.random.key(1), (h * w * c, out)))
    want = x.reshape(2, -1) @ kernel  # Flax: flatten NHWC, then dense
    got = torch.from_numpy(x).permute(0, 3, 1, 2).flatten(1) @ torch.from_numpy(
        nhwc_to_nchw_rows(kernel, h, w)).T
    _close(got, want, "NHWC-flatten dense")
    z = np.array(jax.random.normal(jax.random.key(2), (2, out)))
    kernel2 = np.array(jax.random.normal(jax.random.key(3), (out, h * w * c)))
    want2 = (z @ kernel2).reshape(2, h, w, c)  # Flax: dense, then reshape to NHWC
    got2 = (torch.from_numpy(z) @ torch.from_numpy(nhwc_to_nchw_columns(kernel2, h, w)).T)
    _close(got2.reshape(2, c, h, w).permute(0, 2, 3, 1), want2, "dense to NHWC")


def test_vae_twin_matches_genjax():
    twins = _twins()
    import torch

    from genjax.models.vae import VAE

    trainer = _trainer("vae_digits")
    twin = twins.make_twin(trainer.method)
    twin.load(trainer.state)
    params = trainer.state.models["vae"].params
    module = trainer.method.module
    x = (jax.random.uniform(jax.random.key(0), (5, 8, 8, 1)) < 0.5).astype(jnp.float32)
    eps = jax.random.normal(jax.random.key(1), (5, 8))
    mean, log_var = module.apply({"params": params}, x, method=VAE.encode)
    logits = module.apply({"params": params}, mean + jnp.exp(0.5 * log_var) * eps,
                          method=VAE.decode)["logits"]
    got = twin.forward_outputs(torch.from_numpy(np.array(x)).reshape(5, -1),
                               torch.from_numpy(np.array(eps)))
    _close(got["mean"], mean, "encoder mean")
    _close(got["log_var"], log_var, "encoder log-variance")
    _close(got["decoder"], logits.reshape(5, -1), "decoder logits")
    _first_loss_matches(twin, trainer)


@pytest.mark.parametrize("variant", ["gan", "wgan_gp"])
def test_dcgan_twin_matches_genjax(variant):
    twins = _twins()
    import torch

    extra = (["model.variant=wgan_gp", "model.discriminator_norm=none", "model.n_critic=2"]
             if variant == "wgan_gp" else [])
    trainer = _trainer("dcgan_digits", *extra)
    method, state = trainer.method, trainer.state
    twin = twins.make_twin(method)
    twin.load(state)
    g, d = state.models["generator"], state.models["discriminator"]
    z = jax.random.normal(jax.random.key(0), (6, method.config.model.latent_dim))
    fake = method.generator.apply({"params": g.params, **g.collections}, z, None, train=True,
                                  mutable=["batch_stats"])[0]
    d_vars = {"params": d.params, **d.collections}
    scores = method.discriminator.apply(d_vars, fake, None, train=True,
                                        mutable=["batch_stats"])[0] if d.collections else \
        method.discriminator.apply(d_vars, fake, None, train=True)
    with torch.no_grad():
        got = twin.generator(torch.from_numpy(np.array(z)))
        got_scores = twin.discriminator(torch.from_numpy(np.array(fake)).permute(0, 3, 1, 2))
    _close(got.permute(0, 2, 3, 1), fake, "generator images")
    _close(got_scores, scores, "discriminator logits")
    _first_loss_matches(twin, trainer)


def test_realnvp_twin_matches_genjax():
    twins = _twins()
    import torch

    # One residual block per s/t network keeps the compile short; two scales keep the squeeze,
    # the channel couplings and the factoring-out in the comparison.
    trainer = _trainer("realnvp_digits", "model.num_blocks=1", "train.batch_size=32")
    method = trainer.method
    state = _perturbed(trainer.state, "flow", jax.random.key(0))
    twin = twins.make_twin(method)
    twin.load(state)
    x = method.prepare(jax.random.key(1), jnp.asarray(trainer.host_batch(0)["image"]))
    model = state.models["flow"]
    log_p, _ = method.log_likelihood({**model.collections, "params": model.params}, x,
                                     train=True)
    with torch.no_grad():
        got = twin.log_likelihood(torch.from_numpy(np.array(x)).permute(0, 3, 1, 2))
    _close(got, log_p, "log p(x) (perturbed parameters)")
    _first_loss_matches(twin, trainer)


@pytest.mark.parametrize("name", ["pixelcnn_digits", "gated_pixelcnn_digits"])
def test_pixelcnn_twins_match_genjax(name):
    twins = _twins()
    import torch

    trainer = _trainer(name, "model.num_layers=2")  # the type-A first layer and a type-B one
    method = trainer.method
    state = _perturbed(trainer.state, "model", jax.random.key(0), scale=0.05)
    twin = twins.make_twin(method)
    twin.load(state)
    host = trainer.host_batch(0)
    x, _ = method.prepare(jax.random.key(1), jnp.asarray(host["image"]), train=True)
    labels = method.labels(host)
    args = (x,) if labels is None else (x, labels)
    logits = method.module.apply({"params": state.models["model"].params}, *args)
    with torch.no_grad():
        t_labels = None if labels is None else torch.from_numpy(np.array(labels)).long()
        got = twin.net(torch.from_numpy(np.array(x)).permute(0, 3, 1, 2), t_labels)
    if got.ndim == 4:  # Bernoulli logits come back NCHW
        got = got.permute(0, 2, 3, 1)
    _close(got, logits, f"{name} logits (perturbed parameters)")
    _first_loss_matches(twin, trainer)


def test_cyclegan_twin_matches_genjax():
    twins = _twins()
    import torch

    trainer = _trainer("cyclegan_digits", "train.batch_size=8")
    method, state = trainer.method, trainer.state
    twin = twins.make_twin(method)
    twin.load(state)
    x = method.view(jnp.asarray(trainer.host_batch(0)["image"]), "original")
    g = state.models["generator_xy"].params
    fake = method.generator.apply({"params": g}, x)
    scores = method.discriminator.apply({"params": state.models["discriminator_y"].params}, fake)
    with torch.no_grad():
        got = twin.g_xy(torch.from_numpy(np.array(x)).permute(0, 3, 1, 2))
        got_scores = twin.d_y(torch.from_numpy(np.array(fake)).permute(0, 3, 1, 2))
    _close(got.permute(0, 2, 3, 1), fake, "generator G(x)")
    _close(got_scores.permute(0, 2, 3, 1), scores, "PatchGAN scores D_Y(G(x))")
    _first_loss_matches(twin, trainer)


def test_compare_backends_on_a_cpu_finds_no_difference(tmp_path):
    """benchmarks/compare_backends.py's own check: with only a CPU both sides are one device, so
    every metric and every leaf's update must agree exactly; and its options reach the
    accelerator side's compilation (an unknown XLA option fails it)."""
    out = tmp_path / "cmp.json"
    script = str(BENCHMARKS / "compare_backends.py")
    proc = subprocess.run([sys.executable, script, "--configs", "vae_digits", "--steps", "2",
                           "--top", "50", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = json.loads(out.read_text())
    assert result["compiler_options"] == {} and len(result["steps"]) == 2
    for step in result["steps"]:
        assert step["metric_rel_diff"] and set(step["metric_rel_diff"].values()) == {0.0}
        assert step["leaves"] and all(r["rel"] == 0 and r["sign_flips"] == 0
                                      for r in step["leaves"])
        assert {"step", "rng"}.isdisjoint(r["leaf"].strip(".") for r in step["leaves"])
    bad = subprocess.run([sys.executable, script, "--configs", "vae_digits", "--steps", "1",
                          "--compiler-option", "xla_no_such_option_genjax=1"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "No such compile option" in bad.stderr


def test_stargan_basins_pretraining_and_summary():
    """benchmarks/stargan_basins.py (issue 18's diagnostic): the paired start lowers the L1 to
    the ground-truth views, the identity start the L1 to the input; the summary averages the
    label preservation of the 6 local pairs and of all pairs and names the basin; the two-sample
    test tells two distributions apart and not one from itself; bad step counts and seeds are
    refused."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import stargan_basins as sb
    finally:
        sys.path.remove(str(BENCHMARKS))
    from genjax.experiments import load_config
    from genjax.train.loop import Trainer
    from genjax.train.method import load_split

    config = load_config("stargan_digits", ["train.progress=false", "model.base_features=8",
                                            "model.discriminator_features=8"])
    trainer = Trainer(config, None)
    before = jax.device_get(trainer.state.models["generator"].params)
    for init in ("paired", "identity"):
        _, first = sb.pretrain_generator(trainer, init, 1, 3e-3)
        params, last = sb.pretrain_generator(trainer, init, 60, 3e-3)
        assert math.isfinite(first) and last < 0.8 * first, (init, first, last)
        assert jax.tree.structure(params) == jax.tree.structure(before)
    # the trainer's own generator is left as it was
    after = jax.device_get(trainer.state.models["generator"].params)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        np.testing.assert_array_equal(a, b)

    regions = sb.thick_regions(trainer)
    assert set(regions) == {"stroke", "ring", "background"}
    assert sum(r["fraction"] for r in regions.values()) <= 1.0
    assert regions["stroke"]["original"] > 0.5 and regions["ring"]["thick_view"] > 0.5
    assert regions["background"]["thick_view"] < 0.25 and regions["ring"]["original"] < 0.25
    assert all(0.0 <= r["translation"] <= 1.0 for r in regions.values())

    domains = ("original", "inverted", "rot90", "thick")
    metrics = {f"label_accuracy_{a}_to_{b}": (0.9 if "rot90" not in (a, b) else 0.3)
               for a in domains for b in domains if a != b}
    out = sb.summary(metrics, domains)
    assert out["label_mean_local_pairs"] == pytest.approx(0.9)
    assert out["label_mean_all_pairs"] == pytest.approx((6 * 0.9 + 6 * 0.3) / 12)
    assert len(out["label_per_pair"]) == 12
    assert sb.basin(out) == "right"
    inverter = {**metrics, "label_accuracy_original_to_thick": 0.05,
                "label_accuracy_thick_to_original": 0.03}
    thickener = {**metrics, **{f"label_accuracy_{a}_to_{b}": 0.1 for a, b in (
        ("original", "inverted"), ("inverted", "original"), ("inverted", "thick"),
        ("thick", "inverted"))}}
    assert sb.basin(sb.summary(inverter, domains)) == "inverter"
    assert sb.basin(sb.summary(thickener, domains)) == "thickener"
    assert sb.basin(sb.summary({**thickener, "label_accuracy_original_to_thick": 0.5},
                               domains)) == "neither"
    two = {"label_accuracy_original_to_inverted": 0.9, "label_accuracy_inverted_to_original": 0.5}
    assert sb.basin(sb.summary(two, ("original", "inverted"))) == "neither"
    assert sb.basin(sb.summary({**two, "label_accuracy_inverted_to_original": 0.9},
                               ("original", "inverted"))) == "right"
    assert sb.parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert sb.parse_args(["--seeds", "2"]).seeds == [2]
    for bad in (["--steps", "-1"], ["--init-steps", "-5"], ["--init", "nope"],
                ["--seeds", "3-1"], ["--seeds", "0,0"], ["--seeds", "a"], ["--seeds", "-2"]):
        with pytest.raises(SystemExit):
            sb.parse_args(bad)
    # --init selected: distillation towards the chosen run's translation, pair by pair
    # (teachers: the start, and the identity-pretrained generator of the loop above, chosen)
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), before, params)
    choice = jnp.ones((4, 4), jnp.int32)
    _, first = sb.pretrain_generator(trainer, "selected", 1, 3e-3, (stacked, choice))
    _, last = sb.pretrain_generator(trainer, "selected", 60, 3e-3, (stacked, choice))
    assert math.isfinite(first) and last < 0.8 * first, (first, last)
    with pytest.raises(ValueError, match="teachers"):
        sb.pretrain_generator(trainer, "selected", 1, 3e-3)
    with pytest.raises(ValueError, match="teachers"):
        sb.pretrain_generator(trainer, "paired", 1, 3e-3, (stacked, choice))

    # the selection picks, per pair, the run whose translations look like the target domain
    class Views:  # run 0 translates right (colour inversion), run 1 does nothing
        domains, max_value = ("original", "inverted"), 255.0

        def translate(self, state, images, target):
            return 1.0 - images if state == "inverts" else images

    digits = load_config("vae_digits", [])
    images = load_split(digits, digits.data.train_split, 0).images
    picked, scores = sb.select_per_pair(Views(), ["inverts", "copies"], images, size=100)
    assert picked.tolist() == [[0, 0], [0, 0]], scores
    assert all(run[0] < 0.75 < run[1] for run in scores.values()), scores
    with pytest.raises(ValueError, match="training images"):
        sb.select_per_pair(Views(), ["inverts", "copies"], images[:150], size=100)
    for bad in (["--init", "selected", "--seeds", "0-1"],
                ["--init", "selected", "--restart-seeds", "3"],
                ["--restart-steps", "-1"]):
        with pytest.raises(SystemExit):
            sb.parse_args(bad)

    # the two-sample test: chance for one distribution, near 1 for two far apart
    rng = np.random.default_rng(0)
    same = sb.two_sample_accuracy(rng.normal(size=(150, 16)), rng.normal(size=(150, 16)))
    apart = sb.two_sample_accuracy(rng.normal(size=(150, 16)),
                                   rng.normal(1.0, 1.0, size=(150, 16)))
    assert same < 0.65 and apart > 0.9, (same, apart)
