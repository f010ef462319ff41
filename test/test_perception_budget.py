"""The train-every controller keeps the predicted mean step under the budget."""
from ami_nodes.perception.budget import BudgetController


def _feed(controller, forward_s, train_s, steps=200):
    since = 0
    for _ in range(steps):
        since += 1
        trained = since >= controller.train_every
        if trained:
            since = 0
        controller.observe(train_s if trained else forward_s, trained)
    return controller.train_every


def test_tight_budget_raises_train_every():
    controller = BudgetController(budget_s=0.010)
    k = _feed(controller, forward_s=0.004, train_s=0.030)
    # mean = 4 + 26/k ms must fit 9 ms -> k >= 6
    assert k == 6
    assert controller.predicted_mean_s() <= 0.9 * 0.010


def test_loose_budget_trains_every_frame():
    controller = BudgetController(budget_s=0.050, train_every=8)
    assert _feed(controller, forward_s=0.004, train_s=0.012) == 1


def test_budget_below_forward_cost_trains_as_rarely_as_allowed():
    controller = BudgetController(budget_s=0.002, max_every=16)
    assert _feed(controller, forward_s=0.004, train_s=0.012) == 16


def test_state_round_trip():
    controller = BudgetController(budget_s=0.010)
    _feed(controller, 0.004, 0.030)
    other = BudgetController(budget_s=1.0)
    other.load_state_dict(controller.state_dict())
    assert other.state_dict() == controller.state_dict()
