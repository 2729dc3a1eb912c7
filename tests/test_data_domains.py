"""Synthetic translation domains (genjax.data.domains): the views, their pairing, the names."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.data import available_datasets, load_dataset
from genjax.data.domains import (
    DOMAINS,
    check_domains,
    flatten_views,
    make_domain_views,
    to_domain,
)


def _dot(h=5, w=5, at=(2, 2), value=200):
    x = np.zeros((1, h, w, 1), np.uint8)
    x[0, at[0], at[1], 0] = value
    return x


def test_views_are_the_documented_maps():
    x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 1) * 10
    np.testing.assert_array_equal(to_domain(x, "original"), x)
    np.testing.assert_array_equal(to_domain(x, "inverted"), 255 - x)
    # Counter-clockwise: the top row becomes the left column, read bottom to top.
    rot = to_domain(x, "rot90")
    np.testing.assert_array_equal(rot[0, :, 0, 0], x[0, 0, ::-1, 0])
    np.testing.assert_array_equal(to_domain(to_domain(rot, "rot90"), "rot90")[..., 0],
                                  np.rot90(x, k=-1, axes=(1, 2))[..., 0])
    # Grey dilation with the 3x3 cross: a dot becomes a plus sign; at a corner it is clipped.
    plus = to_domain(_dot(), "thick")[0, :, :, 0]
    expected = np.zeros((5, 5), np.uint8)
    expected[2, 1:4] = expected[1:4, 2] = 200
    np.testing.assert_array_equal(plus, expected)
    corner = to_domain(_dot(at=(0, 0)), "thick")[0, :, :, 0]
    assert corner[0, 0] == corner[0, 1] == corner[1, 0] == 200 and corner.sum() == 600
    assert to_domain(x, "thick").dtype == np.uint8
    # The maximum of each neighbourhood, brute force.
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(2, 6, 6, 1)).astype(np.uint8)
    thick = to_domain(img, "thick")
    for i in range(6):
        for j in range(6):
            nb = [img[:, a, b] for a, b in ((i, j), (i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1))
                  if 0 <= a < 6 and 0 <= b < 6]
            np.testing.assert_array_equal(thick[:, i, j], np.max(nb, axis=0))


def test_jax_views_equal_numpy_views_under_jit():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(3, 8, 8, 1)).astype(np.uint8)
    for d in DOMAINS:
        got = jax.jit(lambda v, d=d: to_domain(v, d))(jnp.asarray(x))
        assert isinstance(got, jax.Array)
        np.testing.assert_array_equal(np.asarray(got), to_domain(x, d))
    unit = x.astype(np.float32) / 255
    np.testing.assert_allclose(to_domain(unit, "inverted", max_value=1.0), 1 - unit)


def test_views_keep_the_pairing_and_flatten_example_major():
    x = np.random.default_rng(2).integers(0, 256, size=(3, 4, 4, 1)).astype(np.uint8)
    labels = np.array([7, 1, 3], np.int32)
    views = make_domain_views(x, labels, ("rot90", "original"))
    assert views.images.shape == (3, 2, 4, 4, 1) and views.domains == ("rot90", "original")
    np.testing.assert_array_equal(views.images[:, 0], to_domain(x, "rot90"))
    np.testing.assert_array_equal(views.images[:, 1], x)
    images, digits, domains = flatten_views(views)
    np.testing.assert_array_equal(digits, [7, 7, 1, 1, 3, 3])
    np.testing.assert_array_equal(domains, [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(images[3], x[1])  # view 1 (original) of base image 1


def test_registered_domain_datasets(data_dir):
    assert {"digits_domains", "digits_domains_by_domain", "mnist_domains"} <= set(
        available_datasets())
    base = load_dataset("digits", "test")
    by_digit = load_dataset("digits_domains", "test")
    by_domain = load_dataset("digits_domains_by_domain", "test")
    k = len(DOMAINS)
    assert len(by_digit) == len(by_domain) == k * len(base)
    assert by_digit.num_classes == 10 and by_domain.num_classes == k
    np.testing.assert_array_equal(by_digit.labels, np.repeat(base.labels, k))
    np.testing.assert_array_equal(by_domain.labels, np.tile(np.arange(k), len(base)))
    np.testing.assert_array_equal(by_digit.images, by_domain.images)
    for j in (0, 5, 4 * 17 + 3):
        np.testing.assert_array_equal(by_digit.images[j],
                                      to_domain(base.images[j // k], DOMAINS[j % k]))
    # A prefix keeps every domain of the base images it holds.
    head = load_dataset("digits_domains_by_domain", "test[:10]")
    assert len(head) == 4 * 10 and set(head.labels.tolist()) == set(range(k))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: to_domain(np.zeros((1, 4, 4, 1)), "sepia"), "domain='sepia'; expected one of"),
        (lambda: check_domains(("original", "blur")), "unknown domains ['blur']"),
        (lambda: check_domains(("original", "original"), minimum=2), "at least 2 distinct"),
        (lambda: check_domains("original"), "must be a sequence of domain names"),
        (lambda: make_domain_views(np.zeros((2, 4, 5, 1)), None), "must be square images"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        call()
