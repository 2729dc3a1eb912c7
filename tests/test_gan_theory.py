"""The GAN theory made checkable on a 1-D problem with known densities (Goodfellow et al. 2014).

For a fixed generator with density p_G, the discriminator maximising
V(D, G) = E_{p_data}[log D(x)] + E_{p_G}[log(1 - D(x))] is (Proposition 1)

    D*(x) = p_data(x) / (p_data(x) + p_G(x)),

and at that optimum (Theorem 1) V(D*, G) = -log 4 + 2 JS(p_data || p_G).

Here p_data = N(0, 1) and p_G = N(1.5, 0.6^2), both fixed. A small MLP discriminator (genjax's
own ``MLPDiscriminator``) is trained with genjax's ``minimax_discriminator_loss`` = -V on
4096 points from each distribution. The points are the distributions' quantiles at
(i + 1/2) / n, so the empirical loss is a deterministic quadrature of the population V (error
O(1/n)), and the test does not depend on a random draw. The trained D is then compared with
D* and its population value V(D, G), computed by quadrature on a fine grid, with
-log 4 + 2 JS, JS computed independently by adaptive quadrature (scipy.integrate.quad) of
its definition 1/2 KL(p_data || m) + 1/2 KL(p_G || m), m the mixture.

Tolerances. Because D* maximises V pointwise, V* - V(D) = int (p_data + p_G) KL(Ber(D*) ||
Ber(D)) dx >= 2 int (p_data + p_G) (D - D*)^2 dx (Pinsker), so a value gap below 1e-3 already
forces the density-weighted RMS error of D below sqrt(1e-3 / 4) = 0.016. The pointwise check
uses 0.03 on the region where p_data + p_G > 0.05 (x in about [-2.0, 2.9]): outside it the loss
barely constrains D, and inside it the error is set by the optimiser and the network's fit of
the quadratic log-ratio, measured at about 0.011 here (an untrained D is off by 0.75, and its
value gap is 1.0, so both checks have power).
"""

from __future__ import annotations

import math

import jax
import numpy as np
import optax
import pytest
from scipy import integrate, stats
from scipy.special import ndtri

from genjax.losses import minimax_discriminator_loss
from genjax.models.gan import MLPDiscriminator

MU_DATA, SD_DATA = 0.0, 1.0
MU_G, SD_G = 1.5, 0.6
NUM_POINTS = 4096
NUM_STEPS = 3000
P_DATA = stats.norm(MU_DATA, SD_DATA).pdf
P_G = stats.norm(MU_G, SD_G).pdf
GRID = np.linspace(-10.0, 10.0, 40001)  # both densities < 1e-22 beyond: negligible mass


def _quantile_points(mu: float, sd: float) -> np.ndarray:
    q = (np.arange(NUM_POINTS) + 0.5) / NUM_POINTS
    return (mu + sd * ndtri(q)).astype(np.float32)[:, None]


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def _population_value(logits: np.ndarray) -> float:
    """V(D, G) = int p_data log D + p_G log(1 - D) dx, Riemann sum on GRID (float64)."""
    integrand = P_DATA(GRID) * _log_sigmoid(logits) + P_G(GRID) * _log_sigmoid(-logits)
    return float(np.sum(integrand) * (GRID[1] - GRID[0]))


def _jensen_shannon() -> float:
    """JS(p_data || p_G) in nats from its definition, by adaptive quadrature."""
    m = lambda x: 0.5 * (P_DATA(x) + P_G(x))

    def kl_to_mixture(p):
        f = lambda x: p(x) * math.log(p(x) / m(x)) if p(x) > 0 else 0.0
        return integrate.quad(f, -12.0, 12.0, limit=200, epsabs=1e-12)[0]

    return 0.5 * kl_to_mixture(P_DATA) + 0.5 * kl_to_mixture(P_G)


@pytest.fixture(scope="module")
def discriminators():
    """(untrained, trained) discriminator logits on GRID."""
    real, fake = _quantile_points(MU_DATA, SD_DATA), _quantile_points(MU_G, SD_G)
    model = MLPDiscriminator(hidden=(32, 32))
    params = model.init(jax.random.key(0), real)
    tx = optax.adam(optax.cosine_decay_schedule(1e-2, NUM_STEPS))

    def loss(p):  # = -V(D, G) on the quadrature points
        return minimax_discriminator_loss(model.apply(p, real), model.apply(p, fake))

    @jax.jit
    def train(p):
        def body(carry, _):
            p, opt = carry
            grads = jax.grad(loss)(p)
            updates, opt = tx.update(grads, opt, p)
            return (optax.apply_updates(p, updates), opt), None

        return jax.lax.scan(body, (p, tx.init(p)), None, length=NUM_STEPS)[0][0]

    trained = train(params)
    grid = GRID[:, None].astype(np.float32)
    as_logits = lambda p: np.asarray(model.apply(p, grid), np.float64)
    return as_logits(params), as_logits(trained)


def test_value_at_optimal_discriminator_is_minus_log4_plus_2js():
    """The identity itself, by quadrature of V(D*, G) (no training): checks the quadrature."""
    # logit D* = log p_data - log p_G, from log-densities (D* itself rounds to 0 or 1 in the tails).
    logit_d_star = stats.norm(MU_DATA, SD_DATA).logpdf(GRID) - stats.norm(MU_G, SD_G).logpdf(GRID)
    v_star = _population_value(logit_d_star)
    js = _jensen_shannon()
    assert 0.0 < js < math.log(2)
    assert v_star == pytest.approx(-math.log(4) + 2 * js, abs=1e-7)


def test_trained_discriminator_approaches_optimal(discriminators):
    untrained, trained = discriminators
    p_sum = P_DATA(GRID) + P_G(GRID)
    d_star = P_DATA(GRID) / p_sum
    region = p_sum > 0.05
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-z))
    error = np.abs(sigmoid(trained) - d_star)[region]
    assert error.max() < 0.03
    assert np.abs(sigmoid(untrained) - d_star)[region].max() > 0.3  # the check has power


def test_trained_value_approaches_minus_log4_plus_2js(discriminators):
    untrained, trained = discriminators
    v_star = -math.log(4) + 2 * _jensen_shannon()
    gap = v_star - _population_value(trained)
    # D* maximises V: the gap is >= 0 up to the Riemann sum's error (< 1e-9 on this grid).
    assert -1e-7 < gap < 1e-3
    assert v_star - _population_value(untrained) > 0.1
