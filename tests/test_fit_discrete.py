"""End to end on toy-discrete (Poisson counts): predicted vs true pmf."""
import pytest

from tfp_dgbn.tasks.runner import fit

pytestmark = pytest.mark.slow


def test_discrete_pmf_total_variation_is_small(tmp_path):
    result = fit("toy-discrete", law="poisson", n_train=2000, epochs=150,
                               logdir=str(tmp_path / "logs"), out=str(tmp_path / "export"),
                               plot_every=150, verbose=0, seed=0)
    m = result.metrics
    assert m["tv"] <= 0.05  # mean TV over 21 feature values in [0, 1]
    # Discrete central intervals include both end values, so coverage >= nominal
    # (up to 4 binomial standard errors of sampling noise).
    assert m["coverage"] >= 0.9 - 4 * m["coverage_se"]
    assert m["nll_gap"] <= 0.02
