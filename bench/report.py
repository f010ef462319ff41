"""latest.md: the results as a person reads them, each figure next to how it was measured."""
from __future__ import annotations


def _f(value, digits: int = 2) -> str:
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def _pct(row: dict | None) -> str:
    row = row or {}
    return f"{_f(row.get('p50'))} / {_f(row.get('p99'))}"


def _machine(results: dict) -> list[str]:
    m = results['machine']
    return ['## Machine', '',
            f"{m['cpu']}, {m['nproc']} cores, {m['ram_gib']} GiB RAM; Python {m['python']}, "
            f"torch {m['torch']}; commit {m['git_commit']}.",
            f"Load average at start {m['loadavg_start']}, at end {m['loadavg_end']} (a shared "
            f"machine: other engineers' tests ran alongside, so compare figures taken side by "
            f"side in the same run rather than across runs).",
            f"Mode: {results['mode']}, {results['total_seconds'] / 60:.1f} minutes in all.", '']


def _hot_path(part: dict) -> list[str]:
    lines = ['## 1. Hot path (ms, p50 / p99)', '', part.get('how', ''), '',
             '| run | learner | capture->cmd_vel received | ->cmd_vel published | ->OSC sent '
             '| perception K | weight versions |', '|---|---|---|---|---|---|---|']
    for run, row in part.items():
        if not isinstance(row, dict) or 'overrides' not in row:
            continue
        for phase in ('learner_training', 'learner_paused'):
            if phase in row:
                r = row[phase]
                lines.append(f"| {run} | {phase.split('_')[1]} | {_pct(r['cmd_vel_received_ms'])} "
                             f"| {_pct(r['cmd_vel_published_ms'])} | {_pct(r['osc_sent_ms'])} "
                             f"| {_f(r['perception_train_every_median'], 0)} "
                             f"| {r['policy_versions_applied']} |")
    return lines + ['']


def _ticks(part: dict) -> list[str]:
    return ['## 3. Tick stability', '', part.get('how', ''), '',
            f"{part.get('ticks')} ticks in {part.get('seconds')} s ({_f(part.get('rate_hz'))} Hz); "
            f"missed deadline (> {_f(part.get('deadline_ms'), 0)} ms): "
            f"**{_f(100 * (part.get('missed_fraction') or 0))} %**; late (capture -> cmd_vel "
            f"> one period): {_f(100 * (part.get('late_fraction') or 0), 1)} %; frames skipped (capture "
            f"gap > 75 ms): {_f(100 * (part.get('skipped_frame_fraction') or 0), 1)} %; "
            f"{part.get('weight_versions_applied')} weight versions applied meanwhile.", '',
            f"Arrival interval ms: {part.get('interval_ms')}", '',
            f"Arrival histogram (ms: count): {part.get('interval_histogram_ms')}", '',
            f"Capture (stamp) histogram (ms: count): {part.get('capture_interval_histogram_ms')}",
            '']


def _memory(part: dict) -> list[str]:
    lines = ['## 7. Memory per node', '', part.get('how', ''), '',
             '| node | first MB | last MB | peak (VmHWM) MB | slope MB/min | trend |',
             '|---|---|---|---|---|---|']
    for name, r in (part.get('per_node') or {}).items():
        lines.append(f"| {name} | {_f(r['first_mb'], 0)} | {_f(r['last_mb'], 0)} | "
                     f"{_f(r['peak_hwm_mb'], 0)} | {_f(r['slope_mb_per_min'])} | {r['trend']} |")
    return lines + ['']


def _floor(part: dict, head: dict) -> list[str]:
    lines = ['## 2. Floor (one process, no ROS)', '', part.get('how', ''), '',
             '| perception training | frame->action p50 / p99 ms | whole frame p50 / p99 ms '
             '| hot path / floor (p50) | ROS overhead p50 ms |', '|---|---|---|---|---|']
    for key in ('train_on', 'train_off'):
        lines.append(f"| {key} | {_pct(part.get(key))} "
                     f"| {_pct((part.get(key) or {}).get('whole_frame_ms'))} "
                     f"| {_f(head.get(f'hot_over_floor_p50/{key}'))} "
                     f"| {_f(head.get(f'ros_overhead_p50_ms/{key}'))} |")
    return lines + ['', 'ROS overhead = hot path p50 (capture -> cmd_vel received, learner '
                    'paused) - floor p50 with the same perception setting. Target: < 3 ms.', '']


def _weights(part: dict) -> list[str]:
    lines = ['## 4. Weight sync', '', part.get('how', ''), '',
             '| blob | profile | publish->applied p50 / p99 ms | apply in-process ms | lost | '
             'tick p99 quiet | tick p99 weights arriving |', '|---|---|---|---|---|---|---|']
    for profile in ('on', 'off'):
        for size, r in (part.get(f'profile_{profile}') or {}).items():
            if 'error' in r:
                lines.append(f'| {size} | {profile} | {r["error"]} | | | | |')
                continue
            lines.append(f"| {r['blob_bytes'] / 1e6:.2f} MB (hidden {r['hidden_size']}) | {profile} "
                         f"| {_pct(r['publish_to_applied_ms'])} | {_f(r['apply_in_process_ms'])} "
                         f"| {r['not_applied_within_15s']} "
                         f"| {_f(r['tick_latency_quiet_ms']['p99'])} "
                         f"| {_f(r['tick_latency_weights_arriving_ms']['p99'])} |")
    return lines + ['']


def _learner(part: dict) -> list[str]:
    lines = ['## 5. Learner throughput', '', part.get('how', ''), '',
             '| batch | update p50 ms | samples/s |', '|---|---|---|']
    for r in part.get('rows', []):
        lines.append(f"| {r['batch']} | {_f(r['update_ms']['p50'], 1)} | {_f(r['samples_per_s'], 0)} |")
    return lines + ['']


def _scaling(part: dict) -> list[str]:
    lines = ['## 6. Scaling', '', part.get('how', ''), '',
             '| image | features | forward ms | train ms | state params |', '|---|---|---|---|---|']
    for r in part.get('rows', []):
        lines.append(f"| {r['image']} | {r['features']} | {_f(r['forward_ms'])} | "
                     f"{_f(r['train_ms'])} | {r['state_params']} |")
    lines.append('')
    for axis in ('vs_image_side', 'vs_feature_size'):
        fits = part.get(axis, {})
        lines.append(f"- {axis}: " + '; '.join(f"{k} exponent {_f(v['exponent'])} ({v['growth']})"
                                              for k, v in fits.items()))
    return lines + ['']


def _anchor(part: dict) -> list[str]:
    lines = ['## 8. Anchor: one process with threads (pamiq-core) vs separate processes', '',
             part.get('how', ''), '', f"pamiq-core: {part.get('pamiq_core')}", '',
             '| arrangement | step p50 / p99 ms | lateness p50 / p99 ms | missed 50 ms | '
             'training updates/s |', '|---|---|---|---|---|']
    for name in ('alone', 'training_thread_same_process', 'training_separate_process'):
        r = part.get(name)
        if r:
            lines.append(f"| {name} | {_pct(r['step_ms'])} | {_pct(r['lateness_ms'])} | "
                         f"{_f(100 * r['missed_deadline_fraction'], 1)} % | "
                         f"{_f(r.get('training_updates_per_s'), 1)} |")
    return lines + ['']


def _profile(part: dict) -> list[str]:
    phases = sorted((part.get('phases') or {}).items(), key=lambda kv: kv[1]['ms_per_frame'],
                    reverse=True)
    lines = ['## 9. Profile of the per-frame work', '', part.get('how', ''), '',
             f"Frame under the profiler: {_f(part.get('frame_ms_under_profiler'))} ms, "
             f"perception K = {part.get('train_every_reached')}. These are per-frame CPU costs: "
             f"perception publishes features before its backward pass, so backward, Adam and "
             f"replay bound the frame budget (K) and steal CPU from the other nodes, while the "
             f"frame -> action latency is the live encoder forward + act + ROS (sections 1-2).",
             '',
             '| rank | phase | ms/frame | share | calls/frame | what would remove it |',
             '|---|---|---|---|---|---|']
    for rank, (name, r) in enumerate(phases, 1):
        lines.append(f"| {rank} | {name} | {_f(r['ms_per_frame'])} | {_f(100 * r['share'], 0)} % "
                     f"| {_f(r['calls_per_frame'], 2)} | {r['remedy']} |")
    return lines + ['']


def markdown(results: dict) -> str:
    parts, head = results['parts'], results.get('headline', {})
    remeasured = {name: p['measured_at'] for name, p in parts.items() if p.get('measured_at')}
    lines = ['# ami_nodes benchmarks (latest run)', '',
             'Written by `python -m bench.run_all`; numbers in latest.json. See '
             'docs/benchmarks.md for what each figure means.', ''] + _machine(results) + [
                 f'Parts measured apart from the run above (`--merge`; UTC, load average): '
                 f'{remeasured or "none"}.', '']
    system = parts.get('system', {})
    sections = [
        ('system', lambda: _hot_path(system.get('hot_path', {}))),
        ('floor', lambda: _floor(parts['floor'], head)),
        ('system', lambda: _ticks(system.get('ticks', {}))),
        ('weight_sync', lambda: _weights(parts['weight_sync'])),
        ('learner', lambda: _learner(parts['learner'])),
        ('scaling', lambda: _scaling(parts['scaling'])),
        ('system', lambda: _memory(system.get('memory', {}))),
        ('anchor', lambda: _anchor(parts['anchor'])),
        ('profile', lambda: _profile(parts['profile'])),
    ]
    for name, section in sections:
        if name not in parts:
            continue
        if 'error' in parts[name]:
            lines += [f'## {name}: failed', '', '```', parts[name]['error'], '```', '']
        else:
            lines += section()
    return '\n'.join(lines) + '\n'
