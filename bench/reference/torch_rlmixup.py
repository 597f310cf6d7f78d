#!/usr/bin/python3
"""PyTorch reference of one RL-Mixup step, phase for phase the twin of `rlmixup bench`.

Used only to compare speed on the same machine. The phases and what each one does:
  data      shuffled batch from a uint8 (N,3,32,32) set: random crop (zero padding 2 in raw
            0..255 space), horizontal flip, normalise, to the device
  saliency  forward (train mode) + soft-target cross-entropy + d loss / d input only, then the
            (B,16,16) maps: channel L2, 2x2 average pooling, each map normalised to sum 1
  policy    the agent's actor-critic on the (1,B,16,16) observation: three valid 3x3 convs
            200-300-400 + ReLU, global average pool, linear 512 + tanh, policy MLP 64-64 (tanh)
            to B x 10 logits, value MLP 256-256 to 1; one categorical sample per image
  mask_mix  per-image percentile (numpy's linear interpolation) of action a at q = 11a, masks
            s >= t, nearest upsampling, a partner permutation, (l1, l2) ~ Dirichlet(0.5, 0.5) per
            batch, the mix  inter*(l1 x + l2 x_p) + ~inter*(m1 x + m2 x_p)  and its soft labels
  train     zero_grad, forward, soft-target cross-entropy, backward, SGD (Nesterov, momentum 0.9,
            weight decay 1e-4) step
  ppo       one epoch of Stable-Baselines3 PPO minibatch updates (batch 100, clip 0.2, value
            coefficient 0.5, gradient norm 0.5, Adam eps 1e-5) over a rollout of R observations,
            times n_epochs (20) / R: the update's cost per step
  reward    top-1 of the classifier (eval mode) on 1,000 held-out images, / 50 steps
  total     the sum of the step's phases plus the amortised ppo and reward

Variants (GPU): --amp (bf16 autocast, channels_last) and --compile (torch.compile of the
classifier, where this PyTorch has it). The classifier is bench/reference/preactresnet.py.

Usage:
  /usr/bin/python3 bench/reference/torch_rlmixup.py --width 16 --steps 10 --warmup 2 \
      [--device cpu|cuda] [--amp] [--compile] [--threads N] [--json out.json]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from preactresnet import PreActResNet18, soft_cross_entropy  # noqa: E402

MEAN = [129.3 / 255, 124.1 / 255, 112.4 / 255]
STD = [68.2 / 255, 65.4 / 255, 70.4 / 255]
REWARD_IMAGES, REWARD_INTERVAL, PPO_EPOCHS, PPO_BATCH = 1000, 50, 20, 100


class ActorCritic(nn.Module):
    """The agent: Stable-Baselines3 ActorCriticPolicy with the paper's CNN features extractor."""

    def __init__(self, channels, dims, classes, convs=(200, 300, 400), features=512, pi=(64, 64), vf=(256, 256)):
        super().__init__()
        layers, c = [], channels
        for o in convs:
            layers += [nn.Conv2d(c, o, 3), nn.ReLU()]
            c = o
        self.cnn = nn.Sequential(*layers)
        self.linear = nn.Linear(c, features)

        def mlp(widths):
            out, f = [], features
            for w in widths:
                out += [nn.Linear(f, w), nn.Tanh()]
                f = w
            return nn.Sequential(*out), f

        self.pi, fp = mlp(pi)
        self.vf, fv = mlp(vf)
        self.action = nn.Linear(fp, dims * classes)
        self.value = nn.Linear(fv, 1)
        self.dims, self.classes = dims, classes

    def forward(self, obs):
        h = self.cnn(obs).mean(dim=(2, 3))
        h = torch.tanh(self.linear(h))
        logits = self.action(self.pi(h)).view(-1, self.dims, self.classes)
        return logits, self.value(self.vf(h)).squeeze(-1)


def percentile_masks(maps, q):
    """masks (B,p,p) = maps >= t_i, t_i the q_i-th percentile of image i's map (linear interpolation)."""
    b = maps.shape[0]
    v, _ = maps.reshape(b, -1).sort(dim=1)
    n = v.shape[1]
    pos = q * (n - 1) / 100
    lo = pos.floor().long().clamp(0, n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = pos - lo.to(pos.dtype)
    vlo, vhi = v.gather(1, lo[:, None])[:, 0], v.gather(1, hi[:, None])[:, 0]
    t = vlo + frac * (vhi - vlo)
    return maps >= t[:, None, None]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--ppo-rollout", type=int, default=100)
    ap.add_argument("--ppo-repeats", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast and channels_last (GPU)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the classifier")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    def sync():
        if cuda:
            torch.cuda.synchronize()

    B, K, P = args.batch, args.classes, 16
    memory_format = torch.channels_last if args.amp else torch.contiguous_format
    model = PreActResNet18(width=args.width, num_classes=K).to(dev, memory_format=memory_format)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    net = model
    variant = "eager fp32"
    if args.compile:
        if hasattr(torch, "compile"):
            net = torch.compile(model)
            variant = "torch.compile"
        else:
            print("torch.compile is not available in PyTorch %s; running eager" % torch.__version__)
            args.compile = False
    if args.amp:
        variant = ("torch.compile + " if args.compile else "") + "AMP bf16 channels_last"

    def autocast():
        if args.amp:
            return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
        return torch.autocast(device_type=dev.type, enabled=False)

    agent = ActorCritic(B, B, 10).to(dev)
    agent_opt = torch.optim.Adam(agent.parameters(), lr=3e-4, eps=1e-5)
    n_agent = sum(p.numel() for p in agent.parameters())

    # A uint8 training set of CIFAR's shape (random pixels; speed does not depend on content).
    train_u8 = torch.randint(0, 256, (max(1000, B), 3, 32, 32), dtype=torch.uint8)
    train_labels = torch.randint(0, K, (train_u8.shape[0],))
    test_u8 = torch.randint(0, 256, (REWARD_IMAGES, 3, 32, 32), dtype=torch.uint8)
    test_labels = torch.randint(0, K, (REWARD_IMAGES,))
    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255
    pad = 2
    rollout = max(args.ppo_rollout, args.warmup + args.steps)
    buffer = {"obs": [], "act": [], "logp": [], "val": []}

    def data():
        idx = torch.randint(0, train_u8.shape[0], (B,))
        raw = F.pad(train_u8[idx].float(), (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (B,))
        dx = torch.randint(0, 2 * pad + 1, (B,))
        rows = (dy[:, None] + torch.arange(32)[None, :])[:, None, :, None].expand(B, 3, 32, 32 + 2 * pad)
        crop = raw.gather(2, rows)
        cols = (dx[:, None] + torch.arange(32)[None, :])[:, None, None, :].expand(B, 3, 32, 32)
        crop = crop.gather(3, cols)
        flip = torch.rand(B) < 0.5
        crop = torch.where(flip[:, None, None, None], crop.flip(3), crop)
        x = ((crop - mean) / std).to(dev, memory_format=memory_format, non_blocking=True)
        y = F.one_hot(train_labels[idx], K).float().to(dev, non_blocking=True)
        return x, y

    def saliency(x, y):
        xs = x.detach().requires_grad_(True)
        with autocast():
            loss = soft_cross_entropy(net(xs).float(), y)
        (g,) = torch.autograd.grad(loss, xs)
        s = g.float().pow(2).sum(1).sqrt()
        s = F.avg_pool2d(s[:, None], 32 // P)[:, 0]
        total = s.sum(dim=(1, 2), keepdim=True)
        return torch.where(total > 0, s / total.clamp_min(1e-30), torch.full_like(s, 1.0 / (P * P)))

    def policy(maps):
        with torch.no_grad():
            obs = maps[None]
            logits, value = agent(obs)
            dist = torch.distributions.Categorical(logits=logits)
            a = dist.sample()
            logp = dist.log_prob(a).sum(-1)
        if len(buffer["obs"]) < rollout:
            buffer["obs"].append(obs[0])
            buffer["act"].append(a[0])
            buffer["logp"].append(logp[0])
            buffer["val"].append(value[0])
        return a[0]

    def mask_mix(x, y, maps, actions):
        q = actions.to(maps.dtype) * 11
        m = percentile_masks(maps, q)
        m = m.repeat_interleave(32 // P, 1).repeat_interleave(32 // P, 2)[:, None]
        perm = torch.randperm(B, device=dev)
        lam = torch.distributions.Dirichlet(torch.tensor([0.5, 0.5])).sample()
        l1, l2 = float(lam[0]), float(lam[1])
        m1, m2 = m, m[perm]
        inter = m1 & m2
        xp = x[perm]
        mixed = torch.where(inter, l1 * x + l2 * xp, m1.to(x.dtype) * x + m2.to(x.dtype) * xp)
        f_inter = inter.float().mean(dim=(1, 2, 3))
        f1 = (m1 & ~m2).float().mean(dim=(1, 2, 3))
        f2 = (~m1 & m2).float().mean(dim=(1, 2, 3))
        yp = y[perm]
        targets = f_inter[:, None] * (l1 * y + l2 * yp) + f1[:, None] * y + f2[:, None] * yp
        return mixed.contiguous(memory_format=memory_format), targets

    def train(mixed, targets):
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = soft_cross_entropy(net(mixed).float(), targets)
        loss.backward()
        opt.step()

    def ppo_epoch():
        obs = torch.stack(buffer["obs"])
        act = torch.stack(buffer["act"])
        old_logp = torch.stack(buffer["logp"])
        values = torch.stack(buffer["val"])
        returns = values + 0.01 * torch.randn_like(values)
        adv = returns - values
        order = torch.randperm(obs.shape[0], device=dev)
        for start in range(0, obs.shape[0], PPO_BATCH):
            i = order[start:start + PPO_BATCH]
            logits, v = agent(obs[i])
            dist = torch.distributions.Categorical(logits=logits)
            logp = dist.log_prob(act[i]).sum(-1)
            entropy = dist.entropy().sum(-1)
            a = adv[i]
            a = (a - a.mean()) / (a.std() + 1e-8)
            ratio = torch.exp(logp - old_logp[i])
            pg = -torch.min(a * ratio, a * ratio.clamp(0.8, 1.2)).mean()
            loss = pg + 0.5 * F.mse_loss(returns[i], v) - 0.0 * entropy.mean()
            agent_opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
            agent_opt.step()

    def reward():
        model.eval()
        correct = 0
        with torch.no_grad(), autocast():
            for s in range(0, REWARD_IMAGES, B):
                x = ((test_u8[s:s + B].float() - mean) / std).to(dev, memory_format=memory_format)
                correct += int((net(x).argmax(1).cpu() == test_labels[s:s + B]).sum())
        model.train()
        return correct / REWARD_IMAGES

    names = ["data", "saliency", "policy", "mask_mix", "train"]
    samples = {n: [] for n in names}
    totals = []
    for step in range(args.warmup + args.steps):
        times = []
        sync()
        t0 = start = time.perf_counter()

        def mark():
            nonlocal t0
            sync()
            t = time.perf_counter()
            times.append((t - t0) * 1e3)
            t0 = t

        x, y = data(); mark()
        maps = saliency(x, y); mark()
        actions = policy(maps); mark()
        mixed, targets = mask_mix(x, y, maps, actions); mark()
        train(mixed, targets); mark()
        if step >= args.warmup:
            for n, t in zip(names, times):
                samples[n].append(t)
            totals.append((time.perf_counter() - start) * 1e3)

    ppo = []
    for repeat in range(args.ppo_repeats + 1):  # the first update is an untimed warmup
        while len(buffer["obs"]) < rollout:
            policy(torch.rand(B, P, P, device=dev) * 2 / (P * P))
        sync()
        t = time.perf_counter()
        ppo_epoch()
        sync()
        if repeat > 0:
            ppo.append((time.perf_counter() - t) * 1e3 * PPO_EPOCHS / rollout)
        for k in buffer:
            buffer[k].clear()

    rewards = []
    for i in range(max(1, min(args.steps, 5)) + 1):
        sync()
        t = time.perf_counter()
        reward()
        sync()
        if i > 0:
            rewards.append((time.perf_counter() - t) * 1e3 / REWARD_INTERVAL)

    samples["ppo"] = ppo
    samples["reward"] = rewards
    extra = statistics.median(ppo) + statistics.median(rewards)
    samples["total"] = [t + extra for t in totals]
    phases = {}
    for n, ms in samples.items():
        phases[n] = {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "times_ms": ms}
    total = phases["total"]["median_ms"]
    test_eval_s = phases["reward"]["median_ms"] * REWARD_INTERVAL / 1e3 * 10
    device_name = torch.cuda.get_device_name(dev) if cuda else "cpu, %d thread(s), %s" % (torch.get_num_threads(), platform.machine())
    meta = {"engine": "pytorch", "torch": torch.__version__, "variant": variant, "device": device_name,
            "width": args.width, "batch": B, "classes": K, "params": n_params, "agent_params": n_agent,
            "steps": args.steps, "warmup": args.warmup, "ppo_rollout": rollout, "ppo_repeats": args.ppo_repeats}
    result = {"meta": meta, "phases": phases, "images_per_s": B / (total / 1e3),
              "epoch_from_phases_s": 50000 / B * total / 1e3 + test_eval_s}

    print("PyTorch %s (%s) RL-Mixup step on %s" % (torch.__version__, variant, device_name))
    print("PreActResNet18 width %d (%d params), %d classes, batch %d; agent %d params; median of %d steps after %d warmup"
          % (args.width, n_params, K, B, n_agent, args.steps, args.warmup))
    print("%-10s %10s %10s %10s %7s" % ("phase", "median ms", "min ms", "max ms", "share"))
    for n, r in phases.items():
        share = "" if n == "total" else "%6.1f%%" % (100 * r["median_ms"] / total)
        print("%-10s %10.2f %10.2f %10.2f %7s" % (n, r["median_ms"], r["min_ms"], r["max_ms"], share))
    print("images/s   %10.1f" % result["images_per_s"])
    print("epoch      %10.1f s  estimated from the medians: 500 steps + top-1 on 10,000 test images" % result["epoch_from_phases_s"])
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
