"""Evaluation protocols of generated samples, on arrays and functions.

Each protocol fixes what a reported number means (which images, how many, which feature
network, how a bandwidth is chosen) and returns the number with its protocol in one dict.
None of them knows a method or a trainer: they take samples, images in ``[0, 1]``, labels, a
feature network and an encoder as a function, so they are tested on plain arrays.

* :func:`mode_metrics` - modes captured by 2-D samples of a toy Gaussian mixture
  (VEEGAN / PacGAN's "high quality" rule, 3 std);
* :func:`parzen_metrics` - Gaussian Parzen-window log-likelihood of test images under the
  samples, the bandwidth chosen on a held-out validation set (Goodfellow et al. 2014, Table 1);
  :func:`held_out_count` checks the validation set is held out;
* :func:`classifier_sample_metrics` - FD/KD/precision-recall against a classifier's features,
  and the label accuracy of class-conditional samples;
* :class:`InceptionReference` - the standard FID/KID against the eval split, the real
  features computed once;
* :func:`encoder_nn_accuracy` - 1-nearest-neighbour accuracy in an encoder's code space
  (BiGAN, Donahue et al. 2017, Table 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from genjax.eval.modes import high_quality_probability, mode_coverage
from genjax.eval.nearest_neighbor import nearest_neighbor_accuracy
from genjax.eval.parzen import parzen_log_densities, select_parzen_bandwidth

MODE_THRESHOLD_STDS = 3.0  # "high quality": within 3 std of a centre (VEEGAN, PacGAN)
STRICT_MODE_COUNT = 20  # the stricter "captured" rule: >= 20 high-quality samples


def mode_metrics(samples: np.ndarray, centers: np.ndarray, std: float) -> dict:
    """Modes captured by ``samples`` ``(N, 2)`` of the mixture of ``centers`` with ``std``.

    Returns ``modes_captured`` (>= 1 high-quality sample), ``modes_captured_min20`` (>= 20),
    ``num_modes``, ``high_quality_fraction`` with its ceiling for a perfect model
    (``high_quality_ceiling``), and the protocol (``mode_samples``, ``mode_threshold_stds``).
    """
    cov = mode_coverage(samples, centers, std=std, threshold_stds=MODE_THRESHOLD_STDS)
    return {
        "modes_captured": cov.modes_captured,
        f"modes_captured_min{STRICT_MODE_COUNT}": int((cov.counts >= STRICT_MODE_COUNT).sum()),
        "num_modes": len(centers),
        "high_quality_fraction": cov.high_quality_fraction,
        "high_quality_ceiling": high_quality_probability(2, MODE_THRESHOLD_STDS),
        "mode_samples": len(samples),
        "mode_threshold_stds": MODE_THRESHOLD_STDS,
    }


def held_out_count(train_images: np.ndarray, validation_images: np.ndarray, *,
                   split: str, train_split: str) -> int:
    """How many validation images also occur, pixel for pixel, in the training images.

    Raises ``ValueError`` (naming both splits) when more than 1 % do: the validation set that
    chooses the Parzen bandwidth must be held out.
    """
    seen = {row.tobytes() for row in np.asarray(train_images).reshape(len(train_images), -1)}
    rows = np.asarray(validation_images).reshape(len(validation_images), -1)
    shared = sum(row.tobytes() in seen for row in rows)
    if shared > 0.01 * len(rows):
        raise ValueError(
            f"model.parzen_validation_split={split!r} is not held out: {shared} of its "
            f"{len(rows)} images are in data.train_split={train_split!r}; choose disjoint "
            "slices, e.g. train[:50000] and train[50000:51000]")
    return shared


def parzen_metrics(samples_unit: np.ndarray, test_unit: np.ndarray, validation_unit: np.ndarray,
                   *, sigmas: Sequence[float], batch_size: int) -> dict:
    """Gaussian Parzen-window log-likelihood of ``test_unit`` under ``samples_unit``.

    The protocol of Goodfellow et al. (2014), Sec. 5 and Table 1 (their ``parzen_ll.py``):
    pixels in [0, 1]; a kernel centred on each sample; the bandwidth sigma maximizes the mean
    log-likelihood of ``validation_unit`` over ``sigmas``; then the mean over the test images of
    ``log p(x)`` in nats and its standard error ``std(log p) / sqrt(M)`` (population std, as in
    ``parzen_ll.py``). Computed in blocks of ``batch_size`` points (memory ``batch * samples``
    floats).

    Returns ``parzen_log_likelihood`` (nats per example), ``parzen_log_likelihood_sem``,
    ``parzen_sigma``, the grid ``parzen_sigmas`` with its mean validation log-likelihoods
    ``parzen_validation_log_likelihoods``, and the sample, validation and test counts.
    """
    flat = lambda a: np.asarray(a, np.float32).reshape(len(a), -1)
    samples = flat(samples_unit)
    sigma, table = select_parzen_bandwidth(samples, flat(validation_unit), sigmas,
                                           batch_size=batch_size)
    ll = parzen_log_densities(samples, flat(test_unit), sigma, batch_size=batch_size)
    return {
        "parzen_log_likelihood": float(ll.mean()),
        "parzen_log_likelihood_sem": float(ll.std() / np.sqrt(len(ll))),
        "parzen_sigma": sigma,
        "parzen_sigmas": list(table),
        "parzen_validation_log_likelihoods": list(table.values()),
        "parzen_samples": len(samples),
        "parzen_test_examples": len(ll),
        "parzen_validation_examples": len(validation_unit),
    }


def classifier_sample_metrics(classifier, real_unit: np.ndarray, fake_unit: np.ndarray, *,
                              key, labels: np.ndarray | None = None) -> dict:
    """FD-<dataset>-cnn, KD and precision/recall of ``fake_unit`` against ``real_unit`` in the
    feature space of ``classifier`` (:func:`genjax.eval.features.classifier_metrics`: keys
    ``fd_<name>``, ``kd_<name>``, ``kd_<name>_std``, ``precision``, ``recall`` and their
    protocol); with ``labels`` (the classes the samples were asked for) also ``label_accuracy``,
    the share of samples the classifier assigns to their class, and ``label_accuracy_samples``."""
    from genjax.eval.features import classifier_accuracy, classifier_metrics

    out = classifier_metrics(classifier, real_unit, fake_unit, key=key)
    if labels is not None:
        out["label_accuracy"] = classifier_accuracy(classifier, fake_unit, np.asarray(labels))
        out["label_accuracy_samples"] = len(fake_unit)
    return out


class InceptionReference:
    """The standard FID/KID network (user-supplied weights) with the real images' features,
    computed once and reused by every evaluation of a run."""

    def __init__(self, weights_path: str, real_unit: np.ndarray, *, batch_size: int):
        from genjax.eval.inception import load_inception_weights

        self.network = load_inception_weights(weights_path)
        self.num_real = len(real_unit)
        self.batch_size = batch_size
        self.real_features = self.network.features(real_unit, batch_size=batch_size)

    def metrics(self, fake_unit: np.ndarray, *, key) -> dict:
        """``fid``, ``kid``, ``kid_std`` of the samples and the protocol (``fid_num_real``,
        ``fid_num_fake``, ``kid_num_subsets``, ``kid_subset_size``, ``inception_sha256``...;
        :func:`genjax.eval.inception.inception_metrics_from_features`)."""
        from genjax.eval.inception import inception_metrics_from_features

        fake = self.network.features(np.clip(fake_unit, 0.0, 1.0), batch_size=self.batch_size)
        return inception_metrics_from_features(self.real_features, fake, self.network, key=key)


def encoder_nn_accuracy(encode: Callable[[np.ndarray], np.ndarray], reference_images,
                        reference_labels, test_images, test_labels) -> dict:
    """1-NN accuracy (Euclidean) of ``encode(test_images)`` against the labelled
    ``encode(reference_images)``: ``nn_accuracy`` and the two counts."""
    acc = nearest_neighbor_accuracy(encode(reference_images), reference_labels,
                                    encode(test_images), test_labels, k=1)
    return {"nn_accuracy": acc, "nn_reference_examples": len(reference_images),
            "nn_test_examples": len(test_images)}
