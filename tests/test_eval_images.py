"""Tests of genjax.eval image grids, PNG writing and latent interpolation.

Expected grids are built by hand (pixel positions written out); PNGs are read back with
Pillow; slerp is compared with the formula evaluated in float64 NumPy.
"""

import math
import re

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from genjax.eval import (
    image_grid,
    interpolate_latents,
    save_image_grid,
    save_interpolation_grid,
)


def _constant_images(values, h=2, w=3, c=1):
    return np.stack([np.full((h, w, c), v, np.float32) for v in values])


# -- image_grid ----------------------------------------------------------------------------


def test_image_grid_layout_pixel_positions():
    values = [0.0, 0.2, 0.4, 0.6, 0.8]
    grid = image_grid(_constant_images(values), nrow=3, padding=1, pad_value=1.0)
    # 2 rows of 3 cells of 2x3 pixels, 1 pixel of padding between and around.
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1)
    assert grid.dtype == np.uint8
    expected = np.full((7, 13), 255, np.uint8)
    for i, v in enumerate(values):
        r, c = divmod(i, 3)
        top, left = 1 + r * 3, 1 + c * 4
        expected[top : top + 2, left : left + 3] = math.floor(v * 255 + 0.5)
    np.testing.assert_array_equal(grid[..., 0], expected)
    # The unused last cell (row 1, column 2) keeps the pad colour.
    assert (grid[4:6, 9:12] == 255).all()


def test_image_grid_rounding_uint8_and_rgb():
    x = np.array([0.0, 0.5, 1.0, 1 / 255, 0.499 / 255], np.float32).reshape(1, 1, 5, 1)
    np.testing.assert_array_equal(image_grid(x, padding=0)[0, :, 0], [0, 128, 255, 1, 0])
    rgb = np.zeros((2, 4, 4, 3), np.uint8)
    rgb[1, ..., 2] = 200
    grid = image_grid(rgb, nrow=2, padding=2, pad_value=0.0)
    assert grid.shape == (4 + 4, 2 * 6 + 2, 3)
    np.testing.assert_array_equal(grid[2:6, 8:12], rgb[1])
    assert (grid[:, :2] == 0).all()


def test_image_grid_defaults_and_grey_without_channel_axis():
    x = np.random.default_rng(0).uniform(size=(10, 4, 4)).astype(np.float32)
    grid = image_grid(x)  # nrow = ceil(sqrt(10)) = 4 -> 3 rows
    assert grid.shape == (3 * 5 + 1, 4 * 5 + 1, 1)
    np.testing.assert_array_equal(grid[1:5, 6:10, 0], np.floor(x[1] * 255 + 0.5))
    np.testing.assert_array_equal(image_grid(jnp.asarray(x)), grid)  # JAX input


@pytest.mark.parametrize(
    "images, message",
    [
        (np.full((2, 4, 4, 1), np.nan, np.float32), "NaN"),
        (np.full((2, 4, 4, 1), -0.5, np.float32), r"\[0, 1\]"),
        (np.full((2, 4, 4, 1), 1.5, np.float32), r"\[0, 1\]"),
        (np.zeros((2, 4, 4, 2), np.float32), "C in"),
        (np.zeros((4, 4), np.float32), "shape"),
        (np.zeros((2, 4, 4, 1), np.int64), "dtype int64"),
        (np.zeros((0, 4, 4, 1), np.float32), "at least one"),
    ],
)
def test_image_grid_rejects_bad_images(images, message):
    with pytest.raises(ValueError, match=message):
        image_grid(images)


def test_image_grid_rejects_bad_options():
    x = np.zeros((2, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="nrow"):
        image_grid(x, nrow=0)
    with pytest.raises(ValueError, match="padding"):
        image_grid(x, padding=-1)
    with pytest.raises(ValueError, match="pad_value"):
        image_grid(x, pad_value=2.0)
    with pytest.raises(TypeError, match="images"):
        image_grid("not an array")


# -- save_image_grid -------------------------------------------------------------------------


def test_save_image_grid_png_round_trip_with_upscaling(tmp_path):
    x = np.random.default_rng(1).uniform(size=(16, 8, 8, 1)).astype(np.float32)
    path = save_image_grid(tmp_path / "new" / "dir" / "digits.png", x, nrow=4)
    assert path.exists() and path.parent.name == "dir"
    grid = image_grid(x, nrow=4)  # 37 x 37 pixels
    scale = math.ceil(256 / grid.shape[1])
    with Image.open(path) as picture:
        assert picture.mode == "L"
        back = np.asarray(picture)
    assert back.shape[1] >= 256
    np.testing.assert_array_equal(back, np.repeat(np.repeat(grid[..., 0], scale, 0), scale, 1))
    assert sorted(p.name for p in path.parent.iterdir()) == ["digits.png"]  # no temp file


def test_save_image_grid_rgb_native_scale_and_overwrite(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(3, 5, 7, 3), dtype=np.uint8)
    path = tmp_path / "rgb.png"
    save_image_grid(path, np.zeros_like(x), scale=1)
    save_image_grid(path, x, scale=1, padding=0, nrow=3)  # replaces the first file
    with Image.open(path) as picture:
        assert picture.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(picture), np.concatenate(list(x), axis=1))


def test_save_image_grid_bad_input_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        save_image_grid(tmp_path / "bad.png", np.full((1, 4, 4, 1), np.nan, np.float32))
    with pytest.raises(ValueError, match="scale"):
        save_image_grid(tmp_path / "bad.png", np.zeros((1, 4, 4, 1), np.float32), scale=0)
    assert list(tmp_path.iterdir()) == []


def test_save_interpolation_grid_rows_left_to_right(tmp_path):
    rng = np.random.default_rng(3)
    rows = [rng.uniform(size=(6, 4, 4, 1)).astype(np.float32) for _ in range(3)]
    path = save_interpolation_grid(tmp_path / "interp.png", rows, scale=1)
    with Image.open(path) as picture:
        back = np.asarray(picture)
    np.testing.assert_array_equal(back, image_grid(np.concatenate(rows), nrow=6)[..., 0])
    assert back.shape == (3 * 5 + 1, 6 * 5 + 1)
    # A stacked (R, S, H, W, C) array gives the same picture.
    save_interpolation_grid(tmp_path / "stacked.png", np.stack(rows), scale=1)
    with Image.open(tmp_path / "stacked.png") as picture:
        np.testing.assert_array_equal(np.asarray(picture), back)


def test_save_interpolation_grid_rejects_ragged_rows(tmp_path):
    rows = [np.zeros((6, 4, 4, 1), np.float32), np.zeros((5, 4, 4, 1), np.float32)]
    with pytest.raises(ValueError, match=re.escape("rows_of_images[1]")):
        save_interpolation_grid(tmp_path / "x.png", rows)
    with pytest.raises(ValueError, match="at least one row"):
        save_interpolation_grid(tmp_path / "x.png", [])


# -- interpolate_latents ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolation_endpoints_and_shape(method):
    rng = np.random.default_rng(4)
    z1, z2 = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    path = interpolate_latents(z1.astype(np.float32), z2.astype(np.float32), 7, method=method)
    assert path.shape == (7, 2, 3)
    np.testing.assert_array_equal(path[0], z1.astype(np.float32))
    np.testing.assert_array_equal(path[-1], z2.astype(np.float32))


def test_linear_interpolation_is_evenly_spaced():
    z1, z2 = np.array([0.0, 2.0], np.float32), np.array([4.0, -2.0], np.float32)
    path = np.asarray(interpolate_latents(z1, z2, 5))
    np.testing.assert_allclose(path, [[0, 2], [1, 1], [2, 0], [3, -1], [4, -2]], atol=1e-6)


def test_slerp_matches_formula_and_keeps_norm():
    rng = np.random.default_rng(5)
    z1 = rng.normal(size=16)
    z2 = rng.normal(size=16)
    z2 *= np.linalg.norm(z1) / np.linalg.norm(z2)  # equal norms
    path = np.asarray(
        interpolate_latents(z1.astype(np.float32), z2.astype(np.float32), 9, method="slerp")
    )
    omega = np.arccos(z1 @ z2 / (np.linalg.norm(z1) * np.linalg.norm(z2)))
    t = np.linspace(0, 1, 9)[:, None]
    expected = (np.sin((1 - t) * omega) * z1 + np.sin(t * omega) * z2) / np.sin(omega)
    np.testing.assert_allclose(path, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z1), rtol=1e-5)
    # The linear midpoint of two non-parallel codes is shorter.
    mid = np.asarray(interpolate_latents(z1, z2, 3))[1]
    assert np.linalg.norm(mid) < 0.95 * np.linalg.norm(z1)


def test_slerp_falls_back_to_linear_for_parallel_codes():
    z1 = np.array([1.0, 2.0, 3.0], np.float32)
    for z2 in (2 * z1, np.zeros(3, np.float32)):
        np.testing.assert_allclose(
            interpolate_latents(z1, z2, 4, method="slerp"),
            interpolate_latents(z1, z2, 4),
            rtol=1e-6,
        )
        assert np.isfinite(np.asarray(interpolate_latents(z1, z2, 4, method="slerp"))).all()


def test_interpolation_rejects_bad_arguments():
    z = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="method"):
        interpolate_latents(z, z, 4, method="cubic")
    with pytest.raises(ValueError, match="num_steps"):
        interpolate_latents(z, z, 1)
    with pytest.raises(ValueError, match="z2 must have the shape"):
        interpolate_latents(z, np.zeros(4, np.float32), 4)
    with pytest.raises(ValueError, match="z1 must be finite"):
        interpolate_latents(np.array([np.nan, 0, 0]), z, 4)


def test_picture_path_names_every_picture_by_kind_and_step(tmp_path):
    from genjax.eval.images import picture_path

    assert picture_path(tmp_path, "samples", 300) == tmp_path / "samples_00000300.png"
    assert picture_path(str(tmp_path), "misclassified", 7, suffix=".json").name == (
        "misclassified_00000007.json")
    for bad in ("", "a/b"):
        with pytest.raises(ValueError, match="kind must be a non-empty file-name part"):
            picture_path(tmp_path, bad, 1)
