"""Probabilistic PCA (Tipping & Bishop 1999) on the 8x8 digits, closed form and EM.

Command:   genjax train ppca_digits --workdir runs/ppca_digits
Run time:  seconds on 2 CPU cores (measured: see README "Results").
Protocol:  digits pixels scaled to [0, 1] (64 dims), 1497 train / 300 test; q=10; the closed-form
           ML solution and EM must reach the same likelihood; mean log-likelihood in nats per image.
Expected:  EM equals the closed form to ~1e-4 nats; samples and principal directions as PNG.
"""

from genjax.methods.classical import PPCAConfig
from genjax.train.config import Config, DataConfig


def get_config() -> Config:
    return Config(
        method="ppca",
        description=__doc__.splitlines()[0],
        model=PPCAConfig(latent_dim=10),
        data=DataConfig(name="digits", preprocess="unit"),
    )
