#!/usr/bin/python3
"""The replica's side of `NoProp.Bench dt-fused`'s first two lines: one minibatch (128 MNIST images) through all T = 10
blocks, Algorithm 1's T separate block steps against the parallel schedule's one fused step, wall and CPU time per
minibatch. Without the rest of an epoch (data shuffling, validation, process start-up) the comparison of the hot path
is less noisy than bench/compare.sh's; with --threads 1 it hardly depends on other load on the machine.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=33554432 \\
      MALLOC_TRIM_THRESHOLD_=1073741824 /usr/bin/python3 bench/pytorch/step_bench.py --threads 1
  BENCH_THREADS=1 dotnet bench/NoProp.Bench/bin/Release/net10.0/NoProp.Bench.dll dt-fused 128 10
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import noprop_dt  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--rounds", type=int, default=2, help="the two schedules alternated this many times")
    p.add_argument("--memory", action="store_true",
                   help="instead of timing: the bytes autograd keeps between the parallel schedule's fused forward and "
                        "backward pass (as NoProp.Bench memory; views of one tensor counted once)")
    p.add_argument("--plain", "--plain-pool", dest="plain", action="store_true",
                   help="F.max_pool2d(F.relu(h), 2), F.dropout and whole images (default: pooling, dropout masks and crop as ours)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    noprop_dt.MIRROR = not args.plain
    torch.manual_seed(1)
    train_x, train_y, _, _ = noprop_dt.load_mnist(noprop_dt.DATA_DIR)
    x, y = train_x[:128].contiguous(), train_y[:128].contiguous()
    method = noprop_dt.NoPropDt(10)
    method.network.train()

    if args.memory:
        for _ in range(2):
            method.train_all_blocks(x, y)
        z = torch.randn(method.T, 128, 10)
        saved = {}

        def pack(t):   # once per address: views of one tensor (a reshape, a transpose) cost nothing more
            saved[t.data_ptr()] = max(saved.get(t.data_ptr(), 0), t.numel() * t.element_size())
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = method.fused.logits(x, z).sum()
        print(f"kept by autograd between the fused forward and backward pass: {sum(saved.values()) / 2**20:.1f} MB "
              f"({'plain' if args.plain else 'mirrored'})")
        loss.backward()
        return

    def sequential():
        for t in range(method.T):
            method.train_step(t, x, y)

    def parallel():
        method.train_all_blocks(x, y)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {'plain' if args.plain else 'mirrored'} pooling, dropout and crop")
    for _ in range(args.rounds):
        for name, step in (("sequential: T TrainSteps", sequential), ("parallel: one fused TrainStep", parallel)):
            for _ in range(2):
                step()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.iterations):
                step()
            ms = (time.perf_counter() - wall) / args.iterations * 1000
            print(f"{name:32s} {ms:8.1f} ms  ({128 / ms * 1000:5.0f} images/s), CPU {(time.process_time() - cpu) / args.iterations * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
