"""Autoregressive image models: PixelCNN, Gated PixelCNN, PixelRNN, PixelCNN++, multiscale.

The whole objective, top to bottom (``v`` the stored pixels, ``D = H W C`` sub-pixels):

    -log p(v) = -sum_t log p(v_t | v_<t)          raster order, channels R -> G -> B, nats
    loss = mean over the batch of -log p(v)       nats per example (what is minimised)
    bits_per_dim = loss / (D ln 2)

Likelihood (``model.likelihood``), its data protocol and the network input:

* ``bernoulli``: binary pixels (``data.preprocess`` "binary" for a static binarization such
  as Larochelle & Murray's MNIST, "binarize_dynamic" for Bernoulli(v / max) draws); the network
  reads ``{0, 1}``; :func:`genjax.losses.bernoulli_nll`. Reported in nats per image, as in the
  papers (van den Oord et al. 2016b, Table 4).
* ``categorical``: a ``K = 2^num_bits``-way softmax per sub-pixel (PixelRNN Sec. 5.3);
  ``data.preprocess="integer"`` gives the targets ``v``; the network reads ``2 v / (K - 1) - 1``;
  :func:`genjax.losses.categorical_nll`.
* ``logistic_mixture`` (PixelCNN++ only): discretized logistic mixture of 8-bit values
  (Salimans et al. 2017, Eq. 2); ``data.preprocess="integer"``; network input and target
  ``x = 2 v / 255 - 1``; :func:`genjax.losses.discretized_logistic_mixture_nll`.

All three are probabilities of the discrete data: no dequantization, no ``log 256`` term, so
bits/dim is ``nats / (D ln 2)`` directly (a uniform 8-bit model scores 8 bits/dim). For the
multiscale model, ``-log p(v)`` sums the base image's and every pixel group's terms (Reed et al.
2017, Sec. 3). Class-conditional models (``model.conditional``; Gated PixelCNN, PixelCNN++,
multiscale) read ``batch["label"]``; samples then cycle through the classes.

Sampling (:meth:`AutoregressiveMethod.sample`): ``model.sampler`` = ``naive`` (one full pass
per sub-pixel, every architecture but multiscale), ``cached`` (PixelCNN only, the same sample
computing one position per step), ``multiscale`` (the multiscale model's parallel sampler) or
``auto`` (multiscale for the multiscale model, cached for PixelCNN, naive otherwise); see
:mod:`genjax.models.sampling`.

Precision (``train.compute_dtype``): the network runs in the compute dtype (its Flax ``dtype``,
in training, evaluation and every sampler) with float32 parameters; it returns float32 logits
or mixture parameters, and the targets, likelihoods, the loss and bits/dim are float32.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from genjax.data import preprocess
from genjax.eval.images import picture_path, save_image_grid
from genjax.eval.likelihood import bits_per_dim, dataset_means
from genjax.losses import bernoulli_nll, categorical_nll, discretized_logistic_mixture_nll
from genjax.losses import bits_per_dim as device_bits_per_dim
from genjax.models.multiscale_pixelcnn import MultiscalePixelCNN, extract_group, multiscale_groups
from genjax.models.pixelcnn import GatedPixelCNN, PixelCNN
from genjax.models.pixelcnnpp import PixelCNNPlusPlus
from genjax.models.pixelrnn import PixelRNN
from genjax.models.sampling import (
    cached_pixelcnn_sample,
    multiscale_sample,
    naive_sample,
    network_input,
)
from genjax.train.config import AtLeast, Flag, Number, OneOf, Rule, need, need_preprocess
from genjax.train.method import Method, register
from genjax.train.optim import make_optimizer
from genjax.train.precision import compute_dtype
from genjax.train.state import ModelState, TrainState, apply_gradients

ARCHITECTURES = (
    "pixelcnn",
    "gated_pixelcnn",
    "pixelrnn_row",
    "pixelrnn_diagonal",
    "pixelcnnpp",
    "multiscale",
)
LIKELIHOODS = ("bernoulli", "categorical", "logistic_mixture")
SAMPLERS = ("auto", "naive", "cached", "multiscale")
_CONDITIONAL = ("gated_pixelcnn", "pixelcnnpp", "multiscale")


@dataclasses.dataclass(frozen=True)
class AutoregressiveConfig:
    """Architecture, likelihood and sampler of an autoregressive image model.

    Attributes:
      architecture: one of ``ARCHITECTURES``.
      likelihood: ``bernoulli`` | ``categorical`` | ``logistic_mixture`` (see the module doc).
      features: PixelCNN h, Gated PixelCNN p, PixelRNN hidden h, PixelCNN++ feature maps, or the
        multiscale upsamplers' features.
      num_layers: PixelCNN residual blocks, gated layers, PixelRNN LSTM layers, PixelCNN++ resnet
        blocks per resolution (``num_resnet``), or the multiscale base model's gated layers.
      output_features: width of the 1x1 output layer (not PixelCNN++).
      kernel_size, first_kernel_size: masked kernels of later layers (3) and the first (7).
      num_mixtures: M, logistic components (PixelCNN++).
      dropout_rate, weight_norm: PixelCNN++ regularization (0: no dropout) and
        parameterization.
      conditional: class-conditional on ``batch["label"]``.
      embed_features: label embedding size (Gated PixelCNN).
      num_scales, base_features, num_blocks: multiscale S, base model width, upsampler blocks
        (0 blocks: each upsampler is its input and output convolutions).
      sampler: ``auto`` | ``naive`` | ``cached`` | ``multiscale``.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "architecture": OneOf(choices=ARCHITECTURES),
        "likelihood": OneOf(choices=LIKELIHOODS),
        "features": AtLeast(),
        "num_layers": AtLeast(),
        "output_features": AtLeast(),
        "kernel_size": AtLeast(),
        "first_kernel_size": AtLeast(),
        "num_mixtures": AtLeast(),
        "dropout_rate": Number(low=0.0, high=1.0, open_high=True, note="0: no dropout"),
        "weight_norm": Flag(),
        "conditional": Flag(),
        "embed_features": AtLeast(),
        "num_scales": AtLeast(),
        "base_features": AtLeast(),
        "num_blocks": AtLeast(minimum=0, note="0: each upsampler is its input and output "
                                                "convolutions"),
        "sampler": OneOf(choices=SAMPLERS),
    }

    architecture: str = "pixelcnn"
    likelihood: str = "bernoulli"
    features: int = 64
    num_layers: int = 7
    output_features: int = 256
    kernel_size: int = 3
    first_kernel_size: int = 7
    num_mixtures: int = 10
    dropout_rate: float = 0.5
    weight_norm: bool = True
    conditional: bool = False
    embed_features: int = 32
    num_scales: int = 2
    base_features: int = 64
    num_blocks: int = 2
    sampler: str = "auto"


def build_model(
    cfg: AutoregressiveConfig,
    shape: tuple[int, int, int],
    num_values: int,
    num_classes: int,
    dtype=jnp.float32,
):
    """The Flax module for ``cfg`` on images of ``shape`` with a ``num_values``-way softmax.

    ``dtype`` is the module's computation dtype (``train.compute_dtype``); its parameters and
    outputs are float32 whatever ``dtype``.
    """
    c = shape[-1]
    out = "bernoulli" if cfg.likelihood == "bernoulli" else "categorical"
    common = dict(
        color_channels=c,
        output=out,
        num_values=num_values,
        output_features=cfg.output_features,
        dtype=dtype,
    )
    a = cfg.architecture
    if a == "pixelcnn":
        return PixelCNN(
            cfg.features,
            cfg.num_layers,
            kernel_size=cfg.kernel_size,
            first_kernel_size=cfg.first_kernel_size,
            **common,
        )
    if a == "gated_pixelcnn":
        return GatedPixelCNN(
            cfg.features,
            cfg.num_layers,
            kernel_size=cfg.kernel_size,
            first_kernel_size=cfg.first_kernel_size,
            num_classes=num_classes,
            embed_features=cfg.embed_features,
            **common,
        )
    if a in ("pixelrnn_row", "pixelrnn_diagonal"):
        layer = "row_lstm" if a == "pixelrnn_row" else "diagonal_bilstm"
        return PixelRNN(
            layer, cfg.features, cfg.num_layers, first_kernel_size=cfg.first_kernel_size, **common
        )
    if a == "pixelcnnpp":
        return PixelCNNPlusPlus(
            cfg.features,
            cfg.num_layers,
            cfg.num_mixtures,
            cfg.dropout_rate,
            cfg.weight_norm,
            num_classes,
            dtype=dtype,
        )
    return MultiscalePixelCNN(
        cfg.num_scales,
        base_features=cfg.base_features,
        base_layers=cfg.num_layers,
        features=cfg.features,
        num_blocks=cfg.num_blocks,
        num_classes=num_classes,
        **common,
    )


@register
class AutoregressiveMethod(Method):
    """Trains an autoregressive image model by maximum likelihood; exact test NLL; samplers."""

    name = "autoregressive"
    model_config = AutoregressiveConfig

    @classmethod
    def check_model(cls, config):
        cfg: AutoregressiveConfig = config.model
        if (cfg.architecture == "pixelcnnpp") != (cfg.likelihood == "logistic_mixture"):
            need(False, "model.likelihood", cfg.likelihood,
                 "'logistic_mixture' with model.architecture='pixelcnnpp', which no other "
                 f"architecture has (model.architecture={cfg.architecture!r})")
        for name in ("kernel_size", "first_kernel_size"):
            size = getattr(cfg, name)
            need(size % 2 == 1, f"model.{name}", size,
                 "an odd integer (the kernel's centre is the current pixel)")
        modes = ("binary", "binarize_dynamic") if cfg.likelihood == "bernoulli" else ("integer",)
        need_preprocess(config.data, modes, f"with model.likelihood={cfg.likelihood!r}")
        if cfg.conditional:
            need(cfg.architecture in _CONDITIONAL, "model.conditional", True,
                 f"false with model.architecture={cfg.architecture!r} (class-conditional "
                 f"architectures: {_CONDITIONAL})")
        if cfg.sampler == "cached":
            need(cfg.architecture == "pixelcnn", "model.sampler", cfg.sampler,
                 f"not 'cached' with model.architecture={cfg.architecture!r} (the cached sampler "
                 "is PixelCNN's)")
        if cfg.sampler != "auto" and (cfg.sampler == "multiscale") != (
                cfg.architecture == "multiscale"):
            need(False, "model.sampler", cfg.sampler,
                 f"'auto' or the one sampler of model.architecture={cfg.architecture!r} (the "
                 "multiscale model is sampled by the multiscale sampler, every other one is not)")

    @classmethod
    def check_data(cls, config, data):
        cfg: AutoregressiveConfig = config.model
        need(len(data.shape) == 3 and data.num_bits >= 1, "data.name", data.name,
             f"an image dataset (H, W, C); it holds {data.shape} values")
        if cfg.likelihood == "logistic_mixture":
            need(data.num_bits == 8, "model.likelihood", cfg.likelihood,
                 f"a likelihood of {data.num_bits}-bit values: the logistic mixture is over "
                 "8-bit values")
        if cfg.conditional:
            need(bool(data.num_classes), "model.conditional", True,
                 f"false: dataset {data.name!r} has no labels")
        channels = data.shape[-1]
        need(cfg.features >= channels, "model.features", cfg.features,
             f"at least the {channels} colour channels (one feature group per colour)")
        if cfg.architecture == "multiscale":
            factor = 2**cfg.num_scales
            need(data.shape[0] % factor == 0 and data.shape[1] % factor == 0, "model.num_scales",
                 cfg.num_scales, f"scales that halve {data.shape[0]}x{data.shape[1]} images "
                 "exactly (sides divisible by 2 ** num_scales)")

    def __init__(self, config, data):
        super().__init__(config, data)
        cfg: AutoregressiveConfig = config.model
        self.num_values = 2**data.num_bits if cfg.likelihood == "categorical" else 256
        self.num_classes = (data.num_classes or 0) if cfg.conditional else 0
        # One module, in the compute dtype, for training, evaluation and sampling.
        self.module = build_model(
            cfg, data.shape, self.num_values, self.num_classes, compute_dtype(config)
        )
        self.tx = make_optimizer(config.optim, config.train.num_steps)
        self._samplers: dict = {}

    # -- data and the objective ------------------------------------------------------------
    def prepare(self, key, images, *, train: bool) -> tuple[jax.Array, jax.Array]:
        """``(network input, target)`` from stored pixels under the configured protocol."""
        mode = self.config.data.preprocess
        if not train and self.config.data.eval_preprocess:
            mode = self.config.data.eval_preprocess
        v = preprocess(key, images, mode=mode, num_bits=self.data.num_bits)
        x = network_input(v, self.config.model.likelihood, self.num_values)
        target = x if self.config.model.likelihood == "logistic_mixture" else v
        return x, target

    def labels(self, batch) -> jax.Array | None:
        return jnp.asarray(batch["label"]) if self.num_classes else None

    def nll(self, params, x, target, labels=None, dropout_key=None) -> jax.Array:
        """``-log p(v)`` in nats per example, shape (B,): sum over every sub-pixel's conditional.

        Args:
          params: the module's parameters.
          x, target: from :meth:`prepare`.
          labels: (B,) int for class-conditional models, else None.
          dropout_key: PixelCNN++ in training mode (dropout on); None evaluates without dropout.
        """
        cfg: AutoregressiveConfig = self.config.model
        variables = {"params": params}
        if cfg.architecture == "pixelcnnpp":
            kwargs = (
                {} if dropout_key is None else {"train": True, "rngs": {"dropout": dropout_key}}
            )
            out = self.module.apply(variables, x, labels, **kwargs)
            return discretized_logistic_mixture_nll(out, target, num_mixtures=cfg.num_mixtures)
        score = bernoulli_nll if cfg.likelihood == "bernoulli" else categorical_nll
        if cfg.architecture == "multiscale":
            outs = self.module.apply(variables, x, labels)
            groups = multiscale_groups(x.shape[1], x.shape[2], cfg.num_scales)
            return sum(
                score(o, extract_group(target, g)) for o, g in zip(outs, groups, strict=True)
            )
        args = (x, labels) if cfg.architecture == "gated_pixelcnn" else (x,)
        return score(self.module.apply(variables, *args), target)

    # -- Method interface --------------------------------------------------------------------
    def init(self, key, batch):
        data_key, init_key = jax.random.split(key)
        x, _ = self.prepare(data_key, batch["image"], train=True)
        labels = self.labels(batch)
        args = (
            (x,)
            if self.config.model.architecture in ("pixelcnn", "pixelrnn_row", "pixelrnn_diagonal")
            else (x, labels)
        )
        return {"model": ModelState.create(self.module.init(init_key, *args), self.tx)}

    def train_step(self, state: TrainState, batch):
        keys = state.step_keys("data", "dropout")
        x, target = self.prepare(keys["data"], batch["image"], train=True)
        labels = self.labels(batch)
        dropout = keys["dropout"] if self.config.model.architecture == "pixelcnnpp" else None
        model = state.models["model"]

        def loss_fn(params):
            return jnp.mean(self.nll(params, x, target, labels, dropout))

        loss, grads = jax.value_and_grad(loss_fn)(model.params)
        model, norms = apply_gradients(model, grads, self.tx)
        bits = device_bits_per_dim(loss, self.data.num_dims)
        return state.replace_model("model", model), {"loss": loss, "bits_per_dim": bits, **norms}

    def evaluate(self, state: TrainState, dataset, key: jax.Array) -> dict[str, float]:
        """Exact test NLL: ``nll_nats`` per example and ``nll_bits_per_dim`` = nats / (D ln 2).

        Stochastic eval preprocessing (``binarize_dynamic``) uses ``key``, fixed per run, so every
        evaluation scores the same binarization of the eval split.
        """
        means, n = dataset_means(self._eval_scores, state.models["model"].params, dataset,
                                 key=key, static=self.config,
                                 batch_size=self.config.eval.batch_size,
                                 progress=self.config.train.progress)
        nats = means["nll_nats"]
        return {"nll_nats": nats, "nll_bits_per_dim": bits_per_dim(nats, self.data.num_dims),
                "num_examples": n}

    def _eval_scores(self, params, key, batch, i, rows):
        """``evaluate``'s per-example NLL in nats (dataset_means' signature)."""
        del rows  # one binarization key per batch
        x, target = self.prepare(jax.random.fold_in(key, i), batch["image"], train=False)
        return {"nll_nats": self.nll(params, x, target, self.labels(batch))}

    def sampler_name(self) -> str:
        cfg: AutoregressiveConfig = self.config.model
        if cfg.sampler != "auto":
            return cfg.sampler
        return {"multiscale": "multiscale", "pixelcnn": "cached"}.get(cfg.architecture, "naive")

    def sample_values(
        self, state: TrainState, key: jax.Array, num: int, labels=None, sampler: str | None = None
    ) -> np.ndarray:
        """``num`` samples as integer pixel values (num, H, W, C) with the named sampler.

        Args:
          labels: (num,) int for conditional models; default ``arange(num) % num_classes``.
          sampler: ``naive``, ``cached`` or ``multiscale``; default :meth:`sampler_name`.
        """
        sampler = sampler or self.sampler_name()
        if int(num) < 1:
            raise ValueError(f"num must be >= 1, got {num}")
        if self.num_classes and labels is None:
            labels = jnp.arange(num) % self.num_classes
        if labels is not None and jnp.shape(labels) != (num,):
            raise ValueError(f"labels must have shape ({num},), got {jnp.shape(labels)}")
        if (num, sampler) not in self._samplers:
            self._samplers[(num, sampler)] = jax.jit(
                functools.partial(self._sample, num=num, sampler=sampler)
            )
        return np.asarray(self._samplers[(num, sampler)](state.models["model"].params, key, labels))

    def _sample(self, params, key, labels, *, num: int, sampler: str):
        cfg: AutoregressiveConfig = self.config.model
        shape = (num, *self.data.shape)
        variables = {"params": params}
        if sampler == "multiscale":
            if cfg.architecture != "multiscale":
                raise ValueError(
                    f"sampler='multiscale' needs the multiscale model, not {cfg.architecture!r}"
                )
            base_fn = functools.partial(
                self.module.apply, variables, labels=labels, method=MultiscalePixelCNN.base_logits
            )

            def group_fn(index, known, target):
                return self.module.apply(
                    variables, index, known, target, labels, method=MultiscalePixelCNN.group_logits
                )

            return multiscale_sample(
                base_fn,
                group_fn,
                key,
                shape,
                num_scales=cfg.num_scales,
                likelihood=cfg.likelihood,
                num_values=self.num_values,
            )
        if sampler == "cached":
            if cfg.architecture != "pixelcnn":
                raise ValueError(
                    f"sampler='cached' is implemented for pixelcnn, not {cfg.architecture!r}"
                )
            return cached_pixelcnn_sample(self.module, variables, key, shape)
        if sampler != "naive" or cfg.architecture == "multiscale":
            raise ValueError(
                f"sampler={sampler!r} does not apply to architecture {cfg.architecture!r}"
            )

        def apply_fn(x):
            if cfg.architecture in ("gated_pixelcnn", "pixelcnnpp"):
                return self.module.apply(variables, x, labels)
            return self.module.apply(variables, x)

        return naive_sample(
            apply_fn, key, shape, likelihood=cfg.likelihood, num_values=self.num_values
        )

    def sample(self, state: TrainState, key: jax.Array, num: int) -> np.ndarray:
        """``num`` samples as float images in [0, 1] (values / (K - 1); Bernoulli as is)."""
        values = self.sample_values(state, key, num)
        if self.config.model.likelihood == "bernoulli":
            return values.astype(np.float32)
        return values.astype(np.float32) / (self.num_values - 1)

    def write_pictures(self, state, outdir: Path, *, dataset, key, step: int) -> list[Path]:
        """A grid of ``eval.num_samples`` samples (conditional: one class per column)."""
        path = picture_path(outdir, "samples", step)
        images = self.sample(state, key, self.config.eval.num_samples)
        save_image_grid(path, images, nrow=self.num_classes or None)
        return [path]
