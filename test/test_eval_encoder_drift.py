"""The drift measure: zero for an encoder that does not move, positive for one that trains."""
import json

from ami_nodes.eval import encoder_drift

SMALL = ['--seeds', '0', '--frames', '40', '--every', '10', '--skip', '0', '--probe-frames', '60']


def test_a_still_encoder_does_not_drift_and_a_training_one_does(tmp_path):
    still = encoder_drift.main([*SMALL, '--set', 'learning_rate=0.0', '--out', str(tmp_path / 'still')])
    lags = still['runs'][0]['by_lag_frames']
    assert set(lags) == {'0', '10', '20', '30'}
    assert all(values['relative_change'] == 0.0 for values in lags.values())
    assert len({values['r2_mean'] for values in lags.values()}) == 1   # the same read-out, the same features
    trained = encoder_drift.main([*SMALL, '--out', str(tmp_path / 'trained')])['runs'][0]['by_lag_frames']
    assert trained['0']['relative_change'] == 0.0
    assert min(trained[lag]['relative_change'] for lag in ('10', '20', '30')) > 0.0
    assert json.loads((tmp_path / 'trained' / 'results.json').read_text())['runs'][0]['by_lag_frames'] == trained
    assert '| 30 |' in (tmp_path / 'trained' / 'summary.md').read_text()
