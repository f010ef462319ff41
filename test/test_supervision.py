"""The restart policy: back-off doubles to a cap, and too many restarts in a window give up."""
from ami_nodes.tools.supervision import RestartPolicy, RestartTracker


def test_back_off_doubles_up_to_the_cap():
    tracker = RestartTracker(RestartPolicy(first_delay_s=1.0, max_delay_s=5.0, max_restarts=10,
                                           window_s=1000.0))
    delays = [tracker.delay_after_exit(now=float(t)) for t in range(6)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert tracker.restarts == 6 and not tracker.given_up


def test_gives_up_after_too_many_restarts_in_the_window():
    tracker = RestartTracker(RestartPolicy(first_delay_s=1.0, max_delay_s=30.0, max_restarts=3,
                                           window_s=100.0))
    assert [tracker.delay_after_exit(now=t) for t in (0.0, 10.0, 20.0)] == [1.0, 2.0, 4.0]
    assert tracker.delay_after_exit(now=30.0) is None
    assert tracker.given_up and tracker.restarts == 3


def test_restarts_older_than_the_window_are_forgotten():
    tracker = RestartTracker(RestartPolicy(first_delay_s=1.0, max_delay_s=30.0, max_restarts=2,
                                           window_s=60.0))
    assert tracker.delay_after_exit(now=0.0) == 1.0
    assert tracker.delay_after_exit(now=10.0) == 2.0
    # both restarts (at 1 s and 12 s) are more than 60 s old: a fresh, short back-off
    assert tracker.delay_after_exit(now=200.0) == 1.0
    assert not tracker.given_up and tracker.restarts == 3
