"""Property-based tests (hypothesis): simulator config and features, KL schedules, loader inputs.

Each property holds for every input hypothesis draws: valid input gives
finite, well-formed output; invalid input gives a ValueError, never another
exception or a silent wrong result.
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import ring_reference
from tfp_dgbn.fit.schedules import from_spec
from tfp_dgbn.simulate import rings
from tfp_dgbn.validate import check_features

FAST = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
anything = st.one_of(finite, st.just(float("nan")), st.just(float("inf")), st.just(-float("inf")))


@st.composite
def ring_configs(draw):
    size = draw(st.integers(8, 40))
    half = size / 2

    def rng_pair(lo, hi):
        a, b = sorted(draw(st.floats(lo, hi)) for _ in range(2))
        return (a, b)

    return rings.RingConfig(
        image_size=size, x0_range=rng_pair(-half, half), y0_range=rng_pair(-half, half),
        radius_range=rng_pair(0.5, size), width_range=rng_pair(0.1, 3.0), theta_range=rng_pair(0.0, 1.5),
        phi_range=rng_pair(-7.0, 7.0), photons_per_r2=draw(st.floats(0.01, 2.0)),
        ellipticity=draw(st.floats(0.0, 2.0)), shift=draw(st.floats(0.0, 2.0)),
        smear_position=draw(st.floats(0.0, 3.0)), smear_theta=draw(st.floats(0.0, 3.0)),
        smear_radius=draw(st.floats(0.0, 0.3)), bg_floor=draw(st.floats(0.0, 0.1)),
        bg_peak=draw(st.floats(0.0, 0.1)), bg_scale=draw(st.floats(0.5, 20.0)), angle_samples=64)


@FAST
@given(ring_configs(), st.integers(0, 2 ** 32 - 1))
def test_any_valid_config_simulates_finite_images_within_the_photon_budget(config, seed):
    rng = np.random.default_rng(seed)
    f = rings.sample_features(3, rng, config)
    expected = rings.expected_images(f, config)
    noised = rings.noised_images(f, rng, config)
    bg = config.background()
    assert np.all(np.isfinite(expected)) and np.all(expected >= bg - 1e-12)
    # The ring part never exceeds the photons the ring emits (some may leave the image).
    ring_mass = (expected - bg).sum(axis=(1, 2))
    assert np.all(ring_mass <= config.mean_photons(f[:, 2]) * (1 + 1e-5) + 1e-9)
    assert noised.shape == (3, config.image_size, config.image_size) and noised.dtype == np.uint16
    true = rings.true_rings(f, config)
    assert np.all((true >= 0) & (true <= 1))
    # The compiled kernels against the NumPy formulation (tests/ring_reference.py):
    # the band pre-selection skips no sub-pixel, and the line walk deposits the
    # same mass (Phi by table interpolation: < 6e-12 a crossing).
    np.testing.assert_array_equal(true, ring_reference.true_rings(f, config))
    np.testing.assert_allclose(expected - bg, ring_reference.ring_expectation(f, config), rtol=0, atol=1e-9)


@FAST
@given(st.dictionaries(st.sampled_from(["image_size", "radius_range", "width_range", "theta_range", "x0_range",
                                        "photons_per_r2", "bg_scale", "ellipticity", "angle_samples"]),
                       st.one_of(anything, st.integers(-5, 100), st.tuples(anything, anything)), max_size=3))
def test_any_config_is_valid_or_a_named_value_error(overrides):
    try:
        config = rings.RingConfig(**overrides)
    except ValueError as e:
        assert any(name in str(e) for name in overrides), str(e)
        return
    assert config.image_size >= 8 and config.radius_range[0] > 0 and config.width_range[0] > 0


@FAST
@given(st.lists(st.lists(anything, min_size=6, max_size=6), min_size=1, max_size=4))
def test_any_feature_rows_are_simulated_or_rejected_by_name(rows):
    config = rings.RingConfig(angle_samples=64)
    f = np.array(rows)
    try:
        checked = rings.check_ring_features(f, config)
    except ValueError as e:
        assert "features[" in str(e) and any(n in str(e) for n in rings.FEATURE_NAMES)
        return
    assert np.all(np.isfinite(checked)) and np.all(checked[:, 2] > 0) and np.all(checked[:, 3] > 0)
    assert np.all(np.isfinite(rings.expected_images(checked, config)))


schedule_specs = st.one_of(
    st.builds(lambda w: f"constant:weight={w}", st.floats(0, 10)),
    st.builds(lambda a, b, e, d: f"linear:start={a},end={b},epochs={e},delay={d}",
              st.floats(0, 5), st.floats(0, 5), st.floats(0.1, 100), st.floats(0, 50)),
    st.builds(lambda a, b, e: f"step:w0={a},w1={b},epoch={e}", st.floats(0, 5), st.floats(0, 5), st.floats(0, 100)),
    st.builds(lambda m, p, r: f"cyclical:max={m},period={p},ratio={r}",
              st.floats(0, 5), st.floats(0.5, 50), st.floats(0.05, 1)),
    st.builds(lambda t, g, s: f"adaptive:target={t},gain={g},max_step={s}",
              st.floats(0.01, 10), st.floats(0.01, 10), st.floats(0.001, 1)),
)


@FAST
@given(schedule_specs, st.lists(st.floats(0, 500), min_size=1, max_size=20),
       st.lists(st.floats(0, 1e4), min_size=1, max_size=20))
def test_any_schedule_gives_finite_nonnegative_weights_and_round_trips(spec, times, kls):
    schedule = from_spec(spec)
    for t, kl in zip(sorted(times), kls):
        w = schedule(t)
        assert math.isfinite(w) and w >= 0
        schedule.observe({"kl_raw": kl, "nll": 1.0})
    again = from_spec(schedule.spec())
    assert again.spec() == schedule.spec()


@FAST
@given(st.text(max_size=40))
def test_any_schedule_string_is_parsed_or_rejected_with_value_error(text):
    try:
        from_spec(text)
    except ValueError:
        pass


@FAST
@given(st.one_of(st.integers(-3, 700), st.floats(-1, 1000), st.booleans()))
def test_loader_batch_size_gives_full_batches_or_is_rejected(batch_size):
    from tfp_dgbn.dataset.sources import ArraySource

    data = rings.simulate(50, seed=1)
    try:
        ds = ArraySource(data["features"], data["noised"]).dataset(batch_size)
    except ValueError as e:
        assert "batch_size" in str(e)
        return
    # An endless stream of full batches (they run on across epochs), whatever the split's size.
    assert [len(x) for x, _ in ds.take(2)] == [int(batch_size)] * 2


@FAST
@given(st.lists(st.lists(anything, min_size=0, max_size=3), min_size=0, max_size=3))
@example([[3.4028235677973366e+38]])  # finite in float64, inf in float32: found by hypothesis
def test_predictor_features_are_checked_or_rejected(rows):
    try:
        x = check_features(rows, 1)
    except ValueError:
        return
    assert x.dtype == np.float32 and x.shape[1] == 1 and np.all(np.isfinite(x))


def test_bad_loader_sources_are_value_errors(tmp_path):
    from tfp_dgbn.dataset.sources import ArraySource

    with pytest.raises(ValueError, match="same positive number of examples, got 2 and 3"):
        ArraySource(np.zeros((2, 6)), np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="got 0 and 0"):
        ArraySource(np.zeros((0, 6)), np.zeros((0, 8, 8)))
