"""Tests of genjax.eval.plots: files are written (read back with Pillow), inputs checked."""

import numpy as np
import pytest
from PIL import Image

from genjax.eval import plot_curves, plot_density_2d, plot_points_2d, ring_of_gaussians


def _assert_png(path):
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        assert picture.size[0] > 100 and picture.size[1] > 100
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file


def test_plot_curves_writes_png_and_pdf(tmp_path):
    steps = np.arange(50)
    series = {
        "d_loss": (steps, np.exp(-steps / 10) + 0.1),
        "g_loss": (steps[::5], np.linspace(2, 1, 10)),
    }
    path = plot_curves(tmp_path / "a" / "loss.png", series, title="GAN", ylabel="nats", logy=True)
    _assert_png(path)
    pdf = plot_curves(tmp_path / "b" / "loss.pdf", series)
    assert pdf.read_bytes().startswith(b"%PDF")


def test_plot_curves_draws_non_finite_values_as_gaps(tmp_path):
    values = np.array([1.0, np.nan, 3.0, np.inf])
    _assert_png(plot_curves(tmp_path / "c" / "nan.png", {"x": (np.arange(4), values)}))


def test_plot_curves_rejects_bad_series(tmp_path):
    with pytest.raises(ValueError, match="series must be a non-empty"):
        plot_curves(tmp_path / "x.png", {})
    with pytest.raises(ValueError, match=r"series\['a'\] values"):
        plot_curves(tmp_path / "x.png", {"a": (np.arange(3), np.ones(4))})
    with pytest.raises(ValueError, match="logy"):
        plot_curves(
            tmp_path / "x.png", {"a": (np.arange(3), np.array([1.0, -1.0, 2.0]))}, logy=True
        )
    assert list(tmp_path.iterdir()) == []


def test_plot_density_2d_evaluates_the_grid(tmp_path):
    seen = []

    def log_density(points):
        seen.append(points)
        return -0.5 * (points**2).sum(axis=1) - np.log(2 * np.pi)

    samples = np.random.default_rng(0).normal(size=(100, 2))
    path = plot_density_2d(
        tmp_path / "d" / "density.png",
        log_density,
        xlim=(-3, 3),
        ylim=(-2, 2),
        samples=samples,
        resolution=30,
    )
    _assert_png(path)
    (points,) = seen
    assert points.shape == (900, 2)
    np.testing.assert_allclose([points[:, 0].min(), points[:, 0].max()], [-3, 3], rtol=1e-6)
    np.testing.assert_allclose([points[:, 1].min(), points[:, 1].max()], [-2, 2], rtol=1e-6)


def test_plot_density_2d_rejects_bad_output(tmp_path):
    with pytest.raises(ValueError, match="must return shape"):
        plot_density_2d(tmp_path / "x.png", lambda p: p, xlim=(-1, 1), ylim=(-1, 1))
    with pytest.raises(ValueError, match="NaN"):
        plot_density_2d(
            tmp_path / "x.png", lambda p: np.full(len(p), np.nan), xlim=(-1, 1), ylim=(-1, 1)
        )
    with pytest.raises(ValueError, match="xlim"):
        plot_density_2d(tmp_path / "x.png", lambda p: p[:, 0], xlim=(1, -1), ylim=(-1, 1))


def test_plot_points_2d_overlays_sets_and_centres(tmp_path):
    centers, _ = ring_of_gaussians()
    rng = np.random.default_rng(1)
    path = plot_points_2d(
        tmp_path / "e" / "points.png",
        {"data": centers + 0.02 * rng.normal(size=(8, 2)), "model": rng.normal(size=(50, 2))},
        centers=centers,
        xlim=(-3, 3),
        ylim=(-3, 3),
    )
    _assert_png(path)
    _assert_png(plot_points_2d(tmp_path / "f" / "one.png", rng.normal(size=(20, 2))))
    with pytest.raises(ValueError, match=r"points must have shape \(n, 2\)"):
        plot_points_2d(tmp_path / "x.png", rng.normal(size=(20, 3)))
