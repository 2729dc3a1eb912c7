"""Feature networks: a classifier restored from its checkpoint alone, and the one FD/KD assembler.

The classifier is a tiny digits CNN (4 and 8 channels, a 16-unit feature layer) trained for 20
steps with a parameter average, its data prepared in a folder of its own that is deleted before
the classifier is restored. The reference is the network a ``Trainer`` restores (the loop's own
path, which reads the training split), taken while the data still existed.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_engine import flip_bytes

import genjax.data
import genjax.data.dataset
import genjax.train.method
from genjax.data import load_dataset
from genjax.eval.features import (
    FeatureClassifier,
    FeatureNetwork,
    classifier_metrics,
    feature_distances,
    load_classifier,
)
from genjax.eval.frechet import frechet_distance_from_features
from genjax.eval.kernel_distance import kernel_inception_distance
from genjax.eval.precision_recall import precision_recall
from genjax.experiments import load_config
from genjax.train.checkpoint import CheckpointError, tree_digest
from genjax.train.loop import load_trainer, train_and_evaluate


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(workdir, reference, images)``: a classifier run with checkpoints at steps 10 and 20
    whose data folder no longer exists, the Trainer-restored classifier of step 20, and the
    test images."""
    root = tmp_path_factory.mktemp("features")
    workdir, data_dir = root / "classifier", root / "data"
    config = load_config("classifier_digits", [
        "model.conv_features=(4,8)", "model.dense=16", "train.num_steps=20",
        "train.batch_size=50", "train.checkpoint_every=10", "train.eval_every=1000",
        "train.ema_decay=0.9", "train.progress=false", f"data.data_dir={data_dir}",
    ])
    train_and_evaluate(config, workdir)
    trainer = load_trainer(workdir)  # reads the training split from data_dir
    trainer.checkpoints.close()
    reference = FeatureClassifier(trainer.method, trainer.eval_state().models["classifier"].variables,
                                  workdir=workdir, step=trainer.current_step)
    raw = tree_digest(trainer.state.models["classifier"].variables)
    images = load_dataset("digits", "test", data_dir=data_dir).images[:40] / 255.0
    shutil.rmtree(data_dir)
    return workdir, reference, raw, images


@pytest.fixture
def no_data(monkeypatch):
    """Any dataset read fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a dataset was read: {args} {kwargs}")

    for module in (genjax.data, genjax.data.dataset, genjax.train.method):
        for name in ("load_dataset", "load_split"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse)


def test_classifier_loads_without_its_dataset_and_gives_the_same_outputs(run, no_data):
    workdir, reference, raw, images = run
    clf = load_classifier(workdir)
    assert (clf.name, clf.step, clf.image_shape, clf.num_classes, clf.feature_dim) == (
        "digits-cnn", 20, (8, 8, 1), 10, 16)
    # The evaluation parameters: the average (train.ema_decay=0.9), as the Trainer evaluates.
    assert clf.sha256 == reference.sha256 != raw
    features, logits = clf.features_and_logits(images, batch_size=16)
    want_features, want_logits = reference.features_and_logits(images, batch_size=16)
    np.testing.assert_array_equal(features, want_features)
    np.testing.assert_array_equal(logits, want_logits)
    assert features.shape == (40, 16) and features.dtype == np.float32


def test_classifier_is_a_feature_network(run, no_data):
    clf = load_classifier(run[0])
    assert isinstance(clf, FeatureNetwork)
    assert clf.name == "digits-cnn" and len(clf.sha256) == 64
    assert clf.features(run[3]).shape == (40, 16)
    assert not isinstance(object(), FeatureNetwork)


def test_a_corrupted_checkpoint_is_refused(run, tmp_path, capsys):
    """Changed bytes in a step are refused: by genjax's content hash where orbax reads them back
    (orbax-checkpoint 0.12 with jax 0.10), by orbax itself where its reader checks the file
    (the newer orbax of jax 0.12 on Python 3.12); either way the step is skipped and left."""
    workdir = tmp_path / "classifier"
    shutil.copytree(run[0], workdir)
    flip_bytes(workdir / "checkpoints" / "20")
    clf = load_classifier(workdir)  # the previous intact step, the damaged one left in place
    assert clf.step == 10
    err = capsys.readouterr().err
    assert "checkpoint step 20" in err and "is unusable" in err and "left in place" in err
    assert "content hash does not match" in err or "could not be read" in err
    assert (workdir / "checkpoints" / "20").is_dir() and not (workdir / "corrupt").exists()
    # Every step damaged, in a fresh copy (a folder this process has not read: tensorstore may
    # keep the bytes of one it has read in its cache).
    damaged = tmp_path / "damaged"
    shutil.copytree(run[0], damaged)
    for step in ("10", "20"):
        flip_bytes(damaged / "checkpoints" / step)
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        load_classifier(damaged)


def test_other_workdirs_are_refused(run, tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_classifier(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"method": "vae"}))
    with pytest.raises(ValueError, match="holds a 'vae' run"):
        load_classifier(tmp_path)
    empty = tmp_path / "untrained"
    empty.mkdir()
    shutil.copy(run[0] / "config.json", empty / "config.json")
    with pytest.raises(FileNotFoundError, match="genjax train classifier_digits"):
        load_classifier(empty)


def test_a_tfds_classifier_needs_its_recorded_data_spec(run, tmp_path, no_data):
    """``tfds:`` datasets are described by their files: the spec comes from the checkpoint's
    metadata (``meta["data_spec"]``, written by every run); without it (a run saved by an older
    genjax) the error says what to do."""
    workdir = tmp_path / "classifier"
    shutil.copytree(run[0], workdir)
    saved = json.loads((workdir / "config.json").read_text())
    saved["data"]["name"] = "tfds:digits_copy"
    (workdir / "config.json").write_text(json.dumps(saved))
    metas = [workdir / "checkpoints" / step / "meta" / "metadata" for step in ("10", "20")]
    for path in metas:  # what the run recorded, then the same as an older genjax wrote it
        meta = json.loads(path.read_text())
        assert meta["data_spec"] == {"shape": [8, 8, 1], "num_bits": 8, "num_classes": 10,
                                     "name": "digits"}
        del meta["data_spec"]
        path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not record them"):
        load_classifier(workdir)
    for path in metas:
        meta = json.loads(path.read_text())
        meta["data_spec"] = {"shape": [8, 8, 1], "num_bits": 8, "num_classes": 10,
                             "name": "tfds:digits_copy"}
        path.write_text(json.dumps(meta))
    clf = load_classifier(workdir)
    assert clf.name == "tfds_digits_copy-cnn" and clf.image_shape == (8, 8, 1)
    np.testing.assert_array_equal(clf.features(run[3]), run[1].features(run[3]))


# -- the assembler -----------------------------------------------------------------------------
def _features(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)


def test_feature_distances_equal_the_metric_functions():
    f_real, f_fake = _features(0, 40), _features(1, 30) + 0.5
    out = feature_distances(f_real, f_fake, fd="fd_x", kd="kd_x", key=3, num_subsets=7,
                            subset_size=1000, pr_k=3)
    kd = kernel_inception_distance(f_real, f_fake, key=3, num_subsets=7, subset_size=30)
    pr = precision_recall(f_real, f_fake, k=3)
    assert out == {
        "fd_x": frechet_distance_from_features(f_real, f_fake), "fd_x_num_real": 40,
        "fd_x_num_fake": 30, "kd_x": kd.mean, "kd_x_std": kd.std, "kd_x_num_subsets": 7,
        "kd_x_subset_size": 30,  # capped at min(N, M)
        "precision": pr.precision, "recall": pr.recall, "pr_k": 3,
    }
    only_fd = feature_distances(f_real, f_fake, fd="fid", kd=None)
    assert only_fd == {"fid": out["fd_x"], "fid_num_real": 40, "fid_num_fake": 30}


def test_feature_distances_check_their_arguments():
    f = _features(0, 4)
    with pytest.raises(ValueError, match="key must be"):
        feature_distances(f, f, fd="fid", kd="kid")
    with pytest.raises(ValueError, match=r"more than max\(pr_k, 1\) = 3"):
        feature_distances(f[:3], f, fd="fd", kd=None, pr_k=3)
    with pytest.raises(ValueError, match="subset_size must be an int >= 1"):
        feature_distances(f, f, fd="fd", kd="kd", key=0, subset_size=0)


def test_classifier_metrics_use_the_assembler(run, no_data):
    clf = load_classifier(run[0])
    real, fake = run[3][:20], run[3][20:]
    out = classifier_metrics(clf, real, fake, key=5, kd_num_subsets=4, kd_subset_size=10)
    want = feature_distances(clf.features(real), clf.features(fake), fd="fd_digits-cnn",
                             kd="kd_digits-cnn", key=5, num_subsets=4, subset_size=10, pr_k=3)
    assert out == {**want, "classifier": "digits-cnn", "classifier_step": 20,
                   "classifier_sha256": clf.sha256}
