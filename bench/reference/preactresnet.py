"""PreActResNet18, CIFAR variant, as used by the RL-Mixup engine.

This is the reference definition shared by tests/golden/make_golden.py (golden
tensors for the C# engine) and bench/reference/torch_step.py (PyTorch speed
reference). Module and parameter names are part of the contract: the golden
files store tensors under the state_dict names produced here, e.g.
``layer2.0.shortcut.0.weight``.

Architecture (w = width, 64 in the paper):
  conv1      3x3 conv, 3 -> w, stride 1, pad 1, no bias (no BN/ReLU after it)
  layer1..4  two PreActBlocks each, w/2w/4w/8w channels, first stride 1/2/2/2
  head       global average pool over the 4x4 map, flatten, Linear(8w, classes)
No final BN-ReLU. Default PyTorch init; BatchNorm momentum 0.1, eps 1e-5.
"""

import torch.nn as nn
import torch.nn.functional as F


class PreActBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    def __init__(self, width=64, num_classes=10):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(3, w, kernel_size=3, stride=1, padding=1, bias=False)
        self.layer1 = self._make_layer(w, w, 1)
        self.layer2 = self._make_layer(w, 2 * w, 2)
        self.layer3 = self._make_layer(2 * w, 4 * w, 2)
        self.layer4 = self._make_layer(4 * w, 8 * w, 2)
        self.linear = nn.Linear(8 * w, num_classes)

    @staticmethod
    def _make_layer(in_planes, planes, stride):
        return nn.Sequential(PreActBlock(in_planes, planes, stride),
                             PreActBlock(planes, planes, 1))

    def forward(self, x):
        out = self.conv1(x)
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = F.adaptive_avg_pool2d(out, 1)
        out = out.flatten(1)
        return self.linear(out)


def soft_cross_entropy(logits, targets):
    """mean_i( -sum_c targets[i, c] * log_softmax(logits)[i, c] )"""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
