#!/usr/bin/python3
"""The engine's training recipe, written independently in PyTorch, for seed-spread comparisons.

Same recipe as `rlmixup train` (docs/method.md), with PyTorch's own building blocks and its own
random stream: CIFAR-10/100 binary files, random crop with zero padding 2 and a horizontal flip,
the CIFAR-100 normalisation, PreActResNet18 (bench/reference/preactresnet.py), soft-target
cross-entropy, SGD (Nesterov, momentum 0.9, weight decay 1e-4) and torch's OneCycleLR
(max_lr, div_factor 50, final_div_factor 2, pct_start 1/3, cosine, momentum not cycled), batch 100
with the last incomplete batch dropped. Policies:

  none         the clean batch
  input-mixup  x' = lam x + (1 - lam) x[perm], lam ~ Beta(1, 1) per batch
  cutmix       one box per batch for lam ~ Beta(1, 1), lam corrected to the kept area
  random       RL-Mixup's saliency masks with uniformly drawn actions
  rl           RL-Mixup: a Stable-Baselines3-style PPO agent (the paper's network, n_steps = two
               epochs, 20 epochs of minibatch 100, gamma 1.001, GAE 0.95, clip 0.2, Adam 3e-4
               eps 1e-5, max_grad_norm 0.5) rewarded by eq. 5 every 50 steps on 10% of the test set

Writes OUT/metrics.jsonl (one object per epoch: train_loss, test_top1, test_top5, test_loss, lr) and,
with --step-stats N, OUT/steps.jsonl every N steps: the loss, the global gradient norm, the
per-layer parameter norms, the smallest |gamma| of any batch norm and the fraction of dead ReLU
channels (zero for every image and position of the batch), the same fields as the engine's
`--step-stats`.

  /usr/bin/python3 bench/reference/torch_train.py --data DIR --policy input-mixup --width 16 \
      --epochs 10 --seed 1 --out runs/torch-im-1 [--lr-max 0.2] [--threads 1] [--init FILE] [--device cuda]

--save-init FILE writes the weights this seed initialises (safetensors, the state-dict names the
engine's --init-weights reads) and exits. --device cuda trains on a GPU; the data, the augmentation
and every random draw stay on the CPU, so the stream of a seed is the same on either device.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from preactresnet import PreActResNet18, soft_cross_entropy  # noqa: E402
import safetensors_io  # noqa: E402

MEAN = torch.tensor([129.3, 124.1, 112.4]).view(1, 3, 1, 1) / 255
STD = torch.tensor([68.2, 65.4, 70.4]).view(1, 3, 1, 1) / 255


def read_cifar(folder, train, limit):
    """uint8 images (N,3,32,32) and labels (N,) of the CIFAR-10 or CIFAR-100 binary files in folder."""
    if os.path.exists(os.path.join(folder, "data_batch_1.bin")):
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"]
        label_bytes, label_at = 1, 0
    else:
        names = ["train.bin"] if train else ["test.bin"]
        label_bytes, label_at = 2, 1
    rows = []
    for n in names:
        raw = np.fromfile(os.path.join(folder, n), dtype=np.uint8)
        rows.append(raw.reshape(-1, label_bytes + 3072))
    data = np.concatenate(rows)
    if limit:
        data = data[:limit]
    labels = torch.from_numpy(data[:, label_at].astype(np.int64))
    images = torch.from_numpy(data[:, label_bytes:].copy()).view(-1, 3, 32, 32)
    return images, labels


def augment(images, pad, flip):
    """Random crop 32 from the zero-padded image, then a horizontal flip with p = 0.5; normalised."""
    b = images.shape[0]
    padded = F.pad(images.float(), (pad, pad, pad, pad))
    out = torch.empty(b, 3, 32, 32)
    oy = torch.randint(0, 2 * pad + 1, (b,))
    ox = torch.randint(0, 2 * pad + 1, (b,))
    flips = torch.rand(b) < 0.5 if flip else torch.zeros(b, dtype=torch.bool)
    for i in range(b):
        c = padded[i, :, oy[i]:oy[i] + 32, ox[i]:ox[i] + 32]
        out[i] = c.flip(2) if flips[i] else c
    return (out / 255 - MEAN) / STD


def normalise(images):
    return (images.float() / 255 - MEAN) / STD


def saliency_maps(model, x, y, patches):
    x = x.clone().requires_grad_(True)
    loss = soft_cross_entropy(model(x), y)
    (g,) = torch.autograd.grad(loss, x)
    s = g.pow(2).sum(1).sqrt()
    m = F.avg_pool2d(s.unsqueeze(1), 32 // patches).squeeze(1)
    total = m.sum(dim=(1, 2), keepdim=True)
    return torch.where(total > 0, m / total.clamp_min(1e-30), torch.full_like(m, 1.0 / (patches * patches)))


def mask_mix(x, y, maps, actions, n_actions, alpha):
    b, p = maps.shape[0], maps.shape[1]
    q = actions.float() * 99.0 / (n_actions - 1)
    v, _ = maps.reshape(b, -1).sort(dim=1)
    n = v.shape[1]
    pos = q * (n - 1) / 100
    lo = pos.floor().long().clamp(0, n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    t = v.gather(1, lo[:, None])[:, 0] + (pos - lo.float()) * (v.gather(1, hi[:, None])[:, 0] - v.gather(1, lo[:, None])[:, 0])
    m = (maps >= t[:, None, None]).float()
    up = F.interpolate(m[:, None], size=(32, 32), mode="nearest")
    perm = torch.randperm(b)
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    m1, m2 = up, up[perm]
    inter = (m1 == m2).float()
    mixed = inter * (lam * x + (1 - lam) * x[perm]) + (1 - inter) * (m1 * x + m2 * x[perm])
    fi = inter.mean(dim=(1, 2, 3))
    f1 = ((m1 > 0) & (m2 == 0)).float().mean(dim=(1, 2, 3))
    f2 = ((m1 == 0) & (m2 > 0)).float().mean(dim=(1, 2, 3))
    targets = (fi * lam + f1)[:, None] * y + (fi * (1 - lam) + f2)[:, None] * y[perm]
    return mixed, targets


class Agent(nn.Module):
    """SB3 ActorCriticPolicy with the paper's CNN extractor, orthogonal init with SB3's gains."""

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
        for mod in list(self.cnn) + [self.linear] + list(self.pi) + list(self.vf):
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.orthogonal_(mod.weight, math.sqrt(2))
                nn.init.zeros_(mod.bias)
        nn.init.orthogonal_(self.action.weight, 0.01)
        nn.init.zeros_(self.action.bias)
        nn.init.orthogonal_(self.value.weight, 1)
        nn.init.zeros_(self.value.bias)

    def forward(self, obs):
        h = self.cnn(obs).mean(dim=(2, 3))
        h = torch.tanh(self.linear(h))
        logits = self.action(self.pi(h)).view(-1, self.dims, self.classes)
        return logits, self.value(self.vf(h)).squeeze(-1)


class Ppo:
    def __init__(self, batch, actions, n_steps, gamma=1.001, gae_lambda=0.95, n_epochs=20, minibatch=100):
        self.net = Agent(batch, batch, actions)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=3e-4, eps=1e-5)
        self.n_steps, self.gamma, self.lam, self.n_epochs, self.minibatch = n_steps, gamma, gae_lambda, n_epochs, minibatch
        self.buf = []

    def act(self, maps):
        with torch.no_grad():
            logits, value = self.net(maps[None])
            dist = torch.distributions.Categorical(logits=logits)
            a = dist.sample()
            self.buf.append([maps.clone(), a[0], dist.log_prob(a).sum(-1)[0], value[0], 0.0, False])
        return a[0]

    def observe(self, reward, done):
        self.buf[-1][4] = reward
        self.buf[-1][5] = done

    def full(self):
        return len(self.buf) >= self.n_steps

    def update(self):
        obs = torch.stack([b[0] for b in self.buf])
        act = torch.stack([b[1] for b in self.buf])
        old_logp = torch.stack([b[2] for b in self.buf])
        values = torch.stack([b[3] for b in self.buf])
        rewards = torch.tensor([b[4] for b in self.buf])
        dones = torch.tensor([float(b[5]) for b in self.buf])
        n = len(self.buf)
        adv = torch.zeros(n)
        last = 0.0
        for t in reversed(range(n)):
            # The rollout ends on an episode boundary (done), so nothing is bootstrapped after it.
            next_value = values[t + 1] if t + 1 < n else torch.tensor(0.0)
            nonterminal = 1.0 - dones[t]
            delta = rewards[t] + self.gamma * next_value * nonterminal - values[t]
            last = delta + self.gamma * self.lam * nonterminal * last
            adv[t] = last
        returns = adv + values
        stats = {"clip_fraction": [], "approx_kl": []}
        for _ in range(self.n_epochs):
            order = torch.randperm(n)
            kls = []
            for s in range(0, n, self.minibatch):
                i = order[s:s + self.minibatch]
                logits, v = self.net(obs[i])
                dist = torch.distributions.Categorical(logits=logits)
                logp = dist.log_prob(act[i]).sum(-1)
                a = adv[i]
                if len(i) > 1:
                    a = (a - a.mean()) / (a.std() + 1e-8)
                ratio = torch.exp(logp - old_logp[i])
                pg = -torch.min(a * ratio, a * ratio.clamp(0.8, 1.2)).mean()
                loss = pg + 0.5 * F.mse_loss(returns[i], v)
                self.opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), 0.5)
                self.opt.step()
                with torch.no_grad():
                    lr_ = logp - old_logp[i]
                    kls.append(float(((lr_.exp() - 1) - lr_).mean()))
                    stats["clip_fraction"].append(float(((ratio - 1).abs() > 0.2).float().mean()))
            stats["approx_kl"] = kls
        self.buf.clear()
        return {k: float(np.mean(v)) for k, v in stats.items()}


def evaluate(model, images, labels, indices, batch):
    model.eval()
    correct = correct5 = 0
    loss = 0.0
    device = next(model.parameters()).device
    with torch.no_grad():
        for s in range(0, len(indices), batch):
            i = indices[s:s + batch]
            out = model(normalise(images[i]).to(device)).cpu()
            loss += float(F.cross_entropy(out, labels[i], reduction="sum"))
            top5 = out.topk(min(5, out.shape[1]), dim=1).indices
            correct += int((top5[:, 0] == labels[i]).sum())
            correct5 += int((top5 == labels[i][:, None]).any(dim=1).sum())
    model.train()
    n = max(1, len(indices))
    return correct / n, correct5 / n, loss / n


def step_stats(model, loss, relu_outputs):
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    gnorm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))
    layers = {}
    for name, p in model.named_parameters():
        key = name.rsplit(".", 1)[0]
        layers[key] = layers.get(key, 0.0) + float(p.detach().double().pow(2).sum())
    bn_min = min(float(m.weight.detach().abs().min()) for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    dead = total = 0
    for out in relu_outputs:
        alive = (out > 0).any(dim=0).any(dim=-1).any(dim=-1)
        dead += int((~alive).sum())
        total += alive.numel()
    return {"loss": loss, "grad_norm": gnorm, "param_norms": {k: math.sqrt(v) for k, v in layers.items()},
            "bn_gamma_min": bn_min, "dead_relu_fraction": dead / max(1, total)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder of the CIFAR-10 or CIFAR-100 binary files")
    ap.add_argument("--policy", default="input-mixup", choices=["none", "input-mixup", "cutmix", "random", "rl"])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr-max", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-train-images", type=int)
    ap.add_argument("--max-test-images", type=int)
    ap.add_argument("--crop-pad", type=int, default=2)
    ap.add_argument("--mixup-alpha", type=float, default=1.0)
    ap.add_argument("--alpha", type=float, default=0.5, help="Dirichlet(alpha, alpha) of RL-Mixup")
    ap.add_argument("--patches", type=int, default=16)
    ap.add_argument("--init", help="safetensors file with the classifier's starting weights")
    ap.add_argument("--step-stats", type=int, default=0, metavar="N", help="write steps.jsonl every N steps")
    ap.add_argument("--save-init", metavar="FILE", help="write this seed's initial weights to FILE (safetensors) and exit")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--out")
    args = ap.parse_args()
    if not args.out and not args.save_init:
        ap.error("--out is required (or --save-init)")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    train_x, train_y = read_cifar(args.data, True, args.max_train_images)
    test_x, test_y = read_cifar(args.data, False, args.max_test_images)
    classes = int(max(train_y.max(), test_y.max())) + 1
    classes = 10 if classes <= 10 else 100
    model = PreActResNet18(width=args.width, num_classes=classes)
    if args.init:
        model.load_state_dict(safetensors_io.read(args.init), strict=False)
    if args.save_init:
        safetensors_io.write(args.save_init, {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")},
                             {"seed": args.seed, "width": args.width, "classes": classes})
        return
    device = torch.device(args.device)
    model.to(device)
    steps_per_epoch = len(train_y) // args.batch
    total = steps_per_epoch * args.epochs
    opt = torch.optim.SGD(model.parameters(), lr=args.lr_max / 50, momentum=0.9, nesterov=True, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr_max, total_steps=total, pct_start=1 / 3,
                                                anneal_strategy="cos", cycle_momentum=False, div_factor=50,
                                                final_div_factor=2)
    relu_outputs = []
    want_relu = [False]

    def hook(_m, _i, out):
        if want_relu[0]:
            relu_outputs.append(out.detach())

    # F.relu calls are not modules: watch the inputs of every conv fed by a ReLU (conv1 and
    # shortcut of each block read relu(bn1(x)), conv2 reads relu(bn2(.))).
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d) and (name.endswith("conv1") or name.endswith("conv2")) and name != "conv1":
            mod.register_forward_hook(lambda m, i, o: hook(m, i, i[0]))

    agent = Ppo(args.batch, args.batch, 2 * steps_per_epoch) if args.policy == "rl" else None
    previous_v = 0.0
    metrics = open(os.path.join(args.out, "metrics.jsonl"), "w")
    steps_log = open(os.path.join(args.out, "steps.jsonl"), "w") if args.step_stats else None
    step = 0
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        order = torch.randperm(len(train_y))
        loss_sum = 0.0
        ppo = None
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            x = augment(train_x[idx], args.crop_pad, True).to(device)
            y = F.one_hot(train_y[idx], classes).float().to(device)
            if args.policy == "input-mixup":
                lam = float(torch.distributions.Beta(args.mixup_alpha, args.mixup_alpha).sample())
                perm = torch.randperm(len(idx))
                x, y = lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]
            elif args.policy == "cutmix":
                lam = float(torch.distributions.Beta(args.mixup_alpha, args.mixup_alpha).sample())
                perm = torch.randperm(len(idx))
                r = math.sqrt(1 - lam)
                ch, cw = int(32 * r), int(32 * r)
                cy, cx = int(torch.randint(0, 32, ())), int(torch.randint(0, 32, ()))
                y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, 32)
                x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, 32)
                x = x.clone()
                x[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
                kept = 1 - (y1 - y0) * (x1 - x0) / 1024
                y = kept * y + (1 - kept) * y[perm]
            elif args.policy in ("random", "rl"):
                maps = saliency_maps(model, x, y, args.patches)
                actions = agent.act(maps.cpu()).to(device) if agent else torch.randint(0, 10, (len(idx),)).to(device)
                x, y = mask_mix(x.detach(), y, maps, actions, 10, args.alpha)
            step += 1
            record = args.step_stats and step % args.step_stats == 0
            want_relu[0] = bool(record)
            relu_outputs.clear()
            opt.zero_grad()
            loss = soft_cross_entropy(model(x), y)
            if not math.isfinite(float(loss)):
                # As the engine does: stop at the first non-finite loss, with one line.
                print(f"error: epoch {epoch}, step {b + 1} of {steps_per_epoch} (global step {step}): the training loss is "
                      f"{float(loss)}: training diverged (--lr-max {args.lr_max})", file=sys.stderr)
                sys.exit(1)
            loss.backward()
            want_relu[0] = False
            if record:
                steps_log.write(json.dumps({"step": step, "lr": sched.get_last_lr()[0],
                                            **step_stats(model, float(loss), relu_outputs)}) + "\n")
            opt.step()
            sched.step()
            loss_sum += float(loss)
            if agent:
                r = 0.0
                if step % 50 == 0:
                    sample = torch.randperm(len(test_y))[:max(1, round(0.1 * len(test_y)))]
                    v = evaluate(model, test_x, test_y, sample, args.batch)[0]
                    r = epoch / args.epochs * (v - previous_v)
                    previous_v = v
                agent.observe(r, b == steps_per_epoch - 1)
                if agent.full():
                    ppo = agent.update()
        top1, top5, test_loss = evaluate(model, test_x, test_y, torch.arange(len(test_y)), args.batch)
        row = {"epoch": epoch, "train_loss": loss_sum / steps_per_epoch, "test_top1": top1, "test_top5": top5,
               "test_loss": test_loss, "lr": sched.get_last_lr()[0], "seconds": time.time() - t0}
        if ppo:
            row["ppo"] = ppo
        metrics.write(json.dumps(row) + "\n")
        metrics.flush()
        print(f"epoch {epoch}/{args.epochs}: loss {row['train_loss']:.4f}, test top-1 {100 * top1:.2f}%, "
              f"{row['seconds']:.1f} s", flush=True)
    metrics.close()
    if steps_log:
        steps_log.close()


if __name__ == "__main__":
    main()
