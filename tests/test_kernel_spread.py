"""Refitting a learned kernel's spread after training (`tfp_dgbn.fit.kernel_spread`)."""
import numpy as np
import pytest

from tfp_dgbn.fit.kernel_spread import has_kernel_spread, refit_kernel_spread
from tfp_dgbn.model.pattern_generator import pattern_generator
from tfp_dgbn.predict import model_predictor
from tfp_dgbn.simulate import pattern_rings as pr
from tfp_dgbn.validate import InputError

N = 100  # rows, 1,024 pixels each
TRUE_SPREAD = 0.3
# The refit is the maximum-likelihood sd of y / loc - 1 over N x 1,024 pixels: its standard error is
# about TRUE_SPREAD / sqrt(2 N 1024) = 0.0015. The posterior sd of 1e-6 per weight makes the weight draws
# of the images and of the refit the same network to ~1e-5 in log intensity, negligible beside it.
TOLERANCE = 5 * TRUE_SPREAD / np.sqrt(2 * N * 1024)


@pytest.mark.parametrize("two_rings, law", [(False, "scaled"), (True, "mixture")])
@pytest.mark.parametrize("start", [0.1, 1.0])
def test_refit_recovers_the_spread_of_the_networks_own_images(two_rings, law, start):
    """Images drawn from a network with spread 0.3, then the spread set wrong (0.1 or 1.0): the refit finds 0.3
    to within the sampling error, lowers the data term, and leaves the intensities alone."""
    model = pattern_generator(N, two_rings=two_rings, pixel_law=law, embedding=(8,), hidden=(8,), seed=4,
                              init_scale=1e-6)
    assert has_kernel_spread(model)
    predictor = model_predictor(model)
    f = pr.sample_features(N, np.random.default_rng(1), two_rings=two_rings).astype("float32")
    model.head.log_spread.assign(np.log(TRUE_SPREAD))
    images = predictor.sample(f, 1)[0]
    loc_before = predictor.draws(f[:4], 1)["loc"].numpy()
    model.head.log_spread.assign(np.log(start))
    out = refit_kernel_spread(model, f, images)
    assert out["trained"] == pytest.approx(start, rel=1e-6) and out["rows"] == N
    assert abs(out["refit"] - TRUE_SPREAD) < TOLERANCE, out
    assert out["nll_refit"] < out["nll_trained"]
    assert float(np.exp(model.head.log_spread.numpy())) == pytest.approx(out["refit"], rel=1e-6)
    np.testing.assert_allclose(predictor.draws(f[:4], 1)["loc"].numpy(), loc_before, rtol=1e-3)


def test_refit_refuses_a_head_without_a_kernel_and_mismatched_rows():
    normal = pattern_generator(10, pixel_law="normal", embedding=(4,), hidden=(4,))
    assert not has_kernel_spread(normal)
    f = pr.sample_features(3, np.random.default_rng(0)).astype("float32")
    with pytest.raises(InputError, match="normal_image"):
        refit_kernel_spread(normal, f, np.zeros((3, 32, 32)))
    scaled = pattern_generator(10, embedding=(4,), hidden=(4,))
    before = scaled.head.log_spread.numpy()
    with pytest.raises(InputError, match="3 and 2"):
        refit_kernel_spread(scaled, f, np.zeros((2, 32, 32)))
    with pytest.raises(InputError, match="max_rows must be a positive integer, got 0"):
        refit_kernel_spread(scaled, f, np.zeros((3, 32, 32)), max_rows=0)
    assert scaled.head.log_spread.numpy() == before
