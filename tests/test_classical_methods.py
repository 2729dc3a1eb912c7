"""GMM, PPCA and the linear autoencoder through `genjax train / evaluate / sample`."""

import json

import numpy as np
import pytest

from genjax.cli import main as cli_main

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
    results = json.loads((workdir / "results.json").read_text())["eval"]
    assert list((workdir / "pictures").glob("*.png"))
    assert (workdir / "config.json").exists() and (workdir / "metrics.jsonl").exists()
    # `evaluate` restores the verified checkpoint and recomputes the same numbers.
    assert cli_main(["evaluate", "--workdir", str(workdir)]) == 0
    again = json.loads((workdir / "eval.json").read_text())
    for key, value in again.items():
        if key.startswith("test_") and key in results:
            assert value == pytest.approx(results[key], rel=1e-5, abs=1e-5)
        elif key == "test_log_likelihood_nats":  # PPCA reports closed form and EM separately
            assert value == pytest.approx(results["test_closed_form_log_likelihood_nats"], rel=1e-5)
    npy = tmp_path / "s.npy"
    code = cli_main(["sample", "--workdir", str(workdir), "--num", "7", "--npy", str(npy)])
    if name == "linear_ae_digits":
        assert code == 2 and "not a generative model" in capsys.readouterr().err
    else:
        assert code == 0
        samples = np.load(npy)
        assert samples.shape == ((7, 2) if name == "gmm_toy2d" else (7, 8, 8, 1))


def test_classical_methods_refuse_other_preprocessing(tmp_path, capsys):
    args = ["train", "ppca_digits", "--workdir", str(tmp_path), "--set", "data.preprocess=symmetric"]
    assert cli_main(args) == 2
    assert "data.preprocess='symmetric'; expected 'unit'" in capsys.readouterr().err
