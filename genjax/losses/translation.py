"""Image-to-image translation terms: CycleGAN cycle and identity losses, StarGAN domain loss,
and CycleGAN's history pool of generated images.

These are the non-adversarial parts of the translation objectives; the adversarial parts
(least squares in CycleGAN, WGAN-GP in StarGAN) come from :mod:`genjax.losses.adversarial`.
Like the adversarial terms, each loss returns a **scalar mean**, to be minimised, and
leaves the weighting (``lambda``) to the caller. The pool (:func:`history_pool_init`,
:func:`history_pool_query`) is a pure function of arrays and a key, kept in the train state.

Floating inputs of any precision are accepted (bfloat16 outputs of a network run under
``train.compute_dtype=bfloat16``): the losses cast them up to at least float32 and compute and
return their means in float32 (float64 stays float64). The pool stores its images in its own
dtype (float32 by default) and casts lower-precision images up on insertion.

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


# -- the history pool of generated images (CycleGAN's discriminator updates) ------------------


def history_pool_init(
    size: int, image_shape: tuple[int, ...], *, dtype=jnp.float32
) -> dict[str, jax.Array]:
    """An empty pool of ``size`` generated images, as a pytree to keep in the train state.

    Args:
      size: capacity (50 in Zhu et al.); ``0`` gives a pool that returns its input unchanged.
      image_shape: per-image shape, e.g. ``(H, W, C)``.
      dtype: floating dtype of the stored images. Keep the default float32 under
        ``train.compute_dtype=bfloat16``: bfloat16 fakes are cast up on insertion and the
        pool keeps its dtype (a lower-precision pool is promoted to float32 by the first
        :func:`history_pool_query`, which changes the train state's dtype).

    Returns:
      ``{"images": zeros (size, *image_shape), "count": int32 0}`` (``count`` = images stored).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be an int >= 0 (50 in Zhu et al. 2017), got {size!r}")
    shape = tuple(int(d) for d in image_shape)
    if not shape or min(shape) < 1:
        raise ValueError(
            f"image_shape must be a non-empty tuple of sizes >= 1, got {image_shape!r}"
        )
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    return {"images": jnp.zeros((size, *shape), dtype), "count": jnp.zeros((), jnp.int32)}


def history_pool_query(
    pool: dict[str, jax.Array], images: jax.Array, key: jax.Array, *, replace_prob: float = 0.5
) -> tuple[dict[str, jax.Array], jax.Array]:
    """Passes a batch of generated images through the pool; returns the new pool and a batch.

    The images are visited in batch order, exactly as the reference ``ImagePool.query`` does:
    while the pool is not full, an image is stored and returned itself; once it is full, with
    probability ``replace_prob`` a uniformly chosen stored image is returned and replaced by the
    new one, otherwise the new image is returned and the pool is unchanged. (So an image stored
    earlier in the batch can come back later in the same batch.) The discriminator is then
    trained on the returned batch: on a history of generated images, not only the latest ones
    (Shrivastava et al. 2017), which Zhu et al. found to reduce oscillation.

    Random draws (a contract the tests reproduce): ``keys = jax.random.split(key, B)``; for
    image ``i``, ``k_swap, k_index = jax.random.split(keys[i])``; it swaps when
    ``jax.random.uniform(k_swap) < replace_prob``, with the stored image
    ``jax.random.randint(k_index, (), 0, size)``. Pure and jit-able (a ``lax.scan`` over the
    batch); the returned images carry no gradient to whoever made them only if the caller
    stops it (pass ``jax.lax.stop_gradient(fake)``, as the discriminator update does anyway).

    Dtypes: the stored and the returned images have the common dtype of the pool and of
    ``images``, at least float32, ``promote_types(pool dtype, images.dtype, float32)``: with the
    default float32 pool, float32, bfloat16 or float16 images are cast up to float32 on
    insertion and the pool keeps its dtype (the value of a bfloat16 image is exact in float32).

    Args:
      pool: from :func:`history_pool_init` (or a previous call).
      images: generated images, shape ``(B, *image_shape)``, floating point (any float dtype).
      key: a JAX PRNG key.
      replace_prob: probability of returning a stored image once the pool is full
        (keyword-only; 0.5 in the reference code).

    Returns:
      ``(new_pool, returned)`` with ``returned`` of the shape of ``images``; both in the
      common dtype above.

    References:
      Zhu et al. (2017), Section 4 ("Training details"); Shrivastava et al., "Learning from
      Simulated and Unsupervised Images through Adversarial Training", CVPR 2017, Sec. 2.3.
    """
    if not isinstance(pool, dict) or set(pool) != {"images", "count"}:
        raise ValueError("pool must be the dict made by history_pool_init (keys images, count)")
    stored, count = pool["images"], pool["count"]
    images = _checks.float_array("images", images)
    if images.shape[1:] != stored.shape[1:] or images.ndim != stored.ndim:
        raise ValueError(
            f"images must have shape (B, {', '.join(map(str, stored.shape[1:]))}) to match the "
            f"pool, got {images.shape}"
        )
    if not jnp.issubdtype(stored.dtype, jnp.floating):
        raise ValueError(f"pool['images'] must be floating point, got dtype {stored.dtype}")
    p = _checks.finite_scalar("replace_prob", replace_prob, low=0.0, high=1.0)
    dtype = jnp.promote_types(jnp.promote_types(stored.dtype, images.dtype), jnp.float32)
    stored, images = stored.astype(dtype), images.astype(dtype)
    size = stored.shape[0]
    if size == 0 or images.shape[0] == 0:
        return {"images": stored, "count": count}, images

    def visit(carry, item):
        stored, count = carry
        image, k = item
        k_swap, k_index = jax.random.split(k)
        filling = count < size
        swap = jnp.logical_and(~filling, jax.random.uniform(k_swap) < p)
        index = jnp.where(filling, count, jax.random.randint(k_index, (), 0, size))
        returned = jnp.where(swap, stored[index], image)
        written = jnp.where(jnp.logical_or(filling, swap), image, stored[index])
        stored = stored.at[index].set(written)
        return (stored, count + filling.astype(count.dtype)), returned

    keys = jax.random.split(key, images.shape[0])
    (stored, count), returned = jax.lax.scan(visit, (stored, count), (images, keys))
    return {"images": stored, "count": count}, returned
