#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Equilibrium propagation in plain PyTorch: the comparison baseline of BM_train_epoch_ep.

The prototypical EP of Laborieux et al. (2021) on a 784-256-10 hard-sigmoid energy network
whose 10 outputs are states (MSE cost): free phase of T fixed-point steps from zero, nudged
phase(s) of K steps from the free state, centered (+beta, -beta) or one-sided estimate,
per-layer SGD rates (0.2, 0.1) with cosine decay, batch 50, Fashion-MNIST. Written as a
PyTorch user would: explicit matmuls under torch.no_grad(), one thread, the two centered
phases stacked into one 2n-row batch, the input drive W1 x computed once per batch.

Not part of the build. Run it on the same machine as the benchmark (Debian: python3-torch):
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python3 benchmarks/reference/ep_pytorch.py \
        --epochs 1 --estimator centered [--update alternating]
and compare its samples/s with BM_train_epoch_ep's items_per_second.
"""
import argparse
import gzip
import math
import os
import time

import numpy as np
import torch


def load(directory, prefix):
    with gzip.open(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz')) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255
    with gzip.open(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz')) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data-dir', default=os.environ.get('PNN_DATA_DIR', '/usr/share/datasets/fashion-mnist'))
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--estimator', choices=['centered', 'one_sided'], default='centered')
    ap.add_argument('--update', choices=['synchronous', 'alternating'], default='synchronous')
    ap.add_argument('--beta', type=float, default=0.2)
    ap.add_argument('--limit', type=int, default=60000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(1)
    alternating = args.update == 'alternating'
    T, K = (15, 5) if alternating else (30, 10)
    batch, beta, rates = 50, args.beta, (0.2, 0.1)

    xtr, ytr = load(args.data_dir, 'train')
    xte, yte = load(args.data_dir, 't10k')
    xtr, ytr = xtr[:args.limit], ytr[:args.limit]

    def uniform(shape, fan_in):
        return (torch.rand(shape) * 2 - 1) / math.sqrt(fan_in)
    W1, b1 = uniform((256, 784), 784), uniform((256,), 784)
    W2, b2 = uniform((10, 256), 256), uniform((10,), 256)

    def top(h, o, nudge, y):
        # The output state's drive; nudged phases add beta (y - o), the MSE cost's pull.
        u = torch.addmm(b2, h, W2.t())
        return torch.clamp(u if nudge is None else u + nudge * (y - o), 0, 1)

    def relax(d1, h, o, steps, nudge=None, y=None):
        for _ in range(steps):
            if alternating:
                h = torch.clamp(d1 + o @ W2, 0, 1)
                o = top(h, o, nudge, y)
            else:
                h, o = torch.clamp(d1 + o @ W2, 0, 1), top(h, o, nudge, y)
        return h, o

    steps_total = args.epochs * math.ceil(xtr.shape[0] / batch)
    step = 0
    with torch.no_grad():
        for epoch in range(args.epochs):
            perm = torch.randperm(xtr.shape[0])
            start = time.perf_counter()
            for i in range(0, xtr.shape[0], batch):
                idx = perm[i:i + batch]
                x = xtr[idx]
                y = torch.nn.functional.one_hot(ytr[idx], 10).float()
                n = x.shape[0]
                d1 = torch.addmm(b1, x, W1.t())
                h0, o0 = relax(d1, torch.zeros(n, 256), torch.zeros(n, 10), T)
                if args.estimator == 'centered':
                    nudge = torch.cat([torch.full((n, 1), beta), torch.full((n, 1), -beta)])
                    h, o = relax(d1.repeat(2, 1), h0.repeat(2, 1), o0.repeat(2, 1), K, nudge, y.repeat(2, 1))
                    hp, hm, op, om = h[:n], h[n:], o[:n], o[n:]
                    scale = 1 / (2 * beta * n)
                else:
                    hp, op = relax(d1, h0, o0, K, beta, y)
                    hm, om = h0, o0
                    scale = 1 / (beta * n)
                f = 0.5 * (1 + math.cos(math.pi * step / steps_total))
                step += 1
                a1, a2 = rates[0] * f * scale, rates[1] * f * scale
                W1.addmm_((hp - hm).t(), x, alpha=a1)
                b1.add_((hp - hm).sum(0), alpha=a1)
                W2.addmm_(op.t(), hp, alpha=a2).addmm_(om.t(), hm, alpha=-a2)
                b2.add_((op - om).sum(0), alpha=a2)
            seconds = time.perf_counter() - start
            _, o = relax(torch.addmm(b1, xte, W1.t()), torch.zeros(len(xte), 256), torch.zeros(len(xte), 10), T)
            accuracy = (o.argmax(1) == yte).float().mean().item()
            print(f'epoch {epoch + 1}: test accuracy {accuracy:.4f}, {seconds:.2f} s, '
                  f'{xtr.shape[0] / seconds:.0f} samples/s ({args.estimator}, {args.update}, T {T}, K {K})', flush=True)


if __name__ == '__main__':
    main()
