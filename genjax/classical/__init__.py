"""Classical latent-variable models: Gaussian mixtures by EM, probabilistic PCA, linear autoencoder.

Pure jitted JAX functions over small ``flax.struct`` parameter pytrees; log-likelihoods are
per example, in nats. See ``gmm``, ``ppca``, ``linear_ae``. As ``genjax train`` methods
(fit, metrics, samples, pictures through the engine's one workdir protocol) they live in
:mod:`genjax.methods.classical`; their pictures are drawn by :mod:`genjax.eval.plots`.
"""

from genjax.classical.gmm import (
    COVARIANCE_TYPES,
    GaussianMixture,
    component_log_densities,
    em_step,
    fit_gmm,
    gmm_log_likelihood,
    init_from_centres,
    kmeans_plus_plus,
    mixture_moments,
    sample_gmm,
    toy_mixture_2d,
)
from genjax.classical.linear_ae import (
    init_linear_ae,
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
    ppca_posterior_mean,
    principal_directions,
    sample_ppca,
)

__all__ = [
    "COVARIANCE_TYPES",
    "PPCA",
    "GaussianMixture",
    "component_log_densities",
    "em_step",
    "fit_gmm",
    "fit_ppca_closed_form",
    "fit_ppca_em",
    "gmm_log_likelihood",
    "init_from_centres",
    "init_linear_ae",
    "kmeans_plus_plus",
    "linear_ae_loss",
    "linear_ae_reconstruct",
    "mixture_moments",
    "ppca_log_likelihood",
    "ppca_posterior_mean",
    "principal_angles",
    "principal_directions",
    "sample_gmm",
    "sample_ppca",
    "toy_mixture_2d",
    "train_linear_ae",
]
