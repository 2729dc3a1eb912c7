"""A history pool of generated images (CycleGAN's discriminator updates), kept in the train state.

The discriminator is trained on a history of generated images, not only the latest ones
(Shrivastava et al. 2017, Sec. 2.3), which Zhu et al. (2017, Sec. 4) found to reduce
oscillation: each generated image goes through a pool of the last ``size`` images. This is a
replay buffer, part of the train state, not a loss: it lives beside the engine.

**Groups.** The pool is ``groups`` independent pools of ``size`` images each; the batch is cut
into ``groups`` contiguous blocks and block ``g`` visits pool ``g`` in order (the reference
``ImagePool.query`` loop, per block). ``groups=1`` is the reference code with a batch: one pool
visited by the whole batch in order, so every image of the batch must be in one place (on
several devices XLA gathers the generated batch). ``groups = B`` (one pool per batch position)
gives each position the pool of the paper's batch-1 training, and since no group spans two
devices the train engine splits the pool over the devices with the batch: nothing is gathered,
and the numbers do not depend on the device count. The engine splits the pool's leaves along
their leading (group) axis when it divides over the devices
(:attr:`genjax.train.method.Method.split_collections`).

Random draws (a contract the tests reproduce): ``keys = jax.random.split(key, B)``; image ``i``
(row ``i`` of the batch, whatever its group) draws ``k_swap, k_index = jax.random.split(keys[i])``;
it swaps when ``jax.random.uniform(k_swap) < replace_prob``, with the stored image
``jax.random.randint(k_index, (), 0, size)`` of its group.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from genjax.losses import _checks
from genjax.train.parallel import along_batch


def init(size: int, image_shape: tuple[int, ...], *, groups: int = 1,
         dtype=jnp.float32) -> dict[str, jax.Array]:
    """An empty pool: ``groups`` pools of ``size`` generated images, a pytree for the train state.

    Args:
      size: capacity of each group's pool (50 in Zhu et al.); ``0`` gives a pool that returns
        its input unchanged.
      image_shape: per-image shape, e.g. ``(H, W, C)``.
      groups: independent pools (module docstring); the batch size given to :func:`query`
        must be a multiple of it.
      dtype: floating dtype of the stored images. Keep the default float32 under
        ``train.compute_dtype=bfloat16``: bfloat16 fakes are cast up on insertion and the
        pool keeps its dtype (a lower-precision pool is promoted to float32 by the first
        :func:`query`, which changes the train state's dtype).

    Returns:
      ``{"images": zeros (groups, size, *image_shape), "count": int32 zeros (groups,)}``
      (``count[g]`` = images stored in group ``g``).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be an int >= 0 (50 in Zhu et al. 2017), got {size!r}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be an int >= 1 (1: one pool for the batch), got {groups!r}")
    shape = tuple(int(d) for d in image_shape)
    if not shape or min(shape) < 1:
        raise ValueError(
            f"image_shape must be a non-empty tuple of sizes >= 1, got {image_shape!r}"
        )
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    return {"images": jnp.zeros((groups, size, *shape), dtype),
            "count": jnp.zeros((groups,), jnp.int32)}


def query(
    pool: dict[str, jax.Array], images: jax.Array, key: jax.Array, *, replace_prob: float = 0.5
) -> tuple[dict[str, jax.Array], jax.Array]:
    """Passes a batch of generated images through the pool; returns the new pool and a batch.

    Within each group the images are visited in batch order, exactly as the reference
    ``ImagePool.query`` does: while the group's pool is not full, an image is stored and
    returned itself; once it is full, with probability ``replace_prob`` a uniformly chosen
    stored image is returned and replaced by the new one, otherwise the new image is returned
    and the pool is unchanged. (So an image stored earlier in the block can come back later in
    the same batch.) Random draws: the module docstring. Pure and jit-able (a ``lax.scan`` over
    each block, mapped over the groups); the returned images carry no gradient to whoever
    made them only if the caller stops it (pass ``jax.lax.stop_gradient(fake)``).

    Dtypes: the stored and the returned images have the common dtype of the pool and of
    ``images``, at least float32, ``promote_types(pool dtype, images.dtype, float32)``: with the
    default float32 pool, float32, bfloat16 or float16 images are cast up to float32 on
    insertion and the pool keeps its dtype (the value of a bfloat16 image is exact in float32).

    Args:
      pool: from :func:`init` (or a previous call).
      images: generated images, shape ``(B, *image_shape)``, floating point, ``B`` a multiple
        of the pool's groups.
      key: a JAX PRNG key.
      replace_prob: probability of returning a stored image once a pool is full
        (keyword-only; 0.5 in the reference code).

    Returns:
      ``(new_pool, returned)`` with ``returned`` of the shape of ``images``; both in the
      common dtype above.

    References:
      Zhu et al. (2017), Section 4 ("Training details"); Shrivastava et al., "Learning from
      Simulated and Unsupervised Images through Adversarial Training", CVPR 2017, Sec. 2.3.
    """
    if not isinstance(pool, dict) or set(pool) != {"images", "count"}:
        raise ValueError("pool must be the dict made by history_pool.init (keys images, count)")
    stored, count = pool["images"], pool["count"]
    if stored.ndim < 3 or count.shape != stored.shape[:1]:
        raise ValueError(
            "pool must be the dict made by history_pool.init: images (groups, size, *shape) and "
            f"count (groups,), got images {stored.shape} and count {count.shape}")
    images = _checks.float_array("images", images)
    if images.shape[1:] != stored.shape[2:] or images.ndim != stored.ndim - 1:
        raise ValueError(
            f"images must have shape (B, {', '.join(map(str, stored.shape[2:]))}) to match the "
            f"pool, got {images.shape}"
        )
    if not jnp.issubdtype(stored.dtype, jnp.floating):
        raise ValueError(f"pool['images'] must be floating point, got dtype {stored.dtype}")
    groups, size = stored.shape[:2]
    if images.shape[0] % groups:
        raise ValueError(
            f"images: a batch of {images.shape[0]} does not split into the pool's {groups} "
            "groups; give a batch size that is a multiple of the groups (history_pool.init)")
    p = _checks.finite_scalar("replace_prob", replace_prob, low=0.0, high=1.0)
    dtype = jnp.promote_types(jnp.promote_types(stored.dtype, images.dtype), jnp.float32)
    stored, images = stored.astype(dtype), images.astype(dtype)
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

    def group(stored, count, block, keys):
        (stored, count), returned = jax.lax.scan(visit, (stored, count), (block, keys))
        return stored, count, returned

    per_group = images.shape[0] // groups
    blocks = along_batch(images.reshape(groups, per_group, *images.shape[1:]))
    keys = jax.random.split(key, images.shape[0]).reshape(groups, per_group)
    stored, count, returned = jax.vmap(group)(along_batch(stored), along_batch(count), blocks,
                                              keys)
    new = {"images": along_batch(stored), "count": along_batch(count)}
    return new, along_batch(returned.reshape(images.shape))
