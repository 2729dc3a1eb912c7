"""The configuration of :mod:`genjax.methods.gan`: :class:`GANConfig` and its checks.

:func:`check_model` checks the model section against itself and the training section,
:func:`check_data` against the dataset; :class:`genjax.methods.gan.GANMethod` calls both before
it builds anything.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from genjax.eval.sample_protocols import SampleMetricsConfig
from genjax.models.gan import ACTIVATIONS, NORMS
from genjax.train.config import (
    AtLeast,
    ConfigValueError,
    Each,
    Flag,
    Number,
    OneOf,
    Rule,
    need,
    need_preprocess,
)

VARIANTS = ("gan", "wgan", "wgan_gp", "bigan")


@dataclasses.dataclass(frozen=True)
class GANConfig(SampleMetricsConfig):
    """Architecture and objective of an adversarial method, and (inherited) the sample-based
    evaluation protocols.

    Attributes (objective and architecture: see :mod:`genjax.methods.gan`):
      variant: ``gan``, ``wgan`` (weight clipping), ``wgan_gp`` or ``bigan``.
      generator_loss: ``gan`` only: ``nonsaturating`` (Goodfellow et al. Sec. 3) or ``minimax``.
      architecture: ``mlp`` (images flattened, or points) or ``dcgan`` (images).
      latent_dim: dimension of the generator's noise z.
      hidden: MLP generator widths (the discriminator's default is their reverse).
      base_features / num_stages: DCGAN feature maps of the first stage and number of
        stride-2 stages (image sides must be divisible by ``2 ** num_stages``).
      generator_norm / discriminator_norm: DCGAN normalisation, ``batch``, ``layer`` or
        ``none`` (WGAN-GP's critic takes ``layer`` or ``none``).
      conditional: feed the class label to G and D (needs a labelled dataset).
      n_critic: discriminator updates per generator update; ``train.batch_size`` is a
        multiple of it (one part of the batch per update).
      clip_value: ``wgan``: critic weights are clipped to ``[-clip_value, clip_value]``.
      gp_weight: ``wgan_gp``: lambda of the gradient penalty; 0 means no penalty.
      discriminator_learning_rate: the discriminator's learning rate; 0 means
        ``optim.learning_rate``.
      discriminator_hidden: MLP discriminator widths; empty: ``hidden`` reversed.
      discriminator_activation: MLP discriminator units, ``"leaky_relu"`` or ``"maxout"``
        (``maxout_pieces`` pieces per unit; Goodfellow et al. 2014's MNIST D is maxout 240 x 5
        pieces, twice).
      maxout_pieces: pieces per maxout unit (``discriminator_activation="maxout"``).
      discriminator_dropout: ``(input, hidden)`` drop rates of the MLP discriminator in
        training (the paper's MNIST D: ``(0.2, 0.5)``); ``(0, 0)``: no dropout. Its masks are
        drawn from the step's ``"dropout"`` key, a fresh mask for every D evaluation (real,
        fake, generator update, penalty).
      classifier_workdir, inception_weights, metric_samples: the sample-based protocols, see
        :class:`~genjax.eval.sample_protocols.SampleMetricsConfig`.
      parzen_validation_split, parzen_sigmas: likewise.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        **SampleMetricsConfig.LIMITS,
        "variant": OneOf(choices=VARIANTS),
        "generator_loss": OneOf(choices=("nonsaturating", "minimax")),
        "architecture": OneOf(choices=("mlp", "dcgan")),
        "latent_dim": AtLeast(),
        "hidden": Each(element=AtLeast(), min_len=1),
        "base_features": AtLeast(),
        "num_stages": AtLeast(),
        "generator_norm": OneOf(choices=NORMS),
        "discriminator_norm": OneOf(choices=NORMS),
        "conditional": Flag(),
        "n_critic": AtLeast(),
        "clip_value": Number(low=0.0, open_low=True),
        "gp_weight": Number(low=0.0, note="0: no gradient penalty"),
        "discriminator_learning_rate": Number(low=0.0, note="0: optim.learning_rate"),
        "discriminator_hidden": Each(element=AtLeast(), note="(): hidden reversed"),
        "discriminator_activation": OneOf(choices=ACTIVATIONS),
        "maxout_pieces": AtLeast(),
        "discriminator_dropout": Each(element=Number(low=0.0, high=1.0, open_high=True),
                                      min_len=2, max_len=2, note="(0, 0): no dropout"),
    }

    variant: str = "gan"
    generator_loss: str = "nonsaturating"  # gan only: nonsaturating | minimax
    architecture: str = "mlp"  # mlp | dcgan
    latent_dim: int = 64
    hidden: tuple[int, ...] = (256, 256)
    base_features: int = 64
    num_stages: int = 2
    generator_norm: str = "batch"
    discriminator_norm: str = "batch"  # WGAN-GP needs "layer" or "none"
    conditional: bool = False
    n_critic: int = 1
    clip_value: float = 0.01
    gp_weight: float = 10.0
    discriminator_learning_rate: float = 0.0  # 0: same as optim.learning_rate
    discriminator_hidden: tuple[int, ...] = ()
    discriminator_activation: str = "leaky_relu"  # leaky_relu | maxout (MLP only)
    maxout_pieces: int = 5
    discriminator_dropout: tuple[float, float] = (0.0, 0.0)


def check_model(config) -> None:
    """Checks that ``config.model`` (a :class:`GANConfig`) is consistent with itself and with
    ``config.train``; raises :class:`~genjax.train.config.ConfigValueError` naming the field."""
    cfg: GANConfig = config.model
    if cfg.variant == "wgan_gp":
        need(cfg.discriminator_norm != "batch", "model.discriminator_norm",
             cfg.discriminator_norm, "'layer' or 'none' with model.variant='wgan_gp': the "
             "penalty is per example, which batch norm mixes (Gulrajani et al. 2017, Sec. 4)")
    need(config.train.batch_size % cfg.n_critic == 0, "train.batch_size",
         config.train.batch_size, f"a multiple of model.n_critic={cfg.n_critic} (one part "
         "of the batch per critic update)")
    custom_d = (cfg.discriminator_hidden or cfg.discriminator_activation != "leaky_relu"
                or any(cfg.discriminator_dropout))
    if custom_d and (cfg.architecture != "mlp" or cfg.variant == "bigan"):
        raise ConfigValueError(
            "model.discriminator_hidden / discriminator_activation / discriminator_dropout "
            "set the MLP discriminator; they are not available with "
            f"model.architecture={cfg.architecture!r}, variant={cfg.variant!r}")
    if cfg.variant == "bigan":
        need(cfg.architecture == "mlp" and not cfg.conditional, "model.variant",
             cfg.variant, "an unconditional MLP (BiGAN's joint discriminator is an MLP): "
             "set model.architecture=mlp and model.conditional=false")
    cfg.check_protocols()


def check_data(config, data) -> None:
    """Checks ``config.model`` and ``config.data`` against the dataset ``data`` (its info: name,
    shape, bits, classes); raises :class:`~genjax.train.config.ConfigValueError` naming the
    field."""
    cfg: GANConfig = config.model
    points = data.num_bits == 0
    cfg.check_protocol_data(data.name, points=points)
    if cfg.conditional:
        need(bool(data.num_classes), "model.conditional", True,
             f"false: dataset {data.name!r} has no labels")
    expected = "none" if points else "symmetric"
    what = "continuous points" if points else "images (G's tanh output is in [-1, 1])"
    need_preprocess(config.data, (expected,), f"(GANs on {what})")
    if points:
        need(cfg.architecture == "mlp", "model.architecture", cfg.architecture,
             f"'mlp': dataset {data.name!r} holds points")
    elif cfg.architecture == "dcgan":
        factor = 2**cfg.num_stages
        need(data.shape[0] % factor == 0 and data.shape[1] % factor == 0,
             "model.num_stages", cfg.num_stages,
             f"stages that halve {data.shape[0]}x{data.shape[1]} images exactly (sides "
             f"divisible by 2 ** num_stages)")
