#!/usr/bin/python3
"""PyTorch replica of NoProp.NET's NoProp-FM inference, for timing only (bench/compare.sh).

Mirrors src/NoProp/Models/CtDenoiser.cs (the paper's CT network, Fig. 6 right: conv module -> FC256 -> ReLU; label
FC256 -> ReLU; sinusoidal time embedding (64) -> FC256 -> ReLU; head 768 -> 256 -> 128 -> m) and the inference of
src/NoProp/Methods/FlowMatching/NoPropFm.cs with ContinuousInference.Integrate: z_0 ~ N(0, I), velocity
v = logits @ W_Embed (one-hot: W_Embed = I), Heun's method on a uniform grid of --steps steps over [0, 1], the image
features computed once per batch, in chunks of 64 images, and reused at every evaluation (as ours does by default;
the conv module cropped to its receptive field and channels-last, as ours at inference),
batches of 1000, the class
of the nearest embedding. The weights are freshly initialised: the cost of inference does not depend on their values.
NoProp-CT's inference is the same network and solver plus a scalar noise-schedule network per evaluation.

Prints one JSON line: {"inference_seconds", "images", "steps", "peak_memory_mb", "threads", "torch_version"}.
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from noprop_dt import load_mnist, DATA_DIR, crop, relu_pool  # noqa: E402


class CtDenoiser(nn.Module):
    def __init__(self, dim=10, classes=10, width=256):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3), nn.Conv2d(64, 128, 3)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(128 * 4 * 4, width)
        self.label = nn.Sequential(nn.Linear(dim, width), nn.ReLU())
        self.time = nn.Sequential(nn.Linear(64, width), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(3 * width, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, classes))

    def encode_image(self, x):
        """As ours at inference (ConvImageEncoder through FusedDtBlocks' path, T = 1, eval mode: no dropout): the image
        cropped to its receptive field, a zero second channel (with zero conv1 weights) so that conv1 runs
        channels-last, channels-last convolutions, ReLU + max-pool pooled first."""
        cl = torch.channels_last
        x = crop(x)
        x = torch.cat([x, torch.zeros_like(x)], 1).contiguous(memory_format=cl)
        w1 = torch.cat([self.conv1.weight, torch.zeros_like(self.conv1.weight)], 1).contiguous(memory_format=cl)
        h = relu_pool(F.conv2d(x, w1, self.conv1.bias).contiguous(memory_format=cl))
        h = F.relu(F.conv2d(h, self.conv2.weight.contiguous(memory_format=cl), self.conv2.bias))
        h = relu_pool(F.conv2d(h, self.conv3.weight.contiguous(memory_format=cl), self.conv3.bias))
        return F.relu(self.fc(h.flatten(1)))

    def logits(self, features, z, t):
        half = 32
        frequencies = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / half))
        angles = t.reshape(-1, 1) * 1000.0 * frequencies.unsqueeze(0)
        time_embedding = torch.cat([angles.sin(), angles.cos()], 1)
        return self.head(torch.cat([features, self.label(z), self.time(time_embedding)], 1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--test-size", type=int, default=10000)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--image-chunk", type=int, default=64, help="images per image-encoder call (as NoProp.NET)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default=DATA_DIR)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    _, _, test_x, test_y = load_mnist(args.data_dir)
    test_x, test_y = test_x[:args.test_size].contiguous(), test_y[:args.test_size]
    net = CtDenoiser().eval()
    embedding = torch.eye(10)
    generator = torch.Generator().manual_seed(args.seed)

    start = time.perf_counter()
    correct = 0
    with torch.no_grad():
        for i in range(0, test_x.shape[0], args.batch_size):
            x = test_x[i:i + args.batch_size]
            # In chunks of --image-chunk images, as ContinuousInference.ImageChunk (the same features).
            features = torch.cat([net.encode_image(x[j:j + args.image_chunk]) for j in range(0, x.shape[0], args.image_chunk)])
            z = torch.randn(x.shape[0], 10, generator=generator)
            grid = [k / args.steps for k in range(args.steps + 1)]

            def velocity(z, t):
                return net.logits(features, z, torch.full((z.shape[0],), t)) @ embedding

            for t0, t1 in zip(grid, grid[1:]):
                dt = t1 - t0
                k1 = velocity(z, t0)
                k2 = velocity(z + k1 * dt, t1)
                z = z + (k1 + k2) * (dt / 2)
            probabilities = F.softmax(-torch.cdist(z.unsqueeze(0), embedding.unsqueeze(0)).squeeze(0).square(), 1)
            correct += int(probabilities.argmax(1).eq(test_y[i:i + args.batch_size]).sum())
    seconds = time.perf_counter() - start
    print(json.dumps({
        "inference_seconds": round(seconds, 3), "images": int(test_x.shape[0]), "steps": args.steps,
        "accuracy_untrained": correct / test_x.shape[0],
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "threads": torch.get_num_threads(), "torch_version": torch.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
