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

One engine step = ``n_critic`` discriminator updates, then one generator update. The step's
batch is split into ``n_critic`` equal parts, one per critic update, so every critic update
sees fresh real data: ``train.batch_size`` is ``n_critic`` times the per-update batch.
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
from genjax.eval.images import save_image_grid, save_interpolation_grid
from genjax.eval.interpolation import interpolate_latents
from genjax.losses import (
    gradient_penalty,
    minimax_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
    weight_clipping_transform,
)
from genjax.models.gan import (
    BiGANEncoder,
    DCGANDiscriminator,
    DCGANGenerator,
    JointDiscriminator,
    MLPDiscriminator,
    MLPGenerator,
)
from genjax.train.method import Method, register
from genjax.train.optim import make_optimizer
from genjax.train.state import ModelState, TrainState, apply_gradients, prefixed

VARIANTS = ("gan", "wgan", "wgan_gp", "bigan")


@dataclasses.dataclass(frozen=True)
class GANConfig:
    """Architecture and objective of an adversarial method (see the module docstring)."""

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


@register
class GANMethod(Method):
    """Alternating updates of a discriminator (critic) and a generator (and BiGAN's encoder)."""

    name = "gan"
    model_config = GANConfig

    def __init__(self, config, data):
        super().__init__(config, data)
        cfg: GANConfig = config.model
        if cfg.variant not in VARIANTS:
            raise ValueError(f"model.variant={cfg.variant!r}; expected one of {VARIANTS}")
        if cfg.generator_loss not in ("nonsaturating", "minimax"):
            raise ValueError(
                f"model.generator_loss={cfg.generator_loss!r}; expected 'nonsaturating' or 'minimax'"
            )
        if cfg.variant == "wgan_gp" and cfg.discriminator_norm == "batch":
            raise ValueError(
                "model.variant='wgan_gp' penalises per-example gradients, which batch norm mixes; "
                "set model.discriminator_norm=layer or none (Gulrajani et al. 2017, Sec. 4)"
            )
        if config.train.batch_size % cfg.n_critic:
            raise ValueError(
                f"train.batch_size={config.train.batch_size} must be a multiple of "
                f"model.n_critic={cfg.n_critic} (one part of the batch per critic update)"
            )
        if cfg.conditional and not data.num_classes:
            raise ValueError(f"model.conditional=True needs labels; dataset {data.name!r} has none")
        self.num_classes = data.num_classes if cfg.conditional else 0
        self.generator, self.discriminator = self._build(cfg, data.shape)
        self.encoder = BiGANEncoder(cfg.latent_dim, hidden=cfg.hidden) if self._bigan else None
        steps = config.train.num_steps
        self.g_tx = make_optimizer(config.optim, steps)
        d_optim = config.optim
        if cfg.discriminator_learning_rate:
            d_optim = dataclasses.replace(d_optim, learning_rate=cfg.discriminator_learning_rate)
        self.d_tx = make_optimizer(d_optim, steps * cfg.n_critic)
        if cfg.variant == "wgan":
            self.d_tx = optax.chain(self.d_tx, weight_clipping_transform(cfg.clip_value))

    @property
    def _bigan(self) -> bool:
        return self.config.model.variant == "bigan"

    def _build(self, cfg: GANConfig, shape) -> tuple[nn.Module, nn.Module]:
        if cfg.architecture == "mlp":
            g = MLPGenerator(tuple(shape), hidden=cfg.hidden, num_classes=self.num_classes)
            d = MLPDiscriminator(hidden=tuple(reversed(cfg.hidden)), num_classes=self.num_classes)
        elif cfg.architecture == "dcgan":
            g = DCGANGenerator(tuple(shape), cfg.base_features, cfg.num_stages, self.num_classes,
                               cfg.generator_norm)
            d = DCGANDiscriminator(cfg.base_features, cfg.num_stages, self.num_classes,
                                   cfg.discriminator_norm)
        else:
            raise ValueError(f"model.architecture={cfg.architecture!r}; expected 'mlp' or 'dcgan'")
        if self._bigan:
            if cfg.architecture != "mlp" or cfg.conditional:
                raise ValueError("model.variant='bigan' uses the MLP architecture, unconditional")
            d = JointDiscriminator(hidden=tuple(reversed(cfg.hidden)))
        return g, d

    # -- networks as functions ----------------------------------------------------------------
    def _labels(self, batch):
        return batch["label"] if self.num_classes else None

    def generate(self, g_state: ModelState, z, labels, *, train: bool):
        """G(z) in [-1, 1] and G's updated collections (batch statistics)."""
        variables = {"params": g_state.params, **g_state.collections}
        if train and g_state.collections:
            out, new = self.generator.apply(variables, z, labels, train=True, mutable=["batch_stats"])
            return out, new
        return self.generator.apply(variables, z, labels, train=False), g_state.collections

    def discriminate(self, params, collections, x, labels, z=None):
        """D's logits (critic scores), shape (B,), and its updated collections."""
        variables = {"params": params, **collections}
        args = (x, z) if self._bigan else (x, labels)
        if collections:
            out, new = self.discriminator.apply(variables, *args, train=True, mutable=["batch_stats"])
            return out, new
        return self.discriminator.apply(variables, *args, train=True), collections

    # -- Method interface ----------------------------------------------------------------------
    def init(self, key, batch):
        cfg: GANConfig = self.config.model
        k_data, k_g, k_d, k_e = jax.random.split(key, 4)
        x = preprocess(k_data, batch["image"], mode="symmetric", num_bits=self.data.num_bits)
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

    def _critic_loss(self, d_params, d_coll, real, fake, labels, key, z, e_real):
        cfg: GANConfig = self.config.model
        real_out, d_coll = self.discriminate(d_params, d_coll, real, labels, e_real)
        fake_out, d_coll = self.discriminate(d_params, d_coll, fake, labels, z)
        terms = {}
        if cfg.variant in ("gan", "bigan"):
            loss = minimax_discriminator_loss(real_out, fake_out)
        else:
            loss = wasserstein_critic_loss(real_out, fake_out)
            terms["wasserstein_estimate"] = jnp.mean(real_out) - jnp.mean(fake_out)
            if cfg.variant == "wgan_gp":
                critic = lambda x: self.discriminate(d_params, d_coll, x, labels)[0]
                penalty = gradient_penalty(critic, real, fake, key)
                terms["gradient_penalty"] = penalty
                loss = loss + cfg.gp_weight * penalty
        terms["loss"] = loss
        return loss, (terms, d_coll)

    def train_step(self, state: TrainState, batch):
        cfg: GANConfig = self.config.model
        keys = state.step_keys("data", "critic", "generator", "penalty")
        x = preprocess(keys["data"], batch["image"], mode="symmetric", num_bits=self.data.num_bits)
        labels = self._labels(batch)
        n = cfg.n_critic
        parts = x.reshape(n, x.shape[0] // n, *x.shape[1:])
        label_parts = None if labels is None else labels.reshape(n, -1)
        g, d = state.models["generator"], state.models["discriminator"]
        e = state.models.get("encoder")
        metrics = {}
        for i in range(n):  # unrolled: n_critic is small (1 or 5)
            real = parts[i]
            lab = None if label_parts is None else label_parts[i]
            z = jax.random.normal(jax.random.fold_in(keys["critic"], i), (real.shape[0], cfg.latent_dim))
            fake, _ = self.generate(g, z, lab, train=True)
            e_real = self.encoder.apply({"params": e.params}, real) if e is not None else None
            grad_fn = jax.value_and_grad(self._critic_loss, has_aux=True)
            (_, (terms, d_coll)), grads = grad_fn(
                d.params, d.collections, real, fake, lab, jax.random.fold_in(keys["penalty"], i),
                z, e_real,
            )
            d, norms = apply_gradients(d, grads, self.d_tx, collections=d_coll)
        metrics.update(prefixed("discriminator", {**terms, **norms}))

        real = parts[-1]
        lab = None if label_parts is None else label_parts[-1]
        z = jax.random.normal(keys["generator"], (real.shape[0], cfg.latent_dim))

        def generator_loss(g_params, e_params):
            fake, g_coll = self.generate(g.replace(params=g_params), z, lab, train=True)
            fake_out, _ = self.discriminate(d.params, d.collections, fake, lab, z)
            if self._bigan:
                e_real = self.encoder.apply({"params": e_params}, real)
                real_out, _ = self.discriminate(d.params, d.collections, real, lab, e_real)
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
        metrics.update(prefixed("generator", {"loss": g_loss, **g_norms}))
        models = {"generator": g, "discriminator": d}
        if e is not None:
            e, e_norms = apply_gradients(e, e_grads, self.g_tx)
            models["encoder"] = e
            metrics.update(prefixed("encoder", e_norms))
        return state.replace(models=models), metrics

    def evaluate(self, state: TrainState, dataset, key) -> dict[str, float]:
        """Discriminator statistics on held-out data (sample-quality metrics: genjax.eval)."""
        n = min(len(dataset), self.config.eval.batch_size)
        images = jnp.asarray(dataset.images[:n])
        x = preprocess(key, images, mode="symmetric", num_bits=self.data.num_bits)
        labels = None if not self.num_classes else jnp.asarray(dataset.labels[:n])
        z = jax.random.normal(key, (n, self.config.model.latent_dim))
        g, d = state.models["generator"], state.models["discriminator"]
        fake, _ = self.generate(g, z, labels, train=False)
        e = state.models.get("encoder")
        e_real = self.encoder.apply({"params": e.params}, x) if e is not None else None
        variables = {"params": d.params, **d.collections}
        kwargs = {"train": False}
        real_out = self.discriminator.apply(variables, x, e_real if self._bigan else labels, **kwargs)
        fake_out = self.discriminator.apply(variables, fake, z if self._bigan else labels, **kwargs)
        return {
            "eval_real_score": float(jnp.mean(real_out)),
            "eval_fake_score": float(jnp.mean(fake_out)),
            "num_examples": n,
        }

    def sample(self, state: TrainState, key, num: int, labels=None) -> np.ndarray:
        """Generator samples mapped from [-1, 1] to [0, 1]; labels cycle through the classes."""
        z = jax.random.normal(key, (num, self.config.model.latent_dim))
        if self.num_classes and labels is None:
            labels = jnp.arange(num) % self.num_classes
        fake, _ = self.generate(state.models["generator"], z, labels, train=False)
        return np.clip((np.asarray(fake) + 1) / 2, 0.0, 1.0)

    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        """A sample grid and a latent interpolation strip z1 -> z2 per row."""
        outdir = Path(outdir)
        paths = [outdir / f"samples_{step:08d}.png"]
        save_image_grid(paths[0], self.sample(state, key, self.config.eval.num_samples))
        rows = []
        z_ends = jax.random.normal(jax.random.fold_in(key, 1), (8, self.config.model.latent_dim))
        g = state.models["generator"]
        for a in range(0, 8, 2):
            z = interpolate_latents(z_ends[a], z_ends[a + 1], 10)
            labels = jnp.full((10,), a // 2 % self.num_classes) if self.num_classes else None
            fake, _ = self.generate(g, z, labels, train=False)
            rows.append(np.clip((np.asarray(fake) + 1) / 2, 0.0, 1.0))
        paths.append(outdir / f"interpolation_{step:08d}.png")
        save_interpolation_grid(paths[-1], rows)
        return paths
