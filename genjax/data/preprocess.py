"""Turning stored integer pixels into model inputs: one pure, jit-able function.

Every protocol that changes the reported likelihood is a named mode here, so that a config
says which one it uses (see :func:`preprocess`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

PREPROCESS_MODES = (
    "unit",
    "symmetric",
    "binarize_dynamic",
    "binary",
    "dequantize",
    "integer",
    "none",
)
_STOCHASTIC_MODES = ("binarize_dynamic", "dequantize")


def preprocess(key, images, *, mode: str, num_bits: int) -> jax.Array:
    """Maps integer pixels ``x in {0, ..., 2**num_bits - 1}`` to a model's input.

    Modes (``M = 2**num_bits - 1``, the largest pixel value):

    * ``"unit"``: ``x / M`` in ``[0, 1]`` (0 and 1 exactly reachable), float32.
    * ``"symmetric"``: ``2 x / M - 1`` in ``[-1, 1]`` (GANs with a tanh generator), float32.
    * ``"binarize_dynamic"``: a fresh ``Bernoulli(x / M)`` draw per pixel and per call
      (dynamic binarization, Burda et al. 2016, Sec. 5), float32 in ``{0, 1}``. Needs
      ``num_bits > 1``: statically binarized data (``num_bits == 1``) takes ``"binary"``.
    * ``"binary"``: data already in ``{0, 1}`` (``num_bits == 1``, e.g. the Larochelle &
      Murray static binarization), cast to float32.
    * ``"dequantize"``: ``(x + u) / 2**num_bits`` with ``u ~ U[0, 1)`` per pixel (uniform
      dequantization, Dinh et al. 2017, Sec. 4.1; Theis et al. 2016, Sec. 3.1), float32 in
      ``[0, 1)``; pixel ``k`` lands in its bin ``[k, k + 1) / 2**num_bits``. A density ``p`` on
      ``[0, 1)^D`` then bounds the discrete log-likelihood: ``log P(x) >= E_u[log p(y)] -
      D log 2**num_bits`` nats, i.e. bits/dim = ``(-log p(y) / D + num_bits log 2) / log 2``.
    * ``"integer"``: the integer values themselves as int32 (targets of a categorical
      PixelCNN likelihood over ``2**num_bits`` values).
    * ``"none"``: continuous data (``num_bits == 0``, e.g. the 2-D toy points) passed through
      as float32; the only mode for such data.

    The function is pure: ``mode`` and ``num_bits`` are static (Python values), and the same
    ``key`` gives the same result. Under ``jax.jit`` pass them as static arguments or close
    over them.

    Args:
      key: a ``jax.random`` key (typed or raw ``uint32[2]``); used only by the stochastic modes
        ``"binarize_dynamic"`` and ``"dequantize"``, may be ``None`` for the others.
      images: integer array of any shape, typically ``(batch, height, width, channels)``,
        with values in ``{0, ..., 2**num_bits - 1}`` (values are not checked under ``jit``).
      mode: one of ``PREPROCESS_MODES`` (see above).
      num_bits: bits per stored pixel value: 8 for 8-bit data, 1 for binary data, 0 for
        continuous float32 data (mode "none").

    Returns:
      float32 array of the same shape (int32 for ``"integer"``).

    Raises:
      ValueError: unknown ``mode``, a ``num_bits`` that is not an integer in ``[1, 16]``, a mode
        that does not fit the data's ``num_bits``, non-integer ``images`` or a missing ``key``.

    References:
      Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016,
      Sec. 5 (dynamic binarization). L. Dinh, J. Sohl-Dickstein, S. Bengio, "Density estimation
      using Real NVP", ICLR 2017, Sec. 4.1 (dequantization). L. Theis, A. van den Oord,
      M. Bethge, "A note on the evaluation of generative models", ICLR 2016, Sec. 3.1 (the
      dequantized density bounds the discrete likelihood).
    """
    if not isinstance(mode, str) or mode not in PREPROCESS_MODES:
        raise ValueError(f"mode must be one of {list(PREPROCESS_MODES)}; got {mode!r}")
    if isinstance(num_bits, bool) or not isinstance(num_bits, int | np.integer):
        raise ValueError(f"num_bits must be a Python int in [0, 16]; got {num_bits!r}")
    num_bits = int(num_bits)
    if not 0 <= num_bits <= 16:
        raise ValueError(f"num_bits must be in [0, 16] (0: continuous data); got {num_bits}")
    if (mode == "none") != (num_bits == 0):
        raise ValueError(
            "continuous data (num_bits=0, e.g. the 2-D toy datasets) takes mode='none', and "
            f"mode='none' is only for continuous data; got mode={mode!r}, num_bits={num_bits}"
        )
    if mode == "none":
        return jnp.asarray(images, dtype=jnp.float32)
    images = jnp.asarray(images)
    if images.dtype == jnp.bool_ or not jnp.issubdtype(images.dtype, jnp.integer):
        raise ValueError(
            f"images must hold integer pixel values (e.g. uint8); got dtype {images.dtype}"
        )
    if mode == "binary" and num_bits != 1:
        raise ValueError(
            f"mode='binary' is for data already in {{0, 1}} (num_bits=1); got num_bits="
            f"{num_bits}: use 'binarize_dynamic' (Bernoulli draws) or 'unit' for {num_bits}-bit data"
        )
    if mode == "binarize_dynamic" and num_bits == 1:
        raise ValueError(
            "mode='binarize_dynamic' draws Bernoulli(x / max) from grey levels, but this data is "
            "already binary (num_bits=1, a static binarization): use mode='binary'"
        )
    if mode in _STOCHASTIC_MODES and key is None:
        raise ValueError(f"mode={mode!r} draws random numbers and needs a key; got key=None")

    max_value = float(2**num_bits - 1)
    if mode == "integer":
        return images.astype(jnp.int32)
    x = images.astype(jnp.float32)
    if mode == "unit":
        return x / max_value
    if mode == "symmetric":
        return x * (2.0 / max_value) - 1.0
    if mode == "binary":
        return x
    u = jax.random.uniform(key, x.shape, dtype=jnp.float32)  # U[0, 1)
    if mode == "binarize_dynamic":
        # P(u < p) = p for u ~ U[0, 1): x = 0 never fires, x = max always fires.
        return (u < x / max_value).astype(jnp.float32)
    # mode == "dequantize". In float32, x + u can round up to x + 1 (e.g. 100 + (1 - 2**-23)
    # needs 31 significant bits); clamp to the largest float of the bin so y stays in it.
    scale = float(2**num_bits)
    y = (x + u) / scale
    return jnp.minimum(y, jnp.nextafter((x + 1.0) / scale, jnp.float32(0.0)))
