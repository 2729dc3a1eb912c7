"""Tests of genjax.eval.plots: files are written (read back with Pillow), inputs checked."""

import numpy as np
import pytest
from PIL import Image

from genjax.eval import plot_curves, plot_density_2d, plot_points_2d, ring_of_gaussians
from genjax.eval.plots import plot_gaussian_ellipses, plot_image_panels


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


def test_plot_gaussian_ellipses(tmp_path):
    rng = np.random.default_rng(2)
    means = np.array([[-2.0, 0.0], [2.0, 1.0]])
    covariances = np.array([[[1.0, 0.5], [0.5, 1.0]], [[0.3, 0.0], [0.0, 2.0]]])
    points = np.concatenate([rng.multivariate_normal(m, c, 50) for m, c in zip(
        means, covariances, strict=True)])
    path = plot_gaussian_ellipses(tmp_path / "g" / "ellipses.png", points, means=means,
                                  covariances=covariances, weights=[0.3, 0.7], title="GMM")
    _assert_png(path)
    labels = np.repeat([0, 1], 50)
    _assert_png(plot_gaussian_ellipses(tmp_path / "h" / "labelled.png", points, means=means,
                                       covariances=covariances, weights=[0.3, 0.7],
                                       labels=labels))
    with pytest.raises(ValueError, match=r"covariances must have shape \(2, 2, 2\)"):
        plot_gaussian_ellipses(tmp_path / "x.png", points, means=means,
                               covariances=covariances[:1], weights=[0.3, 0.7])
    with pytest.raises(ValueError, match="positive definite"):
        plot_gaussian_ellipses(tmp_path / "x.png", points, means=means,
                               covariances=-covariances, weights=[0.3, 0.7])
    with pytest.raises(ValueError, match=r"points must have shape \(n, 2\)"):
        plot_gaussian_ellipses(tmp_path / "x.png", np.zeros((5, 3)), means=means,
                               covariances=covariances, weights=[0.3, 0.7])
    assert not (tmp_path / "x.png").exists()


def test_plot_image_panels(tmp_path):
    rng = np.random.default_rng(3)
    grey = plot_image_panels(tmp_path / "a" / "grey.png", rng.uniform(size=(12, 64)),
                             image_shape=(8, 8, 1), titles=[f"{i}" for i in range(12)],
                             title="twelve")
    _assert_png(grey)
    with Image.open(grey) as picture:  # 10 panels a row: two rows
        assert picture.size[0] > picture.size[1]
    _assert_png(plot_image_panels(tmp_path / "b" / "signed.png", rng.normal(size=(3, 64)),
                                  image_shape=(8, 8), signed=True))
    _assert_png(plot_image_panels(tmp_path / "c" / "rgb.png", rng.uniform(size=(4, 8 * 8 * 3)),
                                  image_shape=(8, 8, 3), ncols=2))
    with pytest.raises(ValueError, match=r"images must have shape \(n, 9\)"):
        plot_image_panels(tmp_path / "x.png", np.zeros((2, 10)), image_shape=(3, 3))
    with pytest.raises(ValueError, match="titles must have 2 entries"):
        plot_image_panels(tmp_path / "x.png", np.zeros((2, 9)), image_shape=(3, 3), titles=["a"])
    with pytest.raises(ValueError, match="image_shape"):
        plot_image_panels(tmp_path / "x.png", np.zeros((2, 18)), image_shape=(3, 3, 2))
    assert not (tmp_path / "x.png").exists()
