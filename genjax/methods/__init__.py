"""One place per method: a model, its losses and its sampler as a trainable unit.

Importing this package registers every built-in method with :mod:`genjax.train.method`.
"""

from genjax.methods.autoregressive import AutoregressiveConfig, AutoregressiveMethod
from genjax.methods.classical import (
    GMMConfig,
    GMMMethod,
    LinearAEConfig,
    LinearAEMethod,
    PPCAConfig,
    PPCAMethod,
)
from genjax.methods.classifier import ClassifierConfig, ClassifierMethod
from genjax.methods.cyclegan import CycleGANConfig, CycleGANMethod
from genjax.methods.flow import RealNVPConfig, RealNVPMethod
from genjax.methods.gan import GANMethod
from genjax.methods.gan_config import GANConfig
from genjax.methods.stargan import StarGANConfig, StarGANMethod
from genjax.methods.vae import VAEConfig, VAEMethod

__all__ = [
    "GMMConfig",
    "GMMMethod",
    "LinearAEConfig",
    "LinearAEMethod",
    "PPCAConfig",
    "PPCAMethod",
    "AutoregressiveConfig",
    "AutoregressiveMethod",
    "ClassifierConfig",
    "ClassifierMethod",
    "RealNVPConfig",
    "RealNVPMethod",
    "GANConfig",
    "CycleGANConfig",
    "CycleGANMethod",
    "StarGANConfig",
    "StarGANMethod",
    "GANMethod",
    "VAEConfig",
    "VAEMethod",
]
