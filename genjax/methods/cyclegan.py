"""CycleGAN (Zhu et al. 2017): unpaired translation X <-> Y with cycle consistency.

The objective (x in domain X, y in Y), :meth:`CycleGANMethod.generator_loss` and
:meth:`CycleGANMethod.discriminator_loss`:

    G: X -> Y, F: Y -> X, discriminators D_X, D_Y (PatchGAN)
    D_Y: least_squares_discriminator_loss(D_Y(y), D_Y(pool_Y(G(x))))   (and D_X alike)
    G, F: 2 * least_squares_generator_loss(D_Y(G(x))) + (the same for F, D_X)
          + lambda_cyc * [cycle_consistency_loss(x, F(G(x))) + cycle_consistency_loss(y, G(F(y)))]
          + lambda_identity * lambda_cyc * [identity_loss(y, G(y)) + identity_loss(x, F(x))]

The factor 2 makes the generator term the reference code's MSE(D(G(x)), 1); the discriminator
term is its 0.5 * (MSE(D(y), 1) + MSE(D(fake), 0)). Zhu et al. Eq. 1-3 and Sec. 4; lambda_cyc
10, lambda_identity 0.5, history pools of 50 generated images (``model.pool_groups``: one per
batch position by default, the paper's batch-1 pool). ``adversarial_loss="nonsaturating"``
uses 0.5 * minimax_discriminator_loss and nonsaturating_generator_loss instead (the
reference's ``gan_mode='vanilla'``). Data, classifiers and precision:
:mod:`genjax.methods.translation`; evaluation:
:func:`genjax.eval.translation_metrics.two_domain_metrics`.

Two *separate* datasets (unpaired, no ground truth): ``model.domain_b_dataset`` names a second
dataset for :func:`genjax.data.load_dataset` (``tfds:cycle_gan/horse2zebra``, ``digits``, ...;
data_dir and manual_dir from ``data``), or the same one with another split
(``data.train_split=trainA``, ``model.domain_b_split=trainB``). Domain X is then the engine's
batch of ``data.name`` (``train.batch_size`` images), domain Y is as many images of
``model.domain_b_split`` drawn uniformly with replacement (as the reference code's unaligned
dataset draws B) on the host by :meth:`CycleGANMethod.host_batch`, from a generator seeded with
(``train.seed``, step, process): a pure function of the step, so resume stays exact. The engine
shards them with the rest of the batch (``batch["image_b"]``). Images are used as stored
(``model.domains`` must be empty) and must have the shape of ``data.name``'s. Evaluation:
:func:`genjax.eval.translation_metrics.unpaired_cycle_metrics` (``cycle_l1_a`` on
``data.eval_split``, ``cycle_l1_b`` on ``model.domain_b_eval_split``; ``pixel_l1`` and
``label_accuracy`` skipped with the reason).

Pictures: ``translation_<step>.png``, one row per input, columns input, translation, ground
truth, reconstruction (rows from X, then from Y); no ground-truth column with two datasets.
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
from genjax.eval.translation_metrics import two_domain_metrics, unpaired_cycle_metrics
from genjax.losses import (
    cycle_consistency_loss,
    identity_loss,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_discriminator_loss,
    nonsaturating_generator_loss,
)
from genjax.methods.translation import GRID_ROWS, TranslationMethod
from genjax.models.translation import PatchGANDiscriminator, ResnetGenerator
from genjax.train import history_pool
from genjax.train.config import AtLeast, Each, Number, OneOf, Rule, Text, need
from genjax.train.method import register
from genjax.train.optim import make_optimizer
from genjax.train.parallel import critic_parts
from genjax.train.precision import compute_dtype
from genjax.train.state import ModelState, TrainState, apply_gradients, prefixed

ADVERSARIAL_LOSSES = ("least_squares", "nonsaturating")
_DOMAIN_B_STREAM = 0xB  # seeds the host generator of domain-B draws apart from other streams


@dataclasses.dataclass(frozen=True)
class CycleGANConfig:
    """CycleGAN: architecture, objective weights, evaluation classifier (module docstring).

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
      classifier_workdir: a ``genjax train classifier_<base>_domains`` run, the digit
        classifier of label preservation; empty: label accuracy reported as skipped. It
        changes evaluation only: ``genjax evaluate --set model.classifier_workdir=W`` may set
        it on a trained workdir (``EVAL_ONLY_FIELDS``).
    """

    EVAL_ONLY_FIELDS: ClassVar[tuple[str, ...]] = ("classifier_workdir",)
    # Saved runs from before the evaluation classifier became its own run hold this field.
    RETIRED_FIELDS: ClassVar[dict[str, str]] = {
        "classifier_steps": "the classifier is a genjax train classifier_<base>_domains run"}

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
        "classifier_workdir": Text(note="empty: no label accuracy"),
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


@register
class CycleGANMethod(TranslationMethod):
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

    # -- the objective --------------------------------------------------------------------------
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

    # -- what evaluation uses -------------------------------------------------------------------
    def translate(self, state, direction: str, images_unit: np.ndarray) -> np.ndarray:
        """Images in [0, 1] of the source domain -> G (``direction="xy"``) or F (``"yx"``) of
        them in [0, 1], unclipped."""
        params = state.models[f"generator_{direction}"].params
        out = batch_outputs(self._translate_batch, params, {"image": images_unit},
                            batch_size=self.config.eval.batch_size, static=self.config)
        return (out + 1.0) / 2.0

    def _translate_batch(self, params, batch):
        """G of a batch ``{"image": [0, 1] images}`` in [-1, 1] (a :func:`batch_outputs` fn)."""
        return self.generator.apply({"params": params}, 2.0 * batch["image"] - 1.0)

    def _unpaired_eval_images(self, dataset) -> tuple[np.ndarray, np.ndarray]:
        """Eval images of A (``dataset``) and of B (``model.domain_b_eval_split``) in [0, 1]."""
        if self._domain_b_eval_data is None:
            cfg = self.config
            self._domain_b_eval_data = self._load_domain_b(
                cfg.model.domain_b_eval_split, cfg.eval.max_examples or cfg.data.max_eval_examples)
        b = self._domain_b_eval_data
        return (dataset.images.astype(np.float32) / (2**dataset.num_bits - 1),
                b.images.astype(np.float32) / (2**b.num_bits - 1))

    def evaluate(self, state: TrainState, dataset, key) -> dict:
        del key  # deterministic
        forward = lambda images: self.translate(state, "xy", images)
        backward = lambda images: self.translate(state, "yx", images)
        if self.domain_b is not None:
            cfg = self.config.model
            reason = (f"skipped: no ground truth (domain B is model.domain_b_dataset="
                      f"{cfg.domain_b_dataset!r} split {cfg.domain_b_eval_split!r}, not a view of "
                      f"data.name={self.data.name!r}, so no image has a known translation)")
            return unpaired_cycle_metrics(forward, backward, *self._unpaired_eval_images(dataset),
                                          no_ground_truth=reason)
        views, labels = self.paired_views(dataset)
        out = two_domain_metrics(forward, backward, views, labels, self.domains,
                                 classifier=self.classifiers["digit"])
        return {**out, **self.classifier_info()}

    def sample(self, state: TrainState, key, num: int) -> np.ndarray:
        """Translations X -> Y of ``num`` eval images chosen with ``key``, in [0, 1]."""
        ds = self.eval_split()
        idx = np.asarray(jax.random.choice(key, len(ds), (int(num),), replace=num > len(ds)))
        if self.domain_b is None:
            src = np.asarray(self.view(ds.images[idx], self.domains[0]) + 1.0) / 2.0
        else:
            src = ds.images[idx].astype(np.float32) / (2**ds.num_bits - 1)
        return np.clip(self.translate(state, "xy", src), 0.0, 1.0)

    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        if self.domain_b is not None:  # columns: input, translation, reconstruction
            rows = []
            for src, direction, back in zip(self._unpaired_eval_images(dataset), ("xy", "yx"),
                                            ("yx", "xy"), strict=True):
                src = src[: GRID_ROWS // 2]
                translated = np.clip(self.translate(state, direction, src), 0, 1)
                reconstructed = np.clip(self.translate(state, back, translated), 0, 1)
                rows += [np.stack(r) for r in zip(src, translated, reconstructed, strict=True)]
        else:  # columns: input, translation, ground truth, reconstruction
            views, _ = self.paired_views(dataset)
            views = views[: GRID_ROWS // 2]
            rows = []
            for a, b, direction, back in ((0, 1, "xy", "yx"), (1, 0, "yx", "xy")):
                translated = np.clip(self.translate(state, direction, views[:, a]), 0, 1)
                reconstructed = np.clip(self.translate(state, back, translated), 0, 1)
                rows += [np.stack(r) for r in zip(views[:, a], translated, views[:, b],
                                                  reconstructed, strict=True)]
        path = picture_path(outdir, "translation", step)
        save_interpolation_grid(path, rows)
        return [path]
