"""GMM by EM, probabilistic PCA and the linear autoencoder as ``genjax train`` methods.

These are fitted by their own algorithms (EM, a closed form, full-batch gradient descent), not
by the step loop, so they are :class:`genjax.train.method.FitMethod`\\ s: each offers the
algorithm on a state and nothing else. ``fit`` runs :mod:`genjax.classical` on the train split
and returns the fitted parameters (as model states) with a report of the fit (iterations,
convergence, wall seconds), reporting EM's log-likelihood or the loss per iteration through the
engine's callback; ``evaluate``, ``sample`` and ``write_pictures`` work on the state. The engine
(:class:`genjax.train.loop.Fitter`) owns the workdir as for every run: ``config.json``, the
lock, the verified checkpoint, ``metrics.jsonl``, ``results.json``, pictures and TensorBoard.

Data: any image dataset of :mod:`genjax.data` (``data.preprocess`` must be ``unit``: pixels
flattened and scaled to [0, 1]), or ``toy_mixture_2d`` (the seeded 2-D mixture of
:func:`genjax.classical.toy_mixture_2d`; ``model.toy_examples`` points, the last fifth held out).

Metrics: log-likelihoods are means over examples in nats of the continuous density at the
scale of the data; on image data ``*_bits_per_dim`` = -log-likelihood / (D ln 2) of that same
density: no dequantization and no log 256 term, so it is not comparable with discrete-data
bits/dim of flows or PixelCNNs (the ``protocol`` entry says so). Times are wall seconds
including jit compilation.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from genjax.classical.gmm import (
    COVARIANCE_TYPES,
    GaussianMixture,
    check_data,
    fit_gmm,
    gmm_log_likelihood,
    sample_gmm,
    toy_mixture_2d,
)
from genjax.classical.linear_ae import (
    linear_ae_loss,
    linear_ae_reconstruct,
    principal_angles,
    train_linear_ae,
)
from genjax.classical.ppca import (
    PPCA,
    fit_ppca_closed_form,
    fit_ppca_em,
    ppca_log_likelihood,
    principal_directions,
    sample_ppca,
)
from genjax.data import ArrayDataset
from genjax.eval.likelihood import bits_per_dim
from genjax.eval.plots import plot_gaussian_ellipses, plot_image_panels
from genjax.train.config import AtLeast, Number, OneOf, Rule, need
from genjax.train.method import FitMethod, register
from genjax.train.state import ModelState

TOY = "toy_mixture_2d"

_DENSITY_PROTOCOL = (
    "mean log-likelihood, nats per example, of the continuous density on the "
    "given data scale; bits/dim = -LL / (D ln 2) without dequantization"
)


@dataclasses.dataclass(frozen=True)
class GMMConfig:
    """Gaussian mixture fitted by EM (:func:`genjax.classical.fit_gmm`).

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
    """What the three share: the config checks, the toy dataset, the data as flat points, the
    metrics of both splits (the train split is read again through ``load_split``), samples as
    images and the captioned picture panels."""

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

    @classmethod
    def load_extra_split(cls, config, split: str) -> ArrayDataset:
        """``toy_mixture_2d``: ``model.toy_examples`` points drawn with ``train.seed``; the
        train split is the first four fifths, the eval split the last fifth."""
        n = getattr(config.model, "toy_examples", 2500)
        x, _ = toy_mixture_2d(jax.random.key(config.train.seed), n)
        x = np.asarray(x, np.float32)
        cut = n - n // 5
        if split == config.data.train_split:
            points = x[:cut]
        elif split == config.data.eval_split:
            points = x[cut:]
        else:
            raise ValueError(f"split {split!r} of {TOY}: expected data.train_split "
                             f"({config.data.train_split!r}) or data.eval_split "
                             f"({config.data.eval_split!r})")
        return ArrayDataset(name=TOY, split=split, images=points, labels=None, num_bits=0,
                            num_classes=None)

    @property
    def images(self) -> bool:
        """Whether the data are images (pictures of means and samples, bits/dim)."""
        return self.data.num_bits > 0

    def points(self, dataset) -> jax.Array:
        """A dataset as checked float32 points ``(N, D)``: pixels flattened, scaled to [0, 1]."""
        if dataset.is_continuous:
            x = np.asarray(dataset.images, np.float32)
        else:
            scale = 2**dataset.num_bits - 1
            x = np.asarray(dataset.images, np.float32).reshape(len(dataset.images), -1) / scale
        return check_data(x)

    def train_points(self) -> jax.Array:
        """The train split as :meth:`points` (read again: the metrics and pictures need it)."""
        cfg = self.config
        return self.points(self.load_split(cfg.data.train_split, cfg.data.max_train_examples))

    def evaluate(self, state, dataset, key) -> dict[str, float]:
        """The log-likelihood metrics of :meth:`split_metrics` on the train split, then on
        ``dataset`` (the eval split)."""
        out: dict[str, float] = {}
        for split, xs in (("train", self.train_points()), ("test", self.points(dataset))):
            out.update(self.split_metrics(state, xs, split))
        return out

    def as_samples(self, samples) -> np.ndarray:
        """Flat samples as images in [0, 1] ``(num, H, W, C)``, or as points for vector data."""
        samples = np.asarray(samples)
        if not self.images:
            return samples
        return np.clip(samples.reshape(len(samples), *self.data.shape), 0.0, 1.0)

    def panels(self, images, path: Path, **options) -> Path:
        """Flat images as captioned panels of the data's image shape (``plot_image_panels``)."""
        return plot_image_panels(path, np.asarray(images), image_shape=self.data.shape, **options)

    def density_metrics(self, prefix: str, ll: float) -> dict[str, float]:
        """``<prefix>_log_likelihood_nats`` and, for images, ``<prefix>_bits_per_dim``."""
        out = {f"{prefix}_log_likelihood_nats": ll}
        if self.images:
            out[f"{prefix}_bits_per_dim"] = bits_per_dim(-ll, self.data.num_dims)
        return out


def _state(params) -> ModelState:
    return ModelState(params=params, opt_state=())


def _picture_key(state) -> jax.Array:
    """The key of the pictures' samples: the state's rng, ``split(key(train.seed))[1]``."""
    return jax.random.wrap_key_data(state.rng)


def _full_covariances_2d(params: GaussianMixture) -> np.ndarray:
    cov = np.asarray(params.covariances, np.float64)
    if params.covariance_type == "full":
        return cov
    if params.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(2)


@register
class GMMMethod(_Classical):
    """Gaussian mixture fitted by EM in the log domain (k-means++ init, restarts)."""

    name = "gmm"
    model_config = GMMConfig

    def init(self, key, batch) -> dict[str, ModelState]:
        m = self.config.model
        k, d = m.num_components, int(np.prod(batch["image"].shape[1:]))
        cov = {"full": (k, d, d), "diag": (k, d), "spherical": (k,)}[m.covariance_type]
        return {"gmm": _state(GaussianMixture(jnp.zeros(k), jnp.zeros((k, d)), jnp.zeros(cov),
                                              m.covariance_type))}

    def fit(self, dataset, key, *, log):
        m = self.config.model
        fit_key, _ = jax.random.split(key)
        x = self.points(dataset)
        start = time.perf_counter()
        params, hist = fit_gmm(fit_key, x, m.num_components, covariance_type=m.covariance_type,
                               num_restarts=m.num_restarts, max_iters=m.max_iters, tol=m.tol,
                               reg_covar=m.reg_covar)
        jax.block_until_ready(params)
        seconds = time.perf_counter() - start
        for i, ll in enumerate(hist["log_likelihood"]):  # after i M-steps of the kept restart
            log(i, {"log_likelihood_nats": float(ll)})
        report = {
            "model": "gmm",
            "protocol": _DENSITY_PROTOCOL,
            "num_components": m.num_components,
            "covariance_type": m.covariance_type,
            "iterations": hist["n_iter"],
            "converged": hist["converged"],
            "restart_log_likelihoods": hist["restart_log_likelihoods"],
            "fit_seconds": seconds,
            "device": jax.devices()[0].device_kind,
        }
        return {"gmm": _state(params)}, report

    def split_metrics(self, state, xs, split: str) -> dict[str, float]:
        ll = float(jnp.mean(gmm_log_likelihood(state.models["gmm"].params, xs)))
        return self.density_metrics(split, ll)

    def sample(self, state, key, num: int) -> np.ndarray:
        samples, _ = sample_gmm(key, state.models["gmm"].params, num)
        return self.as_samples(samples)

    def write_pictures(self, state, outdir, *, dataset, key, step) -> list[Path]:
        """``gmm_ellipses.png`` (2-D data: the train points and each component's 1- and
        2-sigma ellipses); ``gmm_means.png`` (means by weight) and ``gmm_samples.png``
        (ancestral samples) for image data."""
        params, outdir = state.models["gmm"].params, Path(outdir)
        written = []
        if params.means.shape[1] == 2:
            written.append(plot_gaussian_ellipses(
                outdir / "gmm_ellipses.png", np.asarray(self.train_points()),
                means=np.asarray(params.means), covariances=_full_covariances_2d(params),
                weights=np.asarray(params.weights),
                title=f"GMM, K={params.weights.shape[0]}, {params.covariance_type} covariances"))
        if self.images:
            weights = np.asarray(params.weights)
            order = np.argsort(-weights)
            written.append(self.panels(np.asarray(params.means)[order], outdir / "gmm_means.png",
                                       titles=[f"pi={w:.3f}" for w in weights[order]],
                                       title="GMM component means (by weight)"))
            samples, _ = sample_gmm(_picture_key(state), params, self.config.model.num_samples)
            written.append(self.panels(samples, outdir / "gmm_samples.png",
                                       title="GMM ancestral samples"))
        return sorted(written)


@register
class PPCAMethod(_Classical):
    """Probabilistic PCA: closed-form maximum likelihood, checked against EM (the state holds
    both; samples and pictures come from the closed form)."""

    name = "ppca"
    model_config = PPCAConfig

    def init(self, key, batch) -> dict[str, ModelState]:
        q, d = self.config.model.latent_dim, int(np.prod(batch["image"].shape[1:]))
        zero = PPCA(jnp.zeros(d), jnp.zeros((d, q)), jnp.zeros(()))
        return {"closed_form": _state(zero), "em": _state(zero)}

    def fit(self, dataset, key, *, log):
        m = self.config.model
        em_key, _ = jax.random.split(key)
        x = self.points(dataset)
        start = time.perf_counter()
        closed = jax.block_until_ready(fit_ppca_closed_form(x, m.latent_dim))
        closed_seconds = time.perf_counter() - start
        start = time.perf_counter()
        em, hist = fit_ppca_em(em_key, x, m.latent_dim, max_iters=m.max_iters, tol=m.tol)
        em_seconds = time.perf_counter() - start
        for i, ll in enumerate(hist["log_likelihood"]):  # before EM update i + 1
            log(i, {"em_log_likelihood_nats": float(ll)})
        angles = principal_angles(closed.weight, em.weight)
        report = {
            "model": "ppca",
            "protocol": _DENSITY_PROTOCOL,
            "latent_dim": m.latent_dim,
            "noise_variance_closed_form": float(closed.noise_variance),
            "noise_variance_em": float(em.noise_variance),
            "em_iterations": hist["n_iter"],
            "em_converged": hist["converged"],
            "max_principal_angle_em_vs_closed_form_rad": float(jnp.max(angles)),
            "closed_form_seconds": closed_seconds,
            "em_seconds": em_seconds,
            "device": jax.devices()[0].device_kind,
        }
        return {"closed_form": _state(closed), "em": _state(em)}, report

    def split_metrics(self, state, xs, split: str) -> dict[str, float]:
        out = {}
        for name in ("closed_form", "em"):
            ll = float(jnp.mean(ppca_log_likelihood(state.models[name].params, xs)))
            out.update(self.density_metrics(f"{split}_{name}", ll))
        return out

    def sample(self, state, key, num: int) -> np.ndarray:
        samples, _ = sample_ppca(key, state.models["closed_form"].params, num)
        return self.as_samples(samples)

    def write_pictures(self, state, outdir, *, dataset, key, step) -> list[Path]:
        """Image data: ``ppca_samples.png`` and ``ppca_principal_directions.png`` (the mean and
        the principal directions, signed colours), from the closed form."""
        if not self.images:
            return []
        closed, outdir = state.models["closed_form"].params, Path(outdir)
        q = self.config.model.latent_dim
        samples, _ = sample_ppca(_picture_key(state), closed, self.config.model.num_samples)
        u = np.asarray(principal_directions(closed)).T
        return sorted([
            self.panels(samples, outdir / "ppca_samples.png",
                        title=f"PPCA samples (q={q}, closed form)"),
            self.panels(np.concatenate([np.asarray(closed.mean)[None], u]),
                        outdir / "ppca_principal_directions.png", signed=True,
                        titles=["mean"] + [f"u{i + 1}" for i in range(len(u))],
                        title="PPCA mean and principal directions"),
        ])


@register
class LinearAEMethod(_Classical):
    """Linear autoencoder trained by full-batch or minibatch Adam on the l2 reconstruction
    loss; its decoder's principal angles to the PCA subspace and its reconstruction error
    against PCA's (mean squared l2 per example) measure Baldi & Hornik's result."""

    name = "linear_ae"
    model_config = LinearAEConfig

    def init(self, key, batch) -> dict[str, ModelState]:
        q, d = self.config.model.latent_dim, int(np.prod(batch["image"].shape[1:]))
        return {"linear_ae": _state({"encoder_weight": jnp.zeros((q, d)),
                                     "encoder_bias": jnp.zeros(q),
                                     "decoder_weight": jnp.zeros((d, q)),
                                     "decoder_bias": jnp.zeros(d)})}

    def fit(self, dataset, key, *, log):
        m = self.config.model
        x = self.points(dataset)
        start = time.perf_counter()
        params, losses = train_linear_ae(key, x, m.latent_dim, steps=m.steps,
                                         learning_rate=m.learning_rate,
                                         batch_size=m.batch_size or None)
        jax.block_until_ready(params)
        seconds = time.perf_counter() - start
        losses = np.asarray(losses)
        every = self.config.train.log_every
        for i in sorted({*range(0, len(losses), every), len(losses) - 1}):  # before step i + 1
            log(i, {"loss": float(losses[i])})
        u = principal_directions(fit_ppca_closed_form(x, m.latent_dim))
        angles = np.asarray(principal_angles(params["decoder_weight"], u))
        report = {
            "model": "linear_ae",
            "latent_dim": m.latent_dim,
            "steps": m.steps,
            "principal_angles_rad": angles.tolist(),
            "max_principal_angle_rad": float(angles.max()),
            "final_training_loss": float(losses[-1]),
            "train_seconds": seconds,
            "device": jax.devices()[0].device_kind,
        }
        return {"linear_ae": _state(params)}, report

    def evaluate(self, state, dataset, key) -> dict[str, float]:
        """Per split (train, then ``dataset``), the autoencoder's reconstruction error and that
        of the projection onto the top ``latent_dim`` principal directions of the train split
        (PCA, the optimum of the training loss)."""
        params, train = state.models["linear_ae"].params, self.train_points()
        pca = fit_ppca_closed_form(train, self.config.model.latent_dim)
        u = principal_directions(pca)
        out: dict[str, float] = {}
        for split, xs in (("train", train), ("test", self.points(dataset))):
            e = xs - pca.mean
            r = e - (e @ u) @ u.T  # residual of the PCA projection
            out[f"{split}_reconstruction_error"] = float(linear_ae_loss(params, xs))
            out[f"{split}_pca_reconstruction_error"] = float(jnp.mean(jnp.sum(r * r, axis=-1)))
        return out

    def sample(self, state, key, num: int) -> np.ndarray:
        raise ValueError(
            "a linear autoencoder is not a generative model: it has no sampler. "
            "Use `genjax train ppca_digits` for its probabilistic counterpart."
        )

    def reconstruct(self, state, x) -> np.ndarray:
        """Reconstructions ``x_hat = B (A x + a) + b`` of flat points ``x`` ``(N, D)``."""
        return np.asarray(linear_ae_reconstruct(state.models["linear_ae"].params, x))

    def write_pictures(self, state, outdir, *, dataset, key, step) -> list[Path]:
        """Image data: ``linear_ae_decoder.png``, the decoder's columns (signed colours)."""
        if not self.images:
            return []
        dec = np.asarray(state.models["linear_ae"].params["decoder_weight"]).T
        return [self.panels(dec, Path(outdir) / "linear_ae_decoder.png", signed=True,
                            title="linear AE decoder columns (span = PCA subspace)")]
