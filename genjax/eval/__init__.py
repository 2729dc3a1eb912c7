"""Metrics for any model's samples and features, and pictures.

Everything here works on plain arrays (NumPy or JAX) and knows nothing about a model.

Pictures:
  ``image_grid``, ``save_image_grid``, ``save_interpolation_grid`` (PNG via Pillow),
  ``interpolate_latents`` (linear / slerp), and in ``genjax.eval.plots`` the matplotlib
  figures ``plot_curves``, ``plot_density_2d``, ``plot_points_2d``.

Sample-based metrics (units and protocols in each docstring):
  ``frechet_distance`` / ``frechet_distance_from_features`` / ``feature_statistics``
  (Heusel et al. 2017; reported as FD-<network>), ``kernel_inception_distance``
  (Binkowski et al. 2018; KD-<network>), ``precision_recall`` (Kynkaanniemi et al. 2019),
  ``parzen_log_likelihood`` / ``select_parzen_bandwidth`` (nats, Goodfellow et al. 2014),
  ``mode_coverage`` with the toy mixtures ``ring_of_gaussians`` / ``grid_of_gaussians``
  / ``sample_mixture`` (VEEGAN 2017), ``nearest_neighbor_accuracy`` (BiGAN 2017).

Sample protocols (``genjax.eval.sample_metrics`` on arrays; ``genjax.eval.sample_protocols``
runs the configured ones on a sampler and an encoder as functions): ``SampleEvaluation`` with
its config fields ``SampleMetricsConfig`` (mode coverage, classifier FD/KD and label accuracy,
FID/KID, Parzen with a held-out bandwidth, encoder 1-NN). Run pictures
(``genjax.eval.run_pictures``): ``write_loss_curves`` from the logged training metrics,
``write_point_samples`` (2-D samples over the data), ``write_latent_pictures`` (a sample
grid and interpolation strips between pairs of prior latents).

Translation protocols (``genjax.eval.translation_metrics``, on translators as functions):
  ``two_domain_metrics`` (CycleGAN: pixel L1 against the ground-truth view, identity baseline,
  cycle L1, label preservation), ``unpaired_cycle_metrics`` (two datasets, no ground truth),
  ``multi_domain_metrics`` (StarGAN: every ordered pair, domain accuracy, pair averages).

Feature networks (``genjax.eval.features``): the interface ``FeatureNetwork`` (name, weights
SHA-256, ``features(images)``), genjax's own classifier restored from its checkpoint alone
(``load_classifier`` -> ``FeatureClassifier``, FD / KD "-cnn" numbers) and
``feature_distances``, the one assembler of Frechet distance, kernel distance and
precision/recall for every feature network.

Standard FID / KID (``genjax.eval.inception``, with weights the user converts from
pytorch-fid's file): ``load_inception_weights`` -> ``InceptionFeatures``,
``inception_metrics``, ``inception_metrics_from_features``. These names load on first use, so
importing ``genjax.eval`` does not import Flax.
"""

import importlib

from genjax.eval.frechet import (
    feature_statistics,
    frechet_distance,
    frechet_distance_from_features,
)
from genjax.eval.images import image_grid, save_image_grid, save_interpolation_grid
from genjax.eval.interpolation import interpolate_latents
from genjax.eval.kernel_distance import KernelDistance, kernel_inception_distance
from genjax.eval.modes import (
    ModeCoverage,
    grid_of_gaussians,
    high_quality_probability,
    mode_coverage,
    ring_of_gaussians,
    sample_mixture,
)
from genjax.eval.nearest_neighbor import nearest_neighbor_accuracy
from genjax.eval.parzen import (
    parzen_log_densities,
    parzen_log_likelihood,
    select_parzen_bandwidth,
)
from genjax.eval.plots import (
    plot_curves,
    plot_density_2d,
    plot_gaussian_ellipses,
    plot_image_panels,
    plot_points_2d,
)
from genjax.eval.precision_recall import PrecisionRecall, manifold_radii, precision_recall

# Imported on first access (PEP 562): Flax stays out of ``import genjax.eval``, and
# ``python -m genjax.eval.inception`` does not find its module imported by the package first.
_INCEPTION_NAMES = (
    "InceptionFeatures",
    "inception_metrics",
    "inception_metrics_from_features",
    "load_inception_weights",
)


def __getattr__(name: str):
    if name in _INCEPTION_NAMES:
        return getattr(importlib.import_module("genjax.eval.inception"), name)
    raise AttributeError(f"module 'genjax.eval' has no attribute {name!r}")


__all__ = [
    "InceptionFeatures",
    "KernelDistance",
    "ModeCoverage",
    "PrecisionRecall",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_features",
    "grid_of_gaussians",
    "high_quality_probability",
    "image_grid",
    "inception_metrics",
    "inception_metrics_from_features",
    "interpolate_latents",
    "kernel_inception_distance",
    "load_inception_weights",
    "manifold_radii",
    "mode_coverage",
    "nearest_neighbor_accuracy",
    "parzen_log_densities",
    "parzen_log_likelihood",
    "plot_curves",
    "plot_density_2d",
    "plot_gaussian_ellipses",
    "plot_image_panels",
    "plot_points_2d",
    "precision_recall",
    "ring_of_gaussians",
    "sample_mixture",
    "save_image_grid",
    "save_interpolation_grid",
    "select_parzen_bandwidth",
]
