"""The ring simulator: exact law, physics, reproducibility, bad input."""
import math

import numpy as np
import pytest
from scipy.special import ndtr

import ring_reference
from tfp_dgbn.evaluate.ring_statistics import ring_statistics
from tfp_dgbn.simulate import ring_kernels, rings
from tfp_dgbn.simulate.rings import RingConfig

CONFIG = RingConfig()
NO_BG = RingConfig(bg_floor=0.0, bg_peak=0.0)


def _rows(n, **values):
    """n copies of the reference ring with some features replaced."""
    f = np.tile(CONFIG.reference_features(), (n, 1))
    for name, v in values.items():
        f[:, rings.FEATURE_NAMES.index(name)] = v
    return f


def test_expected_matches_mean_of_400_replicas_chi2():
    # The criterion: 100 feature draws, 400 replicas each. Under the
    # exact law chi^2/ndf has mean 1 and sd ~ sqrt(2.x / ndf) ~ 0.005 for
    # ndf = 102,400, so 1.1 is ~20 sd away while a 2% bias on ring pixels
    # already adds ~0.1; the lower bound catches an overestimated mean.
    rng = np.random.default_rng(11)
    f = rings.sample_features(100, rng, CONFIG)
    expected = rings.expected_images(f, CONFIG)
    total = np.zeros_like(expected)
    for _ in range(400):
        total += rings.noised_images(f, rng, CONFIG)
    chi2 = ((total / 400 - expected) ** 2 / (expected / 400)).sum() / expected.size
    assert 0.95 < chi2 <= 1.1, chi2


def test_expected_conserves_photons_and_converges_in_angle():
    # A ring well inside the image loses no photon: its image sums to nbar
    # (the 6-sigma window leaves < 2e-9 of each line's mass out).
    f = _rows(3, R=[5.0, 7.0, 9.0], w=0.4, theta=0.0)
    img = rings.expected_images(f, NO_BG)
    np.testing.assert_allclose(img.sum(axis=(1, 2)), NO_BG.mean_photons(f[:, 2]), rtol=1e-5)
    # Midpoint rule over alpha: error ~ 1/M^2. Against 4x the angles, every
    # pixel of random rings agrees to 0.01 counts.
    f = rings.sample_features(20, np.random.default_rng(3), CONFIG)
    fine = rings.expected_images(f, RingConfig(angle_samples=4 * CONFIG.angle_samples))
    assert np.abs(rings.expected_images(f, CONFIG) - fine).max() < 0.01


def test_normal_cdf_table_interpolation_is_exact_to_1e_11():
    # Cubic Hermite interpolation of (Phi, h phi) on steps of h = 1/128: the
    # bound h^4 / 384 max|Phi^(4)| is 5.3e-12; checked at 200,001 points
    # between the nodes, and outside the table's range.
    z = np.linspace(-9.0, 9.0, 200_001)
    table = ring_kernels.PHI_TABLE
    got = np.array([ring_kernels._phi.py_func(v, table) for v in z[::10]])
    assert np.abs(got - ndtr(z[::10])).max() < 1e-11


@pytest.mark.parametrize("config", [CONFIG, RingConfig.for_image_size(48, supersample=3, angle_samples=200),
                                    RingConfig(ellipticity=2.0, shift=1.5, theta_range=(1.2, 1.5), width_range=(0.1, 3.0))],
                         ids=["default", "48px-supersample3", "very-elliptic"])
def test_compiled_images_equal_the_numpy_formulation(config):
    # tests/ring_reference.py is the simulator's former NumPy code: every edge
    # crossing of every line merged by a sort, every sub-pixel of every pixel.
    # The compiled line walk must deposit the same mass (the normal CDF table
    # adds < 6e-12 per crossing) and the band pre-selection must skip no sub-pixel.
    f = rings.sample_features(60, np.random.default_rng(11), config)
    np.testing.assert_allclose(rings.expected_images(f, config) - config.background(),
                               ring_reference.ring_expectation(f, config), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(rings.true_rings(f, config), ring_reference.true_rings(f, config))


def test_expected_includes_background_where_no_ring():
    f = _rows(1, x0=6.0, y0=6.0, R=5.0)
    img = rings.expected_images(f, CONFIG)[0]
    # The corner at (-16, -16) is > 15 px from the ring: background only.
    assert img[0, 0] == pytest.approx(CONFIG.background()[0, 0], rel=1e-9)
    assert CONFIG.background()[16, 16] > CONFIG.background()[0, 0]  # rises toward the centre


def test_fitted_radius_and_width_track_R_and_sigma_eff():
    # Centred circles (theta = 0), no background, 300 replicas per ring. The
    # width of binned hits is sqrt(sigma^2 + 1/12) (a pixel adds 1/12 px^2
    # across the ring); the fit recovers it within 6% (its bias with ~10-40
    # hits, measured) and the radius within 0.1 px. Sampling error of the
    # means over 300 replicas is < 1%.
    rng = np.random.default_rng(5)
    for radius in (5.0, 7.5, 10.0):
        for width in (0.4, 1.2):
            f = _rows(300, R=radius, w=width, theta=0.0)
            stats = ring_statistics(rings.noised_images(f, rng, NO_BG))
            sigma = NO_BG.sigma_eff(f[:1])[0]
            assert abs(np.nanmedian(stats["radius"]) - radius) < 0.1, (radius, width)
            assert np.nanmean(stats["width"]) == pytest.approx(math.sqrt(sigma ** 2 + 1 / 12), rel=0.06)


def test_noise_width_grows_with_position_and_angle_as_configured():
    s = CONFIG.image_size / 2
    base = _rows(1, theta=0.0)
    far = _rows(1, x0=6.0, y0=6.0, theta=0.0)
    tilted = _rows(1, theta=0.3)
    w, radius = base[0, 3], base[0, 2]
    sig = lambda f: CONFIG.sigma_eff(f)[0]  # noqa: E731
    assert sig(far) - CONFIG.smear_radius * radius == pytest.approx(w * (1 + 72 / s ** 2))
    assert sig(tilted) - CONFIG.smear_radius * radius == pytest.approx(w * (1 + 2 * math.sin(0.3)))
    # The photons' radial residuals have exactly that spread: sample sd within
    # 4 standard errors (sd / sqrt(2 n)).
    rng = np.random.default_rng(2)
    for f in (base, far, tilted):
        _, photons = rings.noised_images(np.repeat(f, 2000, axis=0), rng, CONFIG, return_photons=True)
        n = photons["eps"].size
        assert abs(photons["eps"].std() - sig(f)) < 4 * sig(f) / math.sqrt(2 * n)
    # And in the binned images, the fitted width grows with |position| and theta.
    widths = []
    for f in (_rows(400, R=5.0, theta=0.0), _rows(400, R=5.0, x0=6.0, theta=0.0), _rows(400, R=5.0, theta=0.35)):
        widths.append(np.nanmean(ring_statistics(rings.noised_images(f, rng, NO_BG))["width"]))
    assert widths[0] < widths[1] and widths[0] < widths[2], widths


def test_photon_count_is_poisson_with_mean_growing_as_R_squared():
    rng = np.random.default_rng(4)
    f = _rows(4000, R=10.0, x0=0.0, y0=0.0, w=0.4, theta=0.0)
    hits = rings.noised_images(f, rng, NO_BG).sum(axis=(1, 2))
    assert NO_BG.mean_photons(10.0) == pytest.approx(40.0)
    # Mean and variance of a Poisson(40): SE of the mean sqrt(40/4000) = 0.1.
    assert abs(hits.mean() - 40.0) < 0.4
    assert hits.var() == pytest.approx(40.0, rel=0.1)  # SE of the variance ~ 40 sqrt(2/4000) = 2.2%


def test_true_ring_is_antialiased_band_of_width_w():
    f = _rows(3, R=[5.0, 7.0, 9.0], w=[0.4, 0.8, 1.2], theta=0.0)
    true = rings.true_rings(f, CONFIG)
    assert true.min() >= 0 and true.max() <= 1
    k2 = CONFIG.supersample ** 2
    np.testing.assert_allclose(true * k2, np.round(true * k2), atol=1e-5)  # sub-pixel fractions
    # A circle's band has area 2 pi R w; counting sub-pixel centres (spacing
    # 1/4 px) estimates it to within 7% (5.4% measured for the thinnest band,
    # 0.4 px = 1.6 sub-pixels across; the wider bands agree to 2%).
    np.testing.assert_allclose(true.sum(axis=(1, 2)), 2 * np.pi * f[:, 2] * f[:, 3], rtol=0.07)
    assert np.any((true > 0) & (true < 1))


def test_generate_is_reproducible_and_independent_of_chunking():
    a = rings.simulate(5000, seed=7, chunk_size=4096)
    b = rings.simulate(5000, seed=7, chunk_size=8192)
    c = rings.simulate(5000, seed=8)
    for key in ("features", "noised"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["noised"], c["noised"])
    assert a["noised"].dtype == np.uint16 and a["features"].dtype == np.float32
    # Features cover the configured ranges.
    lo, hi = np.array(CONFIG.feature_ranges).T
    assert np.all(a["features"] >= lo - 1e-5) and np.all(a["features"] <= hi + 1e-5)


def test_for_image_size_keeps_photon_totals():
    big = RingConfig.for_image_size(64)
    assert big.radius_range == (10.0, 20.0)
    f32 = _rows(1, R=8.0)
    f64 = f32 * np.array([2, 2, 2, 2, 1, 1])
    assert big.mean_photons(f64[:, 2]) == pytest.approx(CONFIG.mean_photons(f32[:, 2]))
    assert big.background().sum() == pytest.approx(CONFIG.background().sum(), rel=0.01)


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": 4}, "image_size must be an integer >= 8, got 4"),
    ({"radius_range": (-1.0, 5.0)}, "radius_range must be > 0"),
    ({"width_range": (0.0, 1.0)}, "width_range must be > 0"),
    ({"theta_range": (0.0, 2.0)}, "theta_range must lie in [0, pi/2)"),
    ({"x0_range": (-20.0, 6.0)}, "x0_range (-20.0, 6.0) leaves the image"),
    ({"radius_range": (5.0, float("nan"))}, "radius_range must be (low, high)"),
    ({"photons_per_r2": -1.0}, "photons_per_r2 must be finite and > 0, got -1.0"),
])
def test_bad_config_is_named(kwargs, message):
    with pytest.raises(ValueError) as err:
        RingConfig(**kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize("column, value, message", [
    ("R", -2.0, "features[1] R=-2.0 must be > 0 (radius)"),
    ("w", 0.0, "features[1] w=0.0 must be > 0 (width)"),
    ("x0", float("nan"), "features[1] x0=nan is not finite"),
    ("theta", 1.7, "features[1] theta=1.7 must lie in [0, pi/2)"),
    ("y0", 30.0, "features[1] y0=30.0 is outside the image"),
])
def test_bad_features_are_named(column, value, message):
    f = _rows(3)
    f[1, rings.FEATURE_NAMES.index(column)] = value
    for fn in (lambda: rings.expected_images(f, CONFIG), lambda: rings.noised_images(f, np.random.default_rng(0), CONFIG),
               lambda: rings.true_rings(f, CONFIG)):
        with pytest.raises(ValueError) as err:
            fn()
        assert message in str(err.value)
    with pytest.raises(ValueError, match=r"shape \[batch, 6\]"):
        rings.expected_images(np.zeros((2, 5)), CONFIG)


def test_ring_statistics_rejects_bad_shapes_and_marks_empty_images():
    with pytest.raises(ValueError, match="shape"):
        ring_statistics(np.zeros((3, 4, 5)))
    stats = ring_statistics(np.zeros((2, 8, 8)))
    assert np.all(np.isnan(stats["radius"])) and np.all(stats["hits"] == 0)


def test_kernels_called_from_several_threads_give_the_same_images():
    # numba's "workqueue" layer aborts the process on concurrent parallel
    # launches; ring_kernels.LOCK serialises them whatever layer is installed.
    import threading

    f = rings.sample_features(64, np.random.default_rng(5), CONFIG)
    want = rings.expected_images(f, CONFIG), rings.true_rings(f, CONFIG)
    got = {}
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, (rings.expected_images(f, CONFIG),
                                                                          rings.true_rings(f, CONFIG))))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [0, 1, 2, 3]
    for images in got.values():
        np.testing.assert_array_equal(images[0], want[0])
        np.testing.assert_array_equal(images[1], want[1])
