"""What the image-to-image translation methods share: domain views, data checks, classifiers.

The methods: :mod:`genjax.methods.cyclegan` (CycleGAN, Zhu et al. 2017) and
:mod:`genjax.methods.stargan` (StarGAN, Choi et al. 2018); each module states its objective.

Data: ``data.name`` is a base image dataset (``digits``, ``mnist``, ...) with
``data.preprocess="symmetric"``; ``model.domains`` names views from
:mod:`genjax.data.domains` (original, inverted, rot90, thick). Training is unpaired: each
domain gets its own disjoint part of the shuffled batch, so no image is ever seen in two
domains in one step (CycleGAN: even rows X, odd rows Y, ``train.batch_size`` is twice the
per-domain batch; StarGAN: ``n_critic`` parts, rows ``i, i + n_critic, ...`` for part ``i``,
example j of a part in domain ``j % K``; strided parts stay split over every device).
Evaluation keeps the pairing (every eval image in every domain) and runs the protocols of
:mod:`genjax.eval.translation_metrics` (pixel L1 against the ground-truth view and its
identity baseline, cycle L1, label preservation, StarGAN's domain accuracy and per-pair table;
its docstring defines every key) on the methods' ``translate`` functions.

The independent classifiers are explicit earlier runs, never trained by ``evaluate``:
``genjax train classifier_<base>_domains`` (digit labels of every view, ``data.name=
<base>_domains``) and ``classifier_<base>_domains_by_domain`` (domain labels), given as
``model.classifier_workdir`` / ``model.domain_classifier_workdir`` (StarGAN only). An empty
workdir reports the metrics that need it as ``"skipped: ..."`` with the commands to run; a
workdir that is missing, not a classifier run, or of other images or labels is refused when the
method is built, before training starts (:meth:`TranslationMethod.load_classifier`).

Pictures: ``translation_<step>.png``, one row per input (columns in each method).

Precision: ``train.compute_dtype`` is the ``dtype`` of every generator and discriminator, in
training, evaluation, sampling and pictures alike; parameters, optimizer states and the
history pools stay float32. The modules return float32 images, scores and logits, so every
loss (least squares, Wasserstein, cycle, identity, domain classification), the gradient
penalty's interpolation and input gradient, and every evaluation number (pixel L1, cycle L1,
label and domain accuracy, measured by float32 classifiers) are computed in float32.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import domains as domain_views
from genjax.data import preprocess
from genjax.eval.features import load_classifier
from genjax.train.checkpoint import CheckpointError
from genjax.train.config import Config, need, need_preprocess
from genjax.train.method import Method

GRID_ROWS = 8  # rows of a translation picture
CLASSIFIER_FIELDS = {"digit": "classifier_workdir", "domain": "domain_classifier_workdir"}
_CLASSIFIER_CONFIGS = ("digits", "mnist")  # bases with experiments/classifier_<base>_domains*.py


def classifier_command(config: Config, by: str) -> str:
    """The ``genjax train`` command of the ``by`` (``"digit"`` or ``"domain"``) classifier of a
    translation run on ``config``'s data, followed by the ``--set`` that hands it to the run."""
    d, suffix = config.data, "_by_domain" if by == "domain" else ""
    dataset = f"{d.name}_domains{suffix}"
    if d.name in _CLASSIFIER_CONFIGS:
        command = f"genjax train classifier_{dataset} --workdir W"
    else:
        command = f"genjax train classifier_digits_domains{suffix} --workdir W"
        if dataset in domain_views.DATASETS:
            command += f" --set data.name={dataset}"
        else:
            command += f" --set data.name=<labelled {by}s of {d.name}'s {by} views>"
    sets = {"data.train_split": d.train_split if d.train_split != "train" else "",
            "data.data_dir": d.data_dir, "data.manual_dir": d.manual_dir,
            "data.max_train_examples": d.max_train_examples * len(domain_views.DOMAINS) or ""}
    command += "".join(f" --set {k}={v}" for k, v in sets.items() if v)
    return f"`{command}`, then --set model.{CLASSIFIER_FIELDS[by]}=W"


class TranslationMethod(Method):
    """What CycleGAN and StarGAN share: data checks, domain views, evaluation classifiers.

    ``classifiers_used`` lists the classifiers a method's evaluation uses (``"digit"``,
    ``"domain"``); after construction ``self.classifiers[by]`` is the restored classifier, or a
    string saying why there is none (what :mod:`genjax.eval.translation_metrics` takes).
    """

    min_domains = 2
    classifiers_used: ClassVar[tuple[str, ...]] = ("digit",)

    @classmethod
    def check_model(cls, config):
        cfg = config.model
        if not getattr(cfg, "domain_b_dataset", ""):
            domains = tuple(cfg.domains)
            need(len(set(domains)) == len(domains) and len(domains) >= cls.min_domains,
                 "model.domains", domains, f"at least {cls.min_domains} distinct domains of "
                 f"{domain_views.DOMAINS}")
            if config.data.name in domain_views.DATASETS:
                base = domain_views.DATASETS[config.data.name][0]
                need(False, "data.name", config.data.name,
                     f"the base dataset ({base!r}): {cls.name} builds the views of "
                     "model.domains itself")
        need_preprocess(config.data, ("symmetric",),
                        "(the generators' tanh output is in [-1, 1])", eval_same=True)

    @classmethod
    def check_data(cls, config, data):
        cfg = config.model
        need(data.num_bits >= 1 and len(data.shape) == 3 and data.shape[0] == data.shape[1],
             "data.name", data.name, f"square images; it holds {data.shape} values")
        factor = 2**cfg.num_downsamples
        need(data.shape[0] % factor == 0 and data.shape[0] // factor >= 2,
             "model.num_downsamples", cfg.num_downsamples,
             f"downsamplings that halve {data.shape[0]}x{data.shape[1]} images exactly and leave "
             "at least 2x2 pixels")

    def __init__(self, config, data):
        super().__init__(config, data)
        cfg = config.model
        self.domains = ("a", "b") if getattr(cfg, "domain_b_dataset", "") else tuple(cfg.domains)
        self.max_value = 2**data.num_bits - 1
        self._eval_images = None
        self.classifiers: dict[str, object] = {}
        if not getattr(cfg, "domain_b_dataset", ""):  # two datasets: no label metrics
            self.classifiers = {by: self.load_classifier(by) for by in self.classifiers_used}

    # -- data ---------------------------------------------------------------------------------
    def view(self, pixels, domain: str) -> jax.Array:
        """Integer pixels of original images -> the ``domain`` view as model input in [-1, 1]."""
        pixels = domain_views.to_domain(jnp.asarray(pixels), domain, max_value=self.max_value)
        return preprocess(None, pixels, mode="symmetric", num_bits=self.data.num_bits)

    def paired_views(self, dataset) -> tuple[np.ndarray, np.ndarray | None]:
        """Eval views ``(N, K, H, W, C)`` in [0, 1] (pairs kept) and the digit labels."""
        views = domain_views.make_domain_views(dataset.images, dataset.labels, self.domains,
                                               max_value=self.max_value)
        return views.images.astype(np.float32) / self.max_value, views.labels

    def eval_split(self):
        """The eval split as configured (``eval.max_examples`` or ``data.max_eval_examples``)."""
        if self._eval_images is None:
            cfg = self.config
            self._eval_images = self.load_split(
                cfg.data.eval_split, cfg.eval.max_examples or cfg.data.max_eval_examples)
        return self._eval_images

    # -- independent classifiers ----------------------------------------------------------------
    def load_classifier(self, by: str):
        """The ``by`` (``"digit"`` / ``"domain"``) classifier of ``model.<by>_workdir``, restored
        now; a string saying what to run when the workdir is empty.

        Raises:
          ValueError: the workdir is missing, is not a classifier run with a checkpoint, or
            holds a classifier of other images or of another number of classes; the message
            names the command that trains the right one.
        """
        field = CLASSIFIER_FIELDS[by]
        path = getattr(self.config.model, field)
        command = classifier_command(self.config, by)
        if not path:
            return (f"skipped: no {by} classifier (model.{field} is empty); train it with "
                    f"{command}")
        try:
            clf = load_classifier(path)  # from its checkpoint alone: no data is read
        except (FileNotFoundError, ValueError, CheckpointError) as e:
            raise ValueError(f"model.{field}={path!r} is not a usable {by} classifier run "
                             f"({e}); train one with {command}") from e
        classes = len(domain_views.DOMAINS) if by == "domain" else self.data.num_classes
        problem = None
        if clf.image_shape != tuple(self.data.shape):
            problem = (f"takes {clf.image_shape} images, data.name={self.data.name!r} has "
                       f"{tuple(self.data.shape)}")
        elif classes is not None and clf.num_classes != classes:
            problem = f"has {clf.num_classes} classes, the {by} labels {classes}"
        if problem:
            raise ValueError(f"model.{field}={path!r}: the classifier there {problem}; train "
                             f"the {by} classifier with {command}")
        return clf

    def classifier_info(self) -> dict:
        """``<by>_classifier``: the workdir of each classifier the evaluation used."""
        return {f"{by}_classifier": str(clf.workdir) for by, clf in self.classifiers.items()
                if not isinstance(clf, str)}
