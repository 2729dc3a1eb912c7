"""GMM by EM, probabilistic PCA and the linear autoencoder as ``genjax train`` methods.

These are fitted by their own algorithms (EM, a closed form, full-batch gradient descent), not
by the step loop, so they are :class:`genjax.train.method.FitMethod`\\ s: ``fit`` loads the data
(flattened, pixels scaled to [0, 1]), runs :mod:`genjax.classical.run`, and writes what every
genjax run writes: ``config.json``, ``metrics.jsonl``, ``results.json``, PNGs under
``pictures/`` and the fitted parameters as a hash-verified checkpoint.

Data: any image dataset of :mod:`genjax.data` (``data.preprocess`` must be ``unit``), or
``toy_mixture_2d`` (the seeded 2-D mixture of :func:`genjax.classical.toy_mixture_2d`;
``model.toy_examples`` points, the last fifth held out).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from genjax.classical.gmm import (
    COVARIANCE_TYPES,
    GaussianMixture,
    gmm_log_likelihood,
    sample_gmm,
    toy_mixture_2d,
)
from genjax.classical.linear_ae import linear_ae_loss, linear_ae_reconstruct
from genjax.classical.ppca import PPCA, ppca_log_likelihood, sample_ppca
from genjax.classical.run import run_gmm, run_linear_ae, run_ppca
from genjax.data import load_dataset
from genjax.train.checkpoint import CheckpointStore
from genjax.train.config import AtLeast, Number, OneOf, Rule, need, to_dict, to_json
from genjax.train.method import FitMethod, register
from genjax.train.metrics import MetricWriter

TOY = "toy_mixture_2d"


@dataclasses.dataclass(frozen=True)
class GMMConfig:
    """Gaussian mixture fitted by EM (:func:`genjax.classical.run.run_gmm`).

    Attributes:
      num_components: K mixture components (at most the number of training points).
      covariance_type: ``spherical``, ``diag`` or ``full``.
      num_restarts: EM runs from k-means++ initialisations; the best training likelihood wins.
      max_iters: EM iterations per restart.
      tol: stop when the mean log-likelihood gains less than this; 0 runs all ``max_iters``.
      reg_covar: added to the covariance diagonals; 0 adds nothing.
      num_samples: samples drawn for the picture.
      toy_examples: points of ``toy_mixture_2d`` (the last fifth held out).
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "num_components": AtLeast(),
        "covariance_type": OneOf(choices=COVARIANCE_TYPES),
        "num_restarts": AtLeast(),
        "max_iters": AtLeast(),
        "tol": Number(low=0.0, note="0: run all max_iters"),
        "reg_covar": Number(low=0.0, note="0: no regularisation"),
        "num_samples": AtLeast(),
        "toy_examples": AtLeast(minimum=5),
    }

    num_components: int = 10
    covariance_type: str = "full"
    num_restarts: int = 3
    max_iters: int = 200
    tol: float = 1e-4
    reg_covar: float = 1e-6
    num_samples: int = 64
    toy_examples: int = 2500


@dataclasses.dataclass(frozen=True)
class PPCAConfig:
    """Probabilistic PCA (Tipping & Bishop 1999), closed form and EM.

    Attributes:
      latent_dim: q, in [1, D) for D-dimensional data.
      max_iters: EM iterations (the EM fit is checked against the closed form).
      tol: EM stops when the log-likelihood gains less than this; 0 runs all ``max_iters``.
      num_samples: samples drawn for the picture.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "latent_dim": AtLeast(),
        "max_iters": AtLeast(),
        "tol": Number(low=0.0, note="0: run all max_iters"),
        "num_samples": AtLeast(),
    }

    latent_dim: int = 10
    max_iters: int = 1000
    tol: float = 1e-6
    num_samples: int = 64


@dataclasses.dataclass(frozen=True)
class LinearAEConfig:
    """Linear autoencoder trained by gradient descent on the l2 reconstruction loss.

    Attributes:
      latent_dim: q, in [1, D) for D-dimensional data.
      steps: gradient steps.
      learning_rate: plain gradient descent's step size, > 0.
      batch_size: examples per step; 0 means the full batch.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "latent_dim": AtLeast(),
        "steps": AtLeast(),
        "learning_rate": Number(low=0.0, open_low=True),
        "batch_size": AtLeast(minimum=0, note="0: full batch"),
    }

    latent_dim: int = 10
    steps: int = 5000
    learning_rate: float = 1e-2
    batch_size: int = 0


class _Classical(FitMethod):
    """Shared data loading, saving and restoring; subclasses name the runner and the params."""

    extra_datasets = (TOY,)

    @classmethod
    def check_model(cls, config):
        if config.data.name != TOY:
            need(config.data.preprocess == "unit", "data.preprocess", config.data.preprocess,
                 "'unit' (the classical models use pixels scaled to [0, 1])")
        if config.data.name == TOY and hasattr(config.model, "latent_dim"):
            cls._check_dimension(config, 2)
        if config.data.name == TOY and hasattr(config.model, "num_components"):
            n = config.model.toy_examples - config.model.toy_examples // 5
            need(config.model.num_components <= n, "model.num_components",
                 config.model.num_components, f"at most the {n} training points")

    @classmethod
    def check_data(cls, config, data):
        if hasattr(config.model, "latent_dim"):
            cls._check_dimension(config, data.num_dims)

    @classmethod
    def _check_dimension(cls, config, dims: int) -> None:
        q = config.model.latent_dim
        need(q < dims, "model.latent_dim", q,
             f"an integer in [1, {dims}): dataset {config.data.name!r} has {dims} dimensions")

    def load_data(self) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
        """``(x_train, x_test, image_shape)``: float32 ``(N, D)``; image_shape None for toy data."""
        cfg = self.config
        if cfg.data.name == TOY:
            n = getattr(cfg.model, "toy_examples", 2500)
            x, _ = toy_mixture_2d(jax.random.key(cfg.train.seed), n)
            x = np.asarray(x, np.float32)
            cut = n - n // 5
            return x[:cut], x[cut:], None
        out = []
        for split, limit in ((cfg.data.train_split, cfg.data.max_train_examples),
                             (cfg.data.eval_split, cfg.data.max_eval_examples)):
            ds = load_dataset(cfg.data.name, split, data_dir=cfg.data.data_dir or None,
                              manual_dir=cfg.data.manual_dir or None)
            images = ds.images[:limit] if limit else ds.images
            scale = 2**ds.num_bits - 1
            out.append(np.asarray(images, np.float32).reshape(len(images), -1) / scale)
        return out[0], out[1], tuple(ds.shape)

    def fit(self, workdir: Path) -> dict[str, Any]:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(to_json(self.config))
        x, x_test, shape = self.load_data()
        metrics, params = self.run(x, x_test, shape, workdir / "pictures")
        store = CheckpointStore(workdir, max_to_keep=1)
        store.save(0, params, {"config": to_dict(self.config), "method": self.name,
                               "data_dim": int(x.shape[1])}, wait=True)
        store.close()
        pictures = sorted((workdir / "pictures").glob("*.png"))
        writer = MetricWriter(workdir)
        writer.write(0, {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                     split="eval")
        writer.write_pictures(0, pictures)
        writer.close()
        summary = {"status": "finished", "step": 0, "eval": metrics,
                   "pictures": [str(p) for p in pictures]}
        (workdir / "results.json").write_text(json.dumps(summary, indent=2))
        return summary

    def restore(self, workdir: Path, data_dim: int):
        store = CheckpointStore(workdir, max_to_keep=1)
        restored = store.restore_latest(self.template(data_dim))
        store.close()
        if restored is None:
            raise FileNotFoundError(f"no checkpoint in {Path(workdir) / 'checkpoints'}; train first")
        return restored[0]

    def evaluate(self, workdir: Path) -> dict[str, float]:
        x, x_test, shape = self.load_data()
        params = self.restore(workdir, x.shape[1])
        d = x.shape[1]
        out = {}
        for split, xs in (("train", x), ("test", x_test)):
            out.update(self.split_metrics(params, jnp.asarray(xs), split, d))
        return out


@register
class GMMMethod(_Classical):
    """Gaussian mixture fitted by EM in the log domain (k-means++ init, restarts)."""

    name = "gmm"
    model_config = GMMConfig

    def run(self, x, x_test, shape, outdir):
        m = self.config.model
        return run_gmm(x, key=jax.random.key(self.config.train.seed), workdir=outdir,
                       num_components=m.num_components, covariance_type=m.covariance_type,
                       num_restarts=m.num_restarts, max_iters=m.max_iters, tol=m.tol,
                       reg_covar=m.reg_covar, x_test=x_test, image_shape=shape,
                       num_samples=m.num_samples, return_params=True)

    def template(self, d: int) -> GaussianMixture:
        m = self.config.model
        k = m.num_components
        cov = {"full": (k, d, d), "diag": (k, d), "spherical": (k,)}[m.covariance_type]
        return GaussianMixture(jnp.zeros(k), jnp.zeros((k, d)), jnp.zeros(cov), m.covariance_type)

    def split_metrics(self, params, xs, split, d):
        ll = float(jnp.mean(gmm_log_likelihood(params, xs)))
        return {f"{split}_log_likelihood_nats": ll}

    def sample(self, workdir: Path, key, num: int) -> np.ndarray:
        x, _, shape = self.load_data()
        samples, _ = sample_gmm(key, self.restore(workdir, x.shape[1]), num)
        return _as_images(samples, shape)


@register
class PPCAMethod(_Classical):
    """Probabilistic PCA: closed-form maximum likelihood, checked against EM."""

    name = "ppca"
    model_config = PPCAConfig

    def run(self, x, x_test, shape, outdir):
        m = self.config.model
        return run_ppca(x, key=jax.random.key(self.config.train.seed), workdir=outdir,
                        latent_dim=m.latent_dim, max_iters=m.max_iters, tol=m.tol, x_test=x_test,
                        image_shape=shape, num_samples=m.num_samples, return_params=True)

    def template(self, d: int) -> PPCA:
        q = self.config.model.latent_dim
        return PPCA(jnp.zeros(d), jnp.zeros((d, q)), jnp.zeros(()))

    def split_metrics(self, params, xs, split, d):
        ll = float(jnp.mean(ppca_log_likelihood(params, xs)))
        return {f"{split}_log_likelihood_nats": ll}

    def sample(self, workdir: Path, key, num: int) -> np.ndarray:
        x, _, shape = self.load_data()
        samples, _ = sample_ppca(key, self.restore(workdir, x.shape[1]), num)
        return _as_images(samples, shape)


@register
class LinearAEMethod(_Classical):
    """Linear autoencoder trained by gradient descent on the l2 reconstruction loss."""

    name = "linear_ae"
    model_config = LinearAEConfig

    def run(self, x, x_test, shape, outdir):
        m = self.config.model
        return run_linear_ae(x, key=jax.random.key(self.config.train.seed), workdir=outdir,
                             latent_dim=m.latent_dim, steps=m.steps,
                             learning_rate=m.learning_rate, batch_size=m.batch_size or None,
                             x_test=x_test, image_shape=shape, return_params=True)

    def template(self, d: int) -> dict:
        q = self.config.model.latent_dim
        return {"encoder_weight": jnp.zeros((q, d)), "encoder_bias": jnp.zeros(q),
                "decoder_weight": jnp.zeros((d, q)), "decoder_bias": jnp.zeros(d)}

    def split_metrics(self, params, xs, split, d):
        return {f"{split}_reconstruction_error": float(linear_ae_loss(params, xs))}

    def sample(self, workdir: Path, key, num: int) -> np.ndarray:
        raise ValueError(
            "a linear autoencoder is not a generative model: it has no sampler. "
            "Use `genjax train ppca_digits` for its probabilistic counterpart."
        )

    def reconstruct(self, workdir: Path, x: np.ndarray) -> np.ndarray:
        return np.asarray(linear_ae_reconstruct(self.restore(workdir, x.shape[1]), x))


def _as_images(samples, shape) -> np.ndarray:
    samples = np.asarray(samples)
    if shape is None:
        return samples
    return np.clip(samples.reshape(len(samples), *shape), 0.0, 1.0)
