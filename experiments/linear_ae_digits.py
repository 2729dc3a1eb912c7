"""Linear autoencoder (Baldi & Hornik 1989) on the 8x8 digits: it learns the PCA subspace.

Command:   genjax train linear_ae_digits --workdir runs/linear_ae_digits
Run time:  seconds on 2 CPU cores (measured: see README "Results").
Protocol:  digits pixels scaled to [0, 1] (64 dims); q=10; full-batch gradient descent (Adam) on the
           mean squared reconstruction error; principal angles between the decoder's column space
           and the top-10 PCA subspace.
Expected:  largest principal angle near 0 rad; reconstruction error equal to PCA's.
"""

from genjax.methods.classical import LinearAEConfig
from genjax.train.config import Config, DataConfig


def get_config() -> Config:
    return Config(
        method="linear_ae",
        description=__doc__.splitlines()[0],
        model=LinearAEConfig(latent_dim=10, steps=5000, learning_rate=1e-2),
        data=DataConfig(name="digits", preprocess="unit"),
    )
