"""Linear autoencoder trained by gradient descent, and principal angles between subspaces.

    h = A x + a,   x_hat = B h + b,   A: (q, D), B: (D, q)
    loss = (1/N) sum_n ||x_n - x_hat_n||^2                      (squared l2, summed over pixels)

Baldi & Hornik (1989, Fact 4 and Theorem 1) show that every local minimum of this loss is
global and that at the minimum B A is the orthogonal projection onto the span of the top-q
eigenvectors of the data covariance: the decoder's columns span the PCA subspace (in some
basis, not the eigenvectors themselves), and the loss equals the sum of the D - q smallest
eigenvalues of the maximum-likelihood covariance. ``principal_angles`` measures the first
claim, ``linear_ae_loss`` the second.

References:
  Baldi & Hornik (1989), Neural networks and principal component analysis: learning from
    examples without local minima, Neural Networks 2(1).
  Bjorck & Golub (1973), Numerical methods for computing angles between linear subspaces.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax.classical.gmm import check_data
from genjax.classical.ppca import _check_latent_dim


def init_linear_ae(
    key: jax.Array, data_dim: int, latent_dim: int, dtype: Any = jnp.float32
) -> dict[str, jax.Array]:
    """Initial parameters: LeCun-normal weights (variance 1/fan_in), zero biases.

    Args:
      key: PRNG key.
      data_dim: D.
      latent_dim: q, ``1 <= q < D``.
      dtype: floating dtype of the parameters.

    Returns:
      ``{"encoder_weight": (q, D), "encoder_bias": (q,), "decoder_weight": (D, q),
      "decoder_bias": (D,)}``.
    """
    if not isinstance(data_dim, int | np.integer) or data_dim < 2:
        raise ValueError(f"data_dim must be an integer >= 2, got {data_dim!r}")
    q = _check_latent_dim(latent_dim, int(data_dim))
    k_enc, k_dec = jax.random.split(key)
    return {
        "encoder_weight": jax.random.normal(k_enc, (q, data_dim), dtype) / np.sqrt(data_dim),
        "encoder_bias": jnp.zeros((q,), dtype),
        "decoder_weight": jax.random.normal(k_dec, (data_dim, q), dtype) / np.sqrt(q),
        "decoder_bias": jnp.zeros((data_dim,), dtype),
    }


def linear_ae_reconstruct(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """x_hat = B (A x + a) + b for every row of ``x`` ``(N, D)``."""
    h = x @ params["encoder_weight"].T + params["encoder_bias"]
    return h @ params["decoder_weight"].T + params["decoder_bias"]


def linear_ae_loss(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """Mean over examples of the squared l2 reconstruction error ||x - x_hat||^2 (a scalar).

    The error is summed over the D dimensions, so it is directly comparable to PCA's, the sum
    of the discarded eigenvalues of the (divide-by-N) covariance.
    """
    r = x - linear_ae_reconstruct(params, x)
    return jnp.mean(jnp.sum(r * r, axis=-1))


def train_linear_ae(
    key: jax.Array,
    x: Any,
    latent_dim: int,
    *,
    steps: int = 5000,
    learning_rate: float = 1e-2,
    batch_size: int | None = None,
) -> tuple[dict[str, jax.Array], np.ndarray]:
    """Trains a linear autoencoder with Adam on the squared l2 reconstruction loss.

    The whole loop is one jitted ``lax.scan``. The learning rate follows a cosine decay to
    zero over ``steps`` so that the iterates settle at the minimum.

    Args:
      key: PRNG key (initialization and, with ``batch_size``, minibatch sampling).
      x: ``(N, D)`` finite floating data.
      latent_dim: q, ``1 <= q < D``.
      steps: number of Adam updates (>= 1).
      learning_rate: peak learning rate (> 0).
      batch_size: examples per step, drawn with replacement; ``None`` for full batch.

    Returns:
      ``(params, losses)`` with the ``(steps,)`` training loss before each update.
    """
    x = check_data(x)
    n, d = x.shape
    q = _check_latent_dim(latent_dim, d)
    if not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if batch_size is not None and (
        not isinstance(batch_size, int | np.integer) or not 1 <= batch_size <= n
    ):
        raise ValueError(f"batch_size must be None or an integer in [1, N={n}], got {batch_size!r}")
    init_key, data_key = jax.random.split(key)
    params = init_linear_ae(init_key, d, q, x.dtype)
    return _train(params, x, data_key, int(steps), float(learning_rate), batch_size)


@jax.jit(static_argnames=("steps", "learning_rate", "batch_size"))
def _train(params, x, key, steps: int, learning_rate: float, batch_size: int | None):
    opt = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
    grad_fn = jax.value_and_grad(linear_ae_loss)

    def step(carry, k):
        p, s = carry
        batch = x if batch_size is None else x[jax.random.randint(k, (batch_size,), 0, x.shape[0])]
        loss, g = grad_fn(p, batch)
        updates, s = opt.update(g, s, p)
        return (optax.apply_updates(p, updates), s), loss

    (params, _), losses = jax.lax.scan(
        step, (params, opt.init(params)), jax.random.split(key, steps)
    )
    return params, losses


def principal_angles(a: Any, b: Any) -> jax.Array:
    """Principal angles between span(a) and span(b), in radians, ascending.

    Orthonormal bases Q_a, Q_b come from reduced QR (so ``a`` and ``b`` must have full column
    rank). With cos from the singular values of Q_a^T Q_b and sin from those of
    Q_b - Q_a Q_a^T Q_b, an angle is arccos(cos) when cos^2 < 1/2 and arcsin(sin) otherwise,
    which is accurate for small angles too (Bjorck & Golub 1973).

    Args:
      a: ``(D, p)`` matrix.
      b: ``(D, r)`` matrix, same D.

    Returns:
      ``(min(p, r),)`` angles in [0, pi/2], smallest first.
    """
    for name, m in (("a", a), ("b", b)):
        if not hasattr(m, "ndim") or m.ndim != 2 or m.shape[1] > m.shape[0]:
            raise ValueError(
                f"{name} must be a (D, p) matrix with p <= D, got "
                f"{getattr(m, 'shape', type(m).__name__)}"
            )
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have the same number of rows, got {a.shape} and {b.shape}")
    if a.shape[1] < b.shape[1]:
        a, b = b, a
    return _principal_angles(jnp.asarray(a), jnp.asarray(b))


@jax.jit
def _principal_angles(a, b):
    qa, _ = jnp.linalg.qr(a)
    qb, _ = jnp.linalg.qr(b)
    c = qa.T @ qb
    cos = jnp.linalg.svd(c, compute_uv=False)  # descending -> angles ascending
    sin = jnp.linalg.svd(qb - qa @ c, compute_uv=False)[::-1]  # ascending
    small = cos**2 >= 0.5
    return jnp.where(
        small, jnp.arcsin(jnp.clip(sin, 0.0, 1.0)), jnp.arccos(jnp.clip(cos, 0.0, 1.0))
    )
