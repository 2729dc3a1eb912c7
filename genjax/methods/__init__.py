"""One place per method: a model, its losses and its sampler as a trainable unit.

Importing this package registers every built-in method with :mod:`genjax.train.method`.
"""

from genjax.methods.classifier import ClassifierConfig, ClassifierMethod
from genjax.methods.classical import (
    GMMConfig,
    GMMMethod,
    LinearAEConfig,
    LinearAEMethod,
    PPCAConfig,
    PPCAMethod,
)
from genjax.methods.gan import GANConfig, GANMethod
from genjax.methods.vae import VAEConfig, VAEMethod

__all__ = [
    "GMMConfig",
    "GMMMethod",
    "LinearAEConfig",
    "LinearAEMethod",
    "PPCAConfig",
    "PPCAMethod",
    "ClassifierConfig",
    "ClassifierMethod",
    "GANConfig",
    "GANMethod",
    "VAEConfig",
    "VAEMethod",
]
