"""Feature networks, the distances measured in their features, and genjax's own classifier.

A *feature network* (:class:`FeatureNetwork`) maps images in ``[0, 1]`` to feature vectors and
identifies itself by a name and the SHA-256 of its weights. Two kinds exist:

* genjax's classifier of a dataset, trained with ``genjax train classifier_<dataset>`` (method
  ``"classifier"``, :mod:`genjax.methods.classifier`) and restored from its checkpoint alone by
  :func:`load_classifier` (:class:`FeatureClassifier`, named ``"<dataset>-cnn"``);
* the Inception-v3 of the FID recipe with user-supplied weights
  (:class:`genjax.eval.inception.InceptionFeatures`, named ``"inception-v3-fid"``).

:func:`feature_distances` turns both feature sets into the reported numbers, with one key scheme
(below): the classifier's Frechet and kernel distances are "FD-<dataset>-cnn" / "KD-<dataset>-cnn"
(:func:`classifier_metrics`), Inception's are FID / KID (:func:`genjax.eval.inception.
inception_metrics`). Only the latter compare with papers' FID / KID; the classifier's numbers
compare only across runs that use the same checkpoint (its step and hash are reported with them)
and the same sample counts. :func:`classifier_accuracy` gives the share of images the classifier
assigns to given labels (label accuracy of class-conditional samples, domain / label
preservation of translated images).

Images are floats in ``[0, 1]``, ``(N, H, W, C)``; each network maps them to its own input
convention (the classifier to ``data.preprocess`` of its run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from genjax.eval._checks import as_numeric, positive_int
from genjax.eval.frechet import frechet_distance_from_features
from genjax.eval.kernel_distance import kernel_inception_distance
from genjax.eval.likelihood import batch_outputs
from genjax.eval.precision_recall import precision_recall
from genjax.train import parallel
from genjax.train.checkpoint import CheckpointStore, read_meta, tree_digest
from genjax.train.config import config_from_dict
from genjax.train.method import DataSpec, check_config, get_method
from genjax.train.run import abstract_state, with_average


# -- the interface and the distances ---------------------------------------------------------
@runtime_checkable
class FeatureNetwork(Protocol):
    """What FD / KD / precision-recall need of a network: its features and its identity.

    Attributes:
      name: the network's name in reported metrics (``"digits-cnn"``, ``"inception-v3-fid"``).
      sha256: SHA-256 of its weights (the classifier's variables, Inception's ``.npz`` file).
    """

    name: str
    sha256: str

    def features(self, images, *, batch_size: int = ...) -> np.ndarray:
        """``(N, D)`` features of ``(N, H, W, C)`` float images in [0, 1]."""
        ...


def check_unit_images(name: str, images, *, shape_ok, expected: str) -> np.ndarray:
    """``images`` as float32 in [0, 1], or a ValueError naming ``name`` and what is wrong.

    ``shape_ok(shape)`` says whether a shape is accepted; ``expected`` describes the accepted
    shapes in the message (``"(N, 8, 8, 1) with N >= 1"``).
    """
    arr = as_numeric(name, images)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"{name} must be floats in [0, 1], got dtype {arr.dtype} (convert 8-bit pixels "
            "with images / 255, or map [-1, 1] samples with (x + 1) / 2)")
    if not shape_ok(arr.shape):
        raise ValueError(f"{name} must have shape {expected}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name} must be finite, got {bad} NaN or infinite values")
    low, high = float(arr.min()), float(arr.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{name} must be in [0, 1], got values in [{low:.4g}, {high:.4g}] "
                         "(map [-1, 1] samples with (x + 1) / 2 first)")
    return arr.astype(np.float32)


def feature_distances(
    f_real, f_fake, *, fd: str, kd: str | None, key: Any = None, num_subsets: int = 100,
    subset_size: int = 1000, pr_k: int | None = None,
) -> dict[str, Any]:
    """Frechet distance, kernel distance and (optionally) precision/recall of two feature sets.

    The one assembler behind :func:`classifier_metrics` (``fd="fd_<dataset>-cnn"``,
    ``kd="kd_<dataset>-cnn"``) and :func:`genjax.eval.inception.inception_metrics`
    (``fd="fid"``, ``kd="kid"``). Every key starts with the name of the distance it belongs to:

    * ``<fd>``: Frechet distance between Gaussians fitted to the two sets (Heusel et al. 2017,
      Eq. 6; :func:`genjax.eval.frechet.frechet_distance_from_features`; squared feature units,
      biased upwards for small N, M), with ``<fd>_num_real`` = N and ``<fd>_num_fake`` = M;
    * ``<kd>`` / ``<kd>_std`` (unless ``kd`` is None): mean and spread of the unbiased
      cubic-kernel MMD^2 over ``<kd>_num_subsets`` random subsets of ``<kd>_subset_size`` rows
      (Binkowski et al. 2018, the KID recipe; :func:`genjax.eval.kernel_distance.
      kernel_inception_distance`); the subset size is capped at ``min(N, M)``;
    * ``precision`` / ``recall`` with ``pr_k`` (when ``pr_k`` is given): improved precision and
      recall with ``k = pr_k`` (Kynkaanniemi et al. 2019).

    Args:
      f_real: ``(N, D)`` features of real images.
      f_fake: ``(M, D)`` features of generated images.
      fd: key of the Frechet distance.
      kd: key of the kernel distance, or None to skip it.
      key: ``jax.random`` key or int seed fixing the kernel-distance subsets (needed with
        ``kd``).
      num_subsets: kernel-distance subsets (100 in Binkowski et al.).
      subset_size: rows per subset (1000 in Binkowski et al.), capped at ``min(N, M)``.
      pr_k: neighbourhood size of precision/recall (3 in Kynkaanniemi et al.); None skips it.

    Returns:
      The dict above (floats and ints).
    """
    f_real, f_fake = np.asarray(f_real), np.asarray(f_fake)
    smallest = min(len(f_real), len(f_fake))
    if kd is not None and key is None:
        raise ValueError(f"key must be a jax.random key or an int seed when {kd} is computed "
                         "(it fixes the subsets), got None")
    if pr_k is not None:
        pr_k = positive_int("pr_k", pr_k)
        if smallest <= max(pr_k, 1):
            raise ValueError(
                f"real and fake must each hold more than max(pr_k, 1) = {max(pr_k, 1)} images, "
                f"got {len(f_real)} real and {len(f_fake)} fake")
    out: dict[str, Any] = {fd: frechet_distance_from_features(f_real, f_fake),
                           f"{fd}_num_real": len(f_real), f"{fd}_num_fake": len(f_fake)}
    if kd is not None:
        subset = min(positive_int("subset_size", subset_size), smallest)
        dist = kernel_inception_distance(f_real, f_fake, key=key, num_subsets=num_subsets,
                                         subset_size=subset)
        out.update({kd: dist.mean, f"{kd}_std": dist.std,
                    f"{kd}_num_subsets": int(num_subsets), f"{kd}_subset_size": subset})
    if pr_k is not None:
        pr = precision_recall(f_real, f_fake, k=pr_k)
        out.update(precision=pr.precision, recall=pr.recall, pr_k=pr_k)
    return out


# -- genjax's classifier ---------------------------------------------------------------------
class FeatureClassifier:
    """A trained classifier: the network of a ``"classifier"`` run with its evaluation
    parameters (use :func:`load_classifier`). A :class:`FeatureNetwork`.

    Args:
      method: the run's :class:`genjax.methods.classifier.ClassifierMethod` (the network, its
        input convention and its data spec).
      variables: the network's Flax variables (the parameter average when the run kept one).
      workdir: where it came from (reported in ``repr``).
      step: the training step of those variables.

    Attributes:
      name: the name in reported metrics, ``"<dataset>-cnn"`` (e.g. ``"mnist-cnn"``).
      sha256: SHA-256 of ``variables`` (:func:`genjax.train.checkpoint.tree_digest`).
      image_shape: ``(H, W, C)`` of the images it takes.
      num_classes: number of classes K.
      feature_dim: dimension of the feature layer.
    """

    def __init__(self, method, variables, *, workdir: str | Path, step: int):
        self.method = method
        self.variables = variables
        self.workdir = Path(workdir)
        self.step = int(step)
        self.name: str = method.classifier_name
        self.sha256 = tree_digest(variables)
        self.image_shape = tuple(method.data.shape)
        self.num_classes = int(method.data.num_classes)
        self.feature_dim = int(method.config.model.dense)

    def __repr__(self) -> str:
        return (f"FeatureClassifier({self.name!r}, workdir={str(self.workdir)!r}, "
                f"step={self.step}, sha256={self.sha256[:12]}...)")

    def check_images(self, name: str, images) -> np.ndarray:
        """``images`` as float32 ``(N, *image_shape)`` in [0, 1], or a ValueError saying why not."""
        shape = self.image_shape
        return check_unit_images(
            name, images, shape_ok=lambda s: len(s) == 4 and tuple(s[1:]) == shape and s[0] >= 1,
            expected=f"(N, {', '.join(map(str, shape))}) with N >= 1 (the images of the "
                     f"classifier {self.name!r})")

    def features_and_logits(
        self, images, *, batch_size: int = 500
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feature vectors ``(N, feature_dim)`` and logits ``(N, K)`` of images in [0, 1].

        Runs the jitted network in batches of ``batch_size`` (the last one padded, so only one
        shape is compiled) split over the classifier's devices
        (:func:`genjax.eval.likelihood.batch_outputs`); the results do not depend on
        ``batch_size`` or the device count.
        """
        x = self.check_images("images", images)
        return batch_outputs(self.method.unit_features_and_logits, self.variables, {"image": x},
                             batch_size=positive_int("batch_size", batch_size),
                             static=self.method.config)

    def features(self, images, *, batch_size: int = 500) -> np.ndarray:
        """``(N, feature_dim)`` float32 features (post-ReLU feature layer) of images in [0, 1]."""
        return self.features_and_logits(images, batch_size=batch_size)[0]

    def logits(self, images, *, batch_size: int = 500) -> np.ndarray:
        """``(N, K)`` float32 logits of images in [0, 1]."""
        return self.features_and_logits(images, batch_size=batch_size)[1]


def _data_spec(config, workdir: Path) -> DataSpec:
    """The classifier's data spec without reading its data: the dataset's known description,
    else the one its checkpoints recorded (``meta["data_spec"]``, for ``tfds:`` datasets)."""
    known = check_config(config)
    if known is not None:
        return known
    recorded = (read_meta(workdir) or {}).get("data_spec")
    if recorded is None:
        raise ValueError(
            f"the classifier in {workdir} was trained on {config.data.name!r}, whose image shape "
            "and classes only its files tell, and its checkpoints do not record them (saved by "
            "an older genjax): train it again (genjax train <its config> --workdir <new folder>)")
    return DataSpec(shape=tuple(recorded["shape"]), num_bits=int(recorded["num_bits"]),
                    num_classes=recorded["num_classes"], name=recorded["name"])


def load_classifier(workdir: str | Path) -> FeatureClassifier:
    """Restores a ``"classifier"`` run's network from its checkpoint alone.

    The network is built from the run's ``config.json`` and the dataset's spec (known without
    reading it, or recorded with the checkpoint), and the newest checkpoint whose content matches
    the hash recorded at save time is restored (:meth:`genjax.train.checkpoint.CheckpointStore.
    restore_latest`, read only: a damaged step is reported and skipped). The evaluation
    parameters are the parameter average when the run kept one (``train.ema_decay > 0``), else
    the parameters, as ``genjax evaluate`` uses them. No data is read.

    Raises:
      FileNotFoundError: ``workdir`` is not a genjax run or holds no checkpoint.
      ValueError: the run is not a ``"classifier"`` run.
      genjax.train.checkpoint.CheckpointError: no checkpoint matches its recorded hash.
    """
    workdir = Path(workdir)
    path = workdir / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {workdir} a genjax classifier workdir?")
    saved = json.loads(path.read_text())
    if saved.get("method") != "classifier":
        raise ValueError(
            f"workdir {workdir} holds a {saved.get('method')!r} run; feature metrics need a "
            "'classifier' run (e.g. genjax train classifier_mnist --workdir ...)")
    cls = get_method("classifier")
    config = config_from_dict(saved, cls.model_config)
    method = cls(config, _data_spec(config, workdir))
    # The state's structure (shapes only) and placement as the loop's Trainer builds them.
    devices, _ = parallel.choose_devices(config.train.batch_size, config.train.num_devices)
    example = {"image": jax.ShapeDtypeStruct((1, *method.data.shape), jnp.uint8)}
    target = abstract_state(method, jax.random.key(config.train.seed), example,
                            parallel.data_mesh(devices))
    # The parameter average of each model, as the loop saves it (train.ema_decay > 0).
    ema = {"ema": {n: m.params for n, m in target.models.items()}} if (
        config.train.ema_decay > 0) else {}
    store = CheckpointStore(workdir, max_to_keep=config.train.max_to_keep, read_only=True)
    try:
        restored = store.restore_latest(target, extras=ema)
    finally:
        store.close()
    if restored is None:
        raise FileNotFoundError(
            f"no checkpoint in {workdir / 'checkpoints'}: train the classifier first (genjax "
            f"train classifier_{config.data.name} --workdir {workdir})")
    state, _, extras = restored
    model = with_average(state, extras.get("ema", {})).models["classifier"]
    return FeatureClassifier(method, model.variables, workdir=workdir, step=int(state.step))


def load_classifier_for(workdir: str | Path, data, image_shape) -> FeatureClassifier:
    """The classifier of ``workdir`` for a run on ``data`` (a ``DataConfig``) of images of
    ``image_shape``; one of other images is refused, naming the command that trains the right
    one."""
    clf = load_classifier(workdir)
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

    With ``name = classifier.name`` (e.g. ``"mnist-cnn"``), :func:`feature_distances` with
    ``fd="fd_<name>"`` and ``kd="kd_<name>"``:

    * ``fd_<name>``: Frechet distance (Heusel et al. 2017, Eq. 6 recipe), with
      ``fd_<name>_num_real`` and ``fd_<name>_num_fake``;
    * ``kd_<name>`` / ``kd_<name>_std``: unbiased cubic-kernel MMD^2 over
      ``kd_<name>_num_subsets`` random subsets of ``kd_<name>_subset_size`` rows (as used:
      ``min(kd_subset_size, N, M)``; Binkowski et al. 2018, the KID recipe), mean and spread;
    * ``precision`` / ``recall`` / ``pr_k``: improved precision and recall (Kynkaanniemi et al.
      2019);
    * ``classifier``, ``classifier_step``, ``classifier_sha256`` identifying the network.

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
    kd_subset_size = positive_int("kd_subset_size", kd_subset_size)
    f_real = clf.features(clf.check_images("real", real), batch_size=batch_size)
    f_fake = clf.features(clf.check_images("fake", fake), batch_size=batch_size)
    out = feature_distances(f_real, f_fake, fd=f"fd_{clf.name}", kd=f"kd_{clf.name}", key=key,
                            num_subsets=kd_num_subsets, subset_size=kd_subset_size, pr_k=pr_k)
    return {**out, "classifier": clf.name, "classifier_step": clf.step,
            "classifier_sha256": clf.sha256}


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
    x = clf.check_images("images", images)
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
    "FeatureClassifier",
    "FeatureNetwork",
    "check_unit_images",
    "classifier_accuracy",
    "classifier_metrics",
    "feature_distances",
    "load_classifier",
    "load_classifier_for",
]
