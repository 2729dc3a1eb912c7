"""The sample-based evaluation of a generative model: the configured protocols on its sampler.

A method exposes what its model can do: a sampler ``sample(key, num, labels)`` returning images
in ``[0, 1]`` ``(num, H, W, C)`` or points ``(num, D)``, and where the model has one an encoder
``encode(images)`` of stored images. :class:`SampleEvaluation` runs on them the protocols that
a :class:`SampleMetricsConfig` (the sample-metric fields of a model section) enables, and
returns every number with its protocol in one dict:

* points of a toy mixture (``ring``, ``grid``): modes captured and the high-quality share of
  ``metric_samples`` samples (:func:`~genjax.eval.sample_metrics.mode_metrics`, 3 std);
* images, with ``classifier_workdir`` (a ``genjax train classifier_<dataset>`` run):
  FD-<dataset>-cnn, KD and improved precision/recall of ``metric_samples`` samples against the
  eval split, and for a class-conditional sampler the classifier's accuracy on samples of the
  requested class (:func:`~genjax.eval.sample_metrics.classifier_sample_metrics`);
* images, with ``inception_weights`` (the FID Inception-v3, converted by the user): the
  standard FID and KID against the eval split (:class:`~genjax.eval.sample_metrics.
  InceptionReference`, the real features computed once per run);
* images, with ``parzen_validation_split``: the Parzen-window log-likelihood of the eval split,
  the bandwidth chosen on that held-out split (Goodfellow et al. 2014, Table 1;
  :func:`~genjax.eval.sample_metrics.parzen_metrics`);
* with an encoder: 1-nearest-neighbour accuracy of the eval images in code space, the training
  split as the labelled reference (Donahue et al. 2017, Table 1).

A protocol that is off, or does not apply to the data, reports why in place of its numbers
(``feature_metrics``, ``fid``, ``parzen``, ``mode_coverage``, ``nn_accuracy``: ``"skipped: ..."``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np

from genjax.data.toy import toy_centers
from genjax.eval.sample_metrics import (
    InceptionReference,
    classifier_sample_metrics,
    encoder_nn_accuracy,
    held_out_count,
    mode_metrics,
    parzen_metrics,
)
from genjax.train.config import AtLeast, ConfigValueError, Each, Number, Rule, Text, need

TOY_MIXTURES = ("ring", "grid")  # toy datasets with known modes (genjax.data.toy)
# Goodfellow et al. (2014)'s bandwidth grid, np.logspace(-1, 0, 10) (pixels in [0, 1]).
PARZEN_SIGMAS = tuple(float(s) for s in np.logspace(-1.0, 0.0, 10))

Sampler = Callable[[jax.Array, int, np.ndarray | None], np.ndarray]
Encoder = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class SampleMetricsConfig:
    """The sample-based protocols a run reports; a base of a method's model section, so that
    its fields are set as ``model.<field>`` (e.g. ``--set model.classifier_workdir=DIR``).

    Attributes:
      classifier_workdir: workdir of a ``genjax train classifier_<dataset>`` run on the same
        dataset; enables FD-<dataset>-cnn, KD, precision/recall and (conditional) label
        accuracy. Empty: those metrics are skipped, with the reason reported.
      inception_weights: path of the FID Inception-v3 weights (``.npz`` converted from
        pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, see
        :mod:`genjax.eval.inception`); enables the standard FID and KID of ``metric_samples``
        samples against the eval split. Empty: skipped, with the reason reported. Costly
        without an accelerator (~0.2 s per image on 2 CPU cores).
      metric_samples: generated samples per sample-based metric (mode coverage, FD, KD,
        precision/recall, label accuracy, Parzen kernel centres); the real reference is the
        eval split (all of it, or ``eval.max_examples``).
      parzen_validation_split: images only. A TFDS split of held-out training data (e.g.
        ``train[50000:51000]`` with ``data.train_split=train[:50000]``) on which the Parzen
        bandwidth is chosen; enables the Parzen-window log-likelihood of the eval split. Empty:
        skipped (it costs ``(validation + eval examples) * metric_samples * pixels`` flops).
      parzen_sigmas: the bandwidth grid (pixels in [0, 1]); default ``np.logspace(-1, 0, 10)``
        as in Goodfellow et al.'s ``parzen_ll.py``.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "classifier_workdir": Text(note="empty: no classifier metrics"),
        "inception_weights": Text(note="empty: no FID"),
        "metric_samples": AtLeast(minimum=4),
        "parzen_validation_split": Text(note="empty: no Parzen estimate"),
        "parzen_sigmas": Each(element=Number(low=0.0, open_low=True), min_len=1),
    }

    classifier_workdir: str = ""
    inception_weights: str = ""
    metric_samples: int = 10000
    parzen_validation_split: str = ""
    parzen_sigmas: tuple[float, ...] = PARZEN_SIGMAS

    def check_protocols(self) -> None:
        """Relations that need no data: the Inception weights file exists when named."""
        if self.inception_weights and not Path(self.inception_weights).is_file():
            from genjax.eval.inception import INCEPTION_REFERENCE

            raise ConfigValueError(
                f"model.inception_weights={self.inception_weights!r}; expected a file: FID "
                f"needs {INCEPTION_REFERENCE}")

    def check_protocol_data(self, name: str, *, points: bool) -> None:
        """Relations to the data: FID is for images, not for the points of dataset ``name``."""
        if self.inception_weights:
            need(not points, "model.inception_weights", self.inception_weights,
                 f"empty: FID is for images; dataset {name!r} holds points")


def unit_images(dataset, num: int = 0) -> np.ndarray:
    """The first ``num`` (0: all) stored images of ``dataset`` as float32 in [0, 1]."""
    images = dataset.images[:num] if num else dataset.images
    return images.astype(np.float32) / float(2**dataset.num_bits - 1)


class SampleEvaluation:
    """The sample protocols of one run, holding what they load once: the feature classifier,
    the Inception features of the real images, the Parzen validation split (checked held out)
    and the 1-NN reference set.

    Args:
      protocols: which protocols run, on how many samples (a :class:`SampleMetricsConfig`).
      data: the run's ``DataConfig`` (``train_split`` / ``max_train_examples`` for the
        references, ``data_dir`` / ``manual_dir`` for the classifier's dataset).
      load_split: ``load_split(split, max_examples) -> ArrayDataset`` of the run's dataset
        (``max_examples`` 0: all).
      batch_size: rows per batch of the Parzen and Inception computations (``eval.batch_size``).
      num_classes: classes of a class-conditional sampler (0: unconditional). The requested
        classes cycle ``0, 1, ..., num_classes - 1`` over the samples.
    """

    def __init__(self, protocols: SampleMetricsConfig, data: Any, *,
                 load_split: Callable[[str, int], Any], batch_size: int, num_classes: int = 0):
        self.protocols = protocols
        self.data = data
        self.load_split = load_split
        self.batch_size = int(batch_size)
        self.num_classes = int(num_classes)
        self.classifier = None  # FeatureClassifier, loaded on first use
        self.inception: InceptionReference | None = None  # the real images' features, once
        self._parzen_validation = None  # (validation split, images shared with train)
        self._nn_reference = None

    def __call__(self, sample: Sampler, dataset, *, sample_key: jax.Array,
                 metric_key: jax.Array, encode: Encoder | None = None) -> dict[str, Any]:
        """The enabled protocols on ``metric_samples`` samples of ``sample`` against ``dataset``.

        Args:
          sample: ``sample(key, num, labels)``: ``num`` images in [0, 1] or points; ``labels``
            (the requested classes, int ``(num,)``) is ``None`` for an unconditional sampler.
          dataset: the eval split (a :class:`genjax.data.ArrayDataset`).
          sample_key: draws the samples.
          metric_key: the random subsets of KD (and of KID, from ``fold_in(metric_key, 1)``).
          encode: ``encode(images) -> codes (N, d)`` of stored images (as ``dataset.images``
            holds them); enables the 1-NN accuracy.
        """
        num = self.protocols.metric_samples
        labels = np.arange(num) % self.num_classes if self.num_classes else None
        samples = np.asarray(sample(sample_key, num, labels))
        if dataset.num_bits == 0:  # continuous points
            out = self.mode_metrics(samples, dataset.name)
            out["parzen"] = "skipped: the Parzen-window estimate is for images (pixels in [0, 1])"
        else:
            out = {**self.classifier_metrics(samples, labels, dataset, metric_key),
                   **self.inception_metrics(samples, dataset, jax.random.fold_in(metric_key, 1)),
                   **self.parzen_metrics(samples, dataset)}
        if encode is not None:
            out.update(self.nn_accuracy(encode, dataset))
        return out

    def mode_metrics(self, points: np.ndarray, name: str) -> dict[str, Any]:
        """Mode coverage of ``points`` on the toy mixture ``name``; a skip reason for others."""
        if name not in TOY_MIXTURES:
            return {"mode_coverage": f"skipped: {name!r} is not a Gaussian mixture with known "
                                     f"modes ({', '.join(TOY_MIXTURES)})"}
        return mode_metrics(points, *toy_centers(name))

    def classifier_metrics(self, fake_unit: np.ndarray, labels: np.ndarray | None, dataset,
                           key: jax.Array) -> dict[str, Any]:
        """FD/KD/precision-recall (and label accuracy) in the ``classifier_workdir`` run's
        features, the first ``metric_samples`` eval images as the reference; or why not."""
        path = self.protocols.classifier_workdir
        if not path:
            return {"feature_metrics": "skipped: no classifier configured; set "
                    "model.classifier_workdir to the workdir of `genjax train "
                    f"classifier_{self.data.name}` for FD-{self.data.name}-cnn, KD, "
                    "precision/recall" + (" and label accuracy" if self.num_classes else "")}
        if self.classifier is None:
            from genjax.eval.features import load_classifier_for

            self.classifier = load_classifier_for(path, self.data, dataset.shape)
        real = unit_images(dataset, min(len(dataset), self.protocols.metric_samples))
        out = classifier_sample_metrics(self.classifier, real, fake_unit, key=key, labels=labels)
        return {**out, "reference_split": dataset.split}

    def inception_metrics(self, fake_unit: np.ndarray, dataset, key: jax.Array) -> dict:
        """Standard FID / KID (``inception_weights``) of the samples vs the eval split."""
        path = self.protocols.inception_weights
        if not path:
            return {"fid": "skipped: set model.inception_weights to the converted FID "
                           "Inception-v3 weights (python -m genjax.eval.inception convert)"}
        m = min(len(dataset), self.protocols.metric_samples)
        if self.inception is None or self.inception.num_real != m:
            self.inception = InceptionReference(path, unit_images(dataset, m),
                                                batch_size=self.batch_size)
        out = self.inception.metrics(fake_unit, key=key)
        return {**out, "fid_reference_split": dataset.split}

    def parzen_metrics(self, fake_unit: np.ndarray, dataset) -> dict[str, Any]:
        """The Parzen-window log-likelihood of ``dataset`` under the samples, the bandwidth
        chosen on ``parzen_validation_split`` over ``parzen_sigmas``; or why not.

        Raises ``ValueError`` for an empty validation split, one of other images, or one that
        is not held out from ``data.train_split`` (:func:`held_out_count`).
        """
        split = self.protocols.parzen_validation_split
        if not split:
            return {"parzen": "skipped: no held-out validation split to choose the bandwidth on; "
                    "set model.parzen_validation_split (e.g. train[50000:51000] with "
                    "data.train_split=train[:50000])"}
        if self._parzen_validation is None:
            validation = self.load_split(split, 0)
            if not len(validation):
                raise ValueError(f"model.parzen_validation_split={split!r} is empty for dataset "
                                 f"{self.data.name!r}: name a non-empty held-out slice")
            if tuple(validation.shape) != tuple(dataset.shape):
                raise ValueError(
                    f"model.parzen_validation_split={split!r} holds {validation.shape} images, "
                    f"the evaluated data {tuple(dataset.shape)}: name a split of the same dataset")
            train = self.load_split(self.data.train_split, self.data.max_train_examples)
            shared = held_out_count(train.images, validation.images, split=split,
                                    train_split=self.data.train_split)
            self._parzen_validation = validation, shared
        validation, shared = self._parzen_validation
        out = parzen_metrics(fake_unit, unit_images(dataset), unit_images(validation),
                             sigmas=self.protocols.parzen_sigmas, batch_size=self.batch_size)
        return {**out, "parzen_test_split": dataset.split, "parzen_validation_split": split,
                "parzen_validation_in_train": shared}

    def nn_accuracy(self, encode: Encoder, dataset) -> dict[str, Any]:
        """1-NN accuracy (Euclidean) of ``encode(dataset.images)``, the training split
        (``data.train_split``, ``data.max_train_examples``) as the labelled reference."""
        if dataset.labels is None:
            return {"nn_accuracy": f"skipped: dataset {dataset.name!r} has no labels"}
        if self._nn_reference is None:
            self._nn_reference = self.load_split(self.data.train_split,
                                                 self.data.max_train_examples)
        ref = self._nn_reference
        return encoder_nn_accuracy(encode, ref.images, ref.labels, dataset.images,
                                   dataset.labels)
