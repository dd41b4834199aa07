#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Bytes each rank sends per data-parallel step, dense against factored exchange of updates.

A model, not a measurement (docs/architecture.md, "Data-parallel steps"). For a layered network
with layers (in, out), global batch B, P ranks and 4-byte floats:

  dense, recursive doubling of whole nodes: log2(P) exchanges of the estimate, 4 * |W| * log2(P),
      |W| = sum of in*out + out;
  dense, recursive halving then doubling (bandwidth-optimal, tree order kept; what
      examples/mpi/data_parallel.cpp does): 2 * (P-1)/P * 4 * |W|;
  factored (each rank's rows of h and delta gathered by all): (P-1)/P * 4 * B * sum(in + out);
  per-layer best: each layer takes the cheaper of the last two.

Message counts (latency): log2(P) for recursive doubling and for a gather by recursive doubling,
2 * log2(P) for halving then doubling.

Usage: python3 tools/comm_model.py [--layers 784,256,10] [--batch 256] [--plot FILE.png]
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile


def model(sizes, batch, ranks):
    layers = list(zip(sizes[:-1], sizes[1:]))
    w = sum(i * o + o for i, o in layers)
    f = (ranks - 1) / ranks
    doubling = 4 * w * math.log2(ranks)
    optimal = 2 * f * 4 * w
    factored = f * 4 * batch * sum(i + o for i, o in layers)
    best = sum(min(2 * f * 4 * (i * o + o), f * 4 * batch * (i + o)) for i, o in layers)
    return doubling, optimal, factored, best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="784,256,10", help="layer sizes, input first (default 784,256,10)")
    ap.add_argument("--batch", type=int, default=256, help="global batch (default 256)")
    ap.add_argument("--plot", help="write a PNG figure here (gnuplot)")
    a = ap.parse_args()
    sizes = [int(s) for s in a.layers.split(",")]
    if len(sizes) < 2 or min(sizes) < 1 or a.batch < 1:
        sys.exit("comm_model.py: give at least two positive layer sizes and a positive batch")
    ranks = [2 ** k for k in range(1, 11)]
    rows = [(p, *model(sizes, a.batch, p)) for p in ranks]
    mb = 1e6
    print(f"network {a.layers}, global batch {a.batch}: MB sent per rank per step")
    print("| ranks | dense, recursive doubling | dense, halving + doubling | factored gather | best per layer |")
    print("|---:|---:|---:|---:|---:|")
    for p, d, o, f, b in rows:
        print(f"| {p} | {d / mb:.3f} | {o / mb:.3f} | {f / mb:.3f} | {b / mb:.3f} |")
    if a.plot:
        with tempfile.TemporaryDirectory() as tmp:
            dat = os.path.join(tmp, "comm.dat")
            with open(dat, "w") as fh:
                for p, d, o, f, b in rows:
                    fh.write(f"{p} {d / mb} {o / mb} {f / mb} {b / mb}\n")
            script = (
                "set terminal pngcairo size 800,500\n"
                f"set output '{a.plot}'\n"
                f"set title 'Bytes per rank per step, {a.layers}, global batch {a.batch}'\n"
                "set logscale x 2\nset xlabel 'ranks'\nset ylabel 'MB sent per rank per step'\n"
                "set key top left\nset grid\n"
                f"plot '{dat}' using 1:2 with linespoints title 'dense, recursive doubling', "
                f"'{dat}' using 1:3 with linespoints title 'dense, halving + doubling (implemented)', "
                f"'{dat}' using 1:4 with linespoints title 'factored gather', "
                f"'{dat}' using 1:5 with linespoints title 'best per layer'\n"
            )
            gp = os.path.join(tmp, "comm.gp")
            with open(gp, "w") as fh:
                fh.write(script)
            if subprocess.run(["gnuplot", gp]).returncode != 0:
                sys.exit("comm_model.py: gnuplot failed")


if __name__ == "__main__":
    main()
