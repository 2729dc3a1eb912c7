"""Features and predictions of a trained genjax classifier, and the metrics built on them.

A classifier trained with ``genjax train classifier_<dataset>`` (method ``"classifier"``,
:mod:`genjax.methods.classifier`) defines a feature space per dataset. On it:

* :func:`classifier_metrics` - Frechet distance ("FD-<dataset>-cnn"), kernel distance
  ("KD-<dataset>-cnn", the KID recipe) and improved precision/recall between real and
  generated images;
* :func:`classifier_accuracy` - the share of images classified as given labels (label accuracy
  of class-conditional samples, domain / label preservation of translated images).

These numbers are **not** FID / KID: those need the Inception-v3 network of Heusel et al.
(2017) with its weights, which the user supplies (:mod:`genjax.eval.inception`; the weights
load with :func:`load_inception_weights`). The classifier's numbers depend on its weights,
so genjax reports the classifier's name, step and content hash with them; compare only
numbers computed with the same checkpoint and the same sample counts.

Images are floats in ``[0, 1]``, shape ``(N, H, W, C)`` as the classifier's dataset; they are
mapped to the classifier's input convention (``data.preprocess`` of its run) here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genjax.eval._checks import as_numeric, positive_int, prng_key
from genjax.eval.frechet import frechet_distance_from_features
from genjax.eval.inception import INCEPTION_REFERENCE, load_inception_weights
from genjax.eval.kernel_distance import kernel_inception_distance
from genjax.eval.likelihood import batch_outputs
from genjax.eval.precision_recall import precision_recall
from genjax.train.checkpoint import tree_digest
from genjax.train.loop import load_trainer


class FeatureClassifier:
    """A trained classifier restored from its workdir (use :func:`load_classifier`).

    Attributes:
      name: the name in reported metrics, ``"<dataset>-cnn"`` (e.g. ``"mnist-cnn"``).
      workdir: the run's folder.
      step: the training step of the restored (hash-verified) checkpoint.
      sha256: SHA-256 of the network's variables (:func:`genjax.train.checkpoint.tree_digest`).
      image_shape: ``(H, W, C)`` of the images it takes.
      num_classes: number of classes K.
      feature_dim: dimension of the feature layer.
    """

    def __init__(self, trainer, workdir: Path):
        self._trainer = trainer
        self._method = trainer.method
        self.workdir = workdir
        self.name: str = self._method.classifier_name
        self.step = trainer.current_step
        # The parameters evaluation uses (the average when the classifier trained with EMA).
        self.sha256 = tree_digest(trainer.eval_state().models["classifier"].variables)
        self.image_shape = tuple(self._method.data.shape)
        self.num_classes = int(self._method.data.num_classes)
        self.feature_dim = int(trainer.config.model.dense)

    def __repr__(self) -> str:
        return (f"FeatureClassifier({self.name!r}, workdir={str(self.workdir)!r}, "
                f"step={self.step}, sha256={self.sha256[:12]}...)")

    def _check_images(self, name: str, images) -> np.ndarray:
        arr = as_numeric(name, images)
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(
                f"{name} must be floats in [0, 1], got dtype {arr.dtype} (convert 8-bit pixels "
                "with images / 255, or map [-1, 1] samples with (x + 1) / 2)"
            )
        if arr.ndim != 4 or tuple(arr.shape[1:]) != self.image_shape or arr.shape[0] < 1:
            raise ValueError(
                f"{name} must have shape (N, {', '.join(map(str, self.image_shape))}) with N >= 1 "
                f"(the images of the classifier {self.name!r}), got shape {arr.shape}"
            )
        if not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).sum())
            raise ValueError(f"{name} must be finite, got {bad} NaN or infinite values")
        low, high = float(arr.min()), float(arr.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name} must be in [0, 1], got values in [{low:.4g}, {high:.4g}] "
                "(map [-1, 1] samples with (x + 1) / 2 first)"
            )
        return arr.astype(np.float32)

    def features_and_logits(
        self, images, *, batch_size: int = 500
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feature vectors ``(N, feature_dim)`` and logits ``(N, K)`` of images in [0, 1].

        Runs the jitted network in batches of ``batch_size`` (the last one padded, so only one
        shape is compiled) split over the classifier's devices
        (:func:`genjax.eval.likelihood.batch_outputs`); the results do not depend on
        ``batch_size`` or the device count.
        """
        x = self._check_images("images", images)
        variables = self._trainer.eval_state().models["classifier"].variables
        return batch_outputs(self._method.unit_features_and_logits, variables, {"image": x},
                             batch_size=positive_int("batch_size", batch_size),
                             static=self._trainer.config)

    def features(self, images, *, batch_size: int = 500) -> np.ndarray:
        """``(N, feature_dim)`` float32 features (post-ReLU feature layer) of images in [0, 1]."""
        return self.features_and_logits(images, batch_size=batch_size)[0]

    def logits(self, images, *, batch_size: int = 500) -> np.ndarray:
        """``(N, K)`` float32 logits of images in [0, 1]."""
        return self.features_and_logits(images, batch_size=batch_size)[1]


def load_classifier(
    workdir: str | Path, *, overrides: list[str] | None = None
) -> FeatureClassifier:
    """Restores the newest intact checkpoint of a ``"classifier"`` run.

    The checkpoint is verified against the content hash recorded at save time
    (:func:`genjax.train.loop.load_trainer`). The run's training split is loaded as part of
    restoring (it fixes the data spec), so the dataset must be available: pass e.g.
    ``overrides=["data.manual_dir=/path/to/mnist"]`` if it moved.

    Raises:
      FileNotFoundError: ``workdir`` is not a genjax run or holds no checkpoint.
      ValueError: the run is not a ``"classifier"`` run.
    """
    workdir = Path(workdir)
    path = workdir / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {workdir} a genjax classifier workdir?")
    method = json.loads(path.read_text()).get("method")
    if method != "classifier":
        raise ValueError(
            f"workdir {workdir} holds a {method!r} run; feature metrics need a 'classifier' run "
            "(e.g. genjax train classifier_mnist --workdir ...)"
        )
    trainer = load_trainer(workdir, overrides)
    if trainer.checkpoints is not None:
        trainer.checkpoints.close()
    return FeatureClassifier(trainer, workdir)


def load_classifier_for(workdir: str | Path, data, image_shape) -> FeatureClassifier:
    """The classifier of ``workdir`` for a run on ``data`` (a ``DataConfig``) of images of
    ``image_shape``: a classifier of the same dataset reads it from the run's ``data_dir`` /
    ``manual_dir``; one of other images is refused, naming the command that trains the right
    one."""
    saved = json.loads((Path(workdir) / "config.json").read_text()).get("data", {}) if (
        Path(workdir) / "config.json").exists() else {}
    overrides = []
    if saved.get("name") == data.name:
        overrides = [f"data.{k}={getattr(data, k)}" for k in ("data_dir", "manual_dir")
                     if getattr(data, k)]
    clf = load_classifier(workdir, overrides=overrides)
    if clf.image_shape != tuple(image_shape):
        raise ValueError(
            f"model.classifier_workdir={str(workdir)!r} holds a classifier of {clf.image_shape} "
            f"images, but dataset {data.name!r} has {tuple(image_shape)}: train one with "
            f"genjax train classifier_{data.name}")
    return clf


def _classifier(classifier) -> FeatureClassifier:
    if isinstance(classifier, FeatureClassifier):
        return classifier
    if isinstance(classifier, str | Path):
        return load_classifier(classifier)
    raise TypeError(
        f"classifier must be a FeatureClassifier or a workdir path, got {type(classifier).__name__}"
    )


def classifier_metrics(
    classifier: FeatureClassifier | str | Path,
    real,
    fake,
    *,
    key: Any = 0,
    kd_num_subsets: int = 100,
    kd_subset_size: int = 1000,
    pr_k: int = 3,
    batch_size: int = 500,
) -> dict[str, Any]:
    """FD, KD and precision/recall between real and generated images in a classifier's features.

    With ``name = classifier.name`` (e.g. ``"mnist-cnn"``), the result holds:

    * ``fd_<name>``: Frechet distance between Gaussians fitted to the two feature sets
      (Heusel et al. 2017, Eq. 6 recipe; squared feature units; biased upwards for small N, M);
    * ``kd_<name>_mean`` / ``kd_<name>_std``: unbiased cubic-kernel MMD^2 over
      ``kd_num_subsets`` random subsets of ``kd_subset_size`` (Binkowski et al. 2018, the KID
      recipe), mean and spread;
    * ``precision`` / ``recall``: improved precision and recall with ``k = pr_k``
      (Kynkaanniemi et al. 2019);
    * the protocol: ``num_real``, ``num_fake``, ``kd_num_subsets``, ``kd_subset_size`` (as used:
      ``min(kd_subset_size, N, M)``), ``pr_k``, and ``classifier``, ``classifier_step``,
      ``classifier_sha256`` identifying the feature network.

    Args:
      classifier: a :class:`FeatureClassifier` or the workdir of a classifier run.
      real: ``(N, H, W, C)`` real images, floats in [0, 1] (e.g. ``uint8 / 255``).
      fake: ``(M, H, W, C)`` generated images, floats in [0, 1].
      key: ``jax.random`` key or int seed fixing the KD subsets.
      kd_num_subsets: subsets for KD (100 in Binkowski et al.).
      kd_subset_size: rows per KD subset (1000 in Binkowski et al.), capped at ``min(N, M)``.
      pr_k: neighbourhood size of precision/recall (3 in Kynkaanniemi et al.).
      batch_size: images per forward pass.

    Returns:
      The dict above (floats, ints and strings).

    References:
      Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
      Equilibrium", NeurIPS 2017, Eq. 6. Binkowski et al., "Demystifying MMD GANs", ICLR 2018,
      Sec. 4. Kynkaanniemi et al., "Improved Precision and Recall Metric for Assessing
      Generative Models", NeurIPS 2019, Eq. 1-2.
    """
    clf = _classifier(classifier)
    pr_k = positive_int("pr_k", pr_k)
    key = prng_key("key", key)
    f_real = clf.features(clf._check_images("real", real), batch_size=batch_size)
    f_fake = clf.features(clf._check_images("fake", fake), batch_size=batch_size)
    smallest = min(len(f_real), len(f_fake))
    if smallest <= max(pr_k, 1):
        raise ValueError(
            f"real and fake must each hold more than max(pr_k, 1) = {max(pr_k, 1)} images, got "
            f"{len(f_real)} real and {len(f_fake)} fake"
        )
    subset = min(positive_int("kd_subset_size", kd_subset_size), smallest)
    kd = kernel_inception_distance(
        f_real, f_fake, key=key, num_subsets=kd_num_subsets, subset_size=subset
    )
    pr = precision_recall(f_real, f_fake, k=pr_k)
    name = clf.name
    return {
        f"fd_{name}": frechet_distance_from_features(f_real, f_fake),
        f"kd_{name}_mean": kd.mean,
        f"kd_{name}_std": kd.std,
        "precision": pr.precision,
        "recall": pr.recall,
        "num_real": len(f_real),
        "num_fake": len(f_fake),
        "kd_num_subsets": int(kd_num_subsets),
        "kd_subset_size": subset,
        "pr_k": pr_k,
        "classifier": name,
        "classifier_step": clf.step,
        "classifier_sha256": clf.sha256,
    }


def classifier_accuracy(
    classifier: FeatureClassifier | str | Path, images, labels, *, batch_size: int = 500
) -> float:
    """Share of ``images`` the classifier assigns to ``labels`` (argmax of the logits).

    For class-conditional samples, ``labels`` are the requested classes; for translated
    images, the labels (or target domains) they should keep or reach.

    Args:
      classifier: a :class:`FeatureClassifier` or the workdir of a classifier run.
      images: ``(N, H, W, C)`` floats in [0, 1].
      labels: ``(N,)`` integer classes in ``[0, K)``.
      batch_size: images per forward pass.

    Returns:
      Accuracy in [0, 1] as a Python float (ties go to the lowest class index).
    """
    clf = _classifier(classifier)
    x = clf._check_images("images", images)
    y = as_numeric("labels", labels)
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},) to match images, got {y.shape}")
    if y.min() < 0 or y.max() >= clf.num_classes:
        raise ValueError(
            f"labels must be in [0, {clf.num_classes}), got values in [{y.min()}, {y.max()}]"
        )
    predicted = np.argmax(clf.logits(x, batch_size=batch_size), axis=1)
    return float(np.mean(predicted == y))


__all__ = [
    "INCEPTION_REFERENCE",
    "FeatureClassifier",
    "classifier_accuracy",
    "classifier_metrics",
    "load_classifier",
    "load_inception_weights",
]
