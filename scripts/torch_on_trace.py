#!/usr/bin/python3
"""PyTorch trained free-running on an engine run's exact stream: the data-stream arm of the seed study.

    /usr/bin/python3 scripts/torch_on_trace.py TRACE_DIR --data DIR --epochs 10 --out FOLDER [--threads 2]

TRACE_DIR is an engine run's whole trace (`rlmixup train … --trace DIR --trace-steps EPOCHS·STEPS
--trace-full 1`): every step's mixed batch and targets, learning rate and momentum, and the
classifier's state before step 1. From that state, a PyTorch model (bench/reference/preactresnet.py)
trains on exactly those batches, in order, with torch.optim.SGD and the engine's per-step learning
rate and momentum (scripts/replay_torch.py's free-running copy, run to the end), and is evaluated
on the test split after every epoch, as bench/reference/torch_train.py evaluates its own runs. It
writes FOLDER/metrics.jsonl in the trainers' format (epoch, train_loss, test_top1, test_top5,
test_loss, lr), so scripts/seed_study.py tabulates it beside the engine and PyTorch.

If PyTorch on the engine's stream ends like the engine, the stream (crops, flips, order, the mixes'
draws) is where the engines differ; if it ends like PyTorch on its own stream, the engine's
arithmetic over many steps is.
"""

import argparse
import glob
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench", "reference"))
import replay_torch  # noqa: E402
import safetensors_io  # noqa: E402
import torch_train  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trace")
    ap.add_argument("--data", required=True, help="the CIFAR binary folder of the run (its test split is evaluated)")
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    files = sorted(glob.glob(os.path.join(a.trace, "step_*.safetensors")))
    if not files or len(files) % a.epochs:
        raise SystemExit(f"error: {a.trace} holds {len(files)} steps, not a whole run of {a.epochs} epochs (trace every step)")
    steps_per_epoch = len(files) // a.epochs
    first, meta0 = safetensors_io.read(files[0], with_metadata=True)
    if "before.conv1.weight" not in first:
        raise SystemExit("error: the first traced step holds no state; trace with --trace-full 1")
    policy = meta0["policy"]
    if policy in replay_torch.SALIENCY_POLICIES:
        raise SystemExit("error: the saliency policies' passes depend on the model's own weights; this arm takes none, input-mixup, cutmix")
    device = torch.device(a.device)
    model = replay_torch.model_for(replay_torch.split(first, "before."), torch.float32).to(device)
    opt = replay_torch.make_sgd(model, meta0, {k: v.to(device) for k, v in replay_torch.split(first, "momentum_before.").items()})
    test_x, test_y = torch_train.read_cifar(a.data, False, None)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "metrics.jsonl"), "w") as metrics:
        for epoch in range(1, a.epochs + 1):
            t0, loss_sum = time.time(), 0.0
            for path in files[(epoch - 1) * steps_per_epoch:epoch * steps_per_epoch]:
                tr, meta = safetensors_io.read(path, with_metadata=True)
                tr = {k: v.to(device) for k, v in tr.items()}
                loss, _ = replay_torch.train_step(model, opt, meta, tr, policy, 16, torch.float32)
                opt.step()
                loss_sum += float(loss)
            top1, top5, test_loss = torch_train.evaluate(model, test_x, test_y, torch.arange(len(test_y)), a.batch)
            row = {"epoch": epoch, "train_loss": loss_sum / steps_per_epoch, "test_top1": top1, "test_top5": top5,
                   "test_loss": test_loss, "lr": float(meta["lr"]), "seconds": time.time() - t0}
            metrics.write(json.dumps(row) + "\n")
            metrics.flush()
            print(f"epoch {epoch}/{a.epochs}: loss {row['train_loss']:.4f}, test top-1 {100 * top1:.2f}%, {row['seconds']:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
