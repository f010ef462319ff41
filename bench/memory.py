"""Memory of every node process over a long run: peak, current and the trend.

Samples VmRSS/VmHWM of the launcher's descendants from /proc every few seconds. The slope
is a least-squares fit of RSS against time after the first minute (start-up allocations,
torch's lazy init and the first weights are not growth). Flat means under 0.5 MB/min.
"""
from __future__ import annotations

import numpy as np

from bench.system_session import Records

SETTLE_S = 60.0
FLAT_MB_PER_MIN = 0.5


def analyze(records: Records) -> dict:
    if not records.rss:
        return {}
    t0 = records.rss[0][0]
    names = sorted({name for _, sample in records.rss for name in sample})
    out = {}
    for name in names:
        rows = [(t - t0, s[name]) for t, s in records.rss if name in s]
        times = np.array([t for t, _ in rows])
        rss = np.array([r['rss_mb'] for _, r in rows])
        settled = times >= min(SETTLE_S, times[-1] / 2)
        slope = (float(np.polyfit(times[settled] / 60, rss[settled], 1)[0])
                 if settled.sum() >= 3 else float('nan'))
        trend = ('flat' if abs(slope) < FLAT_MB_PER_MIN else
                 'growing' if slope > 0 else 'shrinking') if np.isfinite(slope) else 'too short'
        out[name] = {'samples': len(rows), 'minutes': float(times[-1] / 60),
                     'first_mb': float(rss[0]), 'last_mb': float(rss[-1]),
                     'max_rss_mb': float(rss.max()), 'peak_hwm_mb': max(r['peak_mb'] for _, r in rows),
                     'slope_mb_per_min': slope, 'trend': trend}
    return out
