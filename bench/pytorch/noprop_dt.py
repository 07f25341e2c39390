#!/usr/bin/python3
"""PyTorch reference implementation of NoProp-DT (arXiv 2503.24322) for side-by-side comparison with NoProp.NET.

Mirrors src/NoProp/Methods/DiscreteTime/NoPropDt.cs (one-hot embedding, MNIST) and the shared training loop
of src/NoProp/Training/Trainer.cs: the same schedule, blocks, losses, optimisers, Algorithm-1 order, per-epoch
validation with best-epoch selection, and stochastic inference (Eq. 3). Random streams differ from the C# run
(numpy/torch generators instead of .NET/TorchSharp ones), so results agree statistically, not bit for bit.

Prints one JSON line at the end:
  {"train_seconds", "test_accuracy", "validation_accuracy", "test_inference_seconds", "peak_memory_mb",
   "train_size", "epochs", "threads", "torch_version", ...}
"""
import argparse
import copy
import gzip
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "mnist")


# ---------------------------------------------------------------- data

def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(data_dir):
    def images(name):
        x = read_idx(os.path.join(data_dir, name)).astype(np.float32) / 255.0
        x = (x - MNIST_MEAN) / MNIST_STD
        return torch.from_numpy(x).unsqueeze(1)   # [N, 1, 28, 28]

    def labels(name):
        return torch.from_numpy(read_idx(os.path.join(data_dir, name)).astype(np.int64))

    return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
            images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))


# ---------------------------------------------------------------- schedule (Schedules/CosineSchedule.cs)

class CosineSchedule:
    """Noise at t = 0, label at t = T: ab_t = min(ab_max, f(1 - t/T) / f(0)), ab_0 = 0 exactly."""

    def __init__(self, steps, max_alpha_bar=0.999, offset=0.008):
        def f(tau):
            return math.cos(math.pi / 2 * (tau + offset) / (1 + offset)) ** 2
        self.steps = steps
        self.ab = [0.0 if t == 0 else min(max_alpha_bar, f(1.0 - t / steps) / f(0.0)) for t in range(steps + 1)]

    def alpha_bar(self, t):
        return self.ab[t]

    def snr(self, t):
        ab = self.ab[t]
        return ab / (1 - ab)

    def posterior_coefficients(self, t):
        """Eq. 6: q(z_t | z_{t-1}, y) = N(a_t u_y + b_t z_{t-1}, c_t I), alpha_{t-1} = ab_{t-1} / ab_t."""
        ab_t, ab_prev = self.ab[t], self.ab[t - 1]
        alpha_prev = ab_prev / ab_t
        a = math.sqrt(ab_t) * (1 - alpha_prev) / (1 - ab_prev)
        b = math.sqrt(alpha_prev) * (1 - ab_t) / (1 - ab_prev)
        c = (1 - ab_t) * (1 - alpha_prev) / (1 - ab_prev)
        return a, b, c


# ---------------------------------------------------------------- model (Models/*.cs)

MIRROR = True   # pooling as ConvImageEncoder.MaxPool, dropout as UniformDropout (AfterRelu), images cropped to their
                # receptive field; --plain: F.max_pool2d(F.relu(h), 2), F.dropout(F.relu(h)), whole images.
                # NoProp.NET computes the masks and the pooling + ReLU + dropout in C# kernels (CpuGeneratorDraws,
                # PoolDropout, ReluDropout) with the same values bit for bit; PyTorch code cannot, so these stay ATen ops.


def dropout(h, p, training, draw_sides=None):
    """Inverted dropout. Mirrored (default): on the CPU the keep mask is rand < 1 - p, as NoProp.NET's UniformDropout
    (the same Bernoulli(1 - p) mask as F.dropout's, from one 32-bit draw per element instead of bernoulli_'s 64-bit one),
    drawn for the uncropped activation of sides draw_sides when h is its cropped top-left part."""
    if not MIRROR or not training or p == 0 or p == 1 or h.device.type != "cpu":
        return F.dropout(h, p, training)
    keep = 1 - p
    if draw_sides is None or tuple(draw_sides) == tuple(h.shape[2:]) or not h.is_contiguous():
        mask = torch.rand_like(h)
    else:
        mask = torch.rand(h.shape[0], h.shape[1], *draw_sides, dtype=h.dtype, device=h.device)[:, :, :h.shape[2], :h.shape[3]].contiguous()
    mask.lt_(keep).div_(keep)
    return h * mask


def relu_dropout(h, p, training, draw_sides=None):
    """Dropout of ReLU(h). Mirrored (default), as UniformDropout.AfterRelu: in training on the CPU, ReLU in place of
    the dropped-out h (the same values and gradients; autograd keeps no separate ReLU output)."""
    if not MIRROR or not training or p == 0 or p == 1 or h.device.type != "cpu":
        return dropout(F.relu(h), p, training, draw_sides)
    return dropout(h, p, training, draw_sides).relu_()


def receptive_field(height, width):
    """As ConvImageEncoder.ReceptiveField: the top-left rows and columns of an image that reach the features (26 of 28)."""
    side = lambda s: ((s - 2) // 2 - 2 - 2) // 2
    return 4 * side(height) + 10, 4 * side(width) + 10


def crop(x):
    """Mirrored: x narrowed to its receptive field, as ConvImageEncoder.CropToReceptiveField (the same features)."""
    if not MIRROR:
        return x
    h, w = receptive_field(x.shape[2], x.shape[3])
    return x[:, :, :h, :w]


def dropout_draw_sides(height, width):
    """As ConvImageEncoder.DropoutDrawSides: the uncropped sides after the first pooling and after conv2."""
    h, w = (height - 2) // 2, (width - 2) // 2
    return (h, w), (h - 2, w - 2)


def max_pool(h):
    """2x2 max-pool; the block's ReLU follows (relu_dropout). Mirrored (default), as NoProp.NET's
    ConvImageEncoder.MaxPool: NCHW CPU tensors through the channels-last kernel's window maxima, the values selected with
    index_select from the flat tensor (its backward keeps only the int32 indices, not the activation)."""
    if not MIRROR or h.is_contiguous(memory_format=torch.channels_last) and h.shape[1] > 1 or h.device.type != "cpu" \
            or not h.is_contiguous():
        return F.max_pool2d(h, 2)
    with torch.no_grad():
        _, index = F.max_pool2d(h.detach().contiguous(memory_format=torch.channels_last), 2, return_indices=True)
        shape = index.shape
        plane = h.shape[2] * h.shape[3]
        index = index.contiguous()
        index += torch.arange(0, shape[0] * shape[1] * plane, plane).view(shape[0], shape[1], 1, 1)
        if h.numel() <= 2**31 - 1:
            index = index.int()   # as ours: int32 positions, half the bytes autograd keeps
    return h.view(-1).index_select(0, index.view(-1)).view(shape)


def relu_pool(h):
    """ReLU and 2x2 max-pool without dropout (pooled first, as ours, when mirrored)."""
    return F.relu(max_pool(h)) if MIRROR else F.max_pool2d(F.relu(h), 2)


def relu_pool_dropout(h, p, training, draw_sides=None):
    """ReLU, 2x2 max-pool, dropout: mirrored, max_pool then relu_dropout; plain, F.max_pool2d(F.relu(h), 2) then dropout."""
    if not MIRROR:
        return dropout(F.max_pool2d(F.relu(h), 2), p, training, draw_sides)
    return relu_dropout(max_pool(h), p, training, draw_sides)


class ConvImageEncoder(nn.Module):
    """conv3x3(32) ReLU maxpool2 dropout, conv3x3(64) ReLU dropout, conv3x3(128) ReLU maxpool2 dropout, FC(256) BN."""

    def __init__(self, channels=1, height=28, width=28, dropout=0.2):
        super().__init__()
        side = lambda s: ((s - 2) // 2 - 2 - 2) // 2
        self.conv1 = nn.Conv2d(channels, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.conv3 = nn.Conv2d(64, 128, 3)
        self.p = dropout
        self.fc = nn.Linear(128 * side(height) * side(width), 256)
        self.finish = nn.BatchNorm1d(256)

    def forward(self, x):
        pool1, conv2 = dropout_draw_sides(x.shape[2], x.shape[3])
        h = relu_pool_dropout(self.conv1(crop(x)), self.p, self.training, pool1)
        h = relu_dropout(self.conv2(h), self.p, self.training, conv2)
        h = relu_pool_dropout(self.conv3(h), self.p, self.training)
        return self.finish(self.fc(h.flatten(1)))


class ResidualLabelMlp(nn.Module):
    """h = ReLU(BN(FC256(z))); h + BN(FC256(ReLU(BN(FC256(h)))))."""

    def __init__(self, dim, width=256):
        super().__init__()
        self.input = nn.Sequential(nn.Linear(dim, width), nn.BatchNorm1d(width), nn.ReLU())
        self.residual = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(),
                                      nn.Linear(width, width), nn.BatchNorm1d(width))

    def forward(self, z):
        h = self.input(z)
        return h + self.residual(h)


class DtBlock(nn.Module):
    """One block u_hat_theta_t(z_{t-1}, x); returns class logits."""

    def __init__(self, dim, classes):
        super().__init__()
        self.image_path = ConvImageEncoder()
        self.label_path = ResidualLabelMlp(dim)
        self.head = nn.Sequential(nn.Linear(512, 256), nn.BatchNorm1d(256), nn.ReLU(),
                                  nn.Linear(256, 128), nn.BatchNorm1d(128), nn.ReLU(),
                                  nn.Linear(128, classes))

    def forward(self, x, z):
        return self.head(torch.cat([self.image_path(x), self.label_path(z)], 1))


class NoPropDtNetwork(nn.Module):
    def __init__(self, blocks, classes=10):
        super().__init__()
        dim = classes   # one-hot embedding
        self.blocks = nn.ModuleList([DtBlock(dim, classes) for _ in range(blocks)])
        self.output_head = nn.Linear(dim, classes)
        self.register_buffer("embedding", torch.eye(classes))   # W_Embed = I, fixed


class FusedDtBlocks:
    """Mirror of Models/FusedDtBlocks.cs: all T blocks as one computation over their own parameters (gathered with
    differentiable cat/stack each call): conv1 with T*32 output channels, conv2/conv3 grouped T ways, run on chunks
    of images whose largest activation stays under 24 MB, linear layers as one bmm each, BatchNorm over T*F channels
    with each block's running statistics copied back in training mode."""

    def __init__(self, blocks):
        self.blocks = list(blocks)

    def image_features(self, x, chunk=None):
        """[T, B, 256]; with chunk, computed on chunks of that many images, the parameters stacked once for all
        (NoPropDt.ImageFeatures / FusedDtBlocks.ImageFeatures(x, chunk): inference, no batch statistics)."""
        stacked = _StackedEncoders(self, [b.image_path for b in self.blocks])
        if chunk is None or x.shape[0] <= chunk:
            return stacked.encode(x)
        return torch.cat([stacked.encode(x[i:i + chunk]) for i in range(0, x.shape[0], chunk)], 1)

    def logits(self, x, z):
        image = self.image_features(x)
        mlps = [b.label_path for b in self.blocks]
        h = self._sequence([m.input for m in mlps], z)
        label = h + self._sequence([m.residual for m in mlps], h)
        return self._sequence([b.head for b in self.blocks], torch.cat([image, label], 2))

    ACTIVATION_BYTES = 24 << 20   # as FusedDtBlocks.ActivationBytes: conv chunks below glibc's largest mmap threshold

    # --inference-precision bf16 (as InferenceOptions.Precision): no-grad, eval-mode convolutions, ReLU and pooling in
    # bfloat16, the features back in float32 before FC and BatchNorm.
    INFERENCE_DTYPE = torch.float32

    CHANNELS_LAST_INFERENCE = True   # as FusedDtBlocks.ChannelsLastInference: no-grad convolutions run channels-last

    @staticmethod
    def _stack_conv(convs, channels_last, dtype, zero_second_channel=False):
        weight = torch.cat([c.weight for c in convs]).to(dtype)
        if zero_second_channel:
            weight = torch.cat([weight, torch.zeros_like(weight)], 1)
        if channels_last:
            weight = weight.contiguous(memory_format=torch.channels_last)
        return weight, torch.cat([c.bias for c in convs]).to(dtype)

    @staticmethod
    def _stack_linear(layers):
        return torch.stack([l.weight for l in layers]).transpose(1, 2), torch.stack([l.bias for l in layers]).unsqueeze(1)

    @staticmethod
    def _linear(layers, x):
        weight, bias = FusedDtBlocks._stack_linear(layers)
        return torch.baddbmm(bias, x, weight)

    @staticmethod
    def _batch_norm(norms, x):
        T, B, Fe = x.shape
        first = norms[0]
        flat = x.transpose(0, 1).reshape(B, T * Fe)
        mean = torch.cat([n.running_mean for n in norms])
        var = torch.cat([n.running_var for n in norms])
        y = F.batch_norm(flat, mean, var, torch.cat([n.weight for n in norms]), torch.cat([n.bias for n in norms]),
                         first.training, first.momentum, first.eps)
        if first.training:
            with torch.no_grad():
                for t, n in enumerate(norms):
                    n.running_mean.copy_(mean[t * Fe:(t + 1) * Fe])
                    n.running_var.copy_(var[t * Fe:(t + 1) * Fe])
                    n.num_batches_tracked.add_(1)
        return y.view(B, T, Fe).transpose(0, 1)

    def _sequence(self, sequences, x):
        h = x
        for layers in zip(*sequences):
            if isinstance(layers[0], nn.Linear):
                h = self._linear(layers, h)
            elif isinstance(layers[0], nn.BatchNorm1d):
                h = self._batch_norm(layers, h)
            elif isinstance(layers[0], nn.ReLU):
                h = F.relu(h)
            else:
                raise TypeError(type(layers[0]))
        return h


class _StackedEncoders:
    """Mirror of FusedDtBlocks.StackedEncoders: the T encoders' parameters stacked once (precision and layout fixed
    then), for any number of chunks of images."""

    def __init__(self, fused, encoders):
        self.encoders = encoders
        self.T = len(encoders)
        self.training = encoders[0].training
        self.p = encoders[0].p
        low = fused.INFERENCE_DTYPE != torch.float32 and not self.training and not torch.is_grad_enabled()
        self.dtype = fused.INFERENCE_DTYPE if low else torch.float32
        self.cl = fused.CHANNELS_LAST_INFERENCE and not torch.is_grad_enabled()
        # As ours: a one-channel image gets a second, zero channel (with zero weights), so that oneDNN sees a
        # channels-last input and returns conv1's output channels-last, instead of NCHW to be copied.
        self.second_channel = self.cl and encoders[0].conv1.in_channels == 1
        self.conv1 = fused._stack_conv([e.conv1 for e in encoders], self.second_channel, self.dtype, self.second_channel)
        self.conv2 = fused._stack_conv([e.conv2 for e in encoders], self.cl, self.dtype)
        self.conv3 = fused._stack_conv([e.conv3 for e in encoders], self.cl, self.dtype)
        self.fc = fused._stack_linear([e.fc for e in encoders])
        self.norms = [e.finish for e in encoders]
        self.activation_bytes = fused.ACTIVATION_BYTES

    def encode(self, x):
        T = self.T
        element_bytes = 2 if self.dtype != torch.float32 else 4   # as ours: bf16 chunks hold twice the images
        per_image = self.conv1[0].shape[0] * (x.shape[2] - 2) * (x.shape[3] - 2) * element_bytes
        chunk = max(1, self.activation_bytes // per_image)   # sized for the uncropped images, as ours
        sides = dropout_draw_sides(x.shape[2], x.shape[3])
        x = crop(x).to(self.dtype)
        if self.second_channel:
            x = torch.cat([x, torch.zeros_like(x)], 1).contiguous(memory_format=torch.channels_last)
        h = torch.cat([self._conv_stack(x[i:i + chunk], sides) for i in range(0, x.shape[0], chunk)]) \
            if x.shape[0] > chunk else self._conv_stack(x, sides)
        if MIRROR:
            h = h.relu_()
        flat = h.reshape(h.shape[0], T, -1).transpose(0, 1)
        return FusedDtBlocks._batch_norm(self.norms, torch.baddbmm(self.fc[1], flat, self.fc[0]))

    def _conv_stack(self, x, sides):
        T, p, training = self.T, self.p, self.training
        h = F.conv2d(x, *self.conv1)
        if self.cl:
            h = h.contiguous(memory_format=torch.channels_last)   # a no-op when conv1 already returned channels-last
        h = relu_pool_dropout(h, p, training, sides[0])
        h = relu_dropout(F.conv2d(h, *self.conv2, groups=T), p, training, sides[1])
        if MIRROR:   # as ours: the last ReLU in place once the chunks are joined (encode)
            out = dropout(max_pool(F.conv2d(h, *self.conv3, groups=T)), p, training)
        else:
            out = relu_pool_dropout(F.conv2d(h, *self.conv3, groups=T), p, training)
        return out.float()


def convex_combination(logits, embedding):
    return F.softmax(logits, 1) @ embedding


def sample_marginal(u, alpha_bar):
    return u * math.sqrt(alpha_bar) + torch.randn_like(u) * math.sqrt(1 - alpha_bar)


# ---------------------------------------------------------------- method (Methods/DiscreteTime/NoPropDt.cs)

class NoPropDt:
    def __init__(self, blocks, eta=0.1, lr=1e-3, weight_decay=1e-3, fused_inference=True, image_chunk=64):
        self.T = blocks
        self.fused_inference = fused_inference
        self.image_chunk = image_chunk
        self.schedule = CosineSchedule(blocks)
        self.network = NoPropDtNetwork(blocks)
        self.block_optimizers = [torch.optim.AdamW(b.parameters(), lr=lr, weight_decay=weight_decay)
                                 for b in self.network.blocks]
        self.head_optimizer = torch.optim.AdamW(self.network.output_head.parameters(), lr=lr, weight_decay=weight_decay)
        s = self.schedule
        self.denoise_weights = [self.T / 2.0 * eta * (s.snr(t) - s.snr(t - 1)) for t in range(1, self.T + 1)]
        self.coefficients = [s.posterior_coefficients(t) for t in range(1, self.T + 1)]
        self.fused = FusedDtBlocks(self.network.blocks)
        self.parallel_weights = torch.tensor(self.denoise_weights, dtype=torch.float32).view(-1, 1)
        self.parallel_signal = torch.tensor([math.sqrt(s.alpha_bar(t - 1)) for t in range(1, self.T + 1)]).view(-1, 1, 1)
        self.parallel_noise = torch.tensor([math.sqrt(1 - s.alpha_bar(t - 1)) for t in range(1, self.T + 1)]).view(-1, 1, 1)

    def train_step(self, stage, x, y):
        t = stage + 1
        net = self.network
        u = net.embedding.index_select(0, y)
        z_prev = sample_marginal(u, self.schedule.alpha_bar(t - 1))
        u_hat = convex_combination(net.blocks[stage](x, z_prev), net.embedding)
        denoise = (u_hat - u).square().sum(1).mean() * self.denoise_weights[stage]

        z_T = sample_marginal(u, self.schedule.alpha_bar(self.T))
        cross_entropy = F.cross_entropy(net.output_head(z_T), y)
        ab0 = self.schedule.alpha_bar(0)
        d = u.shape[-1]
        kl = (u.square().sum(1).mean() * ab0 + d * (-ab0 - math.log(1 - ab0))) * 0.5
        total = cross_entropy + kl + denoise

        optimizer = self.block_optimizers[stage]
        optimizer.zero_grad()
        self.head_optimizer.zero_grad()
        total.backward()
        optimizer.step()
        self.head_optimizer.step()
        return torch.stack([cross_entropy, kl, denoise, total]).detach()

    def train_all_blocks(self, x, y):
        """The parallel schedule (NoPropDt.TrainAllBlocks): every block steps on this minibatch, fused; the output
        head takes T steps as in Algorithm 1 (the first within the joint step, then T-1 on CE + KL)."""
        net = self.network
        T = self.T
        u = net.embedding.index_select(0, y)
        noise = torch.randn(T, u.shape[0], u.shape[1])
        z_prev = u.unsqueeze(0) * self.parallel_signal + noise * self.parallel_noise
        u_hat = F.softmax(self.fused.logits(x, z_prev), 2) @ net.embedding
        denoise = ((u_hat - u.unsqueeze(0)).square().sum(2).mean(1, keepdim=True) * self.parallel_weights).sum()
        ab0 = self.schedule.alpha_bar(0)
        d = u.shape[-1]

        def head_loss():
            z_T = sample_marginal(u, self.schedule.alpha_bar(T))
            kl = (u.square().sum(1).mean() * ab0 + d * (-ab0 - math.log(1 - ab0))) * 0.5
            return F.cross_entropy(net.output_head(z_T), y), kl

        cross_entropy, kl = head_loss()
        total = cross_entropy + kl + denoise
        for o in self.block_optimizers:
            o.zero_grad()
        self.head_optimizer.zero_grad()
        total.backward()
        for o in self.block_optimizers:
            o.step()
        self.head_optimizer.step()
        for _ in range(1, T):
            ce, kl_k = head_loss()
            self.head_optimizer.zero_grad()
            (ce + kl_k).backward()
            self.head_optimizer.step()
        mean_denoise = denoise.detach() / T
        return torch.stack([cross_entropy.detach(), kl.detach(), mean_denoise, cross_entropy.detach() + kl.detach() + mean_denoise])

    def image_features(self, x):
        """[T, B, 256], fused and in chunks of image_chunk images (NoPropDt.ImageFeatures)."""
        return self.fused.image_features(x, self.image_chunk)

    def predict_probabilities(self, x, generator):
        net = self.network
        z = torch.randn(x.shape[0], net.embedding.shape[1], generator=generator)
        features = self.image_features(x) if self.fused_inference else None
        for t in range(1, self.T + 1):
            a, b, c = self.coefficients[t - 1]
            block = net.blocks[t - 1]
            if features is not None:
                logits = block.head(torch.cat([features[t - 1], block.label_path(z)], 1))
            else:
                logits = block(x, z)
            u_hat = convex_combination(logits, net.embedding)
            nxt = u_hat * a + z * b
            if c > 0:
                nxt.add_(torch.randn(nxt.shape, generator=generator), alpha=math.sqrt(c))
            z = nxt
        return F.softmax(net.output_head(z), 1)


def accuracy(method, images, labels, seed, batch_size=1000):
    """Evaluator.Accuracy: eval mode, no_grad, batches of 1000, seeded inference noise."""
    generator = torch.Generator().manual_seed(seed)
    was_training = method.network.training
    method.network.eval()
    try:
        with torch.no_grad():
            parts = [method.predict_probabilities(images[i:i + batch_size], generator)
                     for i in range(0, images.shape[0], batch_size)]
        return torch.cat(parts).argmax(1).eq(labels).double().mean().item()
    finally:
        method.network.train(was_training)


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-size", type=int, default=10000)
    p.add_argument("--validation-size", type=int, default=5000)
    p.add_argument("--test-size", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--blocks", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--eta", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--schedule", choices=["sequential", "parallel"], default="sequential",
                   help="sequential: Algorithm 1's order; parallel: every block steps on each minibatch, fused")
    p.add_argument("--inference", choices=["fused", "per-block"], default="fused",
                   help="fused: every block's image features at once, in chunks (as NoProp.NET); per-block: block by block")
    p.add_argument("--inference-batch-size", type=int, default=1000)
    p.add_argument("--image-chunk", type=int, default=64)
    p.add_argument("--inference-precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: the fused inference's convolutions, ReLU and pooling in bfloat16 (as NoProp.NET's option)")
    p.add_argument("--quiet", action="store_true", help="only print the final JSON line")
    p.add_argument("--no-channels-last", action="store_true",
                   help="run the fused no-grad convolutions in NCHW (default: channels-last, as NoProp.NET)")
    p.add_argument("--plain", "--plain-pool", dest="plain", action="store_true",
                   help="F.max_pool2d(F.relu(h), 2), F.dropout and whole images, as usually written (default: pooling, "
                        "dropout masks and the crop to the receptive field formulated as NoProp.NET's: the same values "
                        "and the same mask distribution)")
    args = p.parse_args()
    if args.batch_size < 2:
        p.error("--batch-size must be at least 2 (BatchNorm needs two images)")

    torch.set_num_threads(args.threads)
    FusedDtBlocks.CHANNELS_LAST_INFERENCE = not args.no_channels_last
    FusedDtBlocks.INFERENCE_DTYPE = torch.bfloat16 if args.inference_precision == "bf16" else torch.float32
    if args.inference_precision == "bf16" and args.inference != "fused":
        p.error("--inference-precision bf16 applies to the fused inference")
    global MIRROR
    MIRROR = not args.plain
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    train_x_all, train_y_all, test_x, test_y = load_mnist(args.data_dir)
    total = train_x_all.shape[0]
    if not 2 <= args.train_size <= total:
        p.error(f"--train-size must lie in 2..{total}")
    order = np.random.default_rng(args.seed).permutation(total)
    n_val = min(args.validation_size, total - args.train_size)
    train_idx = torch.from_numpy(order[:args.train_size].copy())
    val_idx = torch.from_numpy(order[args.train_size:args.train_size + n_val].copy())
    train_x, train_y = train_x_all[train_idx].contiguous(), train_y_all[train_idx].contiguous()
    val_x, val_y = train_x_all[val_idx].contiguous(), train_y_all[val_idx].contiguous()
    test_x, test_y = test_x[:args.test_size].contiguous(), test_y[:args.test_size].contiguous()
    del train_x_all, train_y_all

    torch.manual_seed(args.seed)   # initialisation and training noise
    method = NoPropDt(args.blocks, args.eta, args.lr, args.weight_decay, args.inference == "fused", args.image_chunk)
    log(f"NoProp-DT (PyTorch {torch.__version__}): {len(train_y)} train, {len(val_y)} validation, {len(test_y)} test; "
        f"T = {args.blocks}, {args.epochs} epoch(s), batch {args.batch_size}, {torch.get_num_threads()} threads")

    n = len(train_y)
    bs = args.batch_size
    batches = (n + bs - 1) // bs
    if n - (batches - 1) * bs < 2:
        batches -= 1   # a final batch of one image breaks BatchNorm
    shuffle_rng = np.random.default_rng(args.seed + 0x0DA7A)

    train_seconds = 0.0
    best_val, best_epoch, best_state = -1.0, 0, None
    history = []
    method.network.train()
    for epoch in range(1, args.epochs + 1):
        epoch_seconds = 0.0
        loss_sums = torch.zeros(4, dtype=torch.float64)
        stages = 1 if args.schedule == "parallel" else args.blocks
        for stage in range(stages):
            perm = torch.from_numpy(shuffle_rng.permutation(n))
            for b in range(batches):
                start = time.perf_counter()
                index = perm[b * bs:min((b + 1) * bs, n)]
                xb, yb = train_x.index_select(0, index), train_y.index_select(0, index)
                losses = method.train_all_blocks(xb, yb) if args.schedule == "parallel" else method.train_step(stage, xb, yb)
                loss_sums += losses
                epoch_seconds += time.perf_counter() - start
            if not torch.isfinite(loss_sums).all():
                raise SystemExit(f"training diverged in epoch {epoch}, block {stage + 1}")
            log(f"epoch {epoch}: stage {stage + 1}/{stages} done, {epoch_seconds:.1f} s")
        train_seconds += epoch_seconds
        means = (loss_sums / (batches * stages)).tolist()
        record = {"epoch": epoch, "epoch_train_seconds": round(epoch_seconds, 3),
                  "losses": dict(zip(["cross_entropy", "kl", "denoise", "total"], means))}
        if len(val_y) > 0:
            val_acc = accuracy(method, val_x, val_y, args.seed + epoch, args.inference_batch_size)
            record["validation_accuracy"] = val_acc
            if val_acc > best_val:
                best_val, best_epoch = val_acc, epoch
                best_state = copy.deepcopy(method.network.state_dict())
        else:
            best_epoch = epoch
        history.append(record)
        log(json.dumps(record))

    if best_state is not None:
        method.network.load_state_dict(best_state)   # best-validation epoch, as the C# trainer does

    start = time.perf_counter()
    test_acc = accuracy(method, test_x, test_y, args.seed, args.inference_batch_size)
    test_seconds = time.perf_counter() - start

    result = {
        "train_seconds": round(train_seconds, 3),
        "test_accuracy": test_acc,
        "validation_accuracy": best_val if best_val >= 0 else None,
        "test_inference_seconds": round(test_seconds, 3),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "train_size": n,
        "validation_size": len(val_y),
        "test_size": len(test_y),
        "epochs": args.epochs,
        "best_epoch": best_epoch,
        "blocks": args.blocks,
        "batch_size": bs,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "schedule": args.schedule,
        "inference": args.inference,
        "inference_precision": args.inference_precision,
        "torch_version": torch.__version__,
        "formulation": "plain" if args.plain else "mirrored", "implementation": "pytorch",
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
