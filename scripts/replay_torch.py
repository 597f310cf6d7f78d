#!/usr/bin/python3
"""Step-level replay of an engine training trace in PyTorch: same weights, same batches.

The engine writes the trace with `rlmixup train ... --trace DIR --trace-steps N --trace-full
1,10,100,500` (src/Engine/Training/StepTrace.cs describes the files). This program, written
against PyTorch alone (bench/reference/preactresnet.py is the model), then does three things:

  data      with --data (the CIFAR binary folder the run read, without --val-from-train),
            rebuilds every clean batch from the raw images, the traced indices and crops: crop
            from the zero-padded image, flip, normalise, one-hot labels;
  mix       recomputes every step's mix from the clean batch and the engine's draws (partner,
            lambda, CutMix box, or the saliency masks from the engine's maps and actions) and
            compares it with the batch the engine trained on;
  free      trains a PyTorch model from the engine's starting weights on the engine's mixed
            batches, with torch.optim.SGD and the engine's per-step learning rate and momentum,
            and compares the loss at every step and the weights, momentum buffers and batch-norm
            statistics at the full steps: how the two trajectories drift apart over the run;
  forced    at each full step, loads the engine's state from before the step into PyTorch, in
            float32 and in float64, and redoes the step (the saliency pass too): the loss, every
            parameter gradient, the saliency maps, the updated weights and momentum. The engine's
            error against float64 is printed next to PyTorch float32's: float noise gives the two
            the same size, a defect makes the engine's jump.

Errors are normwise relative errors, ||a - b|| / ||b||, over all tensors together (the worst single
tensor is named). A single ReLU input within float noise of zero can land on the other side of it in one program
and not the other; that flips one element's gradient and can cost ~1e-3 at that step, in the
engine and in PyTorch float32 alike. So each full step is also redone with the engine's own ReLU
decisions (traced at full steps), where only the arithmetic differs: that comparison is held
tight. Exit code 0, or 1 when --check is given and a bound is broken: a clean batch or a mix
differs; a full step's gradient error exceeds --grad-max or, with the engine's ReLU decisions,
--grad-factor times PyTorch float32's plus --grad-floor; torch's SGD on the engine's gradient does
not give the engine's update (--sgd-tol); or the batch-norm running statistics differ (--bn-tol).

  /usr/bin/python3 scripts/replay_torch.py TRACE_DIR [--threads N] [--json OUT] [--check]
"""

import argparse
import contextlib
import glob
import json
import math
import os
import statistics
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench", "reference"))
import preactresnet  # noqa: E402
from preactresnet import PreActResNet18, soft_cross_entropy  # noqa: E402
import safetensors_io  # noqa: E402

SALIENCY_POLICIES = ("rl", "random")


def rel(a, b):
    """||a - b|| / ||b|| in float64 (0 when both are zero)."""
    a, b = a.double(), b.double()
    nb = b.norm().item()
    d = (a - b).norm().item()
    return d / nb if nb > 0 else (0.0 if d == 0 else math.inf)


def worst(pairs):
    """(largest relative error, its name) over [(name, a, b)]."""
    best = (0.0, "-")
    for name, a, b in pairs:
        e = rel(a, b)
        if e > best[0] or math.isnan(e):
            best = (e, name)
    return best


class _ReluDecisions:
    """Stands in for torch.nn.functional inside the reference model. With `masks`, each F.relu call
    multiplies by the next given 0/1 mask (the engine's decisions: the gradient passes where the
    engine's did); without, it applies relu and records where its input was positive."""

    def __init__(self, masks=None):
        self.masks = None if masks is None else list(masks)
        self.seen = []

    def relu(self, x):
        if self.masks is None:
            self.seen.append(x.detach() > 0)
            return F.relu(x)
        if not self.masks:
            raise SystemExit("replay: the model ran more ReLUs than the trace has decisions for")
        m = self.masks.pop(0)
        if tuple(m.shape) != tuple(x.shape):
            raise SystemExit(f"replay: a traced ReLU decision has shape {tuple(m.shape)}, the model's input {tuple(x.shape)}")
        return x * m.to(x.dtype)

    def __getattr__(self, name):
        return getattr(F, name)


@contextlib.contextmanager
def relu_decisions(hook):
    saved = preactresnet.F
    preactresnet.F = hook
    try:
        yield hook
    finally:
        preactresnet.F = saved


def global_rel(a_list, b_list):
    """||a - b|| / ||b|| over several tensors taken together."""
    d = sum(float((a.double() - b.double()).pow(2).sum()) for a, b in zip(a_list, b_list))
    n = sum(float(b.double().pow(2).sum()) for b in b_list)
    return math.sqrt(d / n) if n > 0 else (0.0 if d == 0 else math.inf)


def model_for(state, dtype):
    """A PreActResNet18 shaped after the trace's tensors, holding `state` (prefix stripped)."""
    width = state["conv1.weight"].shape[0]
    classes = state["linear.weight"].shape[0]
    m = PreActResNet18(width=width, num_classes=classes).to(dtype)
    load(m, state)
    return m


def load(model, state):
    own = dict(model.named_parameters())
    own.update(dict(model.named_buffers()))
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise SystemExit(f"replay: the trace has no tensor for {missing[0]}")
    with torch.no_grad():
        for k, t in own.items():
            if k in state:
                t.copy_(state[k].to(t.dtype))


def split(tensors, prefix):
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def make_sgd(model, meta, momentum_state=None):
    opt = torch.optim.SGD(model.parameters(), lr=float(meta["lr"]), momentum=float(meta["momentum"]),
                          weight_decay=float(meta["weight_decay"]), nesterov=meta["nesterov"] == "true", dampening=0)
    if momentum_state is not None:
        for name, p in model.named_parameters():
            opt.state[p]["momentum_buffer"] = momentum_state[name].to(p.dtype).clone()
    return opt


def set_hparams(opt, meta):
    for g in opt.param_groups:
        g["lr"] = float(meta["lr"])
        g["momentum"] = float(meta["momentum"])


def saliency_maps(model, x, targets, patches, update_stats):
    """(B,p,p): d loss / d x, channel L2, mean over each cell, each map normalised to sum 1."""
    model.train()
    saved = None
    if not update_stats:
        saved = {k: v.clone() for k, v in model.named_buffers()}
    x = x.clone().requires_grad_(True)
    loss = soft_cross_entropy(model(x), targets)
    (g,) = torch.autograd.grad(loss, x)
    if saved is not None:
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(saved[k])
    s = g.pow(2).sum(1).sqrt()
    cell = s.shape[-1] // patches
    m = F.avg_pool2d(s.unsqueeze(1), cell).squeeze(1)
    total = m.sum(dim=(1, 2), keepdim=True)
    return m / total


def percentile_masks(maps, actions, n_actions):
    """Eq. 1: the q-th percentile (numpy's linear interpolation), q = 99 a / (A - 1); mask = map >= t."""
    b = maps.shape[0]
    flat = maps.reshape(b, -1).float()
    srt, _ = flat.sort(dim=1)
    n = flat.shape[1]
    out = torch.empty_like(flat)
    for i in range(b):
        q = torch.tensor(99.0 * int(actions[i]) / (n_actions - 1), dtype=torch.float32)
        pos = q * (n - 1) / 100.0
        lo = min(int(math.floor(pos.item())), n - 1)
        hi = min(lo + 1, n - 1)
        t = srt[i, lo] + (pos - lo) * (srt[i, hi] - srt[i, lo])
        out[i] = (flat[i] >= t).float()
    return out.reshape(maps.shape)


def read_train_images(folder):
    """uint8 (N,3,32,32) and labels of the CIFAR-10 or CIFAR-100 binary training files."""
    import numpy as np
    if os.path.exists(os.path.join(folder, "data_batch_1.bin")):
        names, lb, at = [f"data_batch_{i}.bin" for i in range(1, 6)], 1, 0
    else:
        names, lb, at = ["train.bin"], 2, 1
    rows = np.concatenate([np.fromfile(os.path.join(folder, n), dtype=np.uint8).reshape(-1, lb + 3072) for n in names])
    return torch.from_numpy(rows[:, lb:].copy()).view(-1, 3, 32, 32), torch.from_numpy(rows[:, at].astype("int64"))


MEAN = torch.tensor([129.3, 124.1, 112.4]).view(3, 1, 1) / 255
STD = torch.tensor([68.2, 65.4, 70.4]).view(3, 1, 1) / 255


def rebuild_batch(images, labels, tr):
    """The clean batch from raw images: shift (dy, dx) with zero fill, flip, normalise; one-hot targets."""
    idx = tr["indices"].long()
    crop = tr["crop"].long() if "crop" in tr else torch.zeros(len(idx), 3, dtype=torch.long)
    b, k = len(idx), tr["targets"].shape[1]
    out = torch.empty(b, 3, 32, 32)
    for i in range(b):
        dy, dx, flip = (int(v) for v in crop[i])
        src = images[idx[i]].float()
        img = torch.zeros(3, 32, 32)
        ys, yd = max(0, dy), max(0, -dy)
        xs, xd = max(0, dx), max(0, -dx)
        h, w = 32 - abs(dy), 32 - abs(dx)
        img[:, yd:yd + h, xd:xd + w] = src[:, ys:ys + h, xs:xs + w]
        if flip:
            img = img.flip(2)
        out[i] = (img / 255 - MEAN) / STD
    return out, F.one_hot(labels[idx], k).float()


def recompute_mix(tr, policy, n_actions):
    """The mix of the clean batch by the engine's draws, in PyTorch: (images, targets, mask mismatches)."""
    x, y, perm = tr["x"], tr["targets"], tr["partner"].long()
    lam = tr["lambda"]
    if policy == "input-mixup":
        l = lam[0]
        return l * x + (1 - l) * x[perm], l * y + (1 - l) * y[perm], 0
    if policy == "cutmix":
        y0, x0, y1, x1 = (int(v) for v in tr["box"])
        out = x.clone()
        out[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
        kept = 1 - (y1 - y0) * (x1 - x0) / (x.shape[2] * x.shape[3])
        kept = torch.tensor(kept, dtype=torch.float32)
        return out, kept * y + (1 - kept) * y[perm], 0
    masks = percentile_masks(tr["maps"], tr["actions"], n_actions)
    mismatches = int((masks != tr["masks"]).sum().item())
    m = tr["masks"]
    h, w = x.shape[2], x.shape[3]
    up = F.interpolate(m.unsqueeze(1), size=(h, w), mode="nearest")
    m1, m2 = up, up[perm]
    l1 = lam.view(-1, 1, 1, 1) if lam.numel() > 1 else lam[0]
    l2 = 1 - l1
    inter = (m1 == m2).float()
    mixed = inter * (l1 * x + l2 * x[perm]) + (1 - inter) * (m1 * x + m2 * x[perm])
    plane = h * w
    fi = inter.sum(dim=(1, 2, 3)) / plane
    f1 = ((m1 > 0) & (m2 == 0)).float().sum(dim=(1, 2, 3)) / plane
    f2 = ((m1 == 0) & (m2 > 0)).float().sum(dim=(1, 2, 3)) / plane
    l1v = lam if lam.numel() > 1 else lam.expand(x.shape[0])
    a = (fi * l1v + f1).unsqueeze(1)
    c = (fi * (1 - l1v) + f2).unsqueeze(1)
    return mixed, a * y + c * y[perm], mismatches


def train_step(model, opt, meta, tr, policy, patches, dtype, relu=None):
    """One engine step in PyTorch: the saliency pass's batch-norm update (saliency policies), then
    forward, soft-target loss, backward and SGD on the engine's mixed batch. Returns (loss, maps)."""
    maps = None
    if policy in SALIENCY_POLICIES:
        maps = saliency_maps(model, tr["x"].to(dtype), tr["targets"].to(dtype), patches,
                             meta.get("saliency_updates_bn_stats", "true") == "true")
    model.train()
    set_hparams(opt, meta)
    opt.zero_grad(set_to_none=False)
    with relu_decisions(relu or _ReluDecisions()):
        loss = soft_cross_entropy(model(tr["mixed"].to(dtype)), tr["mixed_targets"].to(dtype))
    loss.backward()
    return loss, maps


def state_pairs(model, engine_state, kinds=("param", "buffer")):
    pairs = []
    if "param" in kinds:
        pairs += [(k, v.detach(), engine_state[k]) for k, v in model.named_parameters()]
    if "buffer" in kinds:
        pairs += [(k, v.detach(), engine_state[k]) for k, v in model.named_buffers() if k in engine_state]
    return pairs


def momentum_pairs(model, opt, engine_mom):
    return [(k, opt.state[p]["momentum_buffer"], engine_mom[k]) for k, p in model.named_parameters()]


def grad_norm(model):
    return math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trace")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json")
    ap.add_argument("--check", action="store_true", help="exit 1 when a bound is broken")
    ap.add_argument("--mix-tol", type=float, default=1e-5, help="relative error allowed in the recomputed mix")
    ap.add_argument("--grad-factor", type=float, default=10.0,
                    help="with the engine's ReLU decisions, its gradient error may be this many times PyTorch float32's (plus --grad-floor)")
    ap.add_argument("--grad-floor", type=float, default=1e-5)
    ap.add_argument("--sgd-tol", type=float, default=1e-6, help="torch's SGD on the engine's gradient against the engine's update")
    ap.add_argument("--bn-tol", type=float, default=1e-4, help="batch-norm running statistics after the step, against PyTorch float32")
    ap.add_argument("--grad-max", type=float, default=1e-2,
                    help="any one full step's gradient error above this is a defect (a single ReLU that float noise "
                         "flips to the other side of zero can cost 1e-3)")
    ap.add_argument("--actions", type=int, default=10)
    ap.add_argument("--data", help="the CIFAR binary folder the run read: also rebuild every clean batch from it")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    files = sorted(glob.glob(os.path.join(args.trace, "step_*.safetensors")))
    if not files:
        raise SystemExit(f"replay: no step_*.safetensors in {args.trace}")
    first, meta0 = safetensors_io.read(files[0], with_metadata=True)
    if "before.conv1.weight" not in first:
        raise SystemExit("replay: the first traced step is not a full step; add 1 to --trace-full")
    # The CLI's spelling; traces written by earlier engines named the policy by its C# enum member.
    policy = {"Rl": "rl", "Random": "random", "InputMixup": "input-mixup", "CutMix": "cutmix", "None": "none"}.get(meta0["policy"], meta0["policy"])
    raw = None
    if args.data:
        if meta0.get("val_from_train"):
            raise SystemExit("replay: --data needs a run without --val-from-train (its indices refer to the split set)")
        raw = read_train_images(args.data)
    patches = first["maps"].shape[-1] if "maps" in first else 16
    free = model_for(split(first, "before."), torch.float32)
    free_opt = make_sgd(free, meta0, split(first, "momentum_before."))
    # The same replay in float64: how fast float32 noise alone moves a trajectory on these batches.
    free64 = model_for(split(first, "before."), torch.float64)
    free64_opt = make_sgd(free64, meta0, split(first, "momentum_before."))

    report = {"policy": policy, "steps": [], "full": []}
    failures = []
    print(f"replay of {len(files)} steps of {args.trace} (policy {policy}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)")
    print(f"{'step':>5} {'engine loss':>12} {'torch loss':>12} {'rel diff':>9} {'mix err':>9} {'data err':>9}")
    for path in files:
        tr, meta = safetensors_io.read(path, with_metadata=True)
        step = int(meta["step"])
        # data
        data_err = 0.0
        if raw is not None:
            xb, yb = rebuild_batch(raw[0], raw[1], tr)
            data_err = max(rel(xb, tr["x"]), rel(yb, tr["targets"]))
            if data_err > args.mix_tol:
                failures.append(f"step {step}: the clean batch differs from the raw images (relative error {data_err:.2e})")
        # mix
        mixed, mixed_t, mism = (None, None, 0) if policy == "none" else recompute_mix(tr, policy, args.actions)
        mix_err = 0.0 if mixed is None else max(rel(mixed, tr["mixed"]), rel(mixed_t, tr["mixed_targets"]))
        if mix_err > args.mix_tol or mism:
            failures.append(f"step {step}: the mix differs (relative error {mix_err:.2e}, {mism} mask cells)")
        # free-running
        loss, _ = train_step(free, free_opt, meta, tr, policy, patches, torch.float32)
        gnorm = grad_norm(free)
        free_opt.step()
        train_step(free64, free64_opt, meta, tr, policy, patches, torch.float64)
        free64_opt.step()
        e_loss = float(meta["loss"])
        d = abs(e_loss - loss.item()) / max(abs(loss.item()), 1e-12)
        row = {"step": step, "engine_loss": e_loss, "torch_loss": loss.item(), "loss_rel": d, "mix_rel": mix_err,
               "mask_mismatches": mism, "data_rel": data_err, "torch_grad_norm": gnorm}
        report["steps"].append(row)
        if step <= 10 or meta["full"] == "true" or step % 50 == 0:
            print(f"{step:>5} {e_loss:>12.6f} {loss.item():>12.6f} {d:>9.2e} {mix_err:>9.2e} "
                  + (f"{data_err:>9.2e}" if raw is not None else f"{'-':>9}") + (f"  masks {mism} differ" if mism else ""))
        if meta["full"] != "true":
            continue
        # free-running drift at the full step
        after, mom_after = split(tr, "after."), split(tr, "momentum_after.")
        drift_p = global_rel(*zip(*[(a, b) for _, a, b in state_pairs(free, after, ("param",))]))
        drift_b = global_rel(*zip(*[(a, b) for _, a, b in state_pairs(free, after, ("buffer",))]))
        drift_m = global_rel(*zip(*[(a, b) for _, a, b in momentum_pairs(free, free_opt, mom_after)]))
        drift_64 = global_rel([p.detach() for p in free.parameters()], [p.detach() for p in free64.parameters()])
        # forced: the engine's state before the step, redone in float32 and float64
        before, mom_before = split(tr, "before."), split(tr, "momentum_before.")
        grads = split(tr, "grad.")
        out, same = {}, {}
        engine_masks = [tr[f"relu.{k}"] for k in range(len([n for n in tr if n.startswith("relu.")]))]
        for dtype in (torch.float32, torch.float64):
            m = model_for(before, dtype)
            opt = make_sgd(m, meta, mom_before)
            rec = _ReluDecisions()
            l, maps = train_step(m, opt, meta, tr, policy, patches, dtype, rec)
            g = {k: p.grad.detach().clone() for k, p in m.named_parameters()}
            opt.step()
            out[dtype] = (m, opt, l.item(), g, maps, rec.seen)
            if engine_masks:
                # the same step with the engine's ReLU decisions: only the arithmetic differs
                m2 = model_for(before, dtype)
                train_step(m2, make_sgd(m2, meta, mom_before), meta, tr, policy, patches, dtype, _ReluDecisions(engine_masks))
                same[dtype] = {k: p.grad.detach().clone() for k, p in m2.named_parameters()}
        m32, o32, l32, g32, maps32, seen32 = out[torch.float32]
        m64, o64, l64, g64, maps64, seen64 = out[torch.float64]
        names = list(g64)
        ge = (global_rel([grads[k] for k in names], [g64[k] for k in names]), worst([(k, grads[k], g64[k]) for k in names]))
        gt = (global_rel([g32[k] for k in names], [g64[k] for k in names]), worst([(k, g32[k], g64[k]) for k in names]))
        flips_e = sum(int((e.bool() != r).sum()) for e, r in zip(engine_masks, seen64)) if engine_masks else -1
        flips_t = sum(int((a != r).sum()) for a, r in zip(seen32, seen64))
        ges = global_rel([grads[k] for k in names], [same[torch.float64][k] for k in names]) if same else math.nan
        gts = global_rel([same[torch.float32][k] for k in names], [same[torch.float64][k] for k in names]) if same else math.nan
        # the optimiser alone: torch's SGD on the engine's own gradient, from the engine's state
        ms = model_for(before, torch.float32)
        os_ = make_sgd(ms, meta, mom_before)
        for k, p in ms.named_parameters():
            p.grad = grads[k].clone()
        set_hparams(os_, meta)
        os_.step()
        sgd_err = global_rel([p.detach() for p in ms.parameters()], [after[k] for k, _ in ms.named_parameters()])
        sgd_mom = global_rel(*zip(*[(b, a) for _, a, b in momentum_pairs(ms, os_, mom_after)]))
        if not max(sgd_err, sgd_mom) <= args.sgd_tol:
            failures.append(f"step {step}: the optimiser step differs: SGD on the engine's gradient gives weights off by {sgd_err:.2e} "
                            f"and momentum off by {sgd_mom:.2e}")
        bn_err = global_rel(*zip(*[(b, a) for _, a, b in state_pairs(m32, after, ("buffer",))]))
        if not bn_err <= args.bn_tol:
            failures.append(f"step {step}: the batch-norm running statistics after the step are off by {bn_err:.2e}")
        full = {
            "step": step, "sgd_engine_vs_torch": sgd_err, "sgd_momentum_engine_vs_torch": sgd_mom, "bn_stats_engine_vs_torch32": bn_err,
            "loss_engine_vs_f64": abs(e_loss - l64) / abs(l64), "loss_torch32_vs_f64": abs(l32 - l64) / abs(l64),
            "grad_engine_vs_f64": ge[0], "grad_torch32_vs_f64": gt[0],
            "grad_engine_vs_f64_worst": ge[1], "grad_torch32_vs_f64_worst": gt[1],
            "relu_flips_engine_vs_f64": flips_e, "relu_flips_torch32_vs_f64": flips_t,
            "grad_same_relu_engine_vs_f64": ges, "grad_same_relu_torch32_vs_f64": gts,
            "after_engine_vs_torch32": global_rel(*zip(*[(a, b) for _, a, b in state_pairs(m32, after)])),
            "momentum_engine_vs_torch32": global_rel(*zip(*[(a, b) for _, a, b in momentum_pairs(m32, o32, mom_after)])),
            "free_param_drift_engine_vs_torch32": drift_p, "free_param_drift_torch32_vs_torch64": drift_64,
            "free_buffer_drift": drift_b, "free_momentum_drift": drift_m,
            "grad_norm_engine": math.sqrt(sum(float(v.double().pow(2).sum()) for v in grads.values())),
        }
        if maps64 is not None:
            full["maps_engine_vs_f64"] = rel(tr["maps"], maps64)
            full["maps_torch32_vs_f64"] = rel(maps32, maps64)
        report["full"].append(full)
        if not ge[0] <= args.grad_max:
            failures.append(f"step {step}: the engine's gradient is off by {ge[0]:.2e} against float64 "
                            f"(worst tensor {ge[1][1]}, {ge[1][0]:.2e}); PyTorch float32 is off by {gt[0]:.2e}")
        if same and not ges <= args.grad_factor * gts + args.grad_floor:
            failures.append(f"step {step}: with the engine's own ReLU decisions its gradient is off by {ges:.2e} against float64, "
                            f"PyTorch float32's by {gts:.2e}: more than {args.grad_factor:g}x float noise")
    full = report["full"]
    print()
    print("full steps: normwise relative errors over all tensors together. The step redone from the engine's state")
    print("before it, against PyTorch float64 (eng = the engine's, t32 = PyTorch float32's): grad, and 'same' with the")
    print("engine's ReLU decisions imposed (only the arithmetic differs), flips = ReLU decisions unlike float64's; loss;")
    print("maps. after/mom: the engine's updated weights and momentum against PyTorch float32's; sgd: against torch's SGD")
    print("on the engine's own gradient; bn stats: running statistics after the step. drift: the free-running")
    print("replays' weights, engine against PyTorch float32, and PyTorch float32 against float64 (float noise's own).")
    print(f"{'step':>5} {'grad eng':>9} {'grad t32':>9} {'same eng':>9} {'same t32':>9} {'flips':>9} {'loss eng':>9} {'loss t32':>9} "
          f"{'after':>9} {'mom':>9} {'sgd':>9} {'bn stats':>9} {'maps eng':>9} {'maps t32':>9} {'drift eng':>9} {'drift t64':>9}")
    for f in full:
        flips = f"{f['relu_flips_engine_vs_f64']}/{f['relu_flips_torch32_vs_f64']}"
        print(f"{f['step']:>5} {f['grad_engine_vs_f64']:>9.2e} {f['grad_torch32_vs_f64']:>9.2e} "
              f"{f['grad_same_relu_engine_vs_f64']:>9.2e} {f['grad_same_relu_torch32_vs_f64']:>9.2e} {flips:>9} "
              f"{f['loss_engine_vs_f64']:>9.2e} "
              f"{f['loss_torch32_vs_f64']:>9.2e} {f['after_engine_vs_torch32']:>9.2e} {f['momentum_engine_vs_torch32']:>9.2e} "
              f"{max(f['sgd_engine_vs_torch'], f['sgd_momentum_engine_vs_torch']):>9.2e} {f['bn_stats_engine_vs_torch32']:>9.2e} "
              f"{f.get('maps_engine_vs_f64', float('nan')):>9.2e} {f.get('maps_torch32_vs_f64', float('nan')):>9.2e} "
              f"{f['free_param_drift_engine_vs_torch32']:>9.2e} {f['free_param_drift_torch32_vs_torch64']:>9.2e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    if failures:
        print()
        for f in failures:
            print("FAIL " + f)
        if args.check:
            return 1
    elif args.check:
        print("PASS: the mix is the engine's and every forced step agrees with PyTorch to float noise")
    return 0


if __name__ == "__main__":
    sys.exit(main())
