"""Tick stability of the actor at 20 Hz, as the driver downstream experiences it.

A tick is one cmd_vel reaching the probe. It missed its deadline when the interval since the
previous one exceeds 1.5 frame periods (75 ms at 20 Hz): the driver went a whole frame
without a new command. Stamp gaps above 1.5 periods count frames the pipeline skipped
(perception or the policy kept only the newest input), a separate cause from late delivery.
Capture intervals (stamp to stamp) show whether irregularity starts at the source; a command
is late when it came out more than one period after its frame's capture (the next frame was
already there), which blames the pipeline alone.
"""
from __future__ import annotations

import numpy as np

from bench.stats import summary
from bench.system_session import Records, between

LATE_FACTOR = 1.5
BINS_MS = (0, 25, 40, 45, 50, 55, 60, 75, 100, 150, 250, 1e9)


def _histogram(values_ms: np.ndarray) -> dict[str, int]:
    counts, _ = np.histogram(values_ms, bins=BINS_MS)
    return {f'{lo:g}-{hi:g}': int(c) for lo, hi, c in zip(BINS_MS[:-1], BINS_MS[1:], counts)}


def analyze(records: Records, span: tuple[float, float], period_s: float) -> dict:
    rows = between(records.cmd_vel, span)
    arrivals = np.array([t for t, _, _ in rows])
    stamps = np.array([s for _, _, s in rows], dtype=np.float64)
    intervals = np.diff(arrivals) * 1e3
    stamp_gaps = np.diff(stamps) / 1e6
    limit = LATE_FACTOR * period_s * 1e3
    versions = {v for _, v in between(records.versions, span)}
    return {
        'seconds': round(span[1] - span[0], 1), 'period_ms': period_s * 1e3,
        'deadline_ms': limit, 'ticks': int(len(rows)),
        'rate_hz': float(len(rows) / (span[1] - span[0])),
        'missed_fraction': float((intervals > limit).mean()) if len(intervals) else float('nan'),
        'late_fraction': (float(np.mean([(now - s) / 1e6 > period_s * 1e3 for _, now, s in rows]))
                          if rows else float('nan')),
        'skipped_frame_fraction': (float((stamp_gaps > limit).mean()) if len(stamp_gaps)
                                   else float('nan')),
        'interval_ms': summary(intervals),
        'capture_interval_ms': summary(stamp_gaps),
        'interval_histogram_ms': _histogram(intervals),
        'capture_interval_histogram_ms': _histogram(stamp_gaps),
        'weight_versions_applied': len(versions),
    }
