#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Backprop in PyTorch: the comparison baseline of BM_train_epoch_backprop.

The 784-256-10 tanh MLP, softmax cross-entropy, plain SGD (learning rate 0.01), batch 64, one
epoch of Fashion-MNIST's 60000 training images in a shuffled order, one thread — written as a
PyTorch user would (nn.Sequential, autograd, torch.optim.SGD), with the data already in one
tensor so that no DataLoader overhead is counted.

Not part of the build. Run it on the same machine as the benchmark (Debian: python3-torch):
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python3 benchmarks/reference/backprop_pytorch.py --epochs 3
and compare its samples/s (the median epoch) with BM_train_epoch_backprop's items_per_second.
"""
import argparse
import gzip
import os
import statistics
import time

import numpy as np
import torch


def load(directory, prefix):
    with gzip.open(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz')) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255
    with gzip.open(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz')) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def time_epochs(net, x, y, epochs, batch, lr=0.01):
    """Trains `net` with SGD on (x, y) for `epochs` shuffled epochs; prints and returns the
    samples/s of each epoch."""
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    rates = []
    for epoch in range(epochs):
        order = torch.randperm(x.shape[0])
        t0 = time.perf_counter()
        for first in range(0, x.shape[0], batch):
            idx = order[first:first + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        rates.append(x.shape[0] / dt)
        print(f'epoch {epoch + 1}: {dt:.3f} s, {rates[-1]:.0f} samples/s, last loss {loss.item():.4f}')
    print(f'median: {statistics.median(rates):.0f} samples/s')
    return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data-dir', default=os.environ.get('PNN_DATA_DIR', '/usr/share/datasets/fashion-mnist'))
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--batch', type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(1)
    x, y = load(args.data_dir, 'train')
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.Tanh(), torch.nn.Linear(256, 10))
    time_epochs(net, x, y, args.epochs, args.batch)


if __name__ == '__main__':
    main()
