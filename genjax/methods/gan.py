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

``conditional=True`` feeds the class label to G and D (Mirza & Osindero 2014). In the code: the
discriminator's side of every variant is :meth:`GANMethod._critic_loss`, the generator's (and
BiGAN's encoder's) :meth:`GANMethod._generator_loss`.

One engine step = ``n_critic`` discriminator updates (:meth:`GANMethod.critic_update`), then
one generator update (:meth:`GANMethod.generator_update`). The step's batch is split into
``n_critic`` equal parts, one per critic update, so every critic update sees fresh real data:
``train.batch_size`` is ``n_critic`` times the per-update batch.

Data: images take ``data.preprocess="symmetric"`` ([-1, 1], matching G's tanh output);
continuous 2-D points (``ring``, ``grid``, ``two_moons``) take ``"none"`` and an MLP generator
with a linear output.

What the method exposes to evaluation: :meth:`GANMethod.sample` (images in [0, 1] or points,
optionally of requested classes), :meth:`GANMethod.decode` (G of given latents) and BiGAN's
encoder :meth:`GANMethod.encode`. :meth:`GANMethod.evaluate` reports the mean discriminator
logits (critic scores) on eval data and on samples, and hands the sampler (and encoder) to the
sample-based protocols of :mod:`genjax.eval.sample_protocols`, which the model fields of
:class:`~genjax.eval.sample_protocols.SampleMetricsConfig` switch on.

Precision: G, D (and E) compute in ``train.compute_dtype`` in training, evaluation and sampling,
with float32 parameters, optimizer states and batch-norm statistics (WGAN's weight clipping
acts on the float32 parameters). Their outputs (images, logits, codes) are float32, so the
losses, the gradient penalty's interpolates and gradient norms, and every metric are float32.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax.data import preprocess
from genjax.eval.likelihood import batch_outputs
from genjax.eval.run_pictures import (
    write_latent_pictures,
    write_loss_curves,
    write_point_samples,
)
from genjax.eval.sample_protocols import SampleEvaluation
from genjax.losses import (
    gradient_penalty,
    minimax_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from genjax.methods.gan_config import GANConfig, check_data, check_model
from genjax.models.gan import (
    BiGANEncoder,
    DCGANDiscriminator,
    DCGANGenerator,
    JointDiscriminator,
    MLPDiscriminator,
    MLPGenerator,
)
from genjax.train.method import Method, register
from genjax.train.optim import make_optimizer, weight_clipping_transform
from genjax.train.parallel import along_batch, critic_parts
from genjax.train.precision import compute_dtype
from genjax.train.state import ModelState, TrainState, apply_gradients, prefixed


@register
class GANMethod(Method):
    """Alternating updates of a discriminator (critic) and a generator (and BiGAN's encoder)."""

    name = "gan"
    model_config = GANConfig

    @classmethod
    def check_model(cls, config):
        check_model(config)

    @classmethod
    def check_data(cls, config, data):
        check_data(config, data)

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
        self.sample_evaluation = SampleEvaluation(
            cfg, config.data, load_split=self.load_split, batch_size=config.eval.batch_size,
            num_classes=self.num_classes)

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
            return self.generator.apply(variables, z, labels, train=True, mutable=["batch_stats"])
        return self.generator.apply(variables, z, labels, train=False), g_state.collections

    @property
    def _d_dropout(self) -> bool:
        return any(float(r) > 0 for r in self.config.model.discriminator_dropout)

    def discriminate(self, params, collections, x, labels, z=None, dropout_key=None, *,
                     train: bool = True):
        """D's logits (critic scores), shape (B,), and its updated collections.

        ``labels`` condition a conditional D; BiGAN's D scores the pairs ``(x, z)`` instead.
        In training mode ``dropout_key`` draws D's dropout masks; required when
        ``model.discriminator_dropout`` is set, ignored otherwise.
        """
        variables = {"params": params, **collections}
        args = (x, z) if self._bigan else (x, labels)
        if not train:
            return self.discriminator.apply(variables, *args, train=False), collections
        if self._d_dropout and dropout_key is None:
            raise ValueError("model.discriminator_dropout is set: pass dropout_key")
        rngs = {"dropout": dropout_key} if self._d_dropout else {}
        if collections:
            return self.discriminator.apply(variables, *args, train=True, rngs=rngs,
                                            mutable=["batch_stats"])
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

    # -- the objectives ------------------------------------------------------------------------
    def _critic_loss(self, d_params, d_coll, real, fake, labels, key, z, e_real, dropout_key):
        """The discriminator's (critic's) loss, ``(loss, (terms, collections))``.

        ``z``: the latents of ``fake``, ``e_real``: BiGAN's codes of ``real``; ``key`` draws the
        gradient penalty's interpolation, ``dropout_key`` D's dropout masks (or ``None``).
        """
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

    def _generator_loss(self, g_params, e_params, models, real, z, labels, dropout_key):
        """The generator's (and BiGAN's encoder's) loss against the current discriminator,
        ``(loss, G's collections)``; ``real`` is used by BiGAN only (the encoder's pairs)."""
        cfg: GANConfig = self.config.model
        g, d = models["generator"], models["discriminator"]
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

        ``dropout_key`` draws D's dropout masks (needed only with
        ``model.discriminator_dropout``). Returns the new model states (generator, and encoder
        for BiGAN) and the metrics.
        """
        g, e = models["generator"], models.get("encoder")
        z = along_batch(jax.random.normal(z_key, (real.shape[0], self.config.model.latent_dim)))
        e_params = e.params if e is not None else {}
        (g_loss, g_coll), (g_grads, e_grads) = jax.value_and_grad(
            self._generator_loss, argnums=(0, 1), has_aux=True
        )(g.params, e_params, models, real, z, labels, dropout_key)
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

    # -- what evaluation sees: samples and codes -----------------------------------------------
    def decode(self, state: TrainState, z, labels=None) -> np.ndarray:
        """G(z) in eval mode: images in [0, 1] (G's [-1, 1] mapped, clipped) or points, for
        latents ``z`` ``(N, latent_dim)`` (and classes ``labels`` ``(N,)`` of a conditional G);
        batches of ``eval.batch_size`` split over the run's devices
        (:func:`genjax.eval.likelihood.batch_outputs`)."""
        inputs = {"z": np.asarray(z)}
        if labels is not None:
            inputs["label"] = np.asarray(labels, np.int32)
        raw = batch_outputs(self._generate_batch, state.models["generator"].variables, inputs,
                            batch_size=self.config.eval.batch_size, static=self.config)
        return raw if self.is_points else np.clip((raw + 1) / 2, 0.0, 1.0)

    def sample(self, state: TrainState, key, num: int, labels=None) -> np.ndarray:
        """``num`` samples, :meth:`decode` of ``z ~ N(0, I)``; a conditional G draws the classes
        ``labels`` (default: cycling ``0 .. num_classes - 1``)."""
        num = int(num)
        if self.num_classes and labels is None:
            labels = np.arange(num) % self.num_classes
        return self.decode(state, jax.random.normal(key, (num, self.config.model.latent_dim)),
                           labels)

    def encode(self, state: TrainState, images) -> np.ndarray:
        """BiGAN's E(x), codes ``(N, latent_dim)``, of stored images (as ``dataset.images``
        holds them; mapped to [-1, 1] as in training), in eval mode and batches as
        :meth:`decode`."""
        if not self._bigan:
            raise ValueError(f"encode: model.variant={self.config.model.variant!r} has no "
                             "encoder; only 'bigan' has one")
        return batch_outputs(self._encode_batch, state.models["encoder"].params,
                             {"image": images}, batch_size=self.config.eval.batch_size,
                             static=self.config)

    def _generate_batch(self, variables, batch):
        """G(z) in eval mode for a batch ``{"z", "label"?}`` (a :func:`batch_outputs` fn)."""
        return self.generator.apply(variables, batch["z"], batch.get("label"), train=False)

    def _encode_batch(self, e_params, batch):
        """E(x) of a batch ``{"image"}`` of stored images (a :func:`batch_outputs` fn)."""
        return self.encoder.apply({"params": e_params}, self.prepare(None, batch["image"]),
                                  train=False)

    def evaluate(self, state: TrainState, dataset, key) -> dict[str, float]:
        """Mean D logits (critic scores) on the first ``eval.batch_size`` eval examples and on
        as many samples, then the sample protocols (:class:`genjax.eval.sample_protocols.
        SampleEvaluation`) on :meth:`sample` and, for BiGAN, :meth:`encode`."""
        k_data, k_z, k_samples, k_metrics = jax.random.split(key, 4)
        n = min(len(dataset), self.config.eval.batch_size)
        x = self.prepare(k_data, jnp.asarray(dataset.images[:n]))
        labels = jnp.asarray(dataset.labels[:n]) if self.num_classes else None
        z = jax.random.normal(k_z, (n, self.config.model.latent_dim))
        fake, _ = self.generate(state.models["generator"], z, labels, train=False)
        codes = (self.encoder.apply({"params": state.models["encoder"].params}, x, train=False)
                 if self._bigan else None)
        d = state.models["discriminator"]
        real_out, _ = self.discriminate(d.params, d.collections, x, labels, codes, train=False)
        fake_out, _ = self.discriminate(d.params, d.collections, fake, labels, z, train=False)
        out = {"eval_real_score": float(jnp.mean(real_out)),
               "eval_fake_score": float(jnp.mean(fake_out)), "num_examples": n}
        sample = lambda k, num, classes: self.sample(state, k, num, classes)
        encode = (lambda images: self.encode(state, images)) if self._bigan else None
        return {**out, **self.sample_evaluation(sample, dataset, sample_key=k_samples,
                                                metric_key=k_metrics, encode=encode)}

    # -- pictures -------------------------------------------------------------------------------
    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        """The losses logged so far (when there are any); then for images a sample grid and
        latent interpolation strips z1 -> z2, for points the samples against the data."""
        cfg: GANConfig = self.config.model
        unit = "nats" if cfg.variant in ("gan", "bigan") else "critic units"
        paths = write_loss_curves(
            outdir, step, ("discriminator/loss", "generator/loss",
                           "discriminator/wasserstein_estimate"),
            title=f"{cfg.variant} losses", ylabel=f"loss ({unit})")
        if self.is_points:
            data = np.asarray(dataset.images[:2000])
            return [*paths, write_point_samples(
                outdir, step, data, self.sample(state, key, len(data)), dataset=self.data.name,
                title=f"{cfg.variant} samples, step {step}")]
        return [*paths, *write_latent_pictures(
            outdir, step, sample=lambda k, num: self.sample(state, k, num),
            decode=lambda z, labels: self.decode(state, z, labels), latent_dim=cfg.latent_dim,
            key=key, num_samples=self.config.eval.num_samples, num_classes=self.num_classes)]
