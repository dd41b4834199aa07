#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""LeNet-5 backprop in PyTorch: the comparison baseline of BM_train_epoch_lenet5_backprop.

The network of the benchmark: conv 6@5x5 (padding 2), tanh, max-pool 2, conv 16@5x5, tanh,
max-pool 2, 120, tanh, 84, tanh, 10; softmax cross-entropy, plain SGD (learning rate 0.01),
batch 64, one epoch of Fashion-MNIST's 60000 training images in a shuffled order, one thread —
written as a PyTorch user would (nn.Sequential, autograd, torch.optim.SGD), the data already in
one tensor so that no DataLoader overhead is counted. PyTorch is channels-first (NCHW); pnn is
channels-last; the arithmetic is the same.

Not part of the build. Run it on the same machine as the benchmark (Debian: python3-torch):
    OMP_NUM_THREADS=1 python3 benchmarks/reference/lenet5_pytorch.py --epochs 3
and compare its samples/s (the median epoch) with BM_train_epoch_lenet5_backprop/threads:1's
items_per_second.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backprop_pytorch import load as load_flat, time_epochs  # noqa: E402


def lenet5():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data-dir', default=os.environ.get('PNN_DATA_DIR', '/usr/share/datasets/fashion-mnist'))
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x, y = load_flat(args.data_dir, 'train')
    time_epochs(lenet5(), x.reshape(-1, 1, 28, 28), y, args.epochs, args.batch)


if __name__ == '__main__':
    main()
