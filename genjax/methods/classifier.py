"""The per-dataset feature classifier: a small CNN trained by cross-entropy.

It is not a generative model. It exists to evaluate generative models on datasets where the
Inception-v3 network of the FID recipe does not fit (8x8 and 28x28 grey digits):

* its feature layer gives the Frechet distance ("FD-<dataset>-cnn", e.g. "FD-mnist-cnn";
  never called FID), the kernel distance ("KD-<dataset>-cnn") and improved precision/recall
  between real and generated images (:mod:`genjax.eval.features`);
* its predictions give the label accuracy of class-conditional samples and the domain /
  label preservation of translated images (:func:`genjax.eval.features.classifier_accuracy`).

The objective, top to bottom:

    x = preprocess(pixels)             data.preprocess: "unit" ([0, 1]) or "symmetric" ([-1, 1])
    logits = CNN(x)                    dropout on the feature layer in training only
    loss = mean_batch softmax_cross_entropy(logits, y)    nats (Bishop 2006, Eq. 4.108)

Evaluation reports, on the eval split, the accuracy and the mean negative log-likelihood
``-log p(y|x)`` in nats per example. ``sample`` is refused (there is nothing to sample);
``write_pictures`` writes a grid of the misclassified eval images.

Feature-based numbers depend on the trained weights: compare FD / KD values only when they
come from the same classifier checkpoint (genjax reports its content hash with them).

Precision: training computes in ``train.compute_dtype`` (float32 parameters, float32 loss).
Inference - the features and logits behind FD / KD / precision-recall, label accuracy and this
method's own ``evaluate`` - always computes in float32, whatever dtype the classifier was
trained in: the classifier is a measuring instrument, and one checkpoint (one content hash)
must give one set of features.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import BatchIterator, preprocess
from genjax.eval.images import picture_path, save_image_grid
from genjax.eval.likelihood import dataset_means
from genjax.losses import accuracy, correct, softmax_cross_entropy
from genjax.models.classifier import CNNClassifier
from genjax.train.config import AtLeast, Each, Number, Rule, need, need_preprocess
from genjax.train.method import Method, register
from genjax.train.optim import make_optimizer
from genjax.train.precision import compute_dtype
from genjax.train.state import ModelState, TrainState, apply_gradients

INPUT_MODES = ("unit", "symmetric")
"""``data.preprocess`` modes a classifier may use: deterministic maps of [0, 1] images."""


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of the feature classifier (:class:`genjax.models.classifier.CNNClassifier`).

    The input convention is ``data.preprocess`` (``unit`` or ``symmetric``); feature extraction
    maps images in [0, 1] to the same convention.

    Attributes:
      conv_features: channels of the conv-ReLU-pool stages.
      dense: width of the feature layer (the dimension of the FD / KD feature space).
      dropout_rate: dropout on the feature layer in training; 0 disables it.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "conv_features": Each(element=AtLeast(), min_len=1),
        "dense": AtLeast(),
        "dropout_rate": Number(low=0.0, high=1.0, open_high=True, note="0: no dropout"),
    }

    conv_features: tuple[int, ...] = (32, 64)
    dense: int = 128
    dropout_rate: float = 0.0


def classifier_name(dataset: str) -> str:
    """The name under which a classifier's metrics are reported: ``"<dataset>-cnn"``.

    Characters other than letters, digits and ``_`` become ``_`` (``"tfds:svhn_cropped:3.0.0"``
    gives ``"tfds_svhn_cropped_3_0_0-cnn"``), so the name can be part of a metric key.
    """
    return re.sub(r"[^A-Za-z0-9_]+", "_", dataset).strip("_") + "-cnn"


@register
class ClassifierMethod(Method):
    """Trains :class:`CNNClassifier` on a labelled dataset; evaluates accuracy and NLL."""

    name = "classifier"
    model_config = ClassifierConfig

    @classmethod
    def check_model(cls, config):
        need_preprocess(config.data, INPUT_MODES,
                        "(the classifier needs a deterministic input convention)", eval_same=True)

    @classmethod
    def check_data(cls, config, data):
        need(len(data.shape) == 3 and data.num_bits >= 1, "data.name", data.name,
             f"an image dataset (H, W, C); it holds {data.shape} values")
        need((data.num_classes or 0) >= 2, "data.name", data.name,
             f"a labelled dataset with >= 2 classes; it has num_classes={data.num_classes}")

    def __init__(self, config, data):
        super().__init__(config, data)
        cfg: ClassifierConfig = config.model
        self.module = CNNClassifier(
            num_classes=data.num_classes,
            conv_features=tuple(cfg.conv_features),
            dense=cfg.dense,
            dropout_rate=cfg.dropout_rate,
            dtype=compute_dtype(config),
        )
        self.tx = make_optimizer(config.optim, config.train.num_steps)
        self.classifier_name = classifier_name(data.name)
        # Inference in float32 whatever train.compute_dtype is (see the module docstring).
        self._inference = self.module.clone(dtype=jnp.float32)
        self._forward = jax.jit(self._features_logits)

    # -- inputs ------------------------------------------------------------------------------
    def prepare(self, images: jax.Array) -> jax.Array:
        """Integer pixels to model input under ``data.preprocess`` (deterministic)."""
        mode = self.config.data.preprocess
        return preprocess(None, images, mode=mode, num_bits=self.data.num_bits)

    def inputs_from_unit(self, images: jax.Array) -> jax.Array:
        """Float images in [0, 1] (e.g. generator samples) to the model's input convention."""
        images = jnp.asarray(images, jnp.float32)
        return images if self.config.data.preprocess == "unit" else 2.0 * images - 1.0

    def features_and_logits(self, state: TrainState, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Jitted ``(features (B, dense), logits (B, K))`` of model inputs ``x``.

        Computed in float32 whatever ``train.compute_dtype`` the classifier was trained in.
        """
        return self._forward(state.models["classifier"].variables, x)

    def unit_features_and_logits(self, variables, batch) -> tuple[jax.Array, jax.Array]:
        """``features_and_logits`` of a batch ``{"image": float images in [0, 1]}`` (a
        :func:`genjax.eval.likelihood.batch_outputs` fn: ``variables`` are the network's)."""
        return self._features_logits(variables, self.inputs_from_unit(batch["image"]))

    def _features_logits(self, variables, x) -> tuple[jax.Array, jax.Array]:
        """The float32 network's ``(features, logits)`` of model inputs ``x`` (not jitted)."""
        return self._inference.apply(variables, x, method=CNNClassifier.features_and_logits)

    # -- Method interface --------------------------------------------------------------------
    def init(self, key, batch):
        variables = self.module.init(key, self.prepare(batch["image"]))
        return {"classifier": ModelState.create(variables, self.tx)}

    def train_step(self, state: TrainState, batch):
        if "label" not in batch:
            raise ValueError("the classifier's batches need a 'label' entry; the dataset has none")
        keys = state.step_keys("dropout")
        x = self.prepare(batch["image"])
        labels = batch["label"]
        model = state.models["classifier"]

        def loss_fn(params):
            logits = self.module.apply(
                {**model.collections, "params": params}, x, train=True,
                rngs={"dropout": keys["dropout"]},
            )
            loss = jnp.mean(softmax_cross_entropy(logits, labels))
            return loss, accuracy(logits, labels)

        (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(model.params)
        model, norms = apply_gradients(model, grads, self.tx)
        return state.replace_model("classifier", model), {"loss": loss, "accuracy": acc, **norms}

    def _predictions(self, state: TrainState, dataset):
        """Yields ``(index, labels, logits)`` per eval batch, in dataset order."""
        if dataset.labels is None:
            raise ValueError(f"evaluating a classifier needs labels; {dataset.name!r} has none")
        it = BatchIterator(
            dataset, min(self.config.eval.batch_size, len(dataset)), seed=0, shuffle=False,
            drop_remainder=False,
        )
        start = 0
        for batch in it.epoch_batches(0):
            _, logits = self.features_and_logits(state, self.prepare(jnp.asarray(batch["image"])))
            yield start, batch["label"], np.asarray(logits, np.float64)
            start += len(batch["label"])

    def evaluate(self, state: TrainState, dataset, key) -> dict[str, float]:
        """Accuracy and mean ``-log p(y|x)`` (nats per example) over the whole ``dataset``.

        Float32 logits and log-softmax, split over the run's devices
        (:func:`genjax.eval.likelihood.dataset_means`).
        """
        del key  # deterministic
        if dataset.labels is None:
            raise ValueError(f"evaluating a classifier needs labels; {dataset.name!r} has none")

        means, n = dataset_means(self._eval_scores, state.models["classifier"].variables,
                                 dataset, static=self.config,
                                 batch_size=self.config.eval.batch_size,
                                 progress=self.config.train.progress)
        return {
            "accuracy": means["accuracy"],
            "nll_nats": means["nll_nats"],
            "num_examples": n,
            "classifier": self.classifier_name,
        }

    def _eval_scores(self, variables, key, batch, i, rows):
        """``evaluate``'s per-example correctness and NLL (dataset_means' signature)."""
        del key, i, rows  # deterministic
        _, logits = self._features_logits(variables, self.prepare(batch["image"]))
        return {"accuracy": correct(logits, batch["label"]),
                "nll_nats": softmax_cross_entropy(logits, batch["label"])}

    def sample(self, state: TrainState, key, num: int) -> np.ndarray:
        raise ValueError(
            "the 'classifier' method is not a generative model and has nothing to sample; it "
            "scores other models' samples (genjax.eval.features.classifier_metrics and "
            "classifier_accuracy)"
        )

    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        """Up to ``eval.num_samples`` misclassified eval images, in dataset order.

        Writes ``misclassified_<step>.png`` (the grid) and ``misclassified_<step>.json`` (per
        image: its index in the eval split, true label and predicted label). Writes nothing
        when every eval image is classified correctly.
        """
        del key
        limit = self.config.eval.num_samples
        found: list[tuple[int, int, int]] = []
        for start, labels, logits in self._predictions(state, dataset):
            predicted = np.argmax(logits, axis=1)
            for i in np.flatnonzero(predicted != labels):
                found.append((start + int(i), int(labels[i]), int(predicted[i])))
            if len(found) >= limit:
                break
        found = found[:limit]
        if not found:
            return []
        outdir = Path(outdir)
        png = picture_path(outdir, "misclassified", step)
        pixels = dataset.images[[i for i, _, _ in found]].astype(np.float32)
        save_image_grid(png, pixels / float(2**dataset.num_bits - 1))
        listing = picture_path(outdir, "misclassified", step, suffix=".json")
        rows = [{"index": i, "label": y, "predicted": p} for i, y, p in found]
        listing.write_text(json.dumps(rows, indent=1))
        return [png, listing]
