"""Ridge probes and effective rank on data whose answer is known."""
import numpy as np
import pytest

from ami_nodes.perception.probe import classification_probe, fit_ridge, majority_accuracy, r2_scores, regression_probe
from ami_nodes.perception.stats import effective_rank, feature_summary


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 10))
    y = x @ rng.normal(size=(10, 2)) + 3.0
    r2, _ = regression_probe(x[:300], y[:300], x[300:], y[300:])
    assert r2.min() > 0.99


def test_unrelated_features_score_near_zero():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 10)), rng.normal(size=(400, 1))
    r2, _ = regression_probe(x[:300], y[:300], x[300:], y[300:])
    assert r2[0] < 0.05


def test_ridge_handles_more_dimensions_than_samples():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 500))
    model = fit_ridge(x, x[:, :1], alpha=1.0)
    assert r2_scores(x[:, :1], model.predict(x))[0] > 0.9


def test_classification_probe_beats_majority_on_separable_classes():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=600)
    x = rng.normal(size=(600, 5)) * 0.3
    x[np.arange(600), labels] += 2.0
    accuracy, _ = classification_probe(x[:400], labels[:400], x[400:], labels[400:])
    assert accuracy > 0.95 > majority_accuracy(labels[:400], labels[400:])


def test_effective_rank_bounds():
    rng = np.random.default_rng(4)
    line = rng.normal(size=(200, 1)) * np.ones((1, 8))
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(rng.normal(size=(5000, 8))) > 7.5
    assert effective_rank(np.ones((10, 8))) == 0.0


def test_feature_summary_fields():
    summary = feature_summary(np.random.default_rng(5).normal(size=(100, 4)))
    assert set(summary) == {'mean', 'std', 'effective_rank', 'count'}
    assert summary['count'] == 100
