"""GMM, PPCA and the linear autoencoder through `genjax train / evaluate / sample`."""

import json

import numpy as np
import pytest
from tensorboard_events import read_events

from genjax.cli import main as cli_main
from genjax.experiments import load_config
from genjax.train.checkpoint import read_meta
from genjax.train.loop import train_and_evaluate
from genjax.train.metrics import read_metrics
from genjax.train.workdir import ConfigChangeError

FAST = {
    "gmm_toy2d": ["model.num_restarts=1", "model.max_iters=30"],
    "gmm_digits": ["model.num_restarts=1", "model.max_iters=10"],
    "ppca_digits": ["model.max_iters=50"],
    "linear_ae_digits": ["model.steps=200"],
}


@pytest.mark.parametrize("name", sorted(FAST))
def test_train_evaluate_sample(name, tmp_path, capsys):
    workdir = tmp_path / name
    args = ["train", name, "--workdir", str(workdir)]
    for item in FAST[name]:
        args += ["--set", item]
    assert cli_main(args) == 0
    summary = json.loads((workdir / "results.json").read_text())
    assert list(summary) == ["status", "step", "eval", "pictures"] and summary["step"] == 0
    results = summary["eval"]
    assert list((workdir / "pictures").glob("*.png"))
    assert (workdir / "config.json").exists() and (workdir / "metrics.jsonl").exists()
    # The engine wrote the fit's iterations as train rows, then the evaluation, and one
    # verified checkpoint holding the fit's report.
    assert read_metrics(workdir, "train") and read_metrics(workdir, "eval")[-1]["step"] == 0
    assert read_meta(workdir)["fit"]["model"] == results["model"]
    # TensorBoard, through the same MetricWriter: the fit's curve, the metrics, every picture.
    events = read_events(workdir / "tensorboard")
    assert {f"pictures/{p.stem}" for p in (workdir / "pictures").glob("*.png")} == set(
        events["images"])
    assert any(tag.startswith("train/") for tag in events["scalars"])
    assert "eval/test_reconstruction_error" in events["scalars"] or any(
        tag.startswith("eval/test_") and tag.endswith("log_likelihood_nats")
        for tag in events["scalars"])
    # `evaluate` restores the verified checkpoint and recomputes the same numbers; the fit's
    # report (iterations, seconds) comes back from the checkpoint.
    assert cli_main(["evaluate", "--workdir", str(workdir)]) == 0
    again = json.loads((workdir / "eval_00000000.json").read_text())
    assert again.pop("step") == 0 and list(again) == list(results)
    for key, value in results.items():
        if isinstance(value, float):
            assert again[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
        else:
            assert again[key] == value, key
    npy = tmp_path / "s.npy"
    code = cli_main(["sample", "--workdir", str(workdir), "--num", "7", "--npy", str(npy)])
    if name == "linear_ae_digits":
        assert code == 2 and "not a generative model" in capsys.readouterr().err
    else:
        assert code == 0
        samples = np.load(npy)
        assert samples.shape == ((7, 2) if name == "gmm_toy2d" else (7, 8, 8, 1))
        assert (workdir / "pictures" / "sample_cli_00000000.png").exists()


def test_a_fitted_workdir_is_evaluated_again_without_refitting(tmp_path):
    config = load_config("gmm_toy2d", FAST["gmm_toy2d"])
    first = train_and_evaluate(config, tmp_path)
    train_rows = len(read_metrics(tmp_path, "train"))
    again = train_and_evaluate(config, tmp_path)
    assert again == first  # the fit's report (its seconds too) is read back, not measured anew
    assert len(read_metrics(tmp_path, "train")) == train_rows
    assert len(read_metrics(tmp_path, "eval")) == 2
    with pytest.raises(ConfigChangeError, match=r"model\.num_components: 5 -> 4"):
        train_and_evaluate(load_config("gmm_toy2d", [*FAST["gmm_toy2d"],
                                                     "model.num_components=4"]), tmp_path)


def test_classical_methods_refuse_other_preprocessing(tmp_path, capsys):
    args = ["train", "ppca_digits", "--workdir", str(tmp_path), "--set", "data.preprocess=symmetric"]
    assert cli_main(args) == 2
    assert "data.preprocess='symmetric'; expected 'unit'" in capsys.readouterr().err
