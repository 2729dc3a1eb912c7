"""The feature classifier: its losses, network, method, and the metrics on its features.

Everything runs on scikit-learn's 8x8 digits with a tiny network (8 and 16 channels, a
32-unit feature layer), so the whole file takes seconds on a CPU.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from genjax.data import load_dataset
from genjax.eval.features import (
    FeatureClassifier,
    classifier_accuracy,
    classifier_metrics,
    load_classifier,
)
from genjax.eval.frechet import frechet_distance_from_features
from genjax.eval.inception import load_inception_weights
from genjax.eval.kernel_distance import kernel_inception_distance
from genjax.eval.precision_recall import precision_recall
from genjax.experiments import load_config
from genjax.losses import accuracy, correct, softmax_cross_entropy
from genjax.methods.classifier import ClassifierMethod, classifier_name
from genjax.models.classifier import CNNClassifier
from genjax.train.loop import train_and_evaluate
from genjax.train.method import DataSpec

TINY = [
    "model.conv_features=(8,16)",
    "model.dense=32",
    "model.dropout_rate=0.0",
    "optim.learning_rate=3e-3",
    "train.batch_size=50",
    "train.progress=false",
    "eval.num_samples=16",
]


def _numpy_cross_entropy(logits, labels):
    """-log softmax in float64 via the max-shifted log-sum-exp."""
    z = np.asarray(logits, np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return lse - z[np.arange(len(labels)), labels]


# -- losses ------------------------------------------------------------------------------------
def test_softmax_cross_entropy_matches_numpy():
    logits = jax.random.normal(jax.random.key(0), (7, 5)) * 3.0
    labels = jnp.array([0, 4, 2, 2, 1, 3, 0])
    got = softmax_cross_entropy(logits, labels)
    assert got.shape == (7,)
    np.testing.assert_allclose(got, _numpy_cross_entropy(logits, labels), rtol=1e-5, atol=1e-6)
    # One example, two classes: -log sigmoid(l1 - l0) in closed form.
    one = softmax_cross_entropy(jnp.array([[0.3, -1.2]]), jnp.array([1]))
    np.testing.assert_allclose(one, [math.log1p(math.exp(1.5))], rtol=1e-6)
    # Uniform logits: log K nats; huge logits stay finite and exact.
    np.testing.assert_allclose(softmax_cross_entropy(jnp.zeros((3, 10)), jnp.arange(3)),
                               [math.log(10)] * 3, rtol=1e-6)
    big = softmax_cross_entropy(jnp.array([[1000.0, 0.0], [1000.0, 0.0]]), jnp.array([0, 1]))
    np.testing.assert_allclose(big, [0.0, 1000.0], atol=1e-4)


def test_softmax_cross_entropy_gradients():
    logits = jax.random.normal(jax.random.key(1), (4, 3))
    labels = jnp.array([2, 0, 1, 1])
    check_grads(lambda z: softmax_cross_entropy(z, labels), (logits,), order=1,
                modes=("fwd", "rev"), atol=1e-2, rtol=1e-2)
    # Closed form: d/dz sum_b CE_b = softmax(z) - onehot(y).
    grad = jax.grad(lambda z: jnp.sum(softmax_cross_entropy(z, labels)))(logits)
    expected = jax.nn.softmax(logits) - jax.nn.one_hot(labels, 3)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


def test_accuracy_matches_numpy_and_breaks_ties_low():
    logits = jax.random.normal(jax.random.key(2), (50, 4))
    labels = jax.random.randint(jax.random.key(3), (50,), 0, 4)
    expected = np.mean(np.argmax(np.asarray(logits), 1) == np.asarray(labels))
    assert float(accuracy(logits, labels)) == pytest.approx(expected, abs=1e-7)
    tied = jnp.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]])
    assert float(accuracy(tied, jnp.array([0, 1]))) == 1.0
    per_row = np.asarray(correct(logits, labels))
    assert per_row.dtype == np.float32 and per_row.shape == (50,)
    np.testing.assert_array_equal(per_row, np.argmax(np.asarray(logits), 1) == np.asarray(labels))
    np.testing.assert_array_equal(correct(tied, jnp.array([0, 2])), [1.0, 0.0])  # ties: lowest


@pytest.mark.parametrize("fn", [softmax_cross_entropy, accuracy, correct])
@pytest.mark.parametrize(
    "logits, labels, match",
    [
        (np.zeros((4, 3), np.float32), np.zeros((3,), np.int32), "labels must have shape"),
        (np.zeros((4,), np.float32), np.zeros((4,), np.int32), "logits must have 2 axes"),
        (np.zeros((4, 3), np.int32), np.zeros((4,), np.int32), "logits must be a floating"),
        (np.zeros((4, 3), np.float32), np.zeros((4,), np.float32), "labels must be an integer"),
        (np.zeros((4, 3), np.float32), np.zeros((4, 1), np.int32), "labels must have shape"),
    ],
)
def test_losses_reject_bad_input(fn, logits, labels, match):
    with pytest.raises(ValueError, match=match):
        fn(logits, labels)


# -- the network -----------------------------------------------------------------------------
def test_cnn_features_logits_and_dropout():
    module = CNNClassifier(num_classes=10, conv_features=(4, 8), dense=16, dropout_rate=0.5)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(3, 8, 8, 1)), jnp.float32)
    # Random parameters of the right shapes (compiling flax's init takes ~10 s on this CPU).
    shapes = jax.eval_shape(module.init, jax.random.key(1), x)
    variables = jax.tree.map(
        lambda s: jnp.asarray(rng.normal(0.0, 0.5, s.shape), jnp.float32), shapes)
    feats, logits = module.apply(variables, x, method=CNNClassifier.features_and_logits)
    assert logits.shape == (3, 10) and feats.shape == (3, 16)
    np.testing.assert_allclose(module.apply(variables, x), logits, rtol=1e-6)
    np.testing.assert_allclose(module.apply(variables, x, method=CNNClassifier.features), feats)
    assert np.all(np.asarray(feats) >= 0)  # post-ReLU
    # The head is an affine map of the features.
    head = variables["params"]["logits"]
    np.testing.assert_allclose(feats @ head["kernel"] + head["bias"], logits, rtol=1e-5, atol=1e-6)
    # Dropout acts in training only, with the "dropout" rng.
    a = module.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)})
    b = module.apply(variables, x, train=True, rngs={"dropout": jax.random.key(3)})
    assert not np.allclose(a, b) and not np.allclose(a, logits)


@pytest.mark.parametrize("shape, flat", [((8, 8, 1), 2 * 2 * 8), ((28, 28, 1), 7 * 7 * 8),
                                         ((7, 7, 1), 2 * 2 * 8), ((32, 32, 3), 8 * 8 * 8)])
def test_cnn_shapes(shape, flat):
    """Shapes only (jax.eval_shape: nothing is compiled): two SAME 2x2 pools, ceil(H / 4)."""
    module = CNNClassifier(num_classes=10, conv_features=(4, 8), dense=16)
    x = jax.ShapeDtypeStruct((3, *shape), jnp.float32)
    variables = jax.eval_shape(module.init, jax.random.key(1), x)
    assert variables["params"]["features"]["kernel"].shape == (flat, 16)
    feats, logits = jax.eval_shape(
        lambda v, x: module.apply(v, x, method=CNNClassifier.features_and_logits), variables, x)
    assert feats.shape == (3, 16) and logits.shape == (3, 10)


def test_cnn_rejects_bad_input():
    module = CNNClassifier(num_classes=3, conv_features=(4,), dense=8)
    with pytest.raises(ValueError, match=r"x must be images \(B, H, W, C\)"):
        module.init(jax.random.key(0), jnp.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        CNNClassifier(num_classes=1).init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))


# -- the method ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, num_bits", [("unit", 8), ("symmetric", 8), ("unit", 1)])
def test_inputs_from_unit_images_match_preprocessed_pixels(mode, num_bits):
    """Samples in [0, 1] reach the network exactly as the training pixels did."""
    config = load_config("classifier_digits", [f"data.preprocess={mode}"])
    spec = DataSpec(shape=(8, 8, 1), num_bits=num_bits, num_classes=10, name="digits")
    method = ClassifierMethod(config, spec)
    top = 2**num_bits - 1
    pixels = np.random.default_rng(0).integers(0, top + 1, (4, 8, 8, 1)).astype(np.uint8)
    np.testing.assert_allclose(method.inputs_from_unit(pixels / top), method.prepare(pixels),
                               atol=1e-6)


def test_method_refuses_bad_configs():
    config = load_config("classifier_digits", TINY)
    spec = DataSpec(shape=(8, 8, 1), num_bits=8, num_classes=10, name="digits")
    with pytest.raises(ValueError, match="data.preprocess"):
        ClassifierMethod(load_config("classifier_digits", ["data.preprocess=binarize_dynamic"]),
                         spec)
    unlabelled = DataSpec(shape=(8, 8, 1), num_bits=8, num_classes=None, name="x")
    with pytest.raises(ValueError, match="labelled dataset"):
        ClassifierMethod(config, unlabelled)
    assert classifier_name("mnist") == "mnist-cnn"
    assert classifier_name("tfds:svhn_cropped:3.0.0") == "tfds_svhn_cropped_3_0_0-cnn"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny classifier trained on the digits for 300 steps (10 epochs), in a workdir.

    Train losses are logged every 10 steps and the eval split is scored every 60 steps.
    """
    workdir = tmp_path_factory.mktemp("classifier_digits")
    config = load_config(
        "classifier_digits",
        TINY + ["train.num_steps=300", "train.log_every=10", "train.eval_every=60",
                "train.checkpoint_every=300"],
    )
    summary = train_and_evaluate(config, workdir)
    rows = [json.loads(r) for r in (workdir / "metrics.jsonl").read_text().splitlines()]
    return workdir, summary, load_classifier(workdir), rows


def _at(rows, split, step):
    return next(r for r in rows if r["split"] == split and r["step"] == step)


def test_a_few_steps_reduce_the_loss(trained):
    rows = trained[3]
    # At initialisation the cross-entropy is near log 10 = 2.30 nats; after 60 Adam steps
    # (2 epochs) it is about 0.7 nats (measured), so halving it leaves a wide margin.
    assert _at(rows, "train", 60)["loss"] < 0.5 * _at(rows, "train", 10)["loss"]
    assert _at(rows, "eval", 60)["nll_nats"] < 0.5 * math.log(10)
    assert _at(rows, "eval", 300)["nll_nats"] < _at(rows, "eval", 60)["nll_nats"]


def test_training_reaches_high_accuracy(trained):
    workdir, summary, _, _ = trained
    ev = summary["eval"]
    # The full-size digits classifier reaches >= 0.99; this 8/16-channel one > 0.9 in 300 steps.
    assert ev["accuracy"] > 0.9
    assert ev["num_examples"] == 300 and ev["classifier"] == "digits-cnn"
    for p in summary["pictures"]:  # only misclassified images, each listed with its labels
        assert (workdir / "pictures").joinpath(p.split("/")[-1]).exists()


def test_evaluate_matches_a_direct_computation(trained):
    workdir, summary, clf, _ = trained
    test = load_dataset("digits", "test")
    variables = clf.variables
    module = clf.method.module
    logits = module.apply(variables, jnp.asarray(test.images, jnp.float32) / 255.0)
    ce = _numpy_cross_entropy(logits, test.labels)
    predicted = np.argmax(np.asarray(logits), 1)
    assert summary["eval"]["nll_nats"] == pytest.approx(ce.mean(), rel=1e-5)
    assert summary["eval"]["accuracy"] == pytest.approx(np.mean(predicted == test.labels))
    wrong = np.flatnonzero(predicted != test.labels)[:16]
    listing = workdir / "pictures" / "misclassified_00000300.json"
    if len(wrong):
        rows = json.loads(listing.read_text())
        assert [r["index"] for r in rows] == wrong.tolist()
        assert [r["predicted"] for r in rows] == predicted[wrong].tolist()
    else:
        assert not listing.exists()


def test_features_shape_and_batch_independence(trained):
    _, _, clf, _ = trained
    x = load_dataset("digits", "test").images[:23] / 255.0
    f = clf.features(x)
    assert f.shape == (23, 32) and f.dtype == np.float32 and clf.feature_dim == 32
    np.testing.assert_allclose(clf.features(x, batch_size=5), f, rtol=1e-5, atol=1e-6)
    assert clf.logits(x).shape == (23, 10)


def test_frechet_distance_separates_classes(trained):
    _, _, clf, _ = trained
    train = load_dataset("digits", "train")
    x = train.images / 255.0
    zeros, ones = x[train.labels == 0], x[train.labels == 1]
    same = classifier_metrics(clf, zeros, zeros, kd_num_subsets=10)
    scale = np.trace(np.cov(clf.features(zeros).T))
    assert abs(same["fd_digits-cnn"]) <= 1e-6 * scale
    assert same["precision"] == 1.0 and same["recall"] == 1.0
    half = len(zeros) // 2
    within = classifier_metrics(clf, zeros[:half], zeros[half:], kd_num_subsets=10)
    across = classifier_metrics(clf, zeros, ones, kd_num_subsets=10)
    # Two halves of class 0 differ only by sampling noise; class 0 vs class 1 by far more.
    assert across["fd_digits-cnn"] > 0 and across["fd_digits-cnn"] > 5 * within["fd_digits-cnn"]
    assert across["kd_digits-cnn"] > 5 * abs(within["kd_digits-cnn"])


def test_classifier_metrics_equal_the_eval_functions_on_direct_features(trained):
    _, _, clf, _ = trained
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    real, fake = train.images[:200] / 255.0, test.images[:150] / 255.0
    out = classifier_metrics(clf, real, fake, key=7, kd_num_subsets=20, kd_subset_size=100)
    variables = clf.variables

    def feats(x):
        return clf.method.module.apply(variables, jnp.asarray(x, jnp.float32),
                                        method=CNNClassifier.features)

    f_real, f_fake = feats(real), feats(fake)
    kd = kernel_inception_distance(f_real, f_fake, key=7, num_subsets=20, subset_size=100)
    pr = precision_recall(f_real, f_fake, k=3)
    assert out["fd_digits-cnn"] == pytest.approx(frechet_distance_from_features(f_real, f_fake),
                                                 rel=1e-4)
    assert out["kd_digits-cnn"] == pytest.approx(kd.mean, rel=1e-4, abs=1e-6)
    assert out["kd_digits-cnn_std"] == pytest.approx(kd.std, rel=1e-4, abs=1e-6)
    assert (out["precision"], out["recall"]) == pytest.approx((pr.precision, pr.recall))
    assert (out["fd_digits-cnn_num_real"], out["fd_digits-cnn_num_fake"],
            out["kd_digits-cnn_num_subsets"], out["kd_digits-cnn_subset_size"], out["pr_k"]) == (
        200, 150, 20, 100, 3)
    assert out["classifier"] == "digits-cnn" and out["classifier_step"] == 300
    assert out["classifier_sha256"] == clf.sha256 and len(clf.sha256) == 64


def test_classifier_accuracy_matches_a_direct_computation(trained):
    workdir, _, clf, _ = trained
    test = load_dataset("digits", "test")
    x = test.images / 255.0
    labels = np.random.default_rng(0).integers(0, 10, len(x)).astype(np.int32)
    labels[:150] = test.labels[:150]  # half true labels, half random: accuracy ~0.55
    logits = clf.method.module.apply(clf.variables, jnp.asarray(x, jnp.float32))
    expected = float(np.mean(np.argmax(np.asarray(logits), 1) == labels))
    assert 0.3 < expected < 0.9
    assert classifier_accuracy(clf, x, labels, batch_size=64) == pytest.approx(expected)


def test_feature_functions_reject_bad_input(trained):
    workdir, _, clf, _ = trained
    x = load_dataset("digits", "test").images[:10]
    with pytest.raises(ValueError, match="images must be floats in"):
        clf.features(x)  # uint8
    with pytest.raises(ValueError, match=r"shape \(N, 8, 8, 1\)"):
        clf.features(np.zeros((10, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        clf.features(np.full((2, 8, 8, 1), -0.5, np.float32))
    with pytest.raises(ValueError, match="finite"):
        clf.features(np.full((2, 8, 8, 1), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        classifier_accuracy(clf, x / 255.0, np.full(10, 10))
    with pytest.raises(ValueError, match=r"labels must have shape \(10,\)"):
        classifier_accuracy(clf, x / 255.0, np.zeros(9, np.int32))
    with pytest.raises(ValueError, match="more than"):
        classifier_metrics(clf, x[:3] / 255.0, x / 255.0)
    with pytest.raises(TypeError, match="classifier must be"):
        classifier_accuracy(3, x / 255.0, np.zeros(10, np.int32))


def test_sample_is_refused(trained):
    _, _, clf, _ = trained
    with pytest.raises(ValueError, match="not a generative model"):
        clf.method.sample(None, jax.random.key(0), 4)


def test_inception_path_gives_a_clear_error(tmp_path):
    """The Inception feature network's loader (tests/test_inception.py covers the network)."""
    with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05-6726825d.pth"):
        load_inception_weights(tmp_path / "pt_inception-2015-12-05.npz")
    with pytest.raises(FileNotFoundError, match="inception-2015-12-05"):
        load_inception_weights(None)
    present = tmp_path / "weights.npz"
    np.savez(present, w=np.zeros(3))
    with pytest.raises(ValueError, match="missing 470 of the 470 Inception weights"):
        load_inception_weights(present)


@pytest.mark.parametrize("name, dataset", [("classifier_digits", "digits"),
                                           ("classifier_mnist", "mnist"),
                                           ("classifier_fashion_mnist", "fashion_mnist")])
def test_experiment_configs_load(name, dataset):
    config = load_config(name)
    assert config.method == "classifier" and config.data.name == dataset
    assert config.data.preprocess == "unit"
    assert isinstance(FeatureClassifier, type)


def test_softmax_cross_entropy_of_bfloat16_logits_is_float32():
    # bfloat16 logits (a classifier run under train.compute_dtype=bfloat16) are cast up first:
    # float32 results equal, bit for bit, those of the float32 logits of the same values.
    logits = (jax.random.normal(jax.random.key(3), (6, 4)) * 3.0).astype(jnp.bfloat16)
    labels = jnp.array([0, 3, 2, 1, 1, 0])
    got = softmax_cross_entropy(logits, labels)
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(got, softmax_cross_entropy(logits.astype(jnp.float32), labels))
    assert accuracy(logits, labels) == accuracy(logits.astype(jnp.float32), labels)
