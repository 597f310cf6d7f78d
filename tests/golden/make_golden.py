#!/usr/bin/python3
"""Generate golden tensors for the C# engine tests from an independent
implementation (PyTorch).

Writes, next to this script:

  preactresnet18_w4.bin
      PreActResNet18 (CIFAR variant, bench/reference/preactresnet.py), width 4,
      10 classes, batch N=3, 32x32 float32 input, torch.manual_seed(0).
        init.<name>    every state_dict entry (parameters and BN buffers, not
                       num_batches_tracked) before the forward pass; BN
                       weight/bias/running_mean/running_var are randomised so a
                       test is sensitive to all of them
        x              (3,3,32,32) standard-normal input
        targets        (3,10) soft targets, softmax(2*randn), rows sum to 1
        logits         (3,10) training-mode forward (batch statistics)
        loss           (1,)   mean_i( -sum_c targets * log_softmax(logits) )
        grad.<param>   d loss / d param for every parameter
        dx             (3,3,32,32) d loss / d x
        after.<name>   every BN running_mean / running_var after that single
                       training forward (momentum 0.1, unbiased batch variance)
        eval_logits    (3,10) eval-mode forward of the same x afterwards
                       (uses the updated running statistics)

  optimizers.bin
      p0 (37,), grad.1 .. grad.5 (37,) standard normal (torch.manual_seed(0)),
      and the parameter after each of five steps, starting from p0 and setting
      p.grad = grad.k before step k:
        sgd.step{k}    torch.optim.SGD(lr=0.1, momentum=0.9, nesterov=True,
                       weight_decay=0.05, dampening=0)
                         g = grad + wd*p
                         buf = g (step 1) else momentum*buf + g
                         p  -= lr * (g + momentum*buf)
        adam.step{k}   torch.optim.Adam(lr=0.01, betas=(0.9,0.999), eps=1e-5,
                       weight_decay=0.05) -- coupled L2 decay (not AdamW):
                         g = grad + wd*p
                         m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
                         p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
      The hyper-parameters are stored as (1,) tensors: sgd.lr, sgd.momentum,
      sgd.weight_decay, adam.lr, adam.beta1, adam.beta2, adam.eps,
      adam.weight_decay.

File format (little-endian), read by tests/Golden/TensorFile.cs:
  ASCII magic "RLMT", int32 version = 1, int32 entry count, then per entry:
  int32 name length in bytes, UTF-8 name, int32 rank, int32 dims[rank],
  float32 data[product(dims)] (row-major, contiguous).

Regenerate (from the repository root; deterministic, single-threaded CPU):
  /usr/bin/python3 tests/golden/make_golden.py
The outputs are committed; regenerate only when the definitions here change.
"""

import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "reference"))
from preactresnet import PreActResNet18, soft_cross_entropy  # noqa: E402

MAGIC = b"RLMT"
VERSION = 1


# ---------------------------------------------------------------- file format

def write_tensor_file(path, entries):
    """entries: list of (name, array-like). Everything is stored as float32."""
    names = [n for n, _ in entries]
    if len(set(names)) != len(names):
        raise ValueError("duplicate entry names")
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<ii", VERSION, len(entries)))
        for name, value in entries:
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            arr = np.ascontiguousarray(np.asarray(value, dtype="<f4"))
            if arr.ndim == 0:
                arr = arr.reshape(1)
            raw = name.encode("utf-8")
            f.write(struct.pack("<i", len(raw)))
            f.write(raw)
            f.write(struct.pack("<i", arr.ndim))
            f.write(struct.pack("<%di" % arr.ndim, *arr.shape))
            f.write(arr.tobytes(order="C"))


def read_tensor_file(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != MAGIC:
        raise ValueError("%s: bad magic" % path)
    version, count = struct.unpack_from("<ii", data, 4)
    if version != VERSION:
        raise ValueError("%s: unsupported version %d" % (path, version))
    pos, out = 12, {}
    for _ in range(count):
        (nlen,) = struct.unpack_from("<i", data, pos); pos += 4
        name = data[pos:pos + nlen].decode("utf-8"); pos += nlen
        (rank,) = struct.unpack_from("<i", data, pos); pos += 4
        dims = struct.unpack_from("<%di" % rank, data, pos); pos += 4 * rank
        n = int(np.prod(dims, dtype=np.int64))
        out[name] = np.frombuffer(data, dtype="<f4", count=n, offset=pos).reshape(dims)
        pos += 4 * n
    if pos != len(data):
        raise ValueError("%s: %d trailing bytes" % (path, len(data) - pos))
    return out


def check_roundtrip(path, entries):
    back = read_tensor_file(path)
    assert list(back.keys()) == [n for n, _ in entries]
    for name, value in entries:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        ref = np.asarray(value, dtype=np.float32).reshape(back[name].shape)
        assert np.array_equal(back[name], ref), name


# ------------------------------------------------------------ classifier file

def make_preactresnet(path):
    torch.manual_seed(0)
    model = PreActResNet18(width=4, num_classes=10).float()

    # Non-default BN affine parameters and running statistics.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                assert m.momentum == 0.1 and m.eps == 1e-5
                c = m.num_features
                m.weight.copy_(1.0 + 0.1 * torch.randn(c))
                m.bias.copy_(0.1 * torch.randn(c))
                m.running_mean.copy_(0.1 * torch.randn(c))
                m.running_var.copy_(0.5 + torch.rand(c))

    state = {k: v.detach().clone() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    bn_buffers = [k for k in state if k.endswith("running_mean") or k.endswith("running_var")]

    x = torch.randn(3, 3, 32, 32)
    targets = torch.softmax(2.0 * torch.randn(3, 10), dim=1)
    x.requires_grad_(True)

    model.train()
    logits = model(x)
    loss = soft_cross_entropy(logits, targets)
    loss.backward()

    model.eval()
    with torch.no_grad():
        eval_logits = model(x)

    after = model.state_dict()
    entries = [("init." + k, v) for k, v in state.items()]
    entries += [("x", x), ("targets", targets), ("logits", logits),
                ("loss", loss.reshape(1))]
    entries += [("grad." + k, p.grad) for k, p in model.named_parameters()]
    entries += [("dx", x.grad)]
    entries += [("after." + k, after[k]) for k in bn_buffers]
    entries += [("eval_logits", eval_logits)]
    for name, value in entries:
        assert value.dtype == torch.float32 and torch.isfinite(value).all(), name
    assert targets.min() >= 0 and torch.allclose(targets.sum(1), torch.ones(3))
    assert len([k for k, _ in model.named_parameters()]) == sum(
        1 for n, _ in entries if n.startswith("grad."))

    write_tensor_file(path, entries)
    check_roundtrip(path, entries)
    return entries


# ------------------------------------------------------------ optimizers file

SGD_HP = dict(lr=0.1, momentum=0.9, weight_decay=0.05)
ADAM_HP = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-5, weight_decay=0.05)
STEPS = 5


def run_optimizer(make_opt, p0, grads):
    p = torch.nn.Parameter(p0.clone())
    opt = make_opt([p])
    out = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        out.append(p.detach().clone())
    return out


def numpy_sgd(p0, grads):
    lr, mu, wd = SGD_HP["lr"], SGD_HP["momentum"], SGD_HP["weight_decay"]
    p, buf, out = p0.astype(np.float64), None, []
    for g in grads:
        d = g + wd * p
        buf = d.copy() if buf is None else mu * buf + d
        p = p - lr * (d + mu * buf)
        out.append(p)
    return out


def numpy_adam(p0, grads):
    lr, b1, b2 = ADAM_HP["lr"], ADAM_HP["beta1"], ADAM_HP["beta2"]
    eps, wd = ADAM_HP["eps"], ADAM_HP["weight_decay"]
    p = p0.astype(np.float64)
    m, v, out = np.zeros_like(p), np.zeros_like(p), []
    for t, g in enumerate(grads, start=1):
        d = g + wd * p
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d * d
        p = p - lr / (1 - b1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
        out.append(p)
    return out


def make_optimizers(path):
    torch.manual_seed(0)
    p0 = torch.randn(37)
    grads = [torch.randn(37) for _ in range(STEPS)]

    sgd = run_optimizer(lambda ps: torch.optim.SGD(
        ps, lr=SGD_HP["lr"], momentum=SGD_HP["momentum"], nesterov=True,
        weight_decay=SGD_HP["weight_decay"], dampening=0), p0, grads)
    adam = run_optimizer(lambda ps: torch.optim.Adam(
        ps, lr=ADAM_HP["lr"], betas=(ADAM_HP["beta1"], ADAM_HP["beta2"]),
        eps=ADAM_HP["eps"], weight_decay=ADAM_HP["weight_decay"]), p0, grads)

    # Independent float64 check that the formulas documented above are what
    # torch actually does.
    gnp = [g.numpy() for g in grads]
    for got, ref in zip(sgd, numpy_sgd(p0.numpy(), gnp)):
        assert np.allclose(got.numpy(), ref, rtol=1e-5, atol=1e-6)
    for got, ref in zip(adam, numpy_adam(p0.numpy(), gnp)):
        assert np.allclose(got.numpy(), ref, rtol=1e-5, atol=1e-6)

    entries = [("p0", p0)]
    entries += [("grad.%d" % k, g) for k, g in enumerate(grads, start=1)]
    entries += [("sgd.step%d" % k, s) for k, s in enumerate(sgd, start=1)]
    entries += [("adam.step%d" % k, a) for k, a in enumerate(adam, start=1)]
    entries += [("sgd." + k, np.array([v], dtype=np.float32)) for k, v in SGD_HP.items()]
    entries += [("adam." + k, np.array([v], dtype=np.float32)) for k, v in ADAM_HP.items()]

    write_tensor_file(path, entries)
    check_roundtrip(path, entries)
    return entries


def main():
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    for fname, make in (("preactresnet18_w4.bin", make_preactresnet),
                        ("optimizers.bin", make_optimizers)):
        path = os.path.join(HERE, fname)
        entries = make(path)
        print("%s: %d entries, %d bytes" % (path, len(entries), os.path.getsize(path)))


if __name__ == "__main__":
    main()
