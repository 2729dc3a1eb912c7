"""StarGAN (Choi et al. 2018): one generator G(x, c) translating between K domains.

The objective (c a domain label, c' a target label), :meth:`StarGANMethod.critic_loss` and
:meth:`StarGANMethod.generator_loss`:

    one G(x, c), one D(x) -> (D_src, D_cls)
    D: wasserstein_critic_loss(D_src(x), D_src(G(x, c')))
       + lambda_cls * domain_classification_loss(D_cls(x), c)
       + lambda_gp * gradient_penalty(D_src, x, G(x, c'))
    G: wasserstein_generator_loss(D_src(G(x, c')))
       + lambda_cls * domain_classification_loss(D_cls(G(x, c')), c')
       + lambda_rec * cycle_consistency_loss(x, G(G(x, c'), c))
       [+ lambda_id * identity_loss(x, G(x, c))]   (model.lambda_id, 0 by default: not in the paper)

Choi et al. Eq. 1-7: lambda_cls 1, lambda_rec 10, lambda_gp 10, n_critic 5 discriminator
updates per generator update; the target labels c' are a random permutation of the batch's
source labels, as in the reference code. Data, classifiers and precision:
:mod:`genjax.methods.translation`; evaluation: every ordered pair of distinct domains,
:func:`genjax.eval.translation_metrics.multi_domain_metrics` (with D_cls's own accuracy on the
real views). Pictures: ``translation_<step>.png``, one row per input, columns: input, then its
translation to each domain of ``model.domains``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import domains as domain_views
from genjax.eval.images import picture_path, save_interpolation_grid
from genjax.eval.likelihood import batch_outputs
from genjax.eval.translation_metrics import multi_domain_metrics
from genjax.losses import (
    cycle_consistency_loss,
    domain_classification_loss,
    gradient_penalty,
    identity_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from genjax.methods.translation import GRID_ROWS, TranslationMethod
from genjax.models.translation import StarGANDiscriminator, StarGANGenerator
from genjax.train.config import AtLeast, Each, Flag, Number, OneOf, Rule, Text, need
from genjax.train.method import register
from genjax.train.optim import make_optimizer
from genjax.train.parallel import along_batch, critic_parts
from genjax.train.precision import compute_dtype
from genjax.train.state import ModelState, TrainState, apply_gradients, prefixed


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
      classifier_workdir / domain_classifier_workdir: ``genjax train
        classifier_<base>_domains`` / ``..._domains_by_domain`` runs, the digit and domain
        classifiers of the evaluation; empty: label / domain accuracy reported as skipped.
        Evaluation only: ``genjax evaluate --set model.classifier_workdir=W`` may set them on a
        trained workdir (``EVAL_ONLY_FIELDS``).
      generator_outer_kernel: kernel size of the generator's first and last convolutions
        (odd; 7 in Choi et al.); on 8x8 images 7 sees the whole image, 3 keeps G local.
      generator_skip: U-Net skips in the generator (each upsampled map concatenated with the
        map of the same size on the way down); not in Choi et al.; needs num_downsamples >= 1
        to change anything.
      lambda_id: weight of an identity term ``|G(x, c) - x|`` with the source label ``c`` (not
        in Choi et al.; AttGAN's reconstruction, CycleGAN's identity loss); 0 removes it.
    """

    EVAL_ONLY_FIELDS: ClassVar[tuple[str, ...]] = ("classifier_workdir",
                                                   "domain_classifier_workdir")
    # Saved runs from before the evaluation classifier became its own run hold this field.
    RETIRED_FIELDS: ClassVar[dict[str, str]] = {
        "classifier_steps": "the classifier is a genjax train classifier_<base>_domains run"}

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
        "classifier_workdir": Text(note="empty: no label accuracy"),
        "domain_classifier_workdir": Text(note="empty: no domain accuracy"),
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
    generator_outer_kernel: int = 7
    generator_skip: bool = False
    lambda_id: float = 0.0


@register
class StarGANMethod(TranslationMethod):
    """One generator G(x, c) for every domain and one discriminator with two heads."""

    name = "stargan"
    model_config = StarGANConfig
    classifiers_used = ("domain", "digit")

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

    # -- the objective --------------------------------------------------------------------------
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

    # -- what evaluation uses -------------------------------------------------------------------
    def translate(self, state, images_unit: np.ndarray, target) -> np.ndarray:
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

    def domain_logits(self, state, images_unit: np.ndarray) -> np.ndarray:
        """D_cls's domain logits ``(N, K)`` of images in [0, 1]."""
        return batch_outputs(self._domain_logits_batch, state.models["discriminator"].params,
                             {"image": images_unit}, batch_size=self.config.eval.batch_size,
                             static=self.config)

    def _domain_logits_batch(self, params, batch):
        """D's domain logits of a batch ``{"image": [0, 1] images}`` (a :func:`batch_outputs`
        fn)."""
        return self._discriminate(params, 2.0 * batch["image"] - 1.0)[1]

    def evaluate(self, state: TrainState, dataset, key) -> dict:
        del key  # deterministic
        views, labels = self.paired_views(dataset)
        out = multi_domain_metrics(
            lambda images, t: self.translate(state, images, t), views, labels, self.domains,
            domain_classes=[domain_views.DOMAINS.index(d) for d in self.domains],
            classifier=self.classifiers["digit"], domain_classifier=self.classifiers["domain"],
            domain_logits=lambda images: self.domain_logits(state, images))
        return {**out, **self.classifier_info()}

    def sample(self, state: TrainState, key, num: int) -> np.ndarray:
        """``num`` eval images (first domain) translated to domains ``i % K``, in [0, 1]."""
        ds = self.eval_split()
        idx = np.asarray(jax.random.choice(key, len(ds), (int(num),), replace=num > len(ds)))
        src = np.asarray(self.view(ds.images[idx], self.domains[0]) + 1.0) / 2.0
        return np.clip(self.translate(state, src, np.arange(num) % self.num_domains), 0.0, 1.0)

    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        views, _ = self.paired_views(dataset)
        k = self.num_domains
        src = np.stack([views[i, i % k] for i in range(min(GRID_ROWS, len(views)))])
        columns = [src] + [np.clip(self.translate(state, src, t), 0, 1) for t in range(k)]
        path = picture_path(outdir, "translation", step)
        save_interpolation_grid(path, list(np.stack(columns, axis=1)))
        return [path]
