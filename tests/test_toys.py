"""The toy laws: samples follow the stated true law; inputs are validated."""
import numpy as np
import pytest
from scipy import stats

from tfp_dgbn.simulate.toys import ToyDiscrete, ToyGaussian, make_toy
from tfp_dgbn.validate import check_features


def test_gaussian_samples_follow_the_true_law():
    toy = ToyGaussian()
    x, y = toy.sample(20000, seed=0)
    z = (y - toy.mean(x[:, 0])) / toy.scale(x[:, 0])
    # Standardised residuals are N(0, 1) exactly; KS at the 1e-3 level.
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # And the true law's NLL estimates H(y|x) within 4 standard errors.
    lp = toy.true_distribution(x).log_prob(y).numpy()
    assert abs(-lp.mean() - toy.conditional_entropy()) < 4 * lp.std() / np.sqrt(len(lp))


@pytest.mark.parametrize("law", ["poisson", "negbin"])
def test_discrete_samples_follow_the_true_pmf(law):
    toy = ToyDiscrete(law=law)
    n = 40000
    x, y = toy.sample(n, seed=1)
    # Chi-square goodness of fit in 4 feature bins, cells with expectation >= 5.
    for lo in np.linspace(0, 0.75, 4):
        sel = (x[:, 0] >= lo) & (x[:, 0] < lo + 0.25)
        expected = toy.true_pmf(x[sel]).sum(axis=0)
        observed = np.bincount(y[sel].astype(int), minlength=toy.max_count + 1)
        keep = expected >= 5
        chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
        assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3


def test_negbin_is_over_dispersed():
    toy = ToyDiscrete(law="negbin", dispersion=4.0)
    x = np.full((1, 1), 0.5, "float32")
    pmf = toy.true_pmf(x)[0]
    k = np.arange(len(pmf))
    mean = (k * pmf).sum()
    var = (k ** 2 * pmf).sum() - mean ** 2
    assert mean == pytest.approx(5.5, rel=1e-3)
    assert var == pytest.approx(5.5 + 5.5 ** 2 / 4.0, rel=1e-2)


@pytest.mark.parametrize("bad,match", [
    ([[np.nan]], "row 0, column 0"),
    ([[1.0], [np.inf]], "row 1, column 0"),
    (np.zeros((3, 2)), r"shape \[batch, 1\]"),
])
def test_bad_features_name_the_value(bad, match):
    with pytest.raises(ValueError, match=match):
        check_features(bad)


def test_unknown_toy_and_law():
    with pytest.raises(ValueError, match="'toy-x'"):
        make_toy("toy-x")
    with pytest.raises(ValueError, match="'binomial'"):
        ToyDiscrete(law="binomial")
