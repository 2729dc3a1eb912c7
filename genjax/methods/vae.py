"""Variational autoencoder (Kingma & Welling 2014) and IWAE training (Burda et al. 2016).

The whole objective, top to bottom:

    (mean, log_var) = encoder(x)                      q(z|x) = N(mean, diag exp(log_var))
    z_s = mean + exp(log_var / 2) * eps_s, s = 1..S   reparameterization
    elbo(x) = 1/S sum_s log p(x|z_s) - KL(q(z|x) || N(0, I))          (K&W 2014, Eq. 10)
    loss = -mean_x elbo(x)                            objective = "elbo"

    log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), k = 1..K
    L_K(x) = logsumexp_k log w_k - log K              (Burda et al. 2016, Eq. 8)
    loss = -mean_x L_K(x)                             objective = "iwae", K = num_samples

Evaluation reports, on the eval split, the negative ELBO and the importance-weighted estimate
of -log p(x) with ``eval.iwae_samples`` samples (K = 5000 for reported numbers, Burda et al.
2016 Sec. 5), in nats per example and in bits per dimension. For binary data the likelihood is
a probability over {0,1}^D; for a Gaussian decoder on uniformly dequantized 8-bit data the
bits/dim include the D log 256 term of the discrete convention (Theis et al. 2016).

Precision: the encoder and decoder compute in ``train.compute_dtype`` (training, evaluation and
sampling alike) with float32 parameters; their outputs are float32, so the sampled z, every
log-density, the KL, the log-weights, their log-sum-exp and every reported number are float32.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import preprocess
from genjax.eval.images import picture_path, save_image_grid, save_interpolation_grid
from genjax.eval.interpolation import interpolate_latents
from genjax.eval.likelihood import bits_per_dim, dataset_means
from genjax.losses import (
    bernoulli_log_likelihood,
    elbo,
    gaussian_kl,
    gaussian_log_density,
    gaussian_log_likelihood,
    iwae_bound,
    reparameterize,
    standard_normal_log_density,
)
from genjax.models.vae import (
    ACTIVATIONS,
    LIKELIHOODS,
    VAE,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
)
from genjax.train.config import AtLeast, Each, OneOf, Rule, need, need_preprocess
from genjax.train.method import Method, register
from genjax.train.optim import make_optimizer
from genjax.train.precision import compute_dtype
from genjax.train.state import ModelState, TrainState, apply_gradients

IWAE_CHUNK = 500  # importance samples per evaluation chunk


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Model and objective of a VAE.

    Attributes:
      architecture: ``mlp`` or ``conv`` (encoder and decoder alike).
      latent_dim: dimension of z.
      hidden: MLP hidden widths (encoder; the decoder mirrors them); ``()``: linear maps.
      conv_features: channels of the conv encoder stages (the decoder mirrors them).
      activation: ``tanh`` (Kingma & Welling; Burda et al.), ``relu``, ``elu``, ...
      likelihood: ``bernoulli`` for binary data, ``gaussian`` for continuous data.
      objective: ``elbo`` (S = num_samples Monte Carlo samples) or ``iwae`` (K = num_samples).
      num_samples: S or K used in training.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "architecture": OneOf(choices=("mlp", "conv")),
        "latent_dim": AtLeast(),
        "hidden": Each(element=AtLeast(), note="(): a linear encoder and decoder"),
        "conv_features": Each(element=AtLeast(), min_len=1),
        "activation": OneOf(choices=tuple(ACTIVATIONS)),
        "likelihood": OneOf(choices=LIKELIHOODS),
        "objective": OneOf(choices=("elbo", "iwae")),
        "num_samples": AtLeast(),
    }

    architecture: str = "mlp"
    latent_dim: int = 50
    hidden: tuple[int, ...] = (200, 200)
    conv_features: tuple[int, ...] = (32, 64)
    activation: str = "tanh"
    likelihood: str = "bernoulli"
    objective: str = "elbo"
    num_samples: int = 1


def build_vae(
    cfg: VAEConfig, image_shape: tuple[int, int, int], dtype: Any = jnp.float32
) -> VAE:
    """The Flax module for ``cfg`` on images of ``image_shape``, computing in ``dtype``."""
    if cfg.architecture == "mlp":
        enc = MLPEncoder(cfg.latent_dim, hidden=cfg.hidden, act=cfg.activation, dtype=dtype)
        dec = MLPDecoder(
            image_shape, hidden=tuple(reversed(cfg.hidden)), act=cfg.activation,
            likelihood=cfg.likelihood, dtype=dtype,
        )
    elif cfg.architecture == "conv":
        enc = ConvEncoder(cfg.latent_dim, features=cfg.conv_features, act=cfg.activation,
                          dtype=dtype)
        dec = ConvDecoder(
            image_shape, features=tuple(reversed(cfg.conv_features)), act=cfg.activation,
            likelihood=cfg.likelihood, dtype=dtype,
        )
    else:
        raise ValueError(f"model.architecture={cfg.architecture!r}; expected 'mlp' or 'conv'")
    return VAE(enc, dec)


@register
class VAEMethod(Method):
    """Trains a VAE (or an IWAE) and evaluates ELBO and K-sample log p(x) estimates."""

    name = "vae"
    model_config = VAEConfig

    @classmethod
    def check_model(cls, config):
        cfg: VAEConfig = config.model
        accepted = {"bernoulli": ("binarize_dynamic", "binary", "unit"),
                    "gaussian": ("unit", "symmetric", "dequantize")}[cfg.likelihood]
        need_preprocess(config.data, accepted, f"with model.likelihood={cfg.likelihood!r}")
        k = config.eval.iwae_samples
        need(k <= IWAE_CHUNK or k % IWAE_CHUNK == 0, "eval.iwae_samples", k,
             f"at most {IWAE_CHUNK} or a multiple of {IWAE_CHUNK} (the K samples are drawn in "
             f"chunks of {IWAE_CHUNK})")

    @classmethod
    def check_data(cls, config, data):
        cfg: VAEConfig = config.model
        need(len(data.shape) == 3 and data.num_bits >= 1, "data.name", data.name,
             f"an image dataset (H, W, C); it holds {data.shape} values")
        factor = 2 ** len(cfg.conv_features)
        if cfg.architecture == "conv":
            need(data.shape[0] % factor == 0 and data.shape[1] % factor == 0,
                 "model.conv_features", cfg.conv_features,
                 f"at most as many stride-2 stages as halve {data.shape[0]}x{data.shape[1]} "
                 f"images exactly ({len(cfg.conv_features)} stages need sides divisible by "
                 f"{factor})")

    def __init__(self, config, data):
        super().__init__(config, data)
        cfg: VAEConfig = config.model
        self.module = build_vae(cfg, data.shape, compute_dtype(config))
        self.tx = make_optimizer(config.optim, config.train.num_steps)
        self._estimators: dict[tuple[int, int], Callable[..., Any]] = {}

    # -- the objective ---------------------------------------------------------------------
    def decoder_log_likelihood(self, params, z: jax.Array, x: jax.Array) -> jax.Array:
        """log p(x|z) in nats, shape ``z.shape[:-1]`` (e.g. (S, B))."""
        out = self.module.apply({"params": params}, z, method=VAE.decode)
        target = jnp.broadcast_to(x, out[next(iter(out))].shape)
        lead = target.shape[:-3]
        flat = lambda a: a.reshape(-1, *a.shape[-3:])
        if self.config.model.likelihood == "bernoulli":
            ll = bernoulli_log_likelihood(flat(out["logits"]), flat(target))
        else:
            ll = gaussian_log_likelihood(flat(target), flat(out["mean"]), flat(out["log_var"]))
        return ll.reshape(lead)

    def log_weights(self, params, key: jax.Array, x: jax.Array, num: int) -> jax.Array:
        """Importance log-weights log p(x, z_k) - log q(z_k|x), shape (num, B), float32."""
        mean, log_var = self.module.apply({"params": params}, x, method=VAE.encode)
        z = reparameterize(key, mean, log_var, num_samples=num)
        log_px_z = self.decoder_log_likelihood(params, z, x)
        flat_z = z.reshape(-1, z.shape[-1])
        log_pz = standard_normal_log_density(flat_z).reshape(z.shape[:2])
        log_qz = gaussian_log_density(
            flat_z, jnp.tile(mean, (num, 1)), jnp.tile(log_var, (num, 1))
        ).reshape(z.shape[:2])
        return log_px_z + log_pz - log_qz

    def objective(self, params, key: jax.Array, x: jax.Array) -> tuple[jax.Array, dict]:
        """Scalar loss (to minimise) and its terms, averaged over the batch."""
        cfg: VAEConfig = self.config.model
        if cfg.objective == "iwae":
            bound = iwae_bound(self.log_weights(params, key, x, cfg.num_samples))
            loss = -jnp.mean(bound)
            return loss, {"loss": loss, f"iwae{cfg.num_samples}": jnp.mean(bound)}
        mean, log_var = self.module.apply({"params": params}, x, method=VAE.encode)
        z = reparameterize(key, mean, log_var, num_samples=cfg.num_samples)
        log_lik = self.decoder_log_likelihood(params, z, x)  # (S, B)
        kl = gaussian_kl(mean, log_var)  # (B,)
        bound = elbo(log_lik, kl)
        loss = -jnp.mean(bound)
        return loss, {
            "loss": loss,
            "reconstruction_loss": -jnp.mean(log_lik),
            "kl": jnp.mean(kl),
            "elbo": jnp.mean(bound),
        }

    # -- Method interface --------------------------------------------------------------------
    def prepare(self, key: jax.Array, images: jax.Array, *, train: bool) -> jax.Array:
        mode = self.config.data.preprocess
        if not train and self.config.data.eval_preprocess:
            mode = self.config.data.eval_preprocess
        return preprocess(key, images, mode=mode, num_bits=self.data.num_bits)

    def init(self, key, batch):
        data_key, init_key = jax.random.split(key)
        x = self.prepare(data_key, batch["image"], train=True)
        z = jnp.zeros((x.shape[0], self.config.model.latent_dim), x.dtype)
        variables = self.module.init(init_key, x, z)
        return {"vae": ModelState.create(variables, self.tx)}

    def train_step(self, state: TrainState, batch):
        keys = state.step_keys("data", "latents")
        x = self.prepare(keys["data"], batch["image"], train=True)
        model = state.models["vae"]
        grad_fn = jax.value_and_grad(self.objective, has_aux=True)
        (_, terms), grads = grad_fn(model.params, keys["latents"], x)
        model, norms = apply_gradients(model, grads, self.tx)
        return state.replace_model("vae", model), {**terms, **norms}

    def evaluate(self, state: TrainState, dataset, key: jax.Array) -> dict[str, float]:
        """Negative ELBO and K-sample IWAE estimate of -log p(x) on ``dataset``.

        Both come from the same K samples per example: the ELBO estimate is the mean of the
        K log-weights, the IWAE estimate their log-mean-exp (Burda et al. 2016, Eq. 8). The
        networks run in ``train.compute_dtype``; the log-weights, their log-sum-exp and sums
        are float32 whatever it is.
        """
        ecfg = self.config.eval
        out, n = dataset_means(self._eval_scores, state.models["vae"].params, dataset, key=key,
                               static=self.config, batch_size=ecfg.iwae_batch_size,
                               desc=f"evaluate (K={ecfg.iwae_samples})",
                               progress=self.config.train.progress)
        bits = self.data.num_bits if self._dequantized() else 0
        for name in list(out):
            out[name.replace("_nats", "_bits_per_dim")] = bits_per_dim(
                out[name], self.data.num_dims, num_bits=bits)
        out.update(iwae_samples=ecfg.iwae_samples, num_examples=n)
        return out

    def _eval_scores(self, params, key, batch, i, rows):
        """Per-example IWAE and ELBO estimates of one evaluation batch (``evaluate``'s terms)."""
        del rows  # keys per batch: the K samples of an example depend on its batch
        k_total = self.config.eval.iwae_samples
        chunk = min(k_total, IWAE_CHUNK)  # check_model: k_total is a multiple of chunk
        if (k_total, chunk) not in self._estimators:
            self._estimators[(k_total, chunk)] = _iwae_estimator(self, k_total, chunk)
        data_key, sample_key = jax.random.split(key)
        x = self.prepare(jax.random.fold_in(data_key, i), batch["image"], train=False)
        iwae, elbo_est = self._estimators[(k_total, chunk)](
            params, jax.random.fold_in(sample_key, i), x)
        return {"nll_iwae_nats": -iwae, "neg_elbo_nats": -elbo_est}

    def _dequantized(self) -> bool:
        mode = self.config.data.eval_preprocess or self.config.data.preprocess
        return mode == "dequantize"

    def sample(self, state: TrainState, key: jax.Array, num: int) -> np.ndarray:
        """Decoder means at z ~ N(0, I) (Bernoulli: probabilities), as images in [0, 1]."""
        z = jax.random.normal(key, (num, self.config.model.latent_dim))
        return self._decode_mean(state.models["vae"].params, z)

    def _decode_mean(self, params, z) -> np.ndarray:
        out = self.module.apply({"params": params}, z, method=VAE.decode)
        mean = jax.nn.sigmoid(out["logits"]) if "logits" in out else out["mean"]
        if self._symmetric():
            mean = (mean + 1) / 2
        return np.clip(np.asarray(mean), 0.0, 1.0)

    def _symmetric(self) -> bool:
        return self.config.data.preprocess == "symmetric"

    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        """Prior samples, reconstructions of eval images and a latent interpolation grid."""
        outdir = Path(outdir)
        params = state.models["vae"].params
        k_sample, k_data = jax.random.split(key)
        paths = [picture_path(outdir, "samples", step)]
        save_image_grid(paths[0], self.sample(state, k_sample, self.config.eval.num_samples))
        n = min(16, len(dataset))
        x = self.prepare(k_data, jnp.asarray(dataset.images[:n]), train=False)
        mean, _ = self.module.apply({"params": params}, x, method=VAE.encode)
        recon = self._decode_mean(params, mean)
        shown = np.clip(np.asarray((x + 1) / 2 if self._symmetric() else x), 0.0, 1.0)
        paths.append(picture_path(outdir, "reconstructions", step))
        save_image_grid(paths[-1], np.concatenate([shown, recon]), nrow=n)
        rows = []
        for a in range(0, min(n, 8) - 1, 2):
            z = interpolate_latents(mean[a], mean[a + 1], 10)
            rows.append(self._decode_mean(params, z))
        if rows:
            paths.append(picture_path(outdir, "interpolation", step))
            save_interpolation_grid(paths[-1], rows)
        return paths


def _iwae_estimator(method: VAEMethod, k_total: int, chunk: int) -> Callable[..., Any]:
    """A jitted ``(params, key, x) -> (iwae (B,), elbo (B,))`` streaming over K in chunks."""

    @jax.jit
    def estimate(params, key, x):
        def body(carry, k):
            running_lse, running_sum = carry
            lw = method.log_weights(params, k, x, chunk)  # (chunk, B)
            lse = jnp.logaddexp(running_lse, jax.scipy.special.logsumexp(lw, axis=0))
            return (lse, running_sum + jnp.sum(lw, axis=0)), None

        # Log-weights are float32 (the losses cast up); so are the running sums.
        init = (jnp.full(x.shape[:1], -jnp.inf), jnp.zeros(x.shape[:1]))
        keys = jax.random.split(key, k_total // chunk)
        (lse, total), _ = jax.lax.scan(body, init, keys)
        return lse - math.log(k_total), total / k_total

    return estimate
