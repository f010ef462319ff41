"""The few numbers worth quoting, derived from the parts that ran (missing parts give None)."""
from __future__ import annotations


def _get(tree: dict, *path, default=None):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return default
        tree = tree[key]
    return tree


def _hot(parts: dict, run: str, phase: str, hop: str = 'cmd_vel_received_ms') -> dict:
    row = _get(parts, 'system', 'hot_path', run, phase, hop, default={})
    return {'p50': row.get('p50'), 'p99': row.get('p99')}


def _ros_overhead(parts: dict, run: str, floor_key: str) -> float | None:
    hot = _get(parts, 'system', 'hot_path', run, 'learner_paused', 'cmd_vel_received_ms', 'p50')
    base = _get(parts, 'floor', floor_key, 'p50')
    return hot - base if hot is not None and base is not None else None


def headline(parts: dict) -> dict:
    out: dict = {}
    for run in ('train_on', 'train_off', 'image_128_train_on'):
        for phase in ('learner_training', 'learner_paused'):
            if _get(parts, 'system', 'hot_path', run, phase):
                out[f'hot_path_ms/{run}/{phase}/cmd_vel'] = _hot(parts, run, phase)
                out[f'hot_path_ms/{run}/{phase}/osc'] = _hot(parts, run, phase, 'osc_sent_ms')
    for key in ('train_on', 'train_off'):
        if _get(parts, 'floor', key):
            out[f'floor_ms/{key}'] = {'p50': _get(parts, 'floor', key, 'p50'),
                                      'p99': _get(parts, 'floor', key, 'p99')}
            overhead = _ros_overhead(parts, key, key)
            if overhead is not None:
                hot = _get(parts, 'system', 'hot_path', key, 'learner_paused',
                           'cmd_vel_received_ms', 'p50')
                out[f'ros_overhead_p50_ms/{key}'] = overhead
                out[f'hot_over_floor_p50/{key}'] = hot / _get(parts, 'floor', key, 'p50')
    if _get(parts, 'system', 'ticks'):
        out['ticks'] = {k: _get(parts, 'system', 'ticks', k) for k in
                        ('seconds', 'missed_fraction', 'late_fraction', 'skipped_frame_fraction',
                         'weight_versions_applied')}
        out['ticks']['interval_p99_ms'] = _get(parts, 'system', 'ticks', 'interval_ms', 'p99')
    for profile in ('on', 'off'):
        for size, row in (_get(parts, 'weight_sync', f'profile_{profile}') or {}).items():
            out[f'weight_sync_p50_ms/{size}/profile_{profile}'] = _get(
                row, 'publish_to_applied_ms', 'p50')
    rows = _get(parts, 'learner', 'rows') or []
    if rows:
        out['learner_samples_per_s'] = {str(r['batch']): r['samples_per_s'] for r in rows}
    for axis in ('vs_image_side', 'vs_feature_size'):
        fits = _get(parts, 'scaling', axis) or {}
        out.update({f'scaling_exponent/{axis}/{k}': v['exponent'] for k, v in fits.items()})
    for name, row in (_get(parts, 'system', 'memory', 'per_node') or {}).items():
        out[f'rss_slope_mb_per_min/{name}'] = row['slope_mb_per_min']
    for arrangement in ('alone', 'training_thread_same_process', 'training_separate_process'):
        row = _get(parts, 'anchor', arrangement)
        if row:
            out[f'anchor/{arrangement}'] = {'step_p50': row['step_ms']['p50'],
                                            'step_p99': row['step_ms']['p99'],
                                            'lateness_p99': row['lateness_ms']['p99'],
                                            'missed': row['missed_deadline_fraction']}
    phases = _get(parts, 'profile', 'phases') or {}
    out['profile_top3'] = [name for name, _ in sorted(
        phases.items(), key=lambda kv: kv[1]['ms_per_frame'], reverse=True)[:3]]
    return out
