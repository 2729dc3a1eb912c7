"""Real NVP (Dinh, Sohl-Dickstein & Bengio 2017): exact maximum likelihood by change of variables.

The whole objective, top to bottom (``architecture="image"``):

    v in {0, ..., 255}^D                                  8-bit pixels, D = H * W * C
    x = (v + u) / 256,  u ~ U[0, 1)^D                     uniform dequantization (Sec. 4.1)
    y = logit(alpha + (1 - 2 alpha) x)                    logit transform, alpha = 0.05
    z, log|det dz/dy| = flow(y)                           multi-scale Real NVP (Sec. 3.6)
    log p(x) = log N(z; 0, I) + log|det dz/dy| + log|det dy/dx|       (Eq. 3)
    nll_bits(v) = (-log p(x) + D log 256) / (D ln 2)      bits per dimension
    loss = mean_batch nll_bits

Bits/dim convention (the one of Real NVP's Table 1): uniform dequantization of the 8-bit data
scaled to [0, 1), the logit-transform Jacobian **included** in ``log p(x)``, and the
``D log 256`` term that turns the density on [0, 1)^D into a probability over the 256^D bins.
Because of the dequantization noise the reported number is a (single-sample) stochastic upper
bound on the discrete code length (Theis et al. 2016, Sec. 3.1); a uniform model scores exactly
8 bits/dim. The evaluation uses one fixed noise draw per test example.

With ``architecture="toy2d"`` the data are continuous 2-D points (``data.preprocess="none"``),
there is no dequantization and no logit transform, and every number is ``-log p(x)`` in nats
per point.

Normalization: with ``norm="batchnorm"`` the training step normalizes with the batch's
statistics and updates the running averages held in ``ModelState.collections["batch_stats"]``;
evaluation, encoding, sampling and interpolation use the running averages (Sec. 3.7), so an
example's likelihood does not depend on the rest of its batch. ``norm="actnorm"`` (Glow) is
initialised from the first training batch.

Precision: with ``train.compute_dtype=bfloat16`` the couplings' s/t networks (ResNets, MLPs)
compute in bfloat16, in training and in evaluation, encoding, sampling and interpolation alike;
parameters, optimizer state and batch-norm statistics stay float32. Everything else above is
float32: the dequantized x, the logit transform and its Jacobian, the coupling maps
``x * exp(s) + t`` and their inverses (s and t are cast to float32 first), every
log-determinant, z, the prior, the ``D log 256`` offset and the batch mean.

References:
  Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017 (Eq. 3, Sec.
  3.6, 3.7, 4.1, Table 1). Theis, van den Oord & Bethge, "A note on the evaluation of
  generative models", ICLR 2016. Kingma & Dhariwal, "Glow", NeurIPS 2018 (temperature, ActNorm).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import preprocess
from genjax.eval.images import picture_path, save_image_grid, save_interpolation_grid
from genjax.eval.interpolation import interpolate_latents
from genjax.eval.likelihood import dataset_means
from genjax.eval.plots import plot_density_2d, plot_points_2d
from genjax.losses.flow import (
    bits_per_dim,
    change_of_variables_log_likelihood,
    discrete_nll_from_continuous,
    logit_transform,
)
from genjax.models.flow_layers import NORMS
from genjax.models.flows import RealNVP, RealNVP2D
from genjax.train.config import AtLeast, Each, Number, OneOf, Rule, need, need_preprocess
from genjax.train.method import Method, register
from genjax.train.optim import make_optimizer
from genjax.train.precision import compute_dtype
from genjax.train.state import ModelState, TrainState, apply_gradients

ARCHITECTURES = ("image", "toy2d")


@dataclasses.dataclass(frozen=True)
class RealNVPConfig:
    """Architecture and preprocessing of a Real NVP flow.

    Attributes:
      architecture: ``image`` (multi-scale convolutional flow on dequantized 8-bit images,
        :class:`~genjax.models.flows.RealNVP`) or ``toy2d`` (MLP couplings on 2-D points,
        :class:`~genjax.models.flows.RealNVP2D`).
      num_scales: image: scales L (L - 1 squeezes; H, W divisible by 2^(L-1)).
      features: image: feature maps of each coupling's ResNet s/t network.
      num_blocks: image: residual blocks per s/t network (0: its input and output convolutions).
      num_couplings: toy2d: number of coupling layers (alternating halves; even in practice).
      hidden: toy2d: hidden widths of each coupling's MLP.
      norm: ``batchnorm`` (Real NVP Sec. 3.7), ``actnorm`` (Glow) or ``none``.
      logit_alpha: image: alpha of the logit transform, in (0, 0.5) (0.05 in Real NVP).
      temperature: default sampling temperature T (latents ``T * eps``); 1 samples the model,
        0 gives the mode (all latents zero).
        It changes sampling only, so ``genjax sample --set model.temperature=...`` may change it
        on a trained workdir (``EVAL_ONLY_FIELDS``).
    """

    EVAL_ONLY_FIELDS: ClassVar[tuple[str, ...]] = ("temperature",)

    LIMITS: ClassVar[dict[str, Rule]] = {
        "architecture": OneOf(choices=ARCHITECTURES),
        "num_scales": AtLeast(),
        "features": AtLeast(),
        "num_blocks": AtLeast(minimum=0, note="0: each s/t network is its input and output "
                                                "convolutions"),
        "num_couplings": AtLeast(),
        "hidden": Each(element=AtLeast(), min_len=1),
        "norm": OneOf(choices=tuple(sorted(NORMS))),
        "logit_alpha": Number(low=0.0, high=0.5, open_low=True, open_high=True),
        "temperature": Number(low=0.0, note="0: the mode, latents all zero"),
    }

    architecture: str = "image"
    num_scales: int = 2
    features: int = 64
    num_blocks: int = 8
    num_couplings: int = 8
    hidden: tuple[int, ...] = (256, 256)
    norm: str = "batchnorm"
    logit_alpha: float = 0.05
    temperature: float = 1.0


@register
class RealNVPMethod(Method):
    """Trains a Real NVP flow by exact maximum likelihood; evaluates test NLL exactly."""

    name = "realnvp"
    model_config = RealNVPConfig

    @classmethod
    def check_model(cls, config):
        cfg: RealNVPConfig = config.model
        expected = "none" if cfg.architecture == "toy2d" else "dequantize"
        why = ("toy2d flows model continuous points" if expected == "none" else
               "Real NVP on images: uniform dequantization, the bits/dim convention")
        need_preprocess(config.data, (expected,), f"({why})")

    @classmethod
    def check_data(cls, config, data):
        cfg: RealNVPConfig = config.model
        if cfg.architecture == "toy2d":
            need(len(data.shape) == 1 and data.num_bits == 0, "model.architecture",
                 cfg.architecture, f"'image': dataset {data.name!r} holds images {data.shape}")
            return
        need(len(data.shape) == 3 and data.num_bits >= 1, "model.architecture", cfg.architecture,
             f"'toy2d': dataset {data.name!r} holds points {data.shape}")
        factor = 2 ** (cfg.num_scales - 1)
        need(data.shape[0] % factor == 0 and data.shape[1] % factor == 0, "model.num_scales",
             cfg.num_scales, f"scales whose {cfg.num_scales - 1} squeezes halve "
             f"{data.shape[0]}x{data.shape[1]} images exactly (sides divisible by "
             "2 ** (num_scales - 1))")

    def __init__(self, config, data):
        super().__init__(config, data)
        cfg: RealNVPConfig = config.model
        self.is_image = cfg.architecture == "image"
        dtype = compute_dtype(config)  # of the s/t networks; the flow's data path is float32
        if self.is_image:
            self.module = RealNVP(
                cfg.num_scales, cfg.features, cfg.num_blocks, cfg.norm, dtype=dtype
            )
        else:
            self.module = RealNVP2D(cfg.num_couplings, tuple(cfg.hidden), cfg.norm, dtype=dtype)
        self.tx = make_optimizer(config.optim, config.train.num_steps)
        self._log_density = jax.jit(self.log_likelihood)
        self._encode = jax.jit(self._encode_fn)
        self._decode = jax.jit(self._decode_fn)

    # -- the objective ---------------------------------------------------------------------
    def prepare(self, key: jax.Array, data: jax.Array) -> jax.Array:
        """Stored data to model input: dequantized images in [0, 1), or the points as given."""
        mode = self.config.data.preprocess
        return preprocess(key, data, mode=mode, num_bits=self.data.num_bits)

    def _to_flow_space(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(y, log|det dy/dx|)``: the logit transform for images, the identity for points."""
        if self.is_image:
            return logit_transform(x, alpha=self.config.model.logit_alpha)
        return x, jnp.zeros(x.shape[:1], x.dtype)

    def log_likelihood(self, variables, x: jax.Array, *, train: bool = False):
        """``log p(x)`` in nats per example, for model inputs ``x`` (``prepare``'s output).

        Images: the density of the [0, 1)-scaled dequantized data, logit Jacobian included
        (add ``D log 256`` to its negative for the discrete NLL). Points: the density of the
        point. With ``train=True`` batch norm uses the batch's statistics and the updated
        collections are returned too: ``(log_p, collections)``.
        """
        y, log_det_pre = self._to_flow_space(x)
        if train and self.config.model.norm == "batchnorm":
            (z, log_det), new = self.module.apply(
                variables, y, train=True, method="forward", mutable=["batch_stats"]
            )
        else:
            z, log_det = self.module.apply(variables, y, train=train, method="forward")
            new = {k: v for k, v in variables.items() if k != "params"}
        log_p = change_of_variables_log_likelihood(z, log_det + log_det_pre)
        return (log_p, new) if train else log_p

    def nll(self, log_p: jax.Array) -> jax.Array:
        """The reported per-example NLL: bits/dim of the 8-bit data, or nats per point."""
        if not self.is_image:
            return -log_p
        d = self.data.num_dims
        return bits_per_dim(discrete_nll_from_continuous(-log_p, d, num_bits=self.data.num_bits), d)

    # -- Method interface --------------------------------------------------------------------
    def init(self, key, batch):
        data_key, init_key = jax.random.split(key)
        y, _ = self._to_flow_space(self.prepare(data_key, batch["image"]))
        # Through the forward map, so ActNorm initialises from this batch's statistics.
        variables = self.module.init(init_key, y, method="forward")
        return {"flow": ModelState.create(variables, self.tx)}

    def train_step(self, state: TrainState, batch):
        keys = state.step_keys("dequantize")
        x = self.prepare(keys["dequantize"], batch["image"])
        model = state.models["flow"]

        def loss_fn(params):
            log_p, new = self.log_likelihood({**model.collections, "params": params}, x, train=True)
            return jnp.mean(self.nll(log_p)), (new, jnp.mean(-log_p))

        (loss, (new, nats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(model.params)
        model, norms = apply_gradients(model, grads, self.tx, collections=new)
        unit = "bits_per_dim" if self.is_image else "nats_per_point"
        return state.replace_model("flow", model), {"loss": loss, f"nll_{unit}": loss,
                                                    "neg_log_density_nats": nats, **norms}

    def _eval_batch(self, variables, key, data, index):
        """Per-example NLL of one batch; example ``index[i]`` gets noise ``fold_in(key, index[i])``."""
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(index)
        x = jax.vmap(self.prepare)(keys, data)
        return self.nll(self.log_likelihood(variables, x))

    def _eval_scores(self, variables, key, batch, i, rows):
        """``evaluate``'s per-example NLL (dataset_means' signature)."""
        del i  # per-example keys
        return {"nll": self._eval_batch(variables, key, batch["image"], rows.astype(jnp.uint32))}

    def evaluate(self, state: TrainState, dataset, key: jax.Array) -> dict[str, float]:
        """Exact test NLL with evaluation (running) statistics.

        Images: ``nll_bits_per_dim`` (Real NVP convention, see the module doc; one fixed
        dequantization draw per example, the draw depends only on ``key`` and the example's
        position, not on the batch size) and ``nll_nats`` = bits * D ln 2 per example of the
        8-bit data. Points: ``nll_nats`` per point.
        """
        means, n = dataset_means(self._eval_scores, state.models["flow"].variables, dataset,
                                 key=key, static=self.config,
                                 batch_size=self.config.eval.batch_size,
                                 progress=self.config.train.progress)
        mean = means["nll"]
        if self.is_image:
            d = self.data.num_dims
            return {"nll_bits_per_dim": mean, "nll_nats": mean * d * math.log(2),
                    "dequantization_samples": 1, "num_examples": n}
        return {"nll_nats": mean, "num_examples": n}

    # -- encoding, sampling, interpolation ---------------------------------------------------
    def _encode_fn(self, variables, x):
        y, _ = self._to_flow_space(x)
        return self.module.apply(variables, y, method="forward")[0]

    def _decode_fn(self, variables, z):
        y, _ = self.module.apply(variables, z, method="inverse")
        if not self.is_image:
            return y
        alpha = self.config.model.logit_alpha
        return (jax.nn.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha)

    def encode(self, state: TrainState, x) -> jax.Array:
        """Exact latents ``z = f(x)`` of model inputs ``x`` (dequantized images in [0, 1])."""
        x = jnp.asarray(x, jnp.float32)
        if x.shape[1:] != tuple(self.data.shape):
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.data.shape))}), "
                             f"got {x.shape}")
        return self._encode(state.models["flow"].variables, x)

    def decode(self, state: TrainState, z) -> jax.Array:
        """Exact inverse ``x = f^{-1}(z)`` (images in [0, 1] before any clipping)."""
        z = jnp.asarray(z, jnp.float32)
        if z.shape[1:] != tuple(self.data.shape):
            raise ValueError(f"z must have shape (B, {', '.join(map(str, self.data.shape))}), "
                             f"got {z.shape}")
        return self._decode(state.models["flow"].variables, z)

    def sample(self, state: TrainState, key: jax.Array, num: int, *,
               temperature: float | None = None) -> np.ndarray:
        """``x = f^{-1}(T eps)``, ``eps ~ N(0, I)``: images in [0, 1] or points ``(num, D)``.

        ``temperature`` defaults to ``model.temperature``; T = 0 returns ``f^{-1}(0)``, the
        image of the latent mode, for every sample (Glow Sec. 5 for reduced temperatures).
        """
        t = self.config.model.temperature if temperature is None else float(temperature)
        if not (math.isfinite(t) and t >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        if int(num) < 1:
            raise ValueError(f"num must be >= 1, got {num}")
        eps = jax.random.normal(key, (int(num), *self.data.shape))
        out = np.asarray(self.decode(state, t * eps))
        return np.clip(out, 0.0, 1.0) if self.is_image else out

    def interpolate(self, state: TrainState, x1, x2, num_steps: int = 10) -> np.ndarray:
        """Decoded straight line between the exact latents of two inputs, ``(num_steps, ...)``.

        Row 0 reconstructs ``x1`` and row ``-1`` reconstructs ``x2`` (exact inversion).
        """
        z = self.encode(state, jnp.stack([jnp.asarray(x1), jnp.asarray(x2)]))
        path = interpolate_latents(z[0], z[1], num_steps)
        out = np.asarray(self.decode(state, path))
        return np.clip(out, 0.0, 1.0) if self.is_image else out

    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        """Images: samples at T=1 and T=0.7, interpolations between test images.
        Points: the model density with the test points overlaid, and samples vs data."""
        outdir = Path(outdir)
        k_sample, k_data = jax.random.split(key)
        num = self.config.eval.num_samples
        if not self.is_image:
            return self._write_toy_pictures(state, outdir, dataset, k_sample, step)
        paths = []
        for t in (1.0, 0.7):
            paths.append(picture_path(outdir, f"samples_T{t:.1f}", step))
            save_image_grid(paths[-1], self.sample(state, k_sample, num, temperature=t))
        n = min(8, len(dataset) - len(dataset) % 2)
        if n >= 2:
            x = self.prepare(k_data, jnp.asarray(dataset.images[:n]))
            rows = [self.interpolate(state, x[a], x[a + 1], 10) for a in range(0, n, 2)]
            paths.append(picture_path(outdir, "interpolation", step))
            save_interpolation_grid(paths[-1], rows)
        return paths

    def _write_toy_pictures(self, state, outdir, dataset, key, step) -> list[Path]:
        pts = np.asarray(dataset.images[:2000])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.15 * (hi - lo)
        xlim, ylim = (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])
        variables = state.models["flow"].variables
        density = picture_path(outdir, "density", step)
        plot_density_2d(density, lambda p: np.asarray(self._log_density(variables, jnp.asarray(p))),
                        xlim=xlim, ylim=ylim, samples=pts, title=f"Real NVP density, step {step}")
        samples = picture_path(outdir, "samples", step)
        model = self.sample(state, key, len(pts))
        plot_points_2d(samples, {"data": pts, "model": model}, xlim=xlim, ylim=ylim,
                       title=f"Real NVP samples, step {step}")
        return [density, samples]
