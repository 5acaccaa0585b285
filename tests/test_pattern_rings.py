"""The seed-pattern ring law (issue 18 part 1): its facts, its exact law, its file, and the sample judges."""
import math
import subprocess

import numpy as np
import pytest
from scipy import stats

from conftest import PYTHON, REPO
from tfp_dgbn.dataset.ring_files import load_rings
from tfp_dgbn.evaluate import two_sample
from tfp_dgbn.simulate import pattern_rings as pr
from tfp_dgbn.simulate.laws import PatternLaw, law_from_metadata


def test_features_lie_on_the_laws_grids():
    f = pr.sample_features(20_000, np.random.default_rng(0), two_rings=True)
    assert f.shape == (20_000, 12)
    for k in (0, 6):
        centre = f[:, k:k + 2]
        assert np.all(centre == np.round(centre)) and centre.min() == 8 and centre.max() == 23
        for offset, name in enumerate(("R", "s", "theta", "phi"), start=2):
            start, step, count = pr.GRIDS[name]
            index = (f[:, k + offset] - start) / step
            np.testing.assert_allclose(index, np.round(index), atol=1e-9)
            # every grid value is reachable: 20,000 draws over <= 160 values leave none out (P < 1e-50)
            assert np.unique(np.round(index)).size == count and index.min() >= 0 and index.max() <= count - 1


def test_intensity_follows_the_stated_geometry():
    # phi = 0: a circle, g = 1 exactly at distance R from the centre, exp(-1) at R + s.
    f = np.array([[16, 16, 7.0, 1.0, 0.0, 0.0]])
    g = pr.intensity(f)[0]
    assert g[16 + 7, 16] == pytest.approx(1.0) and g[16, 16 + 7] == pytest.approx(1.0)
    assert g[16 + 8, 16] == pytest.approx(math.exp(-1.0))
    # phi = 0.4, theta = 0: along the i axis (a = 0) r' = 1.4 r, so g = 1 at r = 7 / 1.4 = 5;
    # along the j axis (a = pi/2) cos(a - theta) = 0 and g = 1 at r = 7.
    g = pr.intensity(np.array([[16, 16, 7.0, 1.0, 0.0, 0.4]]))[0]
    assert g[16 + 5, 16] == pytest.approx(1.0) and g[16, 16 + 7] == pytest.approx(1.0)
    # theta = pi/2 turns the distortion onto the j axis.
    g = pr.intensity(np.array([[16, 16, 7.0, 1.0, math.pi / 2, 0.4]]))[0]
    assert g[16, 16 + 5] == pytest.approx(1.0) and g[16 + 7, 16] == pytest.approx(1.0)


def test_noise_factor_has_the_discretised_gaussian_law_and_pixels_are_independent():
    rng = np.random.default_rng(1)
    f = pr.sample_features(400, rng)
    images = pr.noised_images(f, rng)
    g = pr.intensity(f)
    on = g > 0.5
    index = np.rint(images[on] / g[on] / 0.01).astype(int)
    observed = np.bincount(index, minlength=200)
    expected = pr.K_PROBS * index.size
    keep = expected >= 5  # the chi-square approximation needs >= 5 expected per cell; pool the tails
    chi2 = (((observed[keep] - expected[keep]) ** 2) / expected[keep]).sum()
    tails = observed[~keep].sum()
    chi2 += (tails - expected[~keep].sum()) ** 2 / expected[~keep].sum()
    dof = keep.sum()  # cells kept + the pooled tail - 1
    assert stats.chi2.sf(chi2, dof) > 1e-4, (chi2, dof)
    # Independence: the noise factors of horizontal neighbours on the ring are uncorrelated
    # (|r| < 4.5 / sqrt(pairs)).
    k = images / np.where(g > 0, g, 1)
    pairs = on[:, :, :-1] & on[:, :, 1:]
    r = np.corrcoef(k[:, :, :-1][pairs], k[:, :, 1:][pairs])[0, 1]
    assert abs(r) < 4.5 / math.sqrt(pairs.sum()), r


def test_exact_law_gives_the_samples_finite_probability_and_others_none():
    for two in (False, True):
        chunk = next(pr.generate(300, [3], two_rings=two))
        lp = pr.image_log_prob(chunk["noised"], chunk["features"], two)
        assert np.all(np.isfinite(lp))
        # The same images under other rows' features are off the law's value grid.
        assert not np.isfinite(pr.image_log_prob(chunk["noised"], chunk["features"][::-1], two)).any()


def test_single_ring_image_log_prob_is_the_sum_of_the_pixel_kernels():
    chunk = next(pr.generate(5, [4]))
    g = pr.intensity(chunk["features"].astype("float64"))
    seen = g >= pr.G_FLOOR
    index = np.rint(np.where(seen, chunk["noised"], 0) / np.where(seen, g, 1) / 0.01).astype(int)
    want = np.where(seen, np.log(pr.K_PROBS)[np.clip(index, 0, 199)], 0.0).sum(axis=(1, 2))
    np.testing.assert_allclose(pr.image_log_prob(chunk["noised"], chunk["features"]), want)


def test_two_rings_second_ring_is_whole_or_absent_and_the_mixture_weighs_both():
    rng = np.random.default_rng(5)
    f = pr.sample_features(4000, rng, two_rings=True)
    images, present = pr.noised_images(f, rng, two_rings=True, return_presence=True)
    # b ~ Bernoulli(1/2): 4000 draws, SE 0.0079; 4 SE
    assert abs(present.mean() - 0.5) < 4 * 0.5 / math.sqrt(4000)
    g1, g2 = pr.ring_intensities(f, True)
    # The second ring's total intensity over its own pixels, relative to its present value: 0 or ~1.
    mask = (g2 > 0.5) & (g1 < 0.01)
    ok = mask.sum(axis=(1, 2)) >= 10
    ratio = (images * mask).sum(axis=(1, 2))[ok] / (g2 * mask).sum(axis=(1, 2))[ok]
    assert np.all((ratio < 0.25) | (ratio > 0.75))
    np.testing.assert_array_equal(ratio > 0.5, present[ok] == 1)
    # Exact law: an image with the second ring present is impossible under b = 0 alone, so its
    # log prob is that of the b = 1 component minus log 2.
    one = np.flatnonzero(present == 1)[0]
    only_present = pr.image_log_prob(images[one:one + 1], np.concatenate([f[one:one + 1, :6],
                                                                          f[one:one + 1, 6:]], 1), True)
    assert np.isfinite(only_present[0])


def test_expected_images_match_the_mean_of_replicas():
    rng = np.random.default_rng(6)
    f = np.repeat(pr.sample_features(3, rng, two_rings=True), 2000, axis=0)
    images = pr.noised_images(f, rng, two_rings=True).reshape(3, 2000, 32, 32)
    mean, se = images.mean(1), images.std(1) / math.sqrt(2000)
    want = pr.expected_images(f[::2000], True)
    z = np.abs(mean - want)[se > 0] / se[se > 0]
    assert z.max() < 5.5, z.max()  # 3 x 1024 pixels: P(max |z| > 5.5) < 1e-4 under the law


def test_pixel_law_moments_are_the_kernels():
    f = pr.sample_features(2, np.random.default_rng(7), two_rings=True)
    values, probs = pr.pixel_law(f, True)
    assert values.shape == (2, 32, 32, 2, 200) and probs.shape == (2, 200)
    mean = (values * probs).sum(-1).mean(-1)
    np.testing.assert_allclose(mean, pr.expected_images(f, True), rtol=1e-12)


def test_bad_pattern_features_are_named():
    with pytest.raises(ValueError, match=r"features\[1\] s=-1.0"):
        pr.check_pattern_features([[16, 16, 7, 1, 0, 0], [16, 16, 7, -1, 0, 0]])
    with pytest.raises(ValueError, match=r"shape \[batch, 12\]"):
        pr.check_pattern_features(np.zeros((2, 6)), two_rings=True)
    with pytest.raises(ValueError, match="two_rings"):
        PatternLaw("yes")


def test_dgbn_simulate_pattern_law_writes_its_file(tmp_path):
    out = tmp_path / "pattern.npz"
    r = subprocess.run([PYTHON, "-m", "tfp_dgbn.cli", "simulate", "--law", "pattern", "--two-rings", "--n", "600",
                        "--out", str(out), "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    test, meta = load_rings(str(out), "test")
    assert meta["law"] == "pattern" and meta["two_rings"] is True and len(meta["feature_names"]) == 12
    assert isinstance(law_from_metadata(meta), PatternLaw)
    assert test["features"].shape == (60, 12) and test["noised"].dtype == np.float32
    assert np.all(np.isfinite(pr.image_log_prob(test["noised"], test["features"], True)))
    g1, g2 = pr.ring_intensities(test["features"], True)
    np.testing.assert_allclose(test["true_ring"], g1 + test["present"][:, None, None] * g2, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(test["expected"], pr.expected_images(test["features"], True), rtol=1e-6, atol=1e-30)
    # The photon-law job refuses it by name, and photon-only options are refused for the pattern law.
    r = subprocess.run([PYTHON, "-m", "tfp_dgbn.cli", "fit", "rings", "--data", str(out), "--epochs", "1",
                        "--logdir", str(tmp_path / "run")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "'pattern' ring law" in r.stderr
    r = subprocess.run([PYTHON, "-m", "tfp_dgbn.cli", "simulate", "--two-rings", "--n", "30", "--out",
                        str(tmp_path / "x.npz")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--law pattern" in r.stderr and not (tmp_path / "x.npz").exists()


def test_w1_and_crps_known_answers():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(5000, 3))
    np.testing.assert_allclose(two_sample.w1_equal_samples(a, a + 0.7), 0.7)
    # CRPS of N(0, 1) at 0 is (sqrt 2 - 1) / sqrt(pi) = 0.2337; the sample estimator's SE at
    # M = 20,000 is below 0.005 (checked by its spread over seeds: 0.0016).
    crps = two_sample.crps_samples(rng.normal(size=(20_000, 1)), np.zeros(1))
    assert crps[0] == pytest.approx((math.sqrt(2) - 1) / math.sqrt(math.pi), abs=0.01)
    # A point mass scores |x - y|.
    assert two_sample.crps_samples(np.full((10, 1), 2.0), np.array([0.5]))[0] == pytest.approx(1.5)


def test_classifier_two_sample_test_sees_a_half_present_ring_and_not_a_resample():
    """Two-ring law: against a resample of the same law the held-out AUC is 0.5 within 4 SE; against
    a generator that draws every pixel from its exact per-pixel law independently (the
    per-pixel-independent model of the issue, right in every marginal) it is far above 0.6."""
    rng = np.random.default_rng(9)
    n = 3000
    f = pr.sample_features(n, rng, two_rings=True)
    real = pr.noised_images(f, rng, two_rings=True)
    again = pr.noised_images(f, rng, two_rings=True)
    g1, g2 = pr.ring_intensities(f, True)
    scale = np.where(rng.random(g1.shape) < 0.5, g1, g1 + g2)  # b drawn per pixel, not per image
    independent = (scale * pr.K_VALUES[rng.choice(200, size=g1.shape, p=pr.K_PROBS)]).astype("float32")
    same = two_sample.classifier_two_sample_test(f, real, again, seed=0)
    assert abs(same["auc"] - 0.5) < 4 * same["auc_se"], same
    other = two_sample.classifier_two_sample_test(f, real, independent, seed=0)
    assert other["auc"] > 0.6 + 4 * other["auc_se"], other
