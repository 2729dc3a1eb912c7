"""Image-to-image translation terms: CycleGAN cycle and identity losses, StarGAN domain loss.

These are the non-adversarial parts of the translation objectives; the adversarial parts
(least squares in CycleGAN, WGAN-GP in StarGAN) come from :mod:`genjax.losses.adversarial`.
Like the adversarial terms, each loss returns a **scalar mean**, to be minimised, and
leaves the weighting (``lambda``) to the caller. CycleGAN's history pool of generated images
is train state, not a loss: :mod:`genjax.train.history_pool`.

Floating inputs of any precision are accepted (bfloat16 outputs of a network run under
``train.compute_dtype=bfloat16``): the losses cast them up to at least float32 and compute and
return their means in float32 (float64 stays float64).

References:
  Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
  Adversarial Networks", ICCV 2017, arXiv:1703.10593.
  Choi et al., "StarGAN: Unified Generative Adversarial Networks for Multi-Domain
  Image-to-Image Translation", CVPR 2018, arXiv:1711.09020.
"""

import jax
import jax.numpy as jnp

from genjax.losses import _checks


def _l1(name_a: str, a, name_b: str, b) -> jax.Array:
    a = _checks.float32_array(name_a, a)
    b = _checks.float32_array(name_b, b)
    _checks.min_ndim(name_a, a, 1, "a leading batch axis")
    _checks.same_shape(name_a, a, name_b, b)
    return jnp.mean(jnp.abs(a - b))


def cycle_consistency_loss(real: jax.Array, reconstructed: jax.Array) -> jax.Array:
    """Cycle-consistency loss ``E[|F(G(x)) - x|]``, mean absolute error over all elements.

    Eq. 2 of Zhu et al. writes an L1 norm per image; as in their released code, the norm is
    divided by the number of elements (pixels x channels), so the value does not depend on the
    image size. Compute it for both directions (``x -> G -> F`` and ``y -> F -> G``), add them
    and multiply by ``lambda`` (10 in the paper).

    Args:
      real: images ``x``, shape (B, ...), floating point.
      reconstructed: ``F(G(x))``, same shape, floating point (any float dtype: both are cast
        up to at least float32).

    Returns:
      Scalar mean absolute difference (in the units of the images, e.g. ``[-1, 1]``), at
      least float32.

    References:
      Zhu et al. (2017), Eq. 2 and Eq. 3 (full objective).
    """
    return _l1("real", real, "reconstructed", reconstructed)


def identity_loss(real: jax.Array, mapped: jax.Array) -> jax.Array:
    """Identity-mapping loss ``E[|G(y) - y|]`` for a generator ``G: X -> Y`` fed a real ``y``.

    Mean absolute error over all elements, as :func:`cycle_consistency_loss`. Zhu et al. use
    it (weight ``0.5 lambda``) to preserve colour composition, e.g. for painting -> photo.

    Args:
      real: images ``y`` of the generator's *target* domain, shape (B, ...), floating point.
      mapped: ``G(y)``, same shape, floating point (both cast up to at least float32).

    Returns:
      Scalar mean absolute difference, at least float32.

    References:
      Zhu et al. (2017), Section 5.2 ("photo generation from paintings", identity loss of
      Taigman et al. 2017).
    """
    return _l1("real", real, "mapped", mapped)


def domain_classification_loss(
    logits: jax.Array, labels: jax.Array, *, multi_label: bool
) -> jax.Array:
    """StarGAN domain classification loss ``E[-log D_cls(c | x)]``, mean over the batch.

    Used with the real images and their labels for the discriminator (Eq. 2) and with the
    translated images and the *target* labels for the generator (Eq. 3); the caller weights
    it by ``lambda_cls`` (1 in the paper). Natural log, nats per example, averaged.

    * ``multi_label=True`` (binary attributes, e.g. CelebA hair colour / gender / age): a
      sigmoid cross-entropy per attribute, **summed** over attributes:
      ``-sum_k [c_k log sigmoid(l_k) + (1 - c_k) log sigmoid(-l_k)]``.
    * ``multi_label=False`` (one domain out of K, e.g. RaFD expressions): softmax
      cross-entropy ``-log softmax(l)[c]``.

    Args:
      logits: (B, K) classifier logits, floating point (cast up to at least float32).
      labels: (B, K) targets in ``{0, 1}`` (float, int or bool) if ``multi_label``, else (B,)
        integer domain indices in ``[0, K)`` (values are not checked).
      multi_label: which of the two forms above (keyword-only, required: there is no default).

    Returns:
      Scalar loss in nats (at least float32), minimised by the player it is given to.

    References:
      Choi et al. (2018), Eq. 2 and Eq. 3. The two forms are those of the authors' released
      code for CelebA (attributes) and RaFD (expressions).
    """
    if not isinstance(multi_label, bool):
        raise TypeError(f"multi_label must be a bool, got {multi_label!r}")
    logits = _checks.float32_array("logits", logits)
    _checks.exact_ndim("logits", logits, 2, "(B, K)")
    if multi_label:
        _checks.same_shape("logits", logits, "labels", labels)
        labels = _checks.real_array("labels", labels, logits)
        per_attribute = labels * jax.nn.log_sigmoid(logits) + (1.0 - labels) * jax.nn.log_sigmoid(
            -logits
        )
        return -jnp.mean(jnp.sum(per_attribute, axis=1))
    labels = _checks.integer_array("labels", labels)
    if labels.shape != logits.shape[:1]:
        raise ValueError(
            f"labels must have shape (B,) = {logits.shape[:1]} of domain indices when "
            f"multi_label=False, got {labels.shape}"
        )
    log_probs = jax.nn.log_softmax(logits, axis=1)
    picked = jnp.take_along_axis(log_probs, labels[:, None].astype(jnp.int32), axis=1)[:, 0]
    return -jnp.mean(picked)
