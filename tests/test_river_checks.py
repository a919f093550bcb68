"""river's own conformance suite, with nothing skipped."""

import pytest
from river import checks

from stream_logreg import LogisticRegression

PARAMS = [{}, *LogisticRegression._unit_test_params()]


@pytest.mark.parametrize("params", PARAMS, ids=str)
def test_check_estimator_passes_with_no_skips(params):
    model = LogisticRegression(**params)
    assert not model._unit_test_skips()
    ran = 0
    for check in checks.yield_checks(model):
        check(model.clone())
        ran += 1
    assert ran >= 30
    checks.check_estimator(model)
