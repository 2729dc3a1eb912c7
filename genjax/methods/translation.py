"""Unpaired image-to-image translation: CycleGAN (Zhu et al. 2017) and StarGAN (Choi et al. 2018).

The objectives, each in the papers' words (x in domain X, y in Y; c a domain label):

    cyclegan  G: X -> Y, F: Y -> X, discriminators D_X, D_Y (PatchGAN)
      D_Y: least_squares_discriminator_loss(D_Y(y), D_Y(pool_Y(G(x))))   (and D_X alike)
      G, F: 2 * least_squares_generator_loss(D_Y(G(x))) + (the same for F, D_X)
            + lambda_cyc * [cycle_consistency_loss(x, F(G(x))) + cycle_consistency_loss(y, G(F(y)))]
            + lambda_identity * lambda_cyc * [identity_loss(y, G(y)) + identity_loss(x, F(x))]
      The factor 2 makes the generator term the reference code's MSE(D(G(x)), 1); the
      discriminator term is its 0.5 * (MSE(D(y), 1) + MSE(D(fake), 0)). Zhu et al. Eq. 1-3 and
      Sec. 4; lambda_cyc 10, lambda_identity 0.5, history pools of 50 generated images
      (``model.pool_groups``: one per batch position by default, the paper's batch-1 pool).
      ``adversarial_loss="nonsaturating"`` uses 0.5 * minimax_discriminator_loss and
      nonsaturating_generator_loss instead (the reference's ``gan_mode='vanilla'``).

    stargan   one G(x, c), one D(x) -> (D_src, D_cls)
      D: wasserstein_critic_loss(D_src(x), D_src(G(x, c')))
         + lambda_cls * domain_classification_loss(D_cls(x), c)
         + lambda_gp * gradient_penalty(D_src, x, G(x, c'))
      G: wasserstein_generator_loss(D_src(G(x, c')))
         + lambda_cls * domain_classification_loss(D_cls(G(x, c')), c')
         + lambda_rec * cycle_consistency_loss(x, G(G(x, c'), c))
         [+ lambda_id * identity_loss(x, G(x, c))]   (model.lambda_id, 0 by default: not in the paper)
      Choi et al. Eq. 1-7: lambda_cls 1, lambda_rec 10, lambda_gp 10, n_critic 5 discriminator
      updates per generator update; the target labels c' are a random permutation of the
      batch's source labels, as in the reference code.

Data: ``data.name`` is a base image dataset (``digits``, ``mnist``, ...) with
``data.preprocess="symmetric"``; ``model.domains`` names views from
:mod:`genjax.data.domains` (original, inverted, rot90, thick). Training is unpaired: each
domain gets its own disjoint part of the shuffled batch, so no image is ever seen in two
domains in one step (CycleGAN: even rows X, odd rows Y, ``train.batch_size`` is twice the
per-domain batch; StarGAN: ``n_critic`` parts, rows ``i, i + n_critic, ...`` for part ``i``,
example j of a part in domain ``j % K``; strided parts stay split over every device).
Evaluation keeps the pairing (every eval image in every domain).

CycleGAN also trains on two *separate* datasets (unpaired, no ground truth):
``model.domain_b_dataset`` names a second dataset for :func:`genjax.data.load_dataset`
(``tfds:cycle_gan/horse2zebra``, ``digits``, ...; data_dir and manual_dir from ``data``), or
the same one with another split (``data.train_split=trainA``, ``model.domain_b_split=trainB``).
Domain X is then the engine's batch of ``data.name`` (``train.batch_size`` images), domain Y
is as many images of ``model.domain_b_split`` drawn uniformly with replacement (as the
reference code's unaligned dataset draws B) on the host by :meth:`CycleGANMethod.host_batch`,
from a generator seeded with (``train.seed``, step, process): a pure function of the step, so
resume stays exact. The engine shards them with the rest of the batch (``batch["image_b"]``).
Images are used as stored (``model.domains`` must be empty) and must have the shape of
``data.name``'s.

Evaluation, on the eval split, all errors in [0, 1] pixel units (mean absolute error):

* ``pixel_l1_<a>_to_<b>``: translation vs the ground-truth view; ``..._identity_baseline``:
  the same error for doing nothing (the input itself);
* ``cycle_l1_<a>``: ``|F(G(x)) - x|`` (StarGAN: ``|G(G(x, b), a) - x|``);
* ``label_accuracy_<a>_to_<b>``: an independent digit classifier's accuracy on the
  translations (label preservation), with its accuracy on the ground-truth views beside it;
* StarGAN: ``domain_accuracy``: an independent domain classifier's share of translations
  assigned to the target domain (Choi et al. Sec. 5, the paper's protocol), and D_cls's own
  accuracy on the real views. StarGAN reports every ordered pair of distinct domains
  (``label_accuracy_<a>_to_<b>``, ``domain_accuracy_<a>_to_<b>``, ``pixel_l1_<a>_to_<b>``,
  ``cycle_l1_<a>_to_<b>`` = ``|G(G(x, b), a) - x|``), their averages over all pairs (the keys
  without a pair) and, when ``rot90`` is one of three or more domains, over the pairs without
  it (``..._without_rot90``: the pairs a convolutional generator can do with local operations).

The independent classifiers are ``genjax train classifier_<base>`` runs on
``data.name=<base>_domains`` (digit labels of every view) and ``<base>_domains_by_domain``
(domain labels), given as ``model.classifier_workdir`` / ``model.domain_classifier_workdir``.
When a workdir is empty, the classifier is trained in memory at the first evaluation on the
same train split (the classifier_digits architecture, ``model.classifier_steps`` Adam steps of
batch 100, the run's seed; once per process): the whole final evaluation of cyclegan_digits,
its classifier included, took about a minute on 2 shared CPU cores.

With ``model.domain_b_dataset`` there is no pairing: CycleGAN reports ``cycle_l1_a``
(``|F(G(a)) - a|`` on ``data.eval_split``) and ``cycle_l1_b`` (``|G(F(b)) - b|`` on
``model.domain_b_eval_split``), and ``pixel_l1`` / ``label_accuracy`` as skipped with the
reason; its pictures have no ground-truth column.

Pictures: ``translation_<step>.png``, one row per input; CycleGAN columns: input,
translation, ground truth, reconstruction (rows from X, then from Y); StarGAN columns: input,
then its translation to each domain of ``model.domains``.

Precision: ``train.compute_dtype`` is the ``dtype`` of every generator and discriminator, in
training, evaluation, sampling and pictures alike; parameters, optimizer states and the
history pools stay float32. The modules return float32 images, scores and logits, so every
loss (least squares, Wasserstein, cycle, identity, domain classification), the gradient
penalty's interpolation and input gradient, and every evaluation number (pixel L1, cycle L1,
label and domain accuracy, measured by float32 classifiers) are computed in float32.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import domains as domain_views
from genjax.data import load_dataset, preprocess
from genjax.eval.images import picture_path, save_interpolation_grid
from genjax.eval.likelihood import batch_outputs
from genjax.losses import (
    cycle_consistency_loss,
    domain_classification_loss,
    gradient_penalty,
    identity_loss,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_discriminator_loss,
    nonsaturating_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from genjax.models.translation import (
    PatchGANDiscriminator,
    ResnetGenerator,
    StarGANDiscriminator,
    StarGANGenerator,
)
from genjax.train import history_pool
from genjax.train.config import AtLeast, Each, Flag, Number, OneOf, Rule, Text, need
from genjax.train.method import Method, register
from genjax.train.optim import make_optimizer
from genjax.train.parallel import along_batch, critic_parts
from genjax.train.precision import compute_dtype
from genjax.train.state import ModelState, TrainState, apply_gradients, prefixed

ADVERSARIAL_LOSSES = ("least_squares", "nonsaturating")
GRID_ROWS = 8
_TRAINED_CLASSIFIERS: dict[str, object] = {}  # classifier config JSON -> FeatureClassifier
_DOMAIN_B_STREAM = 0xB  # seeds the host generator of domain-B draws apart from other streams


@dataclasses.dataclass(frozen=True)
class CycleGANConfig:
    """CycleGAN: architecture, objective weights, evaluation classifiers (module docstring).

    Attributes:
      domains: the views (X, Y) of ``data.name``, two of :data:`genjax.data.domains.DOMAINS`;
        ``()`` with ``domain_b_dataset``.
      domain_b_dataset: empty: X and Y are the views ``domains`` of ``data.name``; set: Y is
        that dataset's ``domain_b_split`` (eval: ``domain_b_eval_split``).
      domain_b_split / domain_b_eval_split: domain B's train and eval splits.
      base_features, num_downsamples, num_blocks: the ResNet generator's first width, its
        stride-2 downsamplings (0: none; image sides divisible by ``2 ** num_downsamples``)
        and residual blocks (0: none).
      discriminator_features, discriminator_layers: the PatchGAN's first width and depth.
      adversarial_loss: ``least_squares`` (the paper's) or ``nonsaturating``.
      lambda_cyc: weight of the cycle-consistency loss; 0 removes it.
      lambda_identity: weight of the identity loss relative to ``lambda_cyc``, as the
        reference's ``lambda_identity``; 0 removes it.
      pool_size: generated images in each history pool; 0 means no pool.
      pool_groups: independent pools per domain, each of ``pool_size`` images, the batch cut
        into as many contiguous blocks (:mod:`genjax.train.history_pool`). 0: one per batch
        position (each runs the paper's batch-1 pool; the pools split over the devices with
        the batch, so nothing is gathered); 1: one pool visited by the whole batch in order
        (the reference code with a batch; on several devices XLA gathers the generated batch).
      classifier_workdir: the digit classifier for label preservation; empty: trained in memory
        for ``classifier_steps`` steps at the first evaluation.
      classifier_steps: Adam steps of the in-memory classifier.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "domains": Each(element=OneOf(choices=domain_views.DOMAINS),
                        note="(): with model.domain_b_dataset"),
        "domain_b_dataset": Text(note="empty: the views of model.domains"),
        "domain_b_split": Text(nonempty=True),
        "domain_b_eval_split": Text(nonempty=True),
        "base_features": AtLeast(),
        "num_downsamples": AtLeast(minimum=0, note="0: no downsampling"),
        "num_blocks": AtLeast(minimum=0, note="0: no residual blocks"),
        "discriminator_features": AtLeast(),
        "discriminator_layers": AtLeast(),
        "adversarial_loss": OneOf(choices=ADVERSARIAL_LOSSES),
        "lambda_cyc": Number(low=0.0, note="0: no cycle-consistency term"),
        "lambda_identity": Number(low=0.0, note="0: no identity term"),
        "pool_size": AtLeast(minimum=0, note="0: no history pool"),
        "pool_groups": AtLeast(minimum=0, note="0: one pool per batch position"),
        "classifier_workdir": Text(note="empty: trained in memory"),
        "classifier_steps": AtLeast(),
    }

    domains: tuple[str, ...] = ("original", "inverted")  # (X, Y)
    domain_b_dataset: str = ""
    domain_b_split: str = "train"
    domain_b_eval_split: str = "test"
    base_features: int = 64
    num_downsamples: int = 2
    num_blocks: int = 9
    discriminator_features: int = 64
    discriminator_layers: int = 3
    adversarial_loss: str = "least_squares"
    lambda_cyc: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    pool_groups: int = 0
    classifier_workdir: str = ""
    classifier_steps: int = 1000


@dataclasses.dataclass(frozen=True)
class StarGANConfig:
    """StarGAN: architecture, objective weights, evaluation classifiers (module docstring).

    Attributes:
      domains: at least two distinct views of :data:`genjax.data.domains.DOMAINS`.
      base_features, num_downsamples, num_blocks: the generator's first width, its stride-2
        downsamplings (0: none; image sides divisible by ``2 ** num_downsamples``) and
        residual blocks (0: none).
      discriminator_features, discriminator_layers: the discriminator's first width and its
        stride-2 convolutions (image sides divisible by ``2 ** discriminator_layers``).
      lambda_cls, lambda_rec, lambda_gp: weights of the domain classification,
        reconstruction and gradient-penalty terms (Choi et al. Eq. 5-6); 0 removes a term.
      n_critic: discriminator updates per generator update; ``train.batch_size`` is a
        multiple of it.
      classifier_workdir / domain_classifier_workdir: the digit and domain classifiers of the
        evaluation; empty: trained in memory for ``classifier_steps`` steps.
      classifier_steps: Adam steps of an in-memory classifier.
      generator_outer_kernel: kernel size of the generator's first and last convolutions
        (odd; 7 in Choi et al.); on 8x8 images 7 sees the whole image, 3 keeps G local.
      generator_skip: U-Net skips in the generator (each upsampled map concatenated with the
        map of the same size on the way down); not in Choi et al.; needs num_downsamples >= 1
        to change anything.
      lambda_id: weight of an identity term ``|G(x, c) - x|`` with the source label ``c`` (not
        in Choi et al.; AttGAN's reconstruction, CycleGAN's identity loss); 0 removes it.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "domains": Each(element=OneOf(choices=domain_views.DOMAINS)),
        "base_features": AtLeast(),
        "num_downsamples": AtLeast(minimum=0, note="0: no downsampling"),
        "num_blocks": AtLeast(minimum=0, note="0: no residual blocks"),
        "discriminator_features": AtLeast(),
        "discriminator_layers": AtLeast(),
        "lambda_cls": Number(low=0.0, note="0: no classification term"),
        "lambda_rec": Number(low=0.0, note="0: no reconstruction term"),
        "lambda_gp": Number(low=0.0, note="0: no gradient penalty"),
        "n_critic": AtLeast(),
        "classifier_workdir": Text(note="empty: trained in memory"),
        "domain_classifier_workdir": Text(note="empty: trained in memory"),
        "classifier_steps": AtLeast(),
        "generator_outer_kernel": AtLeast(),
        "generator_skip": Flag(),
        "lambda_id": Number(low=0.0, note="0: no identity term"),
    }

    domains: tuple[str, ...] = ("original", "inverted", "rot90", "thick")
    base_features: int = 64
    num_downsamples: int = 2
    num_blocks: int = 6
    discriminator_features: int = 64
    discriminator_layers: int = 6
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    n_critic: int = 5
    classifier_workdir: str = ""
    domain_classifier_workdir: str = ""
    classifier_steps: int = 1000
    generator_outer_kernel: int = 7
    generator_skip: bool = False
    lambda_id: float = 0.0


class _TranslationMethod(Method):
    """What CycleGAN and StarGAN share: data checks, domain views, evaluation classifiers."""

    min_domains = 2

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
        modes = {config.data.preprocess, config.data.eval_preprocess or config.data.preprocess}
        need(modes == {"symmetric"}, "data.preprocess", config.data.preprocess,
             "'symmetric' (the generators' tanh output is in [-1, 1]), with "
             "data.eval_preprocess empty or the same")

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
        self._classifiers: dict[str, object] = {}
        self._eval_images = None

    # -- data ---------------------------------------------------------------------------------
    def view(self, pixels, domain: str) -> jax.Array:
        """Integer pixels of original images -> the ``domain`` view as model input in [-1, 1]."""
        pixels = domain_views.to_domain(jnp.asarray(pixels), domain, max_value=self.max_value)
        return preprocess(None, pixels, mode="symmetric", num_bits=self.data.num_bits)

    def _paired_views(self, dataset) -> tuple[np.ndarray, np.ndarray | None]:
        """Eval views ``(N, K, H, W, C)`` in [0, 1] (pairs kept) and the digit labels."""
        views = domain_views.make_domain_views(dataset.images, dataset.labels, self.domains,
                                               max_value=self.max_value)
        return views.images.astype(np.float32) / self.max_value, views.labels

    # -- independent classifiers ----------------------------------------------------------------
    def independent_classifier(self, by: str):
        """The digit (``by="digit"``) or domain (``"domain"``) classifier, loaded or trained
        once per process."""
        if by not in self._classifiers:
            cfg = self.config.model
            path = cfg.classifier_workdir if by == "digit" else cfg.domain_classifier_workdir
            clf = self._load_classifier(path) if path else self._train_classifier(by)
            if by == "domain" and clf.num_classes != len(domain_views.DOMAINS):
                raise ValueError(
                    f"model.domain_classifier_workdir={path!r} holds a {clf.num_classes}-class "
                    f"classifier; the domain classifier has {len(domain_views.DOMAINS)} classes "
                    f"(genjax.data.domains.DOMAINS): train it on data.name="
                    f"{self.data.name}_domains_by_domain"
                )
            self._classifiers[by] = clf
        return self._classifiers[by]

    def _load_classifier(self, path: str):
        from genjax.eval.features import load_classifier

        data = self.config.data
        overrides = [f"data.{k}={getattr(data, k)}" for k in ("data_dir", "manual_dir")
                     if getattr(data, k)]
        clf = load_classifier(path, overrides=overrides)
        if clf.image_shape != tuple(self.data.shape):
            raise ValueError(f"the classifier in {path} takes {clf.image_shape} images, the data "
                             f"are {tuple(self.data.shape)}")
        return clf

    def _train_classifier(self, by: str):
        """Trains the classifier_digits CNN in memory on ``<base>_domains[_by_domain]``."""
        from genjax.eval.features import FeatureClassifier
        from genjax.methods.classifier import ClassifierConfig
        from genjax.train.config import Config, DataConfig, OptimConfig, TrainConfig, to_json
        from genjax.train.loop import Trainer

        name = f"{self.data.name}_domains" + ("_by_domain" if by == "domain" else "")
        if name not in domain_views.DATASETS:
            raise ValueError(
                f"no domain dataset for {self.data.name!r} to train the {by} classifier on; set "
                f"model.{'classifier' if by == 'digit' else 'domain_classifier'}_workdir"
            )
        d = self.config.data
        limit = d.max_train_examples * len(domain_views.DOMAINS)
        config = Config(
            method="classifier",
            model=ClassifierConfig(conv_features=(32, 64), dense=128, dropout_rate=0.25),
            data=DataConfig(name=name, train_split=d.train_split, preprocess="unit",
                            data_dir=d.data_dir, manual_dir=d.manual_dir,
                            max_train_examples=limit),
            optim=OptimConfig(name="adam", learning_rate=1e-3),
            train=TrainConfig(seed=self.config.train.seed, batch_size=100, progress=False,
                              num_steps=self.config.model.classifier_steps),
        )
        key = to_json(config)  # the same classifier is trained once per process
        if key not in _TRAINED_CLASSIFIERS:
            trainer = Trainer(config, None)  # the devices that divide its batch of 100
            for _ in range(config.train.num_steps):
                trainer.step()
            where = Path(f"(in memory: {name}, {config.train.num_steps} steps)")
            _TRAINED_CLASSIFIERS[key] = FeatureClassifier(trainer, where)
        return _TRAINED_CLASSIFIERS[key]

    def _label_accuracy(self, translated, target_views, labels) -> tuple[float, float]:
        """Digit classifier accuracy on the translations and on the ground-truth views."""
        from genjax.eval.features import classifier_accuracy

        clf = self.independent_classifier("digit")
        return (classifier_accuracy(clf, np.clip(translated, 0, 1), labels),
                classifier_accuracy(clf, target_views, labels))

    def _classifier_info(self) -> dict:
        return {f"{by}_classifier": str(clf.workdir) for by, clf in self._classifiers.items()}

    def _eval_split(self):
        if self._eval_images is None:
            cfg = self.config
            self._eval_images = self.load_split(
                cfg.data.eval_split, cfg.eval.max_examples or cfg.data.max_eval_examples)
        return self._eval_images


# =============================================================================================
@register
class CycleGANMethod(_TranslationMethod):
    """Two generators G: X -> Y, F: Y -> X and two PatchGAN discriminators D_Y, D_X."""

    name = "cyclegan"
    model_config = CycleGANConfig
    split_collections = ("history_pool",)  # one pool per group of batch rows

    @staticmethod
    def domain_batch_size(config) -> int:
        """Images of each domain in a step: half the batch (views), or all of it (two datasets)."""
        b = config.train.batch_size
        return b if config.model.domain_b_dataset else b // 2

    @classmethod
    def pool_groups(cls, config) -> int:
        """The history pools per domain (``model.pool_groups``, 0 resolved)."""
        return config.model.pool_groups or cls.domain_batch_size(config)

    @classmethod
    def check_model(cls, config):
        super().check_model(config)
        cfg: CycleGANConfig = config.model
        if cfg.domain_b_dataset:
            need(not tuple(cfg.domains), "model.domains", tuple(cfg.domains),
                 f"() with model.domain_b_dataset={cfg.domain_b_dataset!r} (the domains are "
                 "data.name and model.domain_b_dataset as stored; --set model.domains=)")
        else:
            need(len(cfg.domains) == 2, "model.domains", tuple(cfg.domains),
                 "exactly two domains (X, Y)")
            need(config.train.batch_size % 2 == 0, "train.batch_size", config.train.batch_size,
                 "an even number: even rows of each batch are domain X, odd rows domain Y")
        per_domain = cls.domain_batch_size(config)
        need(per_domain % cls.pool_groups(config) == 0, "model.pool_groups", cfg.pool_groups,
             f"a divisor of the {per_domain} images of each domain per step (train.batch_size="
             f"{config.train.batch_size}), or 0 (one pool per batch position)")

    @classmethod
    def check_data(cls, config, data):
        super().check_data(config, data)
        cfg: CycleGANConfig = config.model
        size = data.shape[0] // 2 ** cfg.discriminator_layers - 1
        need(size >= 2, "model.discriminator_layers", cfg.discriminator_layers,
             f"fewer layers: {data.shape[0]}x{data.shape[1]} images leave a {size}x{size} map "
             "for the PatchGAN's last 4x4 convolution, which needs 2x2")

    def __init__(self, config, data):
        super().__init__(config, data)
        cfg: CycleGANConfig = config.model
        self.domain_b = None  # the domain-B train split (two-dataset mode)
        self._domain_b_eval_data = None
        if cfg.domain_b_dataset:
            self.domain_b = self._load_domain_b(cfg.domain_b_split, config.data.max_train_examples)
        dtype = compute_dtype(config)
        self.generator = ResnetGenerator(data.shape[-1], cfg.base_features, cfg.num_downsamples,
                                         cfg.num_blocks, dtype=dtype)
        self.discriminator = PatchGANDiscriminator(cfg.discriminator_features,
                                                   cfg.discriminator_layers, dtype=dtype)
        self.g_tx = make_optimizer(config.optim, config.train.num_steps)
        self.d_tx = make_optimizer(config.optim, config.train.num_steps)

    # -- domain B from a second dataset ---------------------------------------------------------
    def _load_domain_b(self, split: str, max_examples: int):
        """``split`` of ``model.domain_b_dataset``, truncated; its images must match data.name's."""
        cfg, d = self.config.model, self.config.data
        ds = load_dataset(cfg.domain_b_dataset, split, data_dir=d.data_dir or None,
                          manual_dir=d.manual_dir or None)
        if max_examples and max_examples < len(ds):
            labels = None if ds.labels is None else ds.labels[:max_examples]
            ds = dataclasses.replace(ds, images=ds.images[:max_examples], labels=labels)
        if tuple(ds.shape) != tuple(self.data.shape):
            raise ValueError(
                f"model.domain_b_dataset={cfg.domain_b_dataset!r} split {split!r} has images of "
                f"shape {tuple(ds.shape)}, data.name={self.data.name!r} has "
                f"{tuple(self.data.shape)}: CycleGAN needs one image shape for both domains; "
                "choose datasets of the same size and channels (or resize one when preparing it)")
        return ds

    def domain_b_batch(self, step: int, num: int) -> np.ndarray:
        """``num`` stored images of the domain-B train split for ``step``, drawn uniformly with
        replacement; a pure function of (``train.seed``, step, process index)."""
        rng = np.random.default_rng(
            [self.config.train.seed, int(step), jax.process_index(), _DOMAIN_B_STREAM])
        return self.domain_b.images[rng.integers(0, len(self.domain_b), int(num))]

    def host_batch(self, step: int, batch: dict) -> dict:
        """Two-dataset mode: adds ``image_b``, this step's domain-B images, to the batch."""
        if self.domain_b is None:
            return batch
        return {**batch, "image_b": self.domain_b_batch(step, len(batch["image"]))}

    def _stored_to_model(self, pixels, num_bits: int) -> jax.Array:
        return preprocess(None, jnp.asarray(pixels), mode="symmetric", num_bits=num_bits)

    def init(self, key, batch):
        k_g, k_f, k_dx, k_dy = jax.random.split(key, 4)
        x = (self.view(batch["image"], self.domains[0]) if self.domain_b is None
             else self._stored_to_model(batch["image"], self.data.num_bits))
        pool = history_pool.init(self.config.model.pool_size, x.shape[1:],
                                 groups=self.pool_groups(self.config), dtype=jnp.float32)
        gen = lambda k: ModelState.create(self.generator.init(k, x), self.g_tx)
        disc = lambda k: ModelState.create(
            {**self.discriminator.init(k, x), "history_pool": pool}, self.d_tx)
        return {"generator_xy": gen(k_g), "generator_yx": gen(k_f),
                "discriminator_x": disc(k_dx), "discriminator_y": disc(k_dy)}

    def _d(self, params, x):
        return self.discriminator.apply({"params": params}, x)

    def generator_loss(self, params, d_params, x, y):
        """The objective of G = ``params[0]`` (X -> Y) and F = ``params[1]`` (Y -> X) against
        D_X, D_Y = ``d_params`` on real ``x`` and ``y`` (module docstring).

        Returns ``(loss, (terms, fake_x, fake_y))``: the weighted total, its terms, F(y), G(x).
        """
        cfg: CycleGANConfig = self.config.model
        G = lambda v: self.generator.apply({"params": params[0]}, v)
        F = lambda v: self.generator.apply({"params": params[1]}, v)
        fake_y, fake_x = G(x), F(y)
        adv_fn = ((lambda s: 2.0 * least_squares_generator_loss(s))
                  if cfg.adversarial_loss == "least_squares" else nonsaturating_generator_loss)
        adversarial = adv_fn(self._d(d_params[1], fake_y)) + adv_fn(self._d(d_params[0], fake_x))
        cycle = cycle_consistency_loss(x, F(fake_y)) + cycle_consistency_loss(y, G(fake_x))
        identity = identity_loss(y, G(y)) + identity_loss(x, F(x))
        loss = (adversarial + cfg.lambda_cyc * cycle
                + cfg.lambda_identity * cfg.lambda_cyc * identity)
        terms = {"loss": loss, "adversarial": adversarial, "cycle": cycle, "identity": identity}
        return loss, (terms, fake_x, fake_y)

    def discriminator_loss(self, params, real, fake):
        """D_X's (or D_Y's) loss on real images and generated ones (drawn through its pool)."""
        r, f = self._d(params, real), self._d(params, fake)
        if self.config.model.adversarial_loss == "least_squares":
            return least_squares_discriminator_loss(r, f)
        return 0.5 * minimax_discriminator_loss(r, f)

    def train_step(self, state: TrainState, batch):
        keys = state.step_keys("pool_x", "pool_y")
        if self.domain_b is None:
            # Disjoint halves (unpaired): even rows to X, odd rows to Y, so that each half stays
            # split over every device (see critic_parts).
            halves = critic_parts(batch["image"], 2)
            x = self.view(halves[0], self.domains[0])
            y = self.view(halves[1], self.domains[1])
        else:  # X: the engine's batch; Y: this step's draw from the second dataset (host_batch)
            x = self._stored_to_model(batch["image"], self.data.num_bits)
            y = self._stored_to_model(batch["image_b"], self.domain_b.num_bits)
        m = state.models
        g_xy, g_yx, d_x, d_y = (m["generator_xy"], m["generator_yx"], m["discriminator_x"],
                                m["discriminator_y"])

        # Generators G (X -> Y) and F (Y -> X), against the current discriminators.
        (_, (g_terms, fake_x, fake_y)), grads = jax.value_and_grad(
            self.generator_loss, has_aux=True)((g_xy.params, g_yx.params),
                                               (d_x.params, d_y.params), x, y)
        g_xy, g_norms = apply_gradients(g_xy, grads[0], self.g_tx)
        g_yx, f_norms = apply_gradients(g_yx, grads[1], self.g_tx)

        # Discriminators, on real images and on generated ones drawn through the history pools.
        def discriminator_update(d: ModelState, real, fake, key):
            # Each group's pool visits its block of the batch in order; with one group per
            # position (or per device's rows) the pools are split with the batch (the engine
            # splits ``split_collections``) and nothing moves between devices.
            pool, fake = history_pool.query(d.collections["history_pool"],
                                            jax.lax.stop_gradient(fake), key)
            loss, grads = jax.value_and_grad(self.discriminator_loss)(d.params, real, fake)
            d, norms = apply_gradients(d, grads, self.d_tx, collections={"history_pool": pool})
            return d, {"loss": loss, **norms}

        d_x, dx_metrics = discriminator_update(d_x, x, fake_x, keys["pool_x"])
        d_y, dy_metrics = discriminator_update(d_y, y, fake_y, keys["pool_y"])
        models = {"generator_xy": g_xy, "generator_yx": g_yx, "discriminator_x": d_x,
                  "discriminator_y": d_y}
        metrics = {**prefixed("generator", g_terms), **prefixed("generator_xy", g_norms),
                   **prefixed("generator_yx", f_norms), **prefixed("discriminator_x", dx_metrics),
                   **prefixed("discriminator_y", dy_metrics)}
        return state.replace(models=models), metrics

    # -- evaluation -----------------------------------------------------------------------------
    def _translate(self, state, direction: str, images_unit: np.ndarray) -> np.ndarray:
        """Images in [0, 1] of the source domain -> translations in [0, 1] (unclipped)."""
        params = state.models[f"generator_{direction}"].params
        out = batch_outputs(self._translate_batch, params, {"image": images_unit},
                            batch_size=self.config.eval.batch_size, static=self.config)
        return (out + 1.0) / 2.0

    def _translate_batch(self, params, batch):
        """G of a batch ``{"image": [0, 1] images}`` in [-1, 1] (a :func:`batch_outputs` fn)."""
        return self.generator.apply({"params": params}, 2.0 * batch["image"] - 1.0)

    def _domain_b_eval(self):
        if self._domain_b_eval_data is None:
            cfg = self.config
            self._domain_b_eval_data = self._load_domain_b(
                cfg.model.domain_b_eval_split, cfg.eval.max_examples or cfg.data.max_eval_examples)
        return self._domain_b_eval_data

    def _unpaired_eval_images(self, dataset) -> tuple[np.ndarray, np.ndarray]:
        """Eval images of A (``dataset``) and of B (``model.domain_b_eval_split``) in [0, 1]."""
        b = self._domain_b_eval()
        return (dataset.images.astype(np.float32) / (2**dataset.num_bits - 1),
                b.images.astype(np.float32) / (2**b.num_bits - 1))

    def _evaluate_unpaired(self, state: TrainState, dataset) -> dict:
        a, b = self._unpaired_eval_images(dataset)
        cfg = self.config.model
        out = {"num_examples_a": len(a), "num_examples_b": len(b)}
        for name, src, direction, back in (("a", a, "xy", "yx"), ("b", b, "yx", "xy")):
            translated = np.clip(self._translate(state, direction, src), 0, 1)
            reconstructed = self._translate(state, back, translated)
            out[f"cycle_l1_{name}"] = float(np.mean(np.abs(reconstructed - src)))
        reason = (f"skipped: no ground truth (domain B is model.domain_b_dataset="
                  f"{cfg.domain_b_dataset!r} split {cfg.domain_b_eval_split!r}, not a view of "
                  f"data.name={self.data.name!r}, so no image has a known translation)")
        out["pixel_l1"] = reason
        out["label_accuracy"] = reason
        return out

    def evaluate(self, state: TrainState, dataset, key) -> dict:
        del key  # deterministic
        if self.domain_b is not None:
            return self._evaluate_unpaired(state, dataset)
        views, labels = self._paired_views(dataset)
        out = {"num_examples": len(views)}
        names = self.domains
        for a, b, direction, back in ((0, 1, "xy", "yx"), (1, 0, "yx", "xy")):
            src, truth = views[:, a], views[:, b]
            translated = self._translate(state, direction, src)
            reconstructed = self._translate(state, back, np.clip(translated, 0, 1))
            key_ab = f"{names[a]}_to_{names[b]}"
            out[f"pixel_l1_{key_ab}"] = float(np.mean(np.abs(translated - truth)))
            out[f"pixel_l1_{key_ab}_identity_baseline"] = float(np.mean(np.abs(src - truth)))
            out[f"cycle_l1_{names[a]}"] = float(np.mean(np.abs(reconstructed - src)))
            if labels is not None:
                acc, acc_truth = self._label_accuracy(translated, truth, labels)
                out[f"label_accuracy_{key_ab}"] = acc
                out[f"label_accuracy_{key_ab}_ground_truth"] = acc_truth
        return {**out, **self._classifier_info()}

    def sample(self, state: TrainState, key, num: int) -> np.ndarray:
        """Translations X -> Y of ``num`` eval images chosen with ``key``, in [0, 1]."""
        ds = self._eval_split()
        idx = np.asarray(jax.random.choice(key, len(ds), (int(num),), replace=num > len(ds)))
        if self.domain_b is None:
            src = np.asarray(self.view(ds.images[idx], self.domains[0]) + 1.0) / 2.0
        else:
            src = ds.images[idx].astype(np.float32) / (2**ds.num_bits - 1)
        return np.clip(self._translate(state, "xy", src), 0.0, 1.0)

    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        if self.domain_b is not None:  # columns: input, translation, reconstruction
            rows = []
            for src, direction, back in zip(self._unpaired_eval_images(dataset), ("xy", "yx"),
                                            ("yx", "xy"), strict=True):
                src = src[: GRID_ROWS // 2]
                translated = np.clip(self._translate(state, direction, src), 0, 1)
                reconstructed = np.clip(self._translate(state, back, translated), 0, 1)
                rows += [np.stack(r) for r in zip(src, translated, reconstructed, strict=True)]
            path = picture_path(outdir, "translation", step)
            save_interpolation_grid(path, rows)
            return [path]
        views, _ = self._paired_views(dataset)
        views = views[: GRID_ROWS // 2]
        rows = []
        for a, b, direction, back in ((0, 1, "xy", "yx"), (1, 0, "yx", "xy")):
            translated = np.clip(self._translate(state, direction, views[:, a]), 0, 1)
            reconstructed = np.clip(self._translate(state, back, translated), 0, 1)
            rows += [np.stack(r) for r in zip(views[:, a], translated, views[:, b], reconstructed,
                                              strict=True)]
        path = picture_path(outdir, "translation", step)
        save_interpolation_grid(path, rows)
        return [path]


# =============================================================================================
@register
class StarGANMethod(_TranslationMethod):
    """One generator G(x, c) for every domain and one discriminator with two heads."""

    name = "stargan"
    model_config = StarGANConfig

    @classmethod
    def check_model(cls, config):
        super().check_model(config)
        cfg: StarGANConfig = config.model
        need(config.train.batch_size % cfg.n_critic == 0, "train.batch_size",
             config.train.batch_size, f"a multiple of model.n_critic={cfg.n_critic} (one part "
             "of the batch per critic update)")
        need(cfg.generator_outer_kernel % 2 == 1, "model.generator_outer_kernel",
             cfg.generator_outer_kernel, "an odd integer (a centred kernel keeps the size)")

    @classmethod
    def check_data(cls, config, data):
        super().check_data(config, data)
        cfg: StarGANConfig = config.model
        factor = 2**cfg.discriminator_layers
        need(data.shape[0] % factor == 0, "model.discriminator_layers", cfg.discriminator_layers,
             f"stride-2 layers that halve {data.shape[0]}x{data.shape[1]} images exactly (sides "
             "divisible by 2 ** discriminator_layers)")

    def __init__(self, config, data):
        super().__init__(config, data)
        cfg: StarGANConfig = config.model
        self.num_domains = len(self.domains)
        dtype = compute_dtype(config)
        self.generator = StarGANGenerator(data.shape[-1], cfg.base_features, cfg.num_downsamples,
                                          cfg.num_blocks, cfg.generator_outer_kernel,
                                          cfg.generator_skip, dtype=dtype)
        self.discriminator = StarGANDiscriminator(self.num_domains, cfg.discriminator_features,
                                                  cfg.discriminator_layers, dtype=dtype)
        self.g_tx = make_optimizer(config.optim, config.train.num_steps)
        self.d_tx = make_optimizer(config.optim, config.train.num_steps * cfg.n_critic)

    def _generate(self, params, x, c):
        return self.generator.apply({"params": params}, x, jax.nn.one_hot(c, self.num_domains))

    def _discriminate(self, params, x):
        return self.discriminator.apply({"params": params}, x)

    def init(self, key, batch):
        k_g, k_d = jax.random.split(key)
        x = self.view(batch["image"], self.domains[0])
        c = jnp.zeros(x.shape[0], jnp.int32)
        return {
            "generator": ModelState.create(self.generator.init(k_g, x, jax.nn.one_hot(
                c, self.num_domains)), self.g_tx),
            "discriminator": ModelState.create(self.discriminator.init(k_d, x), self.d_tx),
        }

    def _views_of(self, pixels, labels) -> jax.Array:
        """Example ``i`` of ``pixels`` (original images) in domain ``labels[i]``, in [-1, 1]."""
        # A select, not a gather from the stacked views: elementwise, so it stays split over
        # the devices like ``pixels`` (XLA computes such a gather whole on every device).
        views = [self.view(pixels, d) for d in self.domains]
        out = views[0]
        for k, view in enumerate(views[1:], start=1):
            out = jnp.where((labels == k).reshape(-1, 1, 1, 1), view, out)
        return out

    def critic_loss(self, params, x, fake, c, penalty_key):
        """D's objective (Choi et al. Eq. 1 with WGAN-GP, Eq. 2) on real ``x`` with source labels
        ``c`` and translations ``fake``: ``(loss, terms)``."""
        cfg: StarGANConfig = self.config.model
        real_scores, real_logits = self._discriminate(params, x)
        fake_scores, _ = self._discriminate(params, fake)
        critic = lambda v: jnp.sum(self._discriminate(params, v)[0], axis=(1, 2, 3))
        terms = {
            "adversarial": wasserstein_critic_loss(real_scores, fake_scores),
            "classification": domain_classification_loss(real_logits, c, multi_label=False),
            "gradient_penalty": gradient_penalty(critic, x, fake, penalty_key),
        }
        loss = (terms["adversarial"] + cfg.lambda_cls * terms["classification"]
                + cfg.lambda_gp * terms["gradient_penalty"])
        return loss, {"loss": loss, **terms}

    def generator_loss(self, params, d_params, x, c, c_target):
        """G's objective (Choi et al. Eq. 1, 3, 4): fool D_src, be classified as ``c_target``,
        reconstruct ``x`` (source labels ``c``): ``(loss, terms)``."""
        cfg: StarGANConfig = self.config.model
        fake = self._generate(params, x, c_target)
        scores, logits = self._discriminate(d_params, fake)
        terms = {
            "adversarial": wasserstein_generator_loss(scores),
            "classification": domain_classification_loss(logits, c_target, multi_label=False),
            "reconstruction": cycle_consistency_loss(x, self._generate(params, fake, c)),
        }
        loss = (terms["adversarial"] + cfg.lambda_cls * terms["classification"]
                + cfg.lambda_rec * terms["reconstruction"])
        if cfg.lambda_id > 0:  # not in Choi et al.: G(x, c) = x for the source label c
            terms["identity"] = identity_loss(x, self._generate(params, x, c))
            loss = loss + cfg.lambda_id * terms["identity"]
        return loss, {"loss": loss, **terms}

    def critic_update(self, g: ModelState, d: ModelState, x, c, c_target, penalty_key):
        """One discriminator update on real ``x`` (source labels ``c``) and G(x, c_target)."""
        fake = jax.lax.stop_gradient(self._generate(g.params, x, c_target))  # float32 (module)
        (_, terms), grads = jax.value_and_grad(self.critic_loss, has_aux=True)(
            d.params, x, fake, c, penalty_key)
        d, norms = apply_gradients(d, grads, self.d_tx)
        return d, {**terms, **norms}

    def generator_update(self, g: ModelState, d: ModelState, x, c, c_target):
        """One generator update (:meth:`generator_loss`) against the discriminator ``d``."""
        (_, terms), grads = jax.value_and_grad(self.generator_loss, has_aux=True)(
            g.params, d.params, x, c, c_target)
        g, norms = apply_gradients(g, grads, self.g_tx)
        return g, {**terms, **norms}

    def train_step(self, state: TrainState, batch):
        n = self.config.model.n_critic
        keys = state.step_keys("target", "penalty")
        pixels = batch["image"]
        parts = critic_parts(pixels, n)  # part i: rows i, i + n, ... (split over the devices)
        # Source domains, and each critic step's target domains (a permutation of them): a few
        # ints computed whole on every device, then split like the images.
        every_c = jnp.arange(parts.shape[1], dtype=jnp.int32) % self.num_domains
        c = along_batch(every_c)
        g, d = state.models["generator"], state.models["discriminator"]
        for i in range(n):  # unrolled: n_critic is small (5)
            x = self._views_of(parts[i], c)
            c_target = along_batch(
                jax.random.permutation(jax.random.fold_in(keys["target"], i), every_c))
            d, d_metrics = self.critic_update(g, d, x, c, c_target,
                                              jax.random.fold_in(keys["penalty"], i))
        g, g_metrics = self.generator_update(g, d, x, c, c_target)  # the last part's batch
        metrics = {**prefixed("discriminator", d_metrics), **prefixed("generator", g_metrics)}
        return state.replace(models={"generator": g, "discriminator": d}), metrics

    # -- evaluation -----------------------------------------------------------------------------
    def _translate(self, state, images_unit: np.ndarray, target) -> np.ndarray:
        """Images in [0, 1] -> G(x, target) in [0, 1] (unclipped); ``target``: int or (N,)."""
        params = state.models["generator"].params
        c = np.broadcast_to(np.asarray(target, np.int32), (len(images_unit),))
        out = batch_outputs(self._translate_batch, params, {"image": images_unit, "target": c},
                            batch_size=self.config.eval.batch_size, static=self.config)
        return (out + 1.0) / 2.0

    def _translate_batch(self, params, batch):
        """G(x, target) of a batch ``{"image": [0, 1] images, "target"}`` in [-1, 1] (a
        :func:`batch_outputs` fn)."""
        return self._generate(params, 2.0 * batch["image"] - 1.0, batch["target"])

    def _domain_logits_batch(self, params, batch):
        """D's domain logits of a batch ``{"image": [0, 1] images}`` (a :func:`batch_outputs`
        fn)."""
        return self._discriminate(params, 2.0 * batch["image"] - 1.0)[1]

    _PAIR_SUFFIXES = ("_identity_baseline", "_ground_truth")

    @classmethod
    def _pair_key(cls, metric: str, pair: str) -> str:
        """``("label_accuracy_ground_truth", "a_to_b")`` -> ``label_accuracy_a_to_b_ground_truth``."""
        for suffix in cls._PAIR_SUFFIXES:
            if metric.endswith(suffix):
                return f"{metric[: -len(suffix)]}_{pair}{suffix}"
        return f"{metric}_{pair}"

    @staticmethod
    def _pair_means(pairs, suffix: str) -> dict:
        """Each metric averaged over ``pairs`` (dicts of one pair's metrics), keys + ``suffix``."""
        pairs = list(pairs)
        return {f"{m}{suffix}": float(np.mean([p[m] for p in pairs])) for m in pairs[0]}

    def evaluate(self, state: TrainState, dataset, key) -> dict:
        from genjax.eval.features import classifier_accuracy

        del key  # deterministic
        views, labels = self._paired_views(dataset)
        names, k = self.domains, self.num_domains
        d_params = state.models["discriminator"].params
        real_cls = [batch_outputs(self._domain_logits_batch, d_params, {"image": views[:, s]},
                                  batch_size=self.config.eval.batch_size, static=self.config)
                    for s in range(k)]
        out = {
            "num_examples": len(views),
            "discriminator_domain_accuracy_real": float(np.mean(
                [np.mean(np.argmax(lg, 1) == s) for s, lg in enumerate(real_cls)])),
        }
        domain_clf = self.independent_classifier("domain")
        pairs = {}  # "<a>_to_<b>" -> {metric: value}
        for s in range(k):
            for t in range(k):
                if s == t:
                    continue
                src, truth = views[:, s], views[:, t]
                translated = self._translate(state, src, t)
                rec = self._translate(state, np.clip(translated, 0, 1), s)
                pair = {
                    "pixel_l1": float(np.mean(np.abs(translated - truth))),
                    "pixel_l1_identity_baseline": float(np.mean(np.abs(src - truth))),
                    "cycle_l1": float(np.mean(np.abs(rec - src))),
                    "domain_accuracy": classifier_accuracy(
                        domain_clf, np.clip(translated, 0, 1),
                        np.full(len(src), domain_views.DOMAINS.index(names[t]))),
                }
                if labels is not None:
                    acc, acc_truth = self._label_accuracy(translated, truth, labels)
                    pair["label_accuracy"] = acc
                    pair["label_accuracy_ground_truth"] = acc_truth
                pairs[f"{names[s]}_to_{names[t]}"] = pair
        for key_st, pair in pairs.items():
            for metric, value in pair.items():
                out[self._pair_key(metric, key_st)] = value
        out.update(self._pair_means(pairs.values(), ""))
        out["num_domain_pairs"] = len(pairs)
        if "rot90" in names and k >= 3:  # the pairs a translation-equivariant G can do locally
            local = [p for st, p in pairs.items() if "rot90" not in st.split("_to_")]
            out.update(self._pair_means(local, "_without_rot90"))
            out["num_domain_pairs_without_rot90"] = len(local)
        out["domain_accuracy_ground_truth"] = float(np.mean([classifier_accuracy(
            domain_clf, views[:, t], np.full(len(views), domain_views.DOMAINS.index(names[t])))
            for t in range(k)]))
        return {**out, **self._classifier_info()}

    def sample(self, state: TrainState, key, num: int) -> np.ndarray:
        """``num`` eval images (first domain) translated to domains ``i % K``, in [0, 1]."""
        ds = self._eval_split()
        idx = np.asarray(jax.random.choice(key, len(ds), (int(num),), replace=num > len(ds)))
        src = np.asarray(self.view(ds.images[idx], self.domains[0]) + 1.0) / 2.0
        return np.clip(self._translate(state, src, np.arange(num) % self.num_domains), 0.0, 1.0)

    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        views, _ = self._paired_views(dataset)
        k = self.num_domains
        src = np.stack([views[i, i % k] for i in range(min(GRID_ROWS, len(views)))])
        columns = [src] + [np.clip(self._translate(state, src, t), 0, 1) for t in range(k)]
        path = picture_path(outdir, "translation", step)
        save_interpolation_grid(path, list(np.stack(columns, axis=1)))
        return [path]
