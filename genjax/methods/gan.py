"""GAN (minimax / non-saturating), WGAN (weight clipping), WGAN-GP, conditional GAN, BiGAN.

The objectives, each in the paper's words (real before fake, logits not probabilities):

    gan      D: minimax_discriminator_loss(D(x), D(G(z)))            Goodfellow 2014, Eq. 1
             G: nonsaturating_generator_loss(D(G(z)))  (default)     Goodfellow 2014, Sec. 3
                minimax_generator_loss(D(G(z)))        (saturating, generator_loss="minimax")
    wgan     D: wasserstein_critic_loss(f(x), f(G(z))), critic weights clipped to [-c, c]
             G: wasserstein_generator_loss(f(G(z)))                  Arjovsky 2017, Alg. 1
    wgan_gp  D: wasserstein_critic_loss + gp_weight * gradient_penalty(f, x, G(z))
             G: wasserstein_generator_loss                           Gulrajani 2017, Alg. 1
    bigan    D on pairs: minimax_discriminator_loss(D(x, E(x)), D(G(z), z))
             G and E: the same with the pairs swapped (non-saturating) Donahue 2017, Sec. 3

``conditional=True`` feeds the class label to G and D (Mirza & Osindero 2014).

One engine step = ``n_critic`` discriminator updates (:meth:`GANMethod.critic_update`), then
one generator update (:meth:`GANMethod.generator_update`). The step's batch is split into
``n_critic`` equal parts, one per critic update, so every critic update sees fresh real data:
``train.batch_size`` is ``n_critic`` times the per-update batch.

Data: images take ``data.preprocess="symmetric"`` ([-1, 1], matching G's tanh output);
continuous 2-D points (``ring``, ``grid``, ``two_moons``) take ``"none"`` and an MLP generator
with a linear output.

Evaluation (:meth:`GANMethod.evaluate`), each number with its protocol in the result:

* always: mean discriminator logits (critic scores) on eval data and on samples;
* toy mixtures (``ring``, ``grid``): modes captured and high-quality share of
  ``model.metric_samples`` samples (:func:`genjax.eval.mode_coverage`, 3 std);
* images, with ``model.classifier_workdir`` set (a ``genjax train classifier_<dataset>`` run):
  FD-<dataset>-cnn, KD and improved precision/recall of ``model.metric_samples`` samples
  against the eval split (:func:`genjax.eval.features.classifier_metrics`), and for a
  conditional GAN the classifier's accuracy on samples of the requested class; without it,
  ``feature_metrics`` says why they were skipped;
* images, with ``model.inception_weights`` set (the FID Inception-v3, converted from
  pytorch-fid's weights by the user): the standard FID and KID of ``model.metric_samples``
  samples against the eval split (:func:`genjax.eval.inception.inception_metrics`);
* images, with ``model.parzen_validation_split`` set: the Parzen-window log-likelihood of the
  eval split (Goodfellow 2014, Table 1), see :meth:`GANMethod.parzen_metrics`; without it (and
  for points) ``parzen`` says why it was skipped;
* BiGAN: 1-nearest-neighbour accuracy of eval images in encoder space, the train split as
  the labelled reference (Donahue 2017, Table 1).

Precision: G, D (and E) compute in ``train.compute_dtype`` in training, evaluation and sampling,
with float32 parameters, optimizer states and batch-norm statistics (WGAN's weight clipping
acts on the float32 parameters). Their outputs (images, logits, codes) are float32, so the
losses, the gradient penalty's interpolates and gradient norms, and every metric are float32.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax.data import preprocess
from genjax.data.toy import toy_centers
from genjax.eval.features import load_classifier_for
from genjax.eval.images import picture_path, save_image_grid, save_interpolation_grid
from genjax.eval.interpolation import interpolate_latents
from genjax.eval.likelihood import batch_outputs
from genjax.eval.plots import plot_logged_curves, plot_points_2d
from genjax.eval.sample_metrics import (
    InceptionReference,
    classifier_sample_metrics,
    encoder_nn_accuracy,
    held_out_count,
    mode_metrics,
    parzen_metrics,
)
from genjax.losses import (
    gradient_penalty,
    minimax_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from genjax.models.gan import (
    ACTIVATIONS,
    NORMS,
    BiGANEncoder,
    DCGANDiscriminator,
    DCGANGenerator,
    JointDiscriminator,
    MLPDiscriminator,
    MLPGenerator,
)
from genjax.train.config import (
    AtLeast,
    ConfigValueError,
    Each,
    Flag,
    Number,
    OneOf,
    Rule,
    Text,
    need,
)
from genjax.train.method import Method, register
from genjax.train.metrics import read_metrics
from genjax.train.optim import make_optimizer, weight_clipping_transform
from genjax.train.parallel import along_batch, critic_parts
from genjax.train.precision import compute_dtype
from genjax.train.state import ModelState, TrainState, apply_gradients, prefixed

VARIANTS = ("gan", "wgan", "wgan_gp", "bigan")
TOY_MIXTURES = ("ring", "grid")  # toy datasets with known modes (genjax.data.toy)
# Goodfellow et al. (2014)'s bandwidth grid, np.logspace(-1, 0, 10) (pixels in [0, 1]).
PARZEN_SIGMAS = tuple(float(s) for s in np.logspace(-1.0, 0.0, 10))


@dataclasses.dataclass(frozen=True)
class GANConfig:
    """Architecture, objective and evaluation protocol of an adversarial method.

    Attributes (objective and architecture: see the module docstring):
      variant: ``gan``, ``wgan`` (weight clipping), ``wgan_gp`` or ``bigan``.
      generator_loss: ``gan`` only: ``nonsaturating`` (Goodfellow et al. Sec. 3) or ``minimax``.
      architecture: ``mlp`` (images flattened, or points) or ``dcgan`` (images).
      latent_dim: dimension of the generator's noise z.
      hidden: MLP generator widths (the discriminator's default is their reverse).
      base_features / num_stages: DCGAN feature maps of the first stage and number of
        stride-2 stages (image sides must be divisible by ``2 ** num_stages``).
      generator_norm / discriminator_norm: DCGAN normalisation, ``batch``, ``layer`` or
        ``none`` (WGAN-GP's critic takes ``layer`` or ``none``).
      conditional: feed the class label to G and D (needs a labelled dataset).
      n_critic: discriminator updates per generator update; ``train.batch_size`` is a
        multiple of it (one part of the batch per update).
      clip_value: ``wgan``: critic weights are clipped to ``[-clip_value, clip_value]``.
      gp_weight: ``wgan_gp``: lambda of the gradient penalty; 0 means no penalty.
      discriminator_learning_rate: the discriminator's learning rate; 0 means
        ``optim.learning_rate``.
      maxout_pieces: pieces per maxout unit (``discriminator_activation="maxout"``).
      classifier_workdir: workdir of a ``genjax train classifier_<dataset>`` run on the same
        dataset; enables FD-<dataset>-cnn, KD, precision/recall and (conditional) label
        accuracy at evaluation. Empty: those metrics are skipped, with the reason reported.
      inception_weights: path of the FID Inception-v3 weights (``.npz`` converted from
        pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, see
        :mod:`genjax.eval.inception`); enables the standard FID and KID of
        ``model.metric_samples`` samples against the eval split. Empty: skipped, with the
        reason reported. Costly without an accelerator (~0.2 s per image on 2 CPU cores).
      metric_samples: generated samples per sample-based metric (mode coverage, FD, KD,
        precision/recall, label accuracy, Parzen kernel centres); the real reference is the
        eval split (all of it, or ``eval.max_examples``).
      parzen_validation_split: images only. A TFDS split of held-out training data (e.g.
        ``train[50000:51000]`` with ``data.train_split=train[:50000]``) on which the Parzen
        bandwidth is chosen; enables the Parzen-window log-likelihood of the eval split. Empty:
        skipped (it costs ``(validation + eval examples) * metric_samples * pixels`` flops).
      parzen_sigmas: the bandwidth grid (pixels in [0, 1]); default ``np.logspace(-1, 0, 10)``
        as in Goodfellow et al.'s ``parzen_ll.py``.
      discriminator_hidden: MLP discriminator widths; empty: ``hidden`` reversed.
      discriminator_activation: MLP discriminator units, ``"leaky_relu"`` or ``"maxout"``
        (``maxout_pieces`` pieces per unit; Goodfellow et al. 2014's MNIST D is maxout 240 x 5
        pieces, twice).
      discriminator_dropout: ``(input, hidden)`` drop rates of the MLP discriminator in
        training (the paper's MNIST D: ``(0.2, 0.5)``); ``(0, 0)``: no dropout. Its masks are
        drawn from the step's ``"dropout"`` key, a fresh mask for every D evaluation (real,
        fake, generator update, penalty).
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "variant": OneOf(choices=VARIANTS),
        "generator_loss": OneOf(choices=("nonsaturating", "minimax")),
        "architecture": OneOf(choices=("mlp", "dcgan")),
        "latent_dim": AtLeast(),
        "hidden": Each(element=AtLeast(), min_len=1),
        "base_features": AtLeast(),
        "num_stages": AtLeast(),
        "generator_norm": OneOf(choices=NORMS),
        "discriminator_norm": OneOf(choices=NORMS),
        "conditional": Flag(),
        "n_critic": AtLeast(),
        "clip_value": Number(low=0.0, open_low=True),
        "gp_weight": Number(low=0.0, note="0: no gradient penalty"),
        "discriminator_learning_rate": Number(low=0.0, note="0: optim.learning_rate"),
        "classifier_workdir": Text(note="empty: no classifier metrics"),
        "inception_weights": Text(note="empty: no FID"),
        "metric_samples": AtLeast(minimum=4),
        "parzen_validation_split": Text(note="empty: no Parzen estimate"),
        "parzen_sigmas": Each(element=Number(low=0.0, open_low=True), min_len=1),
        "discriminator_hidden": Each(element=AtLeast(), note="(): hidden reversed"),
        "discriminator_activation": OneOf(choices=ACTIVATIONS),
        "maxout_pieces": AtLeast(),
        "discriminator_dropout": Each(element=Number(low=0.0, high=1.0, open_high=True),
                                      min_len=2, max_len=2, note="(0, 0): no dropout"),
    }

    variant: str = "gan"
    generator_loss: str = "nonsaturating"  # gan only: nonsaturating | minimax
    architecture: str = "mlp"  # mlp | dcgan
    latent_dim: int = 64
    hidden: tuple[int, ...] = (256, 256)
    base_features: int = 64
    num_stages: int = 2
    generator_norm: str = "batch"
    discriminator_norm: str = "batch"  # WGAN-GP needs "layer" or "none"
    conditional: bool = False
    n_critic: int = 1
    clip_value: float = 0.01
    gp_weight: float = 10.0
    discriminator_learning_rate: float = 0.0  # 0: same as optim.learning_rate
    classifier_workdir: str = ""
    inception_weights: str = ""
    metric_samples: int = 10000
    parzen_validation_split: str = ""
    parzen_sigmas: tuple[float, ...] = PARZEN_SIGMAS
    discriminator_hidden: tuple[int, ...] = ()
    discriminator_activation: str = "leaky_relu"  # leaky_relu | maxout (MLP only)
    maxout_pieces: int = 5
    discriminator_dropout: tuple[float, float] = (0.0, 0.0)


@register
class GANMethod(Method):
    """Alternating updates of a discriminator (critic) and a generator (and BiGAN's encoder)."""

    name = "gan"
    model_config = GANConfig

    @classmethod
    def check_model(cls, config):
        cfg: GANConfig = config.model
        if cfg.variant == "wgan_gp":
            need(cfg.discriminator_norm != "batch", "model.discriminator_norm",
                 cfg.discriminator_norm, "'layer' or 'none' with model.variant='wgan_gp': the "
                 "penalty is per example, which batch norm mixes (Gulrajani et al. 2017, Sec. 4)")
        need(config.train.batch_size % cfg.n_critic == 0, "train.batch_size",
             config.train.batch_size, f"a multiple of model.n_critic={cfg.n_critic} (one part "
             "of the batch per critic update)")
        custom_d = (cfg.discriminator_hidden or cfg.discriminator_activation != "leaky_relu"
                    or any(cfg.discriminator_dropout))
        if custom_d and (cfg.architecture != "mlp" or cfg.variant == "bigan"):
            raise ConfigValueError(
                "model.discriminator_hidden / discriminator_activation / discriminator_dropout "
                "set the MLP discriminator; they are not available with "
                f"model.architecture={cfg.architecture!r}, variant={cfg.variant!r}")
        if cfg.variant == "bigan":
            need(cfg.architecture == "mlp" and not cfg.conditional, "model.variant",
                 cfg.variant, "an unconditional MLP (BiGAN's joint discriminator is an MLP): "
                 "set model.architecture=mlp and model.conditional=false")
        if cfg.inception_weights and not Path(cfg.inception_weights).is_file():
            from genjax.eval.inception import INCEPTION_REFERENCE

            raise ConfigValueError(
                f"model.inception_weights={cfg.inception_weights!r}; expected a file: FID needs "
                f"{INCEPTION_REFERENCE}")

    @classmethod
    def check_data(cls, config, data):
        cfg: GANConfig = config.model
        points = data.num_bits == 0
        if cfg.inception_weights:
            need(not points, "model.inception_weights", cfg.inception_weights,
                 f"empty: FID is for images; dataset {data.name!r} holds points")
        if cfg.conditional:
            need(bool(data.num_classes), "model.conditional", True,
                 f"false: dataset {data.name!r} has no labels")
        expected = "none" if points else "symmetric"
        what = "continuous points" if points else "images (G's tanh output is in [-1, 1])"
        for name in ("preprocess", "eval_preprocess"):
            mode = getattr(config.data, name)
            if mode or name == "preprocess":
                need(mode == expected, f"data.{name}", mode,
                     f"{expected!r}: GANs on {what}" + (", or empty" if name != "preprocess"
                                                         else ""))
        if points:
            need(cfg.architecture == "mlp", "model.architecture", cfg.architecture,
                 f"'mlp': dataset {data.name!r} holds points")
        elif cfg.architecture == "dcgan":
            factor = 2**cfg.num_stages
            need(data.shape[0] % factor == 0 and data.shape[1] % factor == 0,
                 "model.num_stages", cfg.num_stages,
                 f"stages that halve {data.shape[0]}x{data.shape[1]} images exactly (sides "
                 f"divisible by 2 ** num_stages)")

    def __init__(self, config, data):
        super().__init__(config, data)
        cfg: GANConfig = config.model
        self.is_points = data.num_bits == 0
        self.num_classes = data.num_classes if cfg.conditional else 0
        self.dtype = compute_dtype(config)
        self.generator, self.discriminator = self._build(cfg, data.shape)
        self.encoder = (BiGANEncoder(cfg.latent_dim, hidden=cfg.hidden, dtype=self.dtype)
                        if self._bigan else None)
        steps = config.train.num_steps
        self.g_tx = make_optimizer(config.optim, steps)
        d_optim = config.optim
        if cfg.discriminator_learning_rate:
            d_optim = dataclasses.replace(d_optim, learning_rate=cfg.discriminator_learning_rate)
        self.d_tx = make_optimizer(d_optim, steps * cfg.n_critic)
        if cfg.variant == "wgan":
            self.d_tx = optax.chain(self.d_tx, weight_clipping_transform(cfg.clip_value))
        self._classifier = None
        self._inception = None  # InceptionReference: the real images' features, once
        self._nn_reference = None
        self._parzen_validation = None

    @property
    def _bigan(self) -> bool:
        return self.config.model.variant == "bigan"

    def _build(self, cfg: GANConfig, shape) -> tuple[nn.Module, nn.Module]:
        if cfg.architecture == "mlp":
            g = MLPGenerator(tuple(shape), hidden=cfg.hidden, num_classes=self.num_classes,
                             output_activation="none" if self.is_points else "tanh",
                             dtype=self.dtype)
            d_hidden = tuple(cfg.discriminator_hidden) or tuple(reversed(cfg.hidden))
            d = MLPDiscriminator(
                hidden=d_hidden, num_classes=self.num_classes,
                activation=cfg.discriminator_activation, pieces=cfg.maxout_pieces,
                input_dropout=float(cfg.discriminator_dropout[0]),
                hidden_dropout=float(cfg.discriminator_dropout[1]), dtype=self.dtype,
            )
        elif cfg.architecture == "dcgan":
            g = DCGANGenerator(tuple(shape), cfg.base_features, cfg.num_stages, self.num_classes,
                               cfg.generator_norm, dtype=self.dtype)
            d = DCGANDiscriminator(cfg.base_features, cfg.num_stages, self.num_classes,
                                   cfg.discriminator_norm, dtype=self.dtype)
        else:  # check_model: the architecture is one of the two
            raise AssertionError(cfg.architecture)
        if self._bigan:  # check_model: an unconditional MLP
            d = JointDiscriminator(hidden=tuple(reversed(cfg.hidden)), dtype=self.dtype)
        return g, d

    # -- networks as functions ----------------------------------------------------------------
    def prepare(self, key, data):
        """Stored data to model input: images to [-1, 1], points as given."""
        return preprocess(key, data, mode=self.config.data.preprocess, num_bits=self.data.num_bits)

    def _labels(self, batch):
        return batch["label"] if self.num_classes else None

    def generate(self, g_state: ModelState, z, labels, *, train: bool):
        """G(z) (images in [-1, 1], or points) and G's updated collections (batch statistics)."""
        variables = {"params": g_state.params, **g_state.collections}
        if train and g_state.collections:
            out, new = self.generator.apply(variables, z, labels, train=True, mutable=["batch_stats"])
            return out, new
        return self.generator.apply(variables, z, labels, train=False), g_state.collections

    @property
    def _d_dropout(self) -> bool:
        return any(float(r) > 0 for r in self.config.model.discriminator_dropout)

    def discriminate(self, params, collections, x, labels, z=None, dropout_key=None):
        """D's logits (critic scores), shape (B,), and its updated collections (training mode).

        ``dropout_key`` draws D's dropout masks; required when ``model.discriminator_dropout``
        is set, ignored otherwise.
        """
        variables = {"params": params, **collections}
        args = (x, z) if self._bigan else (x, labels)
        rngs = {}
        if self._d_dropout:
            if dropout_key is None:
                raise ValueError("model.discriminator_dropout is set: pass dropout_key")
            rngs = {"dropout": dropout_key}
        if collections:
            out, new = self.discriminator.apply(variables, *args, train=True, rngs=rngs,
                                                mutable=["batch_stats"])
            return out, new
        return self.discriminator.apply(variables, *args, train=True, rngs=rngs), collections

    # -- Method interface ----------------------------------------------------------------------
    def init(self, key, batch):
        cfg: GANConfig = self.config.model
        k_data, k_g, k_d, k_e = jax.random.split(key, 4)
        x = self.prepare(k_data, batch["image"])
        z = jnp.zeros((x.shape[0], cfg.latent_dim))
        labels = self._labels(batch)
        g_vars = self.generator.init(k_g, z, labels, train=False)
        d_args = (x, z) if self._bigan else (x, labels)
        d_vars = self.discriminator.init(k_d, *d_args, train=False)
        states = {
            "generator": ModelState.create(g_vars, self.g_tx),
            "discriminator": ModelState.create(d_vars, self.d_tx),
        }
        if self._bigan:
            states["encoder"] = ModelState.create(self.encoder.init(k_e, x, train=False), self.g_tx)
        return states

    def _critic_loss(self, d_params, d_coll, real, fake, labels, key, z, e_real, dropout_key):
        cfg: GANConfig = self.config.model
        k_real = k_fake = k_penalty = None  # D without dropout: no masks to draw
        if dropout_key is not None:
            k_real, k_fake, k_penalty = jax.random.split(dropout_key, 3)
        real_out, d_coll = self.discriminate(d_params, d_coll, real, labels, e_real, k_real)
        fake_out, d_coll = self.discriminate(d_params, d_coll, fake, labels, z, k_fake)
        terms = {}
        if cfg.variant in ("gan", "bigan"):
            loss = minimax_discriminator_loss(real_out, fake_out)
        else:
            loss = wasserstein_critic_loss(real_out, fake_out)
            terms["wasserstein_estimate"] = jnp.mean(real_out) - jnp.mean(fake_out)
            if cfg.variant == "wgan_gp":
                critic = lambda x: self.discriminate(d_params, d_coll, x, labels, None,
                                                     k_penalty)[0]
                penalty = gradient_penalty(critic, real, fake, key)
                terms["gradient_penalty"] = penalty
                loss = loss + cfg.gp_weight * penalty
        terms["loss"] = loss
        return loss, (terms, d_coll)

    def critic_update(self, models: dict[str, ModelState], real, labels, z_key, penalty_key,
                      dropout_key=None):
        """One discriminator (critic) update on ``real`` (model inputs) and fresh G(z).

        ``dropout_key``: D's dropout masks (needed only with ``model.discriminator_dropout``).
        Returns the new discriminator state and its metrics (loss terms and norms).
        """
        g, d, e = models["generator"], models["discriminator"], models.get("encoder")
        z = along_batch(jax.random.normal(z_key, (real.shape[0], self.config.model.latent_dim)))
        fake, _ = self.generate(g, z, labels, train=True)
        e_real = self.encoder.apply({"params": e.params}, real) if e is not None else None
        grad_fn = jax.value_and_grad(self._critic_loss, has_aux=True)
        (_, (terms, d_coll)), grads = grad_fn(
            d.params, d.collections, real, fake, labels, penalty_key, z, e_real, dropout_key
        )
        d, norms = apply_gradients(d, grads, self.d_tx, collections=d_coll)
        return d, {**terms, **norms}

    def generator_update(self, models: dict[str, ModelState], real, labels, z_key,
                         dropout_key=None):
        """One generator update (with BiGAN's encoder) against the current discriminator.

        ``real`` is used only by BiGAN (the encoder's pairs); ``dropout_key`` draws D's dropout
        masks (needed only with ``model.discriminator_dropout``). Returns the new model states
        (generator, and encoder for BiGAN) and the metrics.
        """
        cfg: GANConfig = self.config.model
        g, d, e = models["generator"], models["discriminator"], models.get("encoder")
        z = along_batch(jax.random.normal(z_key, (real.shape[0], cfg.latent_dim)))

        def generator_loss(g_params, e_params):
            fake, g_coll = self.generate(g.replace(params=g_params), z, labels, train=True)
            fake_out, _ = self.discriminate(d.params, d.collections, fake, labels, z, dropout_key)
            if self._bigan:
                e_real = self.encoder.apply({"params": e_params}, real)
                real_out, _ = self.discriminate(d.params, d.collections, real, labels, e_real)
                loss = minimax_discriminator_loss(fake_out, real_out)  # pairs swapped
            elif cfg.variant in ("wgan", "wgan_gp"):
                loss = wasserstein_generator_loss(fake_out)
            elif cfg.generator_loss == "minimax":
                loss = minimax_generator_loss(fake_out)
            else:
                loss = nonsaturating_generator_loss(fake_out)
            return loss, g_coll

        e_params = e.params if e is not None else {}
        (g_loss, g_coll), (g_grads, e_grads) = jax.value_and_grad(
            generator_loss, argnums=(0, 1), has_aux=True
        )(g.params, e_params)
        g, g_norms = apply_gradients(g, g_grads, self.g_tx, collections=g_coll)
        new = {"generator": g}
        metrics = prefixed("generator", {"loss": g_loss, **g_norms})
        if e is not None:
            new["encoder"], e_norms = apply_gradients(e, e_grads, self.g_tx)
            metrics.update(prefixed("encoder", e_norms))
        return new, metrics

    def train_step(self, state: TrainState, batch):
        n = self.config.model.n_critic
        purposes = ("data", "critic", "generator", "penalty")
        # A "dropout" key only when D has dropout: the other configs keep their random streams.
        keys = state.step_keys(*purposes, *(("dropout",) if self._d_dropout else ()))
        dropout_keys = (jax.random.split(keys["dropout"], n + 1) if self._d_dropout
                        else [None] * (n + 1))
        x = self.prepare(keys["data"], batch["image"])
        labels = self._labels(batch)
        parts = critic_parts(x, n)  # part i: rows i, i + n, ... (split over the devices)
        label_parts = None if labels is None else critic_parts(labels, n)
        models = dict(state.models)
        for i in range(n):  # unrolled: n_critic is small (1 or 5)
            lab = None if label_parts is None else label_parts[i]
            models["discriminator"], d_metrics = self.critic_update(
                models, parts[i], lab, jax.random.fold_in(keys["critic"], i),
                jax.random.fold_in(keys["penalty"], i), dropout_keys[i],
            )
        lab = None if label_parts is None else label_parts[-1]
        updated, metrics = self.generator_update(models, parts[-1], lab, keys["generator"],
                                                 dropout_keys[n])
        models.update(updated)
        metrics.update(prefixed("discriminator", d_metrics))
        return state.replace(models=models), metrics

    # -- evaluation ----------------------------------------------------------------------------
    def _sample_raw(self, state: TrainState, key, num: int, labels=None) -> np.ndarray:
        """``num`` generator outputs (eval mode; batches of ``eval.batch_size`` split over the
        run's devices, :func:`genjax.eval.likelihood.batch_outputs`), and their labels."""
        g = state.models["generator"]
        if self.num_classes and labels is None:
            labels = np.arange(num) % self.num_classes
        inputs = {"z": np.asarray(jax.random.normal(key, (num, self.config.model.latent_dim)))}
        if labels is not None:
            inputs["label"] = np.asarray(labels, np.int32)
        samples = batch_outputs(self._generate_batch, g.variables, inputs,
                                batch_size=self.config.eval.batch_size, static=self.config)
        return samples, labels

    def _generate_batch(self, variables, batch):
        """G(z) in eval mode for a batch ``{"z", "label"?}`` (a :func:`batch_outputs` fn)."""
        return self.generator.apply(variables, batch["z"], batch.get("label"), train=False)

    def _encode_batch(self, e_params, batch):
        """E(x) of a batch ``{"image"}`` of stored images (a :func:`batch_outputs` fn)."""
        return self.encoder.apply({"params": e_params}, self.prepare(None, batch["image"]),
                                  train=False)

    def evaluate(self, state: TrainState, dataset, key) -> dict[str, float]:
        """Discriminator statistics and the sample metrics of the module docstring."""
        cfg: GANConfig = self.config.model
        k_data, k_z, k_samples, k_metrics = jax.random.split(key, 4)
        n = min(len(dataset), self.config.eval.batch_size)
        x = self.prepare(k_data, jnp.asarray(dataset.images[:n]))
        labels = None if not self.num_classes else jnp.asarray(dataset.labels[:n])
        z = jax.random.normal(k_z, (n, cfg.latent_dim))
        g, d = state.models["generator"], state.models["discriminator"]
        fake, _ = self.generate(g, z, labels, train=False)
        e = state.models.get("encoder")
        e_real = (None if e is None else
                  self.encoder.apply({"params": e.params}, x, train=False))
        variables = {"params": d.params, **d.collections}
        real_out = self.discriminator.apply(variables, x, e_real if self._bigan else labels,
                                            train=False)
        fake_out = self.discriminator.apply(variables, fake, z if self._bigan else labels,
                                            train=False)
        out = {
            "eval_real_score": float(jnp.mean(real_out)),
            "eval_fake_score": float(jnp.mean(fake_out)),
            "num_examples": n,
        }
        samples, sample_labels = self._sample_raw(state, k_samples, cfg.metric_samples)
        if self.is_points:
            out.update(self._mode_metrics(samples))
            out["parzen"] = "skipped: the Parzen-window estimate is for images (pixels in [0, 1])"
        else:
            fake_unit = (samples + 1) / 2
            out.update(self._feature_metrics(dataset, fake_unit, sample_labels, k_metrics))
            out.update(self._inception_metrics(dataset, fake_unit,
                                               jax.random.fold_in(k_metrics, 1)))
            out.update(self.parzen_metrics(fake_unit, dataset))
        if self._bigan:
            out.update(self._encoder_nn_accuracy(e.params, dataset))
        return out

    def _mode_metrics(self, samples: np.ndarray) -> dict:
        if self.data.name not in TOY_MIXTURES:
            return {"mode_coverage": f"skipped: {self.data.name!r} is not a Gaussian mixture "
                                     f"with known modes ({', '.join(TOY_MIXTURES)})"}
        return mode_metrics(samples, *toy_centers(self.data.name))

    def _unit(self, dataset, num: int = 0) -> np.ndarray:
        """The first ``num`` (0: all) stored images of ``dataset`` as floats in [0, 1]."""
        images = dataset.images[:num] if num else dataset.images
        return images.astype(np.float32) / float(2**self.data.num_bits - 1)

    def parzen_metrics(self, fake_unit: np.ndarray, dataset) -> dict:
        """The Parzen-window log-likelihood of ``dataset`` under ``fake_unit`` samples
        (:func:`genjax.eval.sample_metrics.parzen_metrics`), the bandwidth chosen on
        ``model.parzen_validation_split`` over ``model.parzen_sigmas``; or a skip reason."""
        cfg = self.config
        split = cfg.model.parzen_validation_split
        if not split:
            return {"parzen": "skipped: no held-out validation split to choose the bandwidth on; "
                    "set model.parzen_validation_split (e.g. train[50000:51000] with "
                    "data.train_split=train[:50000])"}
        if self._parzen_validation is None:
            validation = self.load_split(split)
            if not len(validation):
                raise ValueError(f"model.parzen_validation_split={split!r} is empty for dataset "
                                 f"{cfg.data.name!r}: name a non-empty held-out slice")
            if tuple(validation.shape) != tuple(self.data.shape):
                raise ValueError(
                    f"model.parzen_validation_split={split!r} holds {validation.shape} images, "
                    f"the training data {tuple(self.data.shape)}: name a split of the same dataset")
            train = self.load_split(cfg.data.train_split, cfg.data.max_train_examples)
            shared = held_out_count(train.images, validation.images, split=split,
                                    train_split=cfg.data.train_split)
            self._parzen_validation = validation, shared
        validation, shared = self._parzen_validation
        out = parzen_metrics(fake_unit, self._unit(dataset), self._unit(validation),
                             sigmas=cfg.model.parzen_sigmas, batch_size=cfg.eval.batch_size)
        return {**out, "parzen_test_split": cfg.data.eval_split,
                "parzen_validation_split": split, "parzen_validation_in_train": shared}

    def _feature_metrics(self, dataset, fake_unit, sample_labels, key) -> dict:
        path = self.config.model.classifier_workdir
        if not path:
            return {"feature_metrics": "skipped: no classifier configured; set "
                    "model.classifier_workdir to the workdir of `genjax train "
                    f"classifier_{self.data.name}` for FD-{self.data.name}-cnn, KD, "
                    "precision/recall" + (" and label accuracy" if self.num_classes else "")}
        if self._classifier is None:
            self._classifier = load_classifier_for(path, self.config.data, self.data.shape)
        real = self._unit(dataset, min(len(dataset), self.config.model.metric_samples))
        out = classifier_sample_metrics(self._classifier, real, fake_unit, key=key,
                                        labels=sample_labels if self.num_classes else None)
        return {**out, "reference_split": self.config.data.eval_split}

    def _inception_metrics(self, dataset, fake_unit, key) -> dict:
        """Standard FID / KID (``model.inception_weights``) of the samples vs the eval split."""
        path = self.config.model.inception_weights
        if not path:
            return {"fid": "skipped: set model.inception_weights to the converted FID "
                           "Inception-v3 weights (python -m genjax.eval.inception convert)"}
        m = min(len(dataset), self.config.model.metric_samples)
        if self._inception is None or self._inception.num_real != m:
            self._inception = InceptionReference(path, self._unit(dataset, m),
                                                 batch_size=self.config.eval.batch_size)
        out = self._inception.metrics(fake_unit, key=key)
        return {**out, "fid_reference_split": self.config.data.eval_split}

    def _encoder_nn_accuracy(self, e_params, dataset) -> dict:
        """1-NN accuracy of ``E(x)`` (Euclidean), train split as the labelled reference."""
        if dataset.labels is None:
            return {"nn_accuracy": f"skipped: dataset {dataset.name!r} has no labels"}
        if self._nn_reference is None:
            cfg = self.config.data
            self._nn_reference = self.load_split(cfg.train_split, cfg.max_train_examples)
        ref = self._nn_reference
        encode = lambda images: batch_outputs(self._encode_batch, e_params, {"image": images},
                                              batch_size=self.config.eval.batch_size,
                                              static=self.config)
        return encoder_nn_accuracy(encode, ref.images, ref.labels, dataset.images,
                                   dataset.labels)

    # -- samples and pictures ------------------------------------------------------------------
    def sample(self, state: TrainState, key, num: int, labels=None) -> np.ndarray:
        """Images in [0, 1] (G's [-1, 1] mapped, clipped) or points; labels cycle the classes."""
        raw, _ = self._sample_raw(state, key, int(num), labels)
        return raw if self.is_points else np.clip((raw + 1) / 2, 0.0, 1.0)

    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        """Images: a sample grid and latent interpolation strips z1 -> z2. Points: samples vs
        data. Both: the loss curves so far (``<workdir>/metrics.jsonl``), when there are any."""
        outdir = Path(outdir)
        unit = "nats" if self.config.model.variant in ("gan", "bigan") else "critic units"
        curves = plot_logged_curves(
            picture_path(outdir, "loss_curves", step), read_metrics(outdir.parent, split="train"),
            ("discriminator/loss", "generator/loss", "discriminator/wasserstein_estimate"),
            title=f"{self.config.model.variant} losses", ylabel=f"loss ({unit})")
        paths = [] if curves is None else [curves]
        if self.is_points:
            return paths + self._write_points(state, outdir, dataset, key, step)
        paths.append(picture_path(outdir, "samples", step))
        save_image_grid(paths[-1], self.sample(state, key, self.config.eval.num_samples))
        rows = []
        z_ends = jax.random.normal(jax.random.fold_in(key, 1), (8, self.config.model.latent_dim))
        g = state.models["generator"]
        for a in range(0, 8, 2):
            z = interpolate_latents(z_ends[a], z_ends[a + 1], 10)
            labels = jnp.full((10,), a // 2 % self.num_classes) if self.num_classes else None
            fake, _ = self.generate(g, z, labels, train=False)
            rows.append(np.clip((np.asarray(fake) + 1) / 2, 0.0, 1.0))
        paths.append(picture_path(outdir, "interpolation", step))
        save_interpolation_grid(paths[-1], rows)
        return paths

    def _write_points(self, state, outdir, dataset, key, step) -> list[Path]:
        pts = np.asarray(dataset.images[:2000])
        centers = toy_centers(self.data.name)[0] if self.data.name in TOY_MIXTURES else None
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.25 * (hi - lo)
        path = picture_path(outdir, "samples", step)
        plot_points_2d(path, {"data": pts, "model": self.sample(state, key, len(pts))},
                       centers=centers, xlim=(lo[0] - pad[0], hi[0] + pad[0]),
                       ylim=(lo[1] - pad[1], hi[1] + pad[1]),
                       title=f"{self.config.model.variant} samples, step {step}")
        return [path]
