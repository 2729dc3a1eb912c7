"""Gaussian mixture by EM on a seeded 2-D toy mixture (full covariances).

Command:   genjax train gmm_toy2d --workdir runs/gmm_toy2d
Run time:  seconds on 2 CPU cores (measured: see README "Results").
Protocol:  2500 points from genjax.classical.toy_mixture_2d (seed train.seed), last 500 held out;
           K=5 full-covariance components, k-means++ init, 3 restarts, EM to tol 1e-4;
           mean log-likelihood in nats per point of the continuous density.
Expected:  test log-likelihood close to the generating mixture's (see README); pictures/gmm_ellipses.png.
"""

from genjax.methods.classical import GMMConfig
from genjax.train.config import Config, DataConfig


def get_config() -> Config:
    return Config(
        method="gmm",
        description=__doc__.splitlines()[0],
        model=GMMConfig(num_components=5, covariance_type="full", num_restarts=3, tol=1e-4),
        data=DataConfig(name="toy_mixture_2d", preprocess="unit"),
    )
