"""Gaussian mixture by EM on the 8x8 digits (diagonal covariances, 10 components).

Command:   genjax train gmm_digits --workdir runs/gmm_digits
Run time:  seconds on 2 CPU cores (measured: see README "Results").
Protocol:  digits pixels scaled to [0, 1] (64 dims), 1497 train / 300 test; K=10 diagonal
           components, k-means++ init, 3 restarts, reg_covar 1e-3; mean log-likelihood in nats per
           image of the continuous density (no dequantization: not comparable with discrete nats).
Expected:  see README "Results"; pictures/gmm_means.png shows one digit-like mean per component.
"""

from genjax.methods.classical import GMMConfig
from genjax.train.config import Config, DataConfig


def get_config() -> Config:
    return Config(
        method="gmm",
        description=__doc__.splitlines()[0],
        model=GMMConfig(num_components=10, covariance_type="diag", num_restarts=3, reg_covar=1e-3),
        data=DataConfig(name="digits", preprocess="unit"),
    )
