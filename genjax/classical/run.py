"""Experiment runners for the classical models: fit, evaluate, draw, return metrics.

Each ``run_*`` takes data arrays (the launcher loads them), writes its PNGs into ``workdir`` and
returns a flat dict of JSON-serializable metrics. Log-likelihoods are means over examples in
nats of the continuous density at the scale of the given data. When ``image_shape`` is given,
``*_bits_per_dim`` = -log-likelihood / (D ln 2) of that same density: no dequantization and no
log 256 term, so it is not comparable with discrete-data bits/dim of flows or PixelCNNs (the
``protocol`` entry says so). Times are wall seconds including jit compilation. With ``return_params=True`` each runner
returns ``(metrics, fitted_params)`` (PPCA: the closed-form solution).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax.classical.gmm import check_data, fit_gmm, gmm_log_likelihood, sample_gmm
from genjax.classical.linear_ae import linear_ae_loss, principal_angles, train_linear_ae
from genjax.classical.plots import plot_gmm_ellipses, save_image_panels
from genjax.classical.ppca import (
    fit_ppca_closed_form,
    fit_ppca_em,
    ppca_log_likelihood,
    principal_directions,
    sample_ppca,
)
from genjax.eval.likelihood import bits_per_dim

_DENSITY_PROTOCOL = (
    "mean log-likelihood, nats per example, of the continuous density on the "
    "given data scale; bits/dim = -LL / (D ln 2) without dequantization"
)


def _splits(x: Any, x_test: Any) -> dict[str, jax.Array]:
    out = {"train": check_data(x)}
    if x_test is not None:
        out["test"] = check_data(x_test, "x_test")
        if out["test"].shape[1] != out["train"].shape[1]:
            raise ValueError(
                f"x_test must have D={out['train'].shape[1]} columns, got {out['test'].shape[1]}"
            )
    return out


def _check_image_shape(image_shape, d: int):
    if image_shape is not None and int(np.prod(image_shape)) != d:
        raise ValueError(f"image_shape must have {d} pixels, got {tuple(image_shape)}")


def _density_metrics(prefix: str, ll: float, d: int, images: bool) -> dict[str, float]:
    out = {f"{prefix}_log_likelihood_nats": ll}
    if images:
        out[f"{prefix}_bits_per_dim"] = bits_per_dim(-ll, d)
    return out


def run_gmm(
    x: Any,
    *,
    key: jax.Array,
    workdir: str | Path,
    num_components: int,
    covariance_type: str = "full",
    num_restarts: int = 1,
    max_iters: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    x_test: Any = None,
    image_shape: tuple[int, ...] | None = None,
    num_samples: int = 100,
    return_params: bool = False,
) -> dict[str, Any]:
    """Fits a GMM by EM; writes ``gmm_ellipses.png`` (2-D data) or ``gmm_means.png`` and
    ``gmm_samples.png`` (image data); returns the metrics."""
    data = _splits(x, x_test)
    d = data["train"].shape[1]
    _check_image_shape(image_shape, d)
    fit_key, sample_key = jax.random.split(key)
    start = time.perf_counter()
    params, hist = fit_gmm(
        fit_key,
        data["train"],
        num_components,
        covariance_type=covariance_type,
        num_restarts=num_restarts,
        max_iters=max_iters,
        tol=tol,
        reg_covar=reg_covar,
    )
    jax.block_until_ready(params)
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {
        "model": "gmm",
        "protocol": _DENSITY_PROTOCOL,
        "num_components": num_components,
        "covariance_type": covariance_type,
        "iterations": hist["n_iter"],
        "converged": hist["converged"],
        "restart_log_likelihoods": hist["restart_log_likelihoods"],
        "fit_seconds": seconds,
        "device": jax.devices()[0].device_kind,
    }
    for split, xs in data.items():
        ll = float(jnp.mean(gmm_log_likelihood(params, xs)))
        metrics.update(_density_metrics(split, ll, d, image_shape is not None))
    workdir = Path(workdir)
    if d == 2:
        plot_gmm_ellipses(np.asarray(data["train"]), params, workdir / "gmm_ellipses.png")
    if image_shape is not None:
        order = np.argsort(-np.asarray(params.weights))
        save_image_panels(
            np.asarray(params.means)[order],
            workdir / "gmm_means.png",
            image_shape=image_shape,
            titles=[f"pi={w:.3f}" for w in np.asarray(params.weights)[order]],
            title="GMM component means (by weight)",
        )
        samples, _ = sample_gmm(sample_key, params, num_samples)
        save_image_panels(
            samples,
            workdir / "gmm_samples.png",
            image_shape=image_shape,
            title="GMM ancestral samples",
        )
    return (metrics, params) if return_params else metrics


def run_ppca(
    x: Any,
    *,
    key: jax.Array,
    workdir: str | Path,
    latent_dim: int,
    max_iters: int = 1000,
    tol: float = 1e-6,
    x_test: Any = None,
    image_shape: tuple[int, ...] | None = None,
    num_samples: int = 100,
    return_params: bool = False,
) -> dict[str, Any]:
    """Fits PPCA in closed form and by EM; compares their likelihoods and subspaces; writes
    ``ppca_samples.png`` and ``ppca_principal_directions.png`` (image data)."""
    data = _splits(x, x_test)
    d = data["train"].shape[1]
    _check_image_shape(image_shape, d)
    em_key, sample_key = jax.random.split(key)
    start = time.perf_counter()
    closed = jax.block_until_ready(fit_ppca_closed_form(data["train"], latent_dim))
    closed_seconds = time.perf_counter() - start
    start = time.perf_counter()
    em, hist = fit_ppca_em(em_key, data["train"], latent_dim, max_iters=max_iters, tol=tol)
    em_seconds = time.perf_counter() - start
    angles = principal_angles(closed.weight, em.weight)
    metrics: dict[str, Any] = {
        "model": "ppca",
        "protocol": _DENSITY_PROTOCOL,
        "latent_dim": latent_dim,
        "noise_variance_closed_form": float(closed.noise_variance),
        "noise_variance_em": float(em.noise_variance),
        "em_iterations": hist["n_iter"],
        "em_converged": hist["converged"],
        "max_principal_angle_em_vs_closed_form_rad": float(jnp.max(angles)),
        "closed_form_seconds": closed_seconds,
        "em_seconds": em_seconds,
        "device": jax.devices()[0].device_kind,
    }
    for split, xs in data.items():
        for name, p in (("closed_form", closed), ("em", em)):
            ll = float(jnp.mean(ppca_log_likelihood(p, xs)))
            metrics.update(_density_metrics(f"{split}_{name}", ll, d, image_shape is not None))
    if image_shape is not None:
        workdir = Path(workdir)
        samples, _ = sample_ppca(sample_key, closed, num_samples)
        save_image_panels(
            samples,
            workdir / "ppca_samples.png",
            image_shape=image_shape,
            title=f"PPCA samples (q={latent_dim}, closed form)",
        )
        u = np.asarray(principal_directions(closed)).T
        save_image_panels(
            np.concatenate([np.asarray(closed.mean)[None], u]),
            workdir / "ppca_principal_directions.png",
            image_shape=image_shape,
            signed=True,
            titles=["mean"] + [f"u{i + 1}" for i in range(len(u))],
            title="PPCA mean and principal directions",
        )
    return (metrics, closed) if return_params else metrics


def run_linear_ae(
    x: Any,
    *,
    key: jax.Array,
    workdir: str | Path,
    latent_dim: int,
    steps: int = 5000,
    learning_rate: float = 1e-2,
    batch_size: int | None = None,
    x_test: Any = None,
    image_shape: tuple[int, ...] | None = None,
    return_params: bool = False,
) -> dict[str, Any]:
    """Trains a linear autoencoder; measures its decoder's principal angles to the PCA subspace
    and compares its reconstruction error (mean squared l2 per example) with PCA's; writes
    ``linear_ae_decoder.png`` (image data)."""
    data = _splits(x, x_test)
    d = data["train"].shape[1]
    _check_image_shape(image_shape, d)
    start = time.perf_counter()
    params, losses = train_linear_ae(
        key,
        data["train"],
        latent_dim,
        steps=steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
    )
    jax.block_until_ready(params)
    seconds = time.perf_counter() - start
    pca = fit_ppca_closed_form(data["train"], latent_dim)
    u = principal_directions(pca)
    angles = np.asarray(principal_angles(params["decoder_weight"], u))
    metrics: dict[str, Any] = {
        "model": "linear_ae",
        "latent_dim": latent_dim,
        "steps": steps,
        "principal_angles_rad": angles.tolist(),
        "max_principal_angle_rad": float(angles.max()),
        "final_training_loss": float(losses[-1]),
        "train_seconds": seconds,
        "device": jax.devices()[0].device_kind,
    }
    for split, xs in data.items():
        e = xs - pca.mean
        r = e - (e @ u) @ u.T  # residual of the PCA projection
        metrics[f"{split}_reconstruction_error"] = float(linear_ae_loss(params, xs))
        metrics[f"{split}_pca_reconstruction_error"] = float(jnp.mean(jnp.sum(r * r, axis=-1)))
    if image_shape is not None:
        dec = np.asarray(params["decoder_weight"]).T
        save_image_panels(
            dec,
            Path(workdir) / "linear_ae_decoder.png",
            image_shape=image_shape,
            signed=True,
            title="linear AE decoder columns (span = PCA subspace)",
        )
    return (metrics, params) if return_params else metrics
