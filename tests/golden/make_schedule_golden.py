#!/usr/bin/python3
"""Golden learning-rate and momentum sequences of torch.optim.lr_scheduler.OneCycleLR
(PyTorch 1.13) for tests/OneCycleScheduleTests.cs.

Writes schedule_golden.json next to this script: a list of configurations, each with
its OneCycleLR arguments and, for step = 0 .. total_steps (PyTorch accepts the call
with last_epoch == total_steps), the learning rate and momentum the scheduler sets on
an SGD parameter group at that step. Momentum cycling is on (cycle_momentum=True,
base_momentum, max_momentum as listed) so both sequences are covered; the learning
rate does not depend on it. Floats are written with Python's repr, which round-trips
doubles exactly.

Regenerate (from the repository root):
  /usr/bin/python3 tests/golden/make_schedule_golden.py
"""

import json
import os
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# (total_steps or (epochs, steps_per_epoch), max_lr, div_factor, final_div_factor, pct_start)
CONFIGS = [
    dict(total_steps=30, max_lr=0.2, div_factor=50.0, final_div_factor=2.0, pct_start=1 / 3),
    dict(total_steps=300, max_lr=0.2, div_factor=50.0, final_div_factor=2.0, pct_start=1 / 3),
    dict(total_steps=1000, max_lr=0.2, div_factor=50.0, final_div_factor=2.0, pct_start=1 / 3),
    dict(epochs=7, steps_per_epoch=13, max_lr=0.2, div_factor=50.0, final_div_factor=2.0, pct_start=1 / 3),
    dict(total_steps=100, max_lr=0.1, div_factor=25.0, final_div_factor=1e4, pct_start=0.3),
]


def run(cfg):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, anneal_strategy="cos", three_phase=False, cycle_momentum=True,
        base_momentum=0.85, max_momentum=0.95, **cfg)
    total = sched.total_steps
    lr, momentum = [], []
    for step in range(total + 1):
        if step > 0:
            opt.step()
            sched.step()
        group = opt.param_groups[0]
        lr.append(group["lr"])
        momentum.append(group["momentum"])
    out = dict(cfg)
    out.update(total_steps=total, base_momentum=0.85, max_momentum=0.95, lr=lr, momentum=momentum)
    return out


def main():
    warnings.simplefilter("ignore")
    result = {"torch": torch.__version__, "configs": [run(c) for c in CONFIGS]}
    with open(os.path.join(HERE, "schedule_golden.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
