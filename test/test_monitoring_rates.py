"""Rolling percentiles and event rates used by every node's diagnostics."""
import math

from ami_nodes.monitoring.rates import RateMeter, RollingStats


def test_rolling_stats_keep_only_the_window():
    stats = RollingStats(window=100)
    assert math.isnan(stats.p50)
    for value in range(1000):
        stats.add(float(value))
    assert len(stats) == 100 and stats.count == 1000
    assert 940 <= stats.p50 <= 960 and stats.p99 >= 998


def test_rate_meter_counts_events_in_its_window():
    meter = RateMeter(window_s=2.0)
    for i in range(41):
        meter.tick(now=100.0 + i * 0.05)  # 20 Hz for 2 s
    assert abs(meter.rate(now=102.0) - 20.0) < 0.5
    assert meter.rate(now=110.0) == 0.0  # nothing for longer than the window
