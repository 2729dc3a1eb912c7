"""Tests of genjax.train.history_pool: the reference ImagePool loop, per group, and its errors."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.train import history_pool


def _reference_pool(stored, count, images, key, size, prob, groups=1, keys=None):
    """A direct transcription of the reference ImagePool.query loop, run on each group's block
    of the batch, driven by the draws the module docstring fixes (NumPy, one image at a time).

    ``stored``: (groups, size, ...), ``count``: list of ``groups`` ints; ``keys``: the rows'
    keys (default ``split(key, B)``)."""
    stored, count, returned = np.array(stored), list(count), []
    keys = jax.random.split(key, len(images)) if keys is None else keys
    per_group = len(images) // groups
    for i, (image, k) in enumerate(zip(images, keys, strict=True)):
        g = i // per_group
        k_swap, k_index = jax.random.split(k)
        if count[g] < size:
            stored[g, count[g]] = image
            count[g] += 1
            returned.append(image)
        elif float(jax.random.uniform(k_swap)) < prob:
            j = int(jax.random.randint(k_index, (), 0, size))
            returned.append(stored[g, j].copy())
            stored[g, j] = image
        else:
            returned.append(image)
    return stored, count, np.stack(returned)


@pytest.mark.parametrize("groups, batch", [(1, 3), (3, 3), (2, 6)])
def test_history_pool_matches_the_reference_loop_across_calls(groups, batch):
    size, pool = 5, history_pool.init(5, (2, 2, 1), groups=groups)
    assert pool["images"].shape == (groups, 5, 2, 2, 1) and pool["count"].shape == (groups,)
    stored, count = np.zeros((groups, 5, 2, 2, 1), np.float32), [0] * groups
    query = jax.jit(history_pool.query)
    rng = np.random.default_rng(4)
    for step in range(12):  # fills every group's pool, then swaps
        images = rng.normal(size=(batch, 2, 2, 1)).astype(np.float32)
        key = jax.random.key(step)
        pool, got = query(pool, jnp.asarray(images), key)
        stored, count, expected = _reference_pool(stored, count, images, key, size, 0.5, groups)
        np.testing.assert_array_equal(np.asarray(got), expected)
        np.testing.assert_array_equal(np.asarray(pool["images"]), stored)
        assert np.asarray(pool["count"]).tolist() == count
    assert count == [size] * groups


def test_groups_are_independent_pools_of_their_blocks():
    """Group g's pool and returned rows are those of a one-group pool fed block g with the same
    per-row keys: a group sees nothing of the others (so the groups can sit on other devices)."""
    groups, per_group, size = 4, 2, 3
    pool = history_pool.init(size, (3,), groups=groups)
    singles = [{"images": np.zeros((1, size, 3), np.float32), "count": [0]}
               for _ in range(groups)]
    rng = np.random.default_rng(0)
    for step in range(5):
        images = jnp.asarray(rng.normal(size=(groups * per_group, 3)), jnp.float32)
        key = jax.random.key(step)
        pool, got = history_pool.query(pool, images, key)
        keys = jax.random.split(key, groups * per_group)
        for g in range(groups):
            rows = slice(g * per_group, (g + 1) * per_group)
            # A one-group pool given the block and, as its keys, the block's row keys.
            stored, count, out = _reference_pool(singles[g]["images"], singles[g]["count"],
                                                 np.asarray(images[rows]), None, size, 0.5,
                                                 keys=keys[rows])
            singles[g] = {"images": stored, "count": count}
            np.testing.assert_array_equal(np.asarray(got[rows]), out)
            np.testing.assert_array_equal(np.asarray(pool["images"][g]), stored[0])


def test_history_pool_fills_first_then_swaps_in_batch_order():
    pool = history_pool.init(1, (1,))
    a, b, c = jnp.array([[1.0]]), jnp.array([[2.0]]), jnp.array([[3.0]])
    pool, out = history_pool.query(pool, a, jax.random.key(0), replace_prob=1.0)
    np.testing.assert_array_equal(out, a)  # filling: the image itself
    pool, out = history_pool.query(pool, jnp.concatenate([b, c]), jax.random.key(1),
                                   replace_prob=1.0)
    # b takes a's place and a comes back; then c takes b's place and b (stored in the same
    # batch) comes back.
    np.testing.assert_array_equal(out, jnp.concatenate([a, b]))
    np.testing.assert_array_equal(pool["images"][0], c)
    pool2, out = history_pool.query(pool, a, jax.random.key(2), replace_prob=0.0)
    np.testing.assert_array_equal(out, a)
    np.testing.assert_array_equal(pool2["images"][0], c)


@pytest.mark.parametrize("groups", [1, 8])
def test_history_pool_conserves_images_and_swaps_half_the_time(groups):
    size, batch = 50, 8
    pool = history_pool.init(size, (1,), groups=groups)
    query = jax.jit(history_pool.query)
    swaps, arriving_full = 0, 0
    for step in range(120):
        images = jnp.arange(step * batch, (step + 1) * batch, dtype=jnp.float32)[:, None] + 1
        new, out = query(pool, images, jax.random.key(step))
        for g in range(groups):
            rows = slice(g * batch // groups, (g + 1) * batch // groups)
            n_before, n_after = int(pool["count"][g]), int(new["count"][g])
            before = np.asarray(pool["images"][g])[:n_before]
            after = np.asarray(new["images"][g])[:n_after]
            block, back = np.asarray(images[rows]), np.asarray(out[rows])
            if n_before == size:
                # Full pool: every image is either kept or returned, exactly once.
                np.testing.assert_array_equal(np.sort(np.concatenate([before, block]).ravel()),
                                              np.sort(np.concatenate([after, back]).ravel()))
                swaps += int(np.sum(back != block))
                arriving_full += len(block)
            elif n_before + len(block) <= size:
                # Filling: the block comes back unchanged and is appended to the pool.
                np.testing.assert_array_equal(back, block)
                np.testing.assert_array_equal(after, np.concatenate([before, block]))
        pool = new
    # Binomial(n, 1/2): within 5 standard deviations.
    n = arriving_full
    assert n > 300 and abs(swaps - n / 2) < 5 * math.sqrt(n / 4), (swaps, n)


def test_history_pool_of_size_zero_returns_its_input():
    pool = history_pool.init(0, (2,), groups=3)
    x = jnp.ones((3, 2))
    new, out = history_pool.query(pool, x, jax.random.key(0))
    np.testing.assert_array_equal(out, x)
    assert new["images"].shape == (3, 0, 2)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: history_pool.init(-1, (2,)), "size must be an int >= 0"),
        (lambda: history_pool.init(5, (2,), groups=0), "groups must be an int >= 1"),
        (lambda: history_pool.init(5, ()), "image_shape must be a non-empty tuple"),
        (lambda: history_pool.query(history_pool.init(2, (2,)), jnp.ones((3, 3)),
                                    jax.random.key(0)), "images must have shape (B, 2)"),
        (lambda: history_pool.query(history_pool.init(2, (2,)), jnp.ones((3, 2), jnp.int32),
                                    jax.random.key(0)), "images must be a floating-point"),
        (lambda: history_pool.query(history_pool.init(2, (2,)), jnp.ones((3, 2)),
                                    jax.random.key(0), replace_prob=1.5), "replace_prob must be"),
        (lambda: history_pool.query(history_pool.init(2, (2,), groups=2), jnp.ones((3, 2)),
                                    jax.random.key(0)), "does not split into the pool's 2 groups"),
        (lambda: history_pool.query({"images": jnp.ones((2, 2))}, jnp.ones((3, 2)),
                                    jax.random.key(0)), "pool must be the dict"),
        (lambda: history_pool.query({"images": jnp.ones((2, 2)), "count": jnp.zeros(())},
                                    jnp.ones((3, 2)), jax.random.key(0)),
         "pool must be the dict made by history_pool.init: images (groups, size, *shape)"),
    ],
)
def test_history_pool_bad_input(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_history_pool_stores_bfloat16_images_in_float32():
    size, pool = 5, history_pool.init(5, (2, 2, 1))
    stored, count = np.zeros((1, 5, 2, 2, 1), np.float32), [0]
    query = jax.jit(history_pool.query)
    rng = np.random.default_rng(6)
    for step in range(4):  # fills the pool in the 2nd call, then swaps
        images = jnp.asarray(rng.normal(size=(3, 2, 2, 1)), jnp.bfloat16)
        key = jax.random.key(step)
        pool, got = query(pool, images, key)
        assert pool["images"].dtype == got.dtype == jnp.float32  # the pool keeps its dtype
        expected_images = np.asarray(images, np.float32)  # cast up exactly on insertion
        stored, count, expected = _reference_pool(stored, count, expected_images, key, size, 0.5)
        np.testing.assert_array_equal(np.asarray(got), expected)
        np.testing.assert_array_equal(np.asarray(pool["images"]), stored)
        assert np.asarray(pool["count"]).tolist() == count
    # Mixed dtypes promote to a common float dtype of at least float32: a bfloat16 pool given
    # float32 images (or bfloat16 ones) comes back float32, as does an empty pool's input.
    small = history_pool.init(2, (2,), dtype=jnp.bfloat16)
    for images in (jnp.ones((3, 2)), jnp.ones((3, 2), jnp.bfloat16)):
        new, out = history_pool.query(small, images, jax.random.key(0))
        assert new["images"].dtype == out.dtype == jnp.float32
    new, out = history_pool.query(history_pool.init(0, (2,)),
                                  jnp.full((3, 2), 0.5, jnp.bfloat16), jax.random.key(0))
    assert out.dtype == jnp.float32 and new["images"].dtype == jnp.float32
    np.testing.assert_array_equal(out, np.full((3, 2), 0.5, np.float32))
