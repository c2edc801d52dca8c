#!/usr/bin/env python3
"""The DDPM CIFAR-10 noise-prediction UNet of Ho, Jain and Abbeel (2020), "Denoising
Diffusion Probabilistic Models", Appendix B, written for this project.

Architecture (the paper's CIFAR-10 model, 35.7 M parameters):
  - base width ch = 128, channel multipliers (1, 2, 2, 2) for the resolutions 32, 16, 8, 4;
  - two residual blocks per resolution, self-attention at resolution 16 (and in the middle);
  - GroupNorm with 32 groups and the swish nonlinearity everywhere;
  - the timestep enters as a sinusoidal (Transformer) embedding of width ch, followed by
    two dense layers of width 4 * ch, added to every residual block;
  - dropout 0.1 at training time (inactive here: the export is in eval mode).

Speed does not depend on the weights, so the benchmark exports this network with random
weights from a fixed seed at benchmark time; the file is never committed.

  python3 models/ddpm_cifar10_unet.py --out DIR [--batch 128] [--freeze] [--bf16]
                                       [--device cpu|cuda] [--check]

writes DIR/ddpm_cifar10_unet_fp32.pt: a TorchScript trace of forward(x[B,3,32,32], t[B])
with float32 weights (the native loader casts them to bfloat16 / float16 on request).
--freeze also writes DIR/ddpm_cifar10_unet_fp32_frozen.pt (torch.jit.freeze: weights
folded into the graph as constants, which a loader cannot cast, so it serves float32 only);
with --bf16 also DIR/ddpm_cifar10_unet_bf16_frozen.pt, traced and frozen with bfloat16
weights and a bfloat16 x (t stays float32). Frozen files hold their constants on --device.
--check prints the parameter count and compares a forward at batch 2 with the trace.
Runs on any PyTorch from 1.13 (Debian 12) to 2.x.
"""
import argparse
import copy
import json
import math
import os
import sys

import torch
from torch import nn
import torch.nn.functional as F

# Hyper-parameters of the paper's CIFAR-10 model (Ho et al. 2020, Appendix B).
BASE_CHANNELS = 128
CHANNEL_MULT = (1, 2, 2, 2)
RES_BLOCKS_PER_LEVEL = 2
ATTENTION_RESOLUTIONS = (16,)
IMAGE_SIZE = 32
DROPOUT = 0.1
GROUPS = 32  # GroupNorm groups


def timestep_embedding(t, dim):
    """Sinusoidal embedding of the (float) timestep t[B] -> [B, dim], as in the Transformer:
    sin(t * w_k) for the first half, cos(t * w_k) for the second, w_k = 10000^(-k/(dim/2-1)).
    Computed in float32 whatever the network's dtype (t up to 999 does not fit bfloat16)."""
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(k * (-math.log(10000.0) / (half - 1)))
    angles = t.float().reshape(-1, 1) * freqs.reshape(1, -1)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def group_norm(channels):
    return nn.GroupNorm(GROUPS, channels, eps=1e-6)


class ResidualBlock(nn.Module):
    """GroupNorm-swish-conv, + projected time embedding, GroupNorm-swish-dropout-conv,
    with a 1x1 convolution on the skip path when the width changes."""

    def __init__(self, in_ch, out_ch, emb_ch, dropout):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb_proj = nn.Linear(emb_ch, out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, ch):
        super().__init__()
        self.norm = group_norm(ch)
        self.q = nn.Conv2d(ch, ch, 1)
        self.k = nn.Conv2d(ch, ch, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.out = nn.Conv2d(ch, ch, 1)
        self.scale = ch ** -0.5

    def forward(self, x):
        b, c, hgt, wid = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(b, c, hgt * wid)
        k = self.k(h).reshape(b, c, hgt * wid)
        v = self.v(h).reshape(b, c, hgt * wid)
        # weights[b, i, j] = softmax_j(q_i . k_j / sqrt(c))
        weights = torch.softmax(torch.bmm(q.transpose(1, 2), k) * self.scale, dim=-1)
        h = torch.bmm(v, weights.transpose(1, 2)).reshape(b, c, hgt, wid)
        return x + self.out(h)


class Downsample(nn.Module):
    """Strided 3x3 convolution halving the resolution."""

    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour doubling followed by a 3x3 convolution."""

    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution of either path: residual blocks, each followed by attention at the
    attention resolutions, then an optional resampling layer."""

    def __init__(self, blocks, attns, resample):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attns = nn.ModuleList(attns)
        self.resample = resample


class DDPMUNet(nn.Module):
    def __init__(self, ch=BASE_CHANNELS, ch_mult=CHANNEL_MULT, num_res_blocks=RES_BLOCKS_PER_LEVEL,
                 attn_resolutions=ATTENTION_RESOLUTIONS, resolution=IMAGE_SIZE, dropout=DROPOUT,
                 in_channels=3):
        super().__init__()
        self.ch = ch
        emb_ch = 4 * ch
        self.emb = nn.Sequential(nn.Linear(ch, emb_ch), nn.SiLU(), nn.Linear(emb_ch, emb_ch))
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)

        # Encoder: remember the width of every tensor pushed on the skip stack.
        skip_widths = [ch]
        width = ch
        res = resolution
        self.down = nn.ModuleList()
        for level, mult in enumerate(ch_mult):
            blocks, attns = [], []
            for _ in range(num_res_blocks):
                blocks.append(ResidualBlock(width, ch * mult, emb_ch, dropout))
                width = ch * mult
                attns.append(SelfAttention(width) if res in attn_resolutions else nn.Identity())
                skip_widths.append(width)
            last = level == len(ch_mult) - 1
            resample = nn.Identity() if last else Downsample(width)
            if not last:
                skip_widths.append(width)
                res //= 2
            self.down.append(Level(blocks, attns, resample))

        self.mid_block1 = ResidualBlock(width, width, emb_ch, dropout)
        self.mid_attn = SelfAttention(width)
        self.mid_block2 = ResidualBlock(width, width, emb_ch, dropout)

        # Decoder: num_res_blocks + 1 blocks per level, each consuming one skip tensor.
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(ch_mult))):
            blocks, attns = [], []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResidualBlock(width + skip_widths.pop(), ch * mult, emb_ch, dropout))
                width = ch * mult
                attns.append(SelfAttention(width) if res in attn_resolutions else nn.Identity())
            resample = Upsample(width) if level != 0 else nn.Identity()
            if level != 0:
                res *= 2
            self.up.append(Level(blocks, attns, resample))
        assert not skip_widths

        self.norm_out = group_norm(width)
        self.conv_out = nn.Conv2d(width, in_channels, 3, padding=1)

    def forward(self, x, t):
        # type_as (not .to(dtype)) keeps the trace valid after the weights are cast.
        emb = self.emb(timestep_embedding(t, self.ch).type_as(x))
        h = self.conv_in(x)
        skips = [h]
        for level in self.down:
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(h, emb))
                skips.append(h)
            if not isinstance(level.resample, nn.Identity):
                h = level.resample(h)
                skips.append(h)
        h = self.mid_block2(self.mid_attn(self.mid_block1(h, emb)), emb)
        for level in self.up:
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(torch.cat([h, skips.pop()], dim=1), emb))
            h = level.resample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def build(seed=0):
    """The network with random weights from a fixed seed, frozen for inference."""
    torch.manual_seed(seed)
    net = DDPMUNet()
    for p in net.parameters():
        p.requires_grad_(False)  # torch.jit.freeze refuses tensors that require grad
    return net.eval()


def parameter_count(net):
    return sum(p.numel() for p in net.parameters())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--batch", type=int, default=128, help="batch size of the tracing input")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--freeze", action="store_true", help="also write a frozen float32 variant")
    ap.add_argument("--bf16", action="store_true", help="with --freeze: also a frozen bfloat16 variant")
    ap.add_argument("--check", action="store_true", help="print the parameter count, run batch 2")
    ap.add_argument("--device", default="cpu", help="device used for tracing (cpu or cuda)")
    args = ap.parse_args(argv)
    if args.batch < 1:
        ap.error(f"--batch must be a positive integer, got {args.batch}")

    os.makedirs(args.out, exist_ok=True)
    net = build(args.seed).to(args.device)
    n_params = parameter_count(net)
    gen = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(args.batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=gen).to(args.device)
    t = torch.full((args.batch,), 999.0).to(args.device)
    with torch.no_grad():
        traced = torch.jit.trace(net, (x, t), check_trace=False)
        paths = {"fp32": os.path.join(args.out, "ddpm_cifar10_unet_fp32.pt")}
        traced.save(paths["fp32"])  # the native loader maps the tensors onto its device
        if args.freeze:
            frozen = torch.jit.freeze(torch.jit.trace(net, (x, t), check_trace=False))
            paths["fp32_frozen"] = os.path.join(args.out, "ddpm_cifar10_unet_fp32_frozen.pt")
            frozen.save(paths["fp32_frozen"])
            if args.bf16:
                net16 = copy.deepcopy(net).to(torch.bfloat16)
                frozen16 = torch.jit.freeze(torch.jit.trace(net16, (x.bfloat16(), t), check_trace=False))
                paths["bf16_frozen"] = os.path.join(args.out, "ddpm_cifar10_unet_bf16_frozen.pt")
                frozen16.save(paths["bf16_frozen"])
    info = {"torch": torch.__version__, "parameters": n_params, "batch": args.batch,
            "seed": args.seed, "files": paths}
    if args.check:
        net = net.cpu()
        xs, ts = x[:2].cpu(), torch.tensor([999.0, 10.0])
        with torch.no_grad():
            eager = net(xs, ts)
            loaded = torch.jit.load(paths["fp32"], map_location="cpu")(xs, ts)
        info["check"] = {
            "output_shape": list(eager.shape),
            "finite": bool(torch.isfinite(eager).all()),
            "max_abs_diff_trace_vs_eager": float((eager - loaded).abs().max()),
            "output_std": float(eager.std()),
            "time_dependence": float((eager[0] - net(xs[:1], ts[1:]).squeeze(0)).abs().max()),
        }
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
