"""Fuzzing the command line: whatever the arguments, no traceback; every error is one line.

Hypothesis draws argument lists for every subcommand from its own options, other commands' options
and awkward values. The long-running bodies (training, studies, notebooks) are replaced by stubs
that record their call, so every check before them (parsing, settings, files, ranges) runs for real.
Exit codes: 0 (success or --help), 2 (a user error: one line on stderr); never 1 (an internal error)
and never an escaping exception.
"""
import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfp_dgbn.cli import build_parser, main

VALUES = ["0", "1", "2", "3", "-1", "0.5", "1e9", "nan", "inf", "x", "", "/nonexistent/path", "a.npz", "a.csv",
          "constant:weight=1", "step:w0=x", "simulate", "memory", "normal", "categorical", "mirrored"]


def _options(parser, path):
    """The option strings of a (sub)parser reached by ``path`` (e.g. ["fit", "rings"])."""
    for name in path:
        sub = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
        parser = sub.choices[name]
    return sorted({s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"})


PARSER = build_parser()
COMMANDS = [["fit", t] for t in ("rings", "table", "toy-gaussian", "toy-discrete")] + [
    ["predict"], ["evaluate"], ["generate"], ["simulate"], ["small-data"], ["hmc-reference"], ["compare-kl"],
    ["benchmark", "uci"], ["schedules"]]
EVERY_OPTION = sorted({o for c in COMMANDS for o in _options(PARSER, c)})


@pytest.fixture(autouse=True)
def stubs(monkeypatch, tmp_path):
    """Stand-ins for the long bodies; paths the fuzzer writes go to a temporary directory."""
    import tfp_dgbn.studies.hmc_reference as hmc
    import tfp_dgbn.studies.kl_comparison as kl
    import tfp_dgbn.studies.small_data as small
    import tfp_dgbn.studies.uci as uci
    import tfp_dgbn.tasks.runner as runner
    from tfp_dgbn.tasks.base import FitResult

    monkeypatch.setattr(runner, "run", lambda settings, progress=None: FitResult(None, None, {}, {}, {}))
    monkeypatch.setattr(small, "small_data_study", lambda *a, **k: [])
    monkeypatch.setattr(small, "write_small_data_report", lambda *a, **k: None)
    monkeypatch.setattr(hmc, "hmc_reference", lambda *a, **k: {"rows": {}, "diagnostics": {
        "function_rhat_max": 1.0, "function_ess_min": 1.0}})
    monkeypatch.setattr(hmc, "write_hmc_report", lambda *a, **k: None)
    monkeypatch.setattr(kl, "compare_kl_strategies", lambda *a, **k: {})
    # The benchmark's own first step is real (finding the datasets: a bad folder is a user error).
    monkeypatch.setattr(uci, "uci_benchmark", lambda data_dir, datasets=None, *a, **k: (
        uci.find_datasets(data_dir, datasets), {"stub": {}})[1])
    monkeypatch.setattr(uci, "write_uci_report", lambda *a, **k: "")
    monkeypatch.chdir(tmp_path)


def _run(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: --help (0) or a usage error (2)
            code = e.code
    return code, err.getvalue()


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(COMMANDS), st.lists(st.tuples(st.sampled_from(EVERY_OPTION), st.sampled_from(VALUES)),
                                           max_size=4), st.booleans())
def test_no_argument_list_gives_a_traceback_or_a_multi_line_error(command, pairs, own_first):
    own = _options(PARSER, command)
    # Mostly the command's own options (so the checks after parsing run), sometimes another command's.
    pairs = [(own[EVERY_OPTION.index(o) % len(own)] if own_first and own else o, v) for o, v in pairs]
    argv = list(command) + [x for o, v in pairs for x in (o, v)]
    code, err = _run(argv)
    assert code in (0, 2), (argv, code, err)
    lines = err.strip().splitlines()
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("dgbn: error: "), (argv, err)
    assert "Traceback" not in err, (argv, err)


def test_an_internal_error_is_one_line_with_exit_1_and_debug_shows_it(monkeypatch):
    import tfp_dgbn.tasks.runner as runner

    def broken(settings, progress=None):
        raise KeyError("a bug deep in a run")

    monkeypatch.setattr(runner, "run", broken)
    code, err = _run(["fit", "toy-gaussian", "--epochs", "1"])
    assert code == 1
    assert err.strip().splitlines() == ["dgbn: internal error: KeyError: 'a bug deep in a run' (run again with "
                                        "--debug for the traceback, and report it)"]
    with pytest.raises(KeyError, match="a bug deep in a run"):
        main(["--debug", "fit", "toy-gaussian", "--epochs", "1"])


def test_predict_names_what_the_model_takes(tmp_path):
    from tfp_dgbn.export import export_predictive
    from tfp_dgbn.model.heads import NormalHead
    from tfp_dgbn.model.mlp import bayesian_mlp

    export_predictive(bayesian_mlp(3, NormalHead(), 10, hidden=(2,)), str(tmp_path / "m"),
                      {"feature_names": ["a", "b", "c"]})
    code, err = _run(["predict", "--model", str(tmp_path / "m"), "--features", "1", "2"])
    assert code == 2 and err.strip() == (f"dgbn: error: '{tmp_path / 'm'}' takes 3 feature values per example "
                                         "(a b c), repeated for several; got 2")
    code, err = _run(["predict", "--model", str(tmp_path / "m"), "--features", "1", "nan", "2"])
    assert code == 2 and "row 0, column 1 is nan" in err and "np.float64" not in err
    code, err = _run(["predict", "--model", str(tmp_path / "m"), "--features", "1", "red", "2"])
    assert code == 2 and f"--features value 'red' is not a number ('{tmp_path / 'm'}' has no text columns)" in err
