"""Loss functions of the classic deep generative models: pure functions on arrays.

One module per family; everything public is re-exported here.

* :mod:`genjax.losses.variational` - VAE ELBO terms and the IWAE bound (nats per example).
* :mod:`genjax.losses.adversarial` - GAN, WGAN(-GP) and LSGAN losses (scalar means).
* :mod:`genjax.losses.flow` - change of variables, dequantization, logit transform, bits/dim.
* :mod:`genjax.losses.autoregressive` - softmax, Bernoulli and discretized logistic mixture
  NLLs of discrete pixels (nats per example).
* :mod:`genjax.losses.translation` - CycleGAN cycle / identity losses, StarGAN domain loss
  (CycleGAN's history pool is train state: :mod:`genjax.train.history_pool`).
* :mod:`genjax.losses.classification` - softmax cross-entropy (nats per example), accuracy.

Conventions: real before fake; logits, not probabilities; likelihood terms return
per-example values in nats (the caller reduces); adversarial terms return scalar means;
options are keyword-only; bad shapes or dtypes raise ``ValueError`` naming the argument.
"""

from genjax.losses.adversarial import (
    clip_weights,
    gradient_penalty,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from genjax.losses.autoregressive import (
    bernoulli_nll,
    categorical_nll,
    discretized_logistic_mixture_nll,
)
from genjax.losses.classification import accuracy, correct, softmax_cross_entropy
from genjax.losses.flow import (
    bits_per_dim,
    change_of_variables_log_likelihood,
    dequantize,
    discrete_nll_from_continuous,
    logit_transform,
)
from genjax.losses.translation import (
    cycle_consistency_loss,
    domain_classification_loss,
    identity_loss,
)
from genjax.losses.variational import (
    bernoulli_log_likelihood,
    elbo,
    gaussian_kl,
    gaussian_log_density,
    gaussian_log_likelihood,
    iwae_bound,
    monte_carlo_kl,
    reparameterize,
    standard_normal_log_density,
)

__all__ = [
    # variational
    "bernoulli_log_likelihood",
    "elbo",
    "gaussian_kl",
    "gaussian_log_density",
    "gaussian_log_likelihood",
    "iwae_bound",
    "monte_carlo_kl",
    "reparameterize",
    "standard_normal_log_density",
    # adversarial
    "clip_weights",
    "gradient_penalty",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "minimax_discriminator_loss",
    "minimax_generator_loss",
    "nonsaturating_generator_loss",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    # flow
    "bits_per_dim",
    "change_of_variables_log_likelihood",
    "dequantize",
    "discrete_nll_from_continuous",
    "logit_transform",
    # autoregressive
    "bernoulli_nll",
    "categorical_nll",
    "discretized_logistic_mixture_nll",
    # translation
    "cycle_consistency_loss",
    "domain_classification_loss",
    "identity_loss",
    # classification
    "accuracy",
    "correct",
    "softmax_cross_entropy",
]
