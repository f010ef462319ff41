"""`make bench`: every benchmark part, one after another, into bench/results/latest.{json,md}.

    python -m bench.run_all            # full: about 18 minutes on 2 cores
    python -m bench.run_all --quick    # a few seconds per part (the smoke test uses it)
    python -m bench.run_all --quick --parts floor,learner --out /tmp/b
    python -m bench.run_all --parts floor --merge   # re-measure parts into the existing results

One failing part is recorded with its error and does not stop the others.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import anchor, floor, learner_throughput, machine, profile_floor, report, scaling, system_runs, weight_sync
from bench.headline import headline

RESULTS = Path(__file__).resolve().parent / 'results'


def parts(quick: bool, domains: list[int], workdir: Path) -> dict[str, Callable[[], dict]]:
    return {
        'floor': lambda: floor.run(quick),
        'profile': lambda: profile_floor.run(quick),
        'scaling': lambda: scaling.run(quick),
        'learner': lambda: learner_throughput.run(quick),
        'anchor': lambda: anchor.run(quick),
        'weight_sync': lambda: weight_sync.run(quick, domains[3:5], workdir),
        'system': lambda: system_runs.run(quick, domains[0:3]),
    }


def _finite(value):
    """JSON has no NaN: write null for it (the report says 'n/a')."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='a few seconds per part')
    parser.add_argument('--parts', default='', help='comma-separated subset (default: all)')
    parser.add_argument('--out', type=Path, default=RESULTS)
    parser.add_argument('--merge', action='store_true',
                        help='replace only the chosen parts in OUT/latest.json (each part '
                             'records when it was measured and the load then)')
    args = parser.parse_args(argv)
    base = 150 + (os.getpid() % 16) * 5  # five ROS domains of our own, per run
    domains = list(range(base, base + 5))
    results: dict = {'mode': 'quick' if args.quick else 'full',
                     'machine': {**machine.describe(), 'loadavg_start': machine.loadavg()},
                     'parts': {}}
    if args.merge:
        results = json.loads((args.out / 'latest.json').read_text())
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='bench_') as tmp:
        table = parts(args.quick, domains, Path(tmp))
        chosen = [p for p in args.parts.split(',') if p] or list(table)
        for name in chosen:
            t0, when = time.monotonic(), time.strftime('%H:%M', time.gmtime())
            print(f'[bench] {name} ...', flush=True)
            load = machine.loadavg()[0]
            try:
                results['parts'][name] = table[name]()
            except Exception as error:  # keep the other parts' numbers
                results['parts'][name] = {'error': f'{type(error).__name__}: {error}',
                                          'traceback': traceback.format_exc()[-2000:]}
            results['parts'][name]['part_seconds'] = time.monotonic() - t0
            results['parts'][name]['measured_at'] = f'{when} (load {load})'
            print(f'[bench] {name} done in {time.monotonic() - t0:.0f} s', flush=True)
    if not args.merge:
        results['machine']['loadavg_end'] = machine.loadavg()
        results['total_seconds'] = time.monotonic() - started
    results['headline'] = headline(results['parts'])
    results = _finite(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'latest.json').write_text(json.dumps(results, indent=1))
    (args.out / 'latest.md').write_text(report.markdown(results))
    print(f"[bench] wrote {args.out / 'latest.json'} and latest.md in "
          f"{time.monotonic() - started:.0f} s")
    return results


if __name__ == '__main__':
    main()
