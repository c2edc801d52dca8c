#!/usr/bin/python3
"""Train the bundled Fashion-MNIST noise-prediction UNets and export them as TorchScript.

Two models come from this script: the unconditional `fmnist_unet` (default) and, with
`--conditional`, the class-conditional `fmnist_cond_unet` for classifier-free guidance.

Schedule: DDPM discrete, linear betas 1e-4..0.02, N = 1000 steps.
Model convention (what the solver expects):
    forward(x: Tensor[B, 1, 28, 28] float32 in data range [-1, 1] (noised),
            t: Tensor[B] float32, the DDPM index in [0, 999], may be fractional)
        -> predicted noise epsilon, same shape as x.
Conditional model (--conditional):
    forward(x, t, cond: Tensor[B, 11] float32) -> epsilon
    cond is a one-hot row over the 10 Fashion-MNIST classes plus a null class (index 10)
    that stands for "no label": e_10 is the `uncond` input of classifier-free guidance.
    Training replaces the label by the null class with probability --label-dropout.

Loss: v-prediction MSE (the network predicts v internally and returns epsilon, see
NoisePredictor) with t drawn uniformly from {0, ..., 999}.
Weights exported: an exponential moving average (EMA) of the training weights.

Usage (see models/README.md for the exact command that produced fmnist_unet.pt):
    /usr/bin/python3 models/train_fmnist.py --minutes 45 --out-dir models --ckpt-dir /tmp/fmnist_ckpt
    /usr/bin/python3 models/train_fmnist.py --benchmark          # time a few iterations and exit
    /usr/bin/python3 models/train_fmnist.py --export-only CKPT   # export a checkpoint and exit
    /usr/bin/python3 models/train_fmnist.py --conditional --init-from models/fmnist_unet.pt \
        --ckpt-dir /work/train/fmnist_cond --out-dir /work/train/fmnist_cond/export
    ... --resume /work/train/fmnist_cond/last.pt     # continue exactly where a run stopped

Checkpoints (`last.pt` in --ckpt-dir, written atomically every --ckpt-minutes, at the end and
on SIGTERM/SIGINT) hold the weights, EMA, optimizer, step, epoch, the epoch's data order and
position, the RNG states and the loss statistics, so `--resume` continues the same run
step for step (on the same device kind; CPU and CUDA random streams differ).
"""
import argparse
import gzip
import json
import math
import os
import signal
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = os.environ.get('FMNIST_DIR', '/usr/share/datasets/fashion-mnist')
NUM_STEPS = 1000
BETA_START = 1e-4
BETA_END = 0.02
# Fashion-MNIST label order (the dataset's documentation); index 10 is the null class.
CLASS_NAMES = ['t-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag',
               'ankle boot']
NULL_CLASS = len(CLASS_NAMES)
COND_DIM = len(CLASS_NAMES) + 1


# ----------------------------------------------------------------------------- data

def load_idx_images(path: str) -> np.ndarray:
    """Read a gzipped IDX3 image file into a uint8 array [n, rows, cols]."""
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    magic, count, rows, cols = np.frombuffer(raw[:16], dtype='>u4')
    if magic != 2051:
        raise ValueError(f'{path}: not an IDX3 image file (magic {magic})')
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(int(count), int(rows), int(cols))


def load_idx_labels(path: str) -> np.ndarray:
    """Read a gzipped IDX1 label file into a uint8 array [n]."""
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    magic, count = np.frombuffer(raw[:8], dtype='>u4')
    if magic != 2049:
        raise ValueError(f'{path}: not an IDX1 label file (magic {magic})')
    return np.frombuffer(raw[8:], dtype=np.uint8)[:int(count)]


def load_training_labels() -> torch.Tensor:
    """The 60 000 training labels (0..9, CLASS_NAMES order) as int64 [n]."""
    labels = load_idx_labels(os.path.join(DATA_DIR, 'train-labels-idx1-ubyte.gz'))
    if labels.max() >= len(CLASS_NAMES):
        raise ValueError(f'label {labels.max()} out of range 0..{len(CLASS_NAMES) - 1}')
    return torch.from_numpy(labels.astype(np.int64))


def load_training_set() -> torch.Tensor:
    """60 000 training images as float32 [n, 1, 28, 28] scaled to [-1, 1]."""
    images = load_idx_images(os.path.join(DATA_DIR, 'train-images-idx3-ubyte.gz'))
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)
    return x.unsqueeze(1).contiguous()


# ----------------------------------------------------------------------------- network

class TimeEmbedding(nn.Module):
    """Sinusoidal embedding of a (possibly fractional) time index, then a small MLP."""

    def __init__(self, base_dim: int, out_dim: int):
        super().__init__()
        half = base_dim // 2
        self.half = half
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        # Kept in the state dict; forward uses only its dtype, which follows the module's
        # (module.to(torch.bfloat16) casts it), to hand the MLP an input of its own dtype.
        self.register_buffer('freqs', freqs)
        self.mlp = nn.Sequential(nn.Linear(base_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        # The frequencies and angles are computed in float32 whatever the module's dtype: with
        # t up to 999, a bfloat16 frequency would move an angle by radians.
        freqs = torch.exp(torch.arange(self.half, dtype=torch.float32, device=t.device)
                          * (-math.log(10000.0) / self.half))
        angles = t.float().unsqueeze(1) * freqs.unsqueeze(0)
        emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
        return self.mlp(emb.to(self.freqs.dtype))


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with the time embedding added between the convolutions."""

    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.temb_proj = nn.Linear(temb_dim, out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb)).unsqueeze(-1).unsqueeze(-1)
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head spatial self-attention (used only at the lowest resolution, 7x7)."""

    def __init__(self, ch: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        self.scale = float(ch) ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, hgt * wid).unbind(1)
        weights = torch.softmax(torch.bmm(q.transpose(1, 2), k) * self.scale, dim=-1)  # [b, hw, hw]
        out = torch.bmm(v, weights.transpose(1, 2)).reshape(b, c, hgt, wid)
        return x + self.proj(out)


class DownLevel(nn.Module):
    """Residual blocks at one resolution, then (except at the lowest) a stride-2 conv.

    Every output is pushed onto `skips` for the matching up level."""

    def __init__(self, in_ch: int, out_ch: int, blocks: int, temb_dim: int, groups: int, downsample: bool):
        super().__init__()
        self.res = nn.ModuleList([ResBlock(in_ch if i == 0 else out_ch, out_ch, temb_dim, groups)
                                  for i in range(blocks)])
        self.downsample = downsample
        self.down = nn.Conv2d(out_ch, out_ch, 3, stride=2, padding=1) if downsample else nn.Identity()

    def forward(self, h: torch.Tensor, temb: torch.Tensor, skips: List[torch.Tensor]) -> torch.Tensor:
        for res in self.res:
            h = res(h, temb)
            skips.append(h)
        if self.downsample:
            h = self.down(h)
            skips.append(h)
        return h


class UpLevel(nn.Module):
    """Residual blocks that each consume one skip, then (except at the top) nearest 2x + conv."""

    def __init__(self, in_channels: List[int], skip_channels: List[int], out_ch: int, temb_dim: int,
                 groups: int, upsample: bool):
        super().__init__()
        self.res = nn.ModuleList([ResBlock(c + s, out_ch, temb_dim, groups)
                                  for c, s in zip(in_channels, skip_channels)])
        self.upsample = upsample
        self.up = nn.Conv2d(out_ch, out_ch, 3, padding=1) if upsample else nn.Identity()

    def forward(self, h: torch.Tensor, temb: torch.Tensor, skips: List[torch.Tensor]) -> torch.Tensor:
        for res in self.res:
            h = res(torch.cat([h, skips.pop()], dim=1), temb)
        if self.upsample:
            h = self.up(F.interpolate(h, scale_factor=2.0, mode='nearest'))
        return h


class UNet(nn.Module):
    """Compact UNet on 28x28 images: resolutions 28 -> 14 -> 7, one attention block at 7x7.

    Each level has `blocks` residual blocks on the way down and `blocks + 1` on the way up
    (the extra one consumes the skip of the downsampling step), as in the DDPM UNet.
    """

    def __init__(self, base: int = 32, mults: List[int] = [1, 2, 2], blocks: int = 1, groups: int = 8,
                 cond_dim: int = 0):
        super().__init__()
        temb_dim = 4 * base
        self.time_embed = TimeEmbedding(base, temb_dim)
        # Conditional model: a linear map of the cond row (one-hot class or null class) added to
        # the time embedding, i.e. a class embedding table. Zero-initialised, so a network
        # started from unconditional weights (--init-from) begins as exactly that model.
        self.cond_dim = cond_dim
        if cond_dim > 0:
            self.label_embed = nn.Linear(cond_dim, temb_dim, bias=False)
            nn.init.zeros_(self.label_embed.weight)
        else:
            self.label_embed = nn.Identity()  # never called: keeps the unconditional state dict unchanged
        self.conv_in = nn.Conv2d(1, base, 3, padding=1)

        skip_channels = [base]
        ch = base
        downs = []
        for level, mult in enumerate(mults):
            last = level == len(mults) - 1
            downs.append(DownLevel(ch, base * mult, blocks, temb_dim, groups, downsample=not last))
            ch = base * mult
            skip_channels += [ch] * (blocks if last else blocks + 1)
        self.downs = nn.ModuleList(downs)

        self.mid1 = ResBlock(ch, ch, temb_dim, groups)
        self.mid_attn = SelfAttention(ch, groups)
        self.mid2 = ResBlock(ch, ch, temb_dim, groups)

        ups = []
        for level, mult in reversed(list(enumerate(mults))):
            out_ch = base * mult
            ins = [ch] + [out_ch] * blocks
            skips = [skip_channels.pop() for _ in range(blocks + 1)]
            ups.append(UpLevel(ins, skips, out_ch, temb_dim, groups, upsample=level != 0))
            ch = out_ch
        self.ups = nn.ModuleList(ups)

        self.norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, 1, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        temb = self.time_embed(t)
        if cond is not None:
            temb = temb + self.label_embed(cond.to(temb.dtype))
        h = self.conv_in(x)
        skips: List[torch.Tensor] = [h]
        for down in self.downs:
            h = down(h, temb, skips)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        for up in self.ups:
            h = up(h, temb, skips)
        return self.conv_out(F.silu(self.norm_out(h)))


class NoisePredictor(nn.Module):
    """The exported model: a UNet that predicts v, returned as the noise epsilon.

    With x_t = a x_0 + s eps (a = sqrt(alpha_bar_t), s = sqrt(1 - alpha_bar_t)) and
    v = a eps - s x_0, the identity eps = a v + s x_t holds. Near t = 999 (a ~ 0.006) the
    returned epsilon is then ~x_t plus a small correction, so the large 1/a amplification of
    epsilon errors in x_0 = (x_t - s eps) / a stays small, which matters for few-step solvers.
    alpha_bar at a fractional index is interpolated linearly in log alpha_bar.
    """

    def __init__(self, net: UNet):
        super().__init__()
        self.net = net
        self.register_buffer('log_alpha_bar', torch.log(alphas_cumprod()).float())
        # Module attributes (TorchScript cannot read module globals) for float32_log_alpha_bar.
        self.beta_start, self.beta_end, self.num_steps = BETA_START, BETA_END, NUM_STEPS

    def float32_log_alpha_bar(self, device: torch.device) -> torch.Tensor:
        """log alpha_bar in float32, recomputed: used when the module was cast to a 16-bit dtype."""
        betas = torch.linspace(self.beta_start, self.beta_end, self.num_steps, dtype=torch.float64, device=device)
        return torch.log(torch.cumprod(1.0 - betas, dim=0)).float()

    def coefficients(self, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        # In float32 whatever the module's dtype (a bfloat16 table would move alpha by ~2 %).
        table = self.log_alpha_bar.float()
        if table.dtype != self.log_alpha_bar.dtype:
            table = self.float32_log_alpha_bar(t.device)
        n = table.shape[0]
        t = t.float().clamp(0.0, float(n - 1))
        lower = t.floor().long().clamp(max=n - 2)
        w = t - lower.float()
        log_ab = (1.0 - w) * table[lower] + w * table[lower + 1]
        a = torch.exp(0.5 * log_ab).view(-1, 1, 1, 1)
        s = torch.sqrt(-torch.expm1(log_ab)).view(-1, 1, 1, 1)
        return a, s

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = self.coefficients(t)
        # eps in x's dtype (a, s are float32: without the cast a bfloat16 model returned float32)
        return (a * self.net(x, t) + s * x).to(x.dtype)


class CondNoisePredictor(NoisePredictor):
    """The exported conditional model: forward(x, t, cond) with cond one-hot [B, 11].

    Row b of cond selects class k (0..9, CLASS_NAMES) with a 1 at k, or "no class" with a
    1 at NULL_CLASS (10): the unconditional model of classifier-free guidance. The class
    embedding is linear in cond, so a mixture of one-hot rows embeds as the same mixture.
    """

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if cond.dim() != 2 or cond.size(0) != x.size(0) or cond.size(1) != self.net.cond_dim:
            raise RuntimeError('cond must be float32 [B, ' + str(self.net.cond_dim) +
                               '] (one-hot: classes 0..9, null class 10) with B = x.size(0) = ' +
                               str(x.size(0)) + ', got ' + str(cond.shape))
        a, s = self.coefficients(t)
        return (a * self.net(x, t, cond) + s * x).to(x.dtype)


class NullClassNoisePredictor(nn.Module):
    """forward(x, t) of a conditional model at the null class: its unconditional model with
    the bundled unconditional interface, a drop-in for fmnist_unet.pt (--export-unconditional)."""

    def __init__(self, cond_model: CondNoisePredictor):
        super().__init__()
        self.model = cond_model
        self.cond_dim = cond_model.net.cond_dim
        self.null_index = NULL_CLASS

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        cond = torch.zeros(x.size(0), self.cond_dim, dtype=torch.float32, device=x.device)
        cond[:, self.null_index] = 1.0
        return self.model(x, t, cond)


def one_hot_cond(labels: torch.Tensor) -> torch.Tensor:
    """Class indices (0..10) -> the float32 cond rows [B, 11] the conditional model takes."""
    return F.one_hot(labels, COND_DIM).float()


# ----------------------------------------------------------------------------- schedule

def alphas_cumprod() -> torch.Tensor:
    betas = torch.linspace(BETA_START, BETA_END, NUM_STEPS, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)



# ----------------------------------------------------------------------------- training

def build_model(args: argparse.Namespace) -> NoisePredictor:
    mults = [int(m) for m in args.mults.split(',')]
    if args.conditional:
        return CondNoisePredictor(UNet(base=args.base, mults=mults, blocks=args.blocks, cond_dim=COND_DIM))
    return NoisePredictor(UNet(base=args.base, mults=mults, blocks=args.blocks))


def model_name(args: argparse.Namespace) -> str:
    return 'fmnist_cond_unet' if args.conditional else 'fmnist_unet'


def export(ema_model: NoisePredictor, args: argparse.Namespace, info: dict) -> None:
    ema_model = ema_model.cpu().eval()
    scripted = torch.jit.script(ema_model)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.0, 417.25, 999.0])
    inputs = (x, t, one_hot_cond(torch.tensor([7, 0, NULL_CLASS]))) if args.conditional else (x, t)
    with torch.no_grad():
        eager, script = ema_model(*inputs), scripted(*inputs)
    if not torch.allclose(eager, script, atol=1e-5):
        raise RuntimeError('scripted model disagrees with the eager model')
    name = model_name(args)
    null_class_export = args.conditional and args.export_unconditional
    if null_class_export:
        # The conditional model at the null class as an (x, t) model under the unconditional name.
        null_rows = one_hot_cond(torch.full((3,), NULL_CLASS))
        ema_model, name = NullClassNoisePredictor(ema_model).eval(), 'fmnist_unet'
        scripted = torch.jit.script(ema_model)
        with torch.no_grad():
            if not torch.allclose(scripted(x, t), ema_model.model(x, t, null_rows), atol=1e-5):
                raise RuntimeError('the scripted null-class model disagrees with the conditional model at the null class')
    os.makedirs(args.out_dir, exist_ok=True)
    pt_path = os.path.join(args.out_dir, name + '.pt')
    scripted.save(pt_path)
    params = sum(p.numel() for p in ema_model.parameters())
    meta = {
        'name': name,
        'description': ('Fashion-MNIST noise-prediction UNet: the class-conditional model at its null class '
                        '(EMA weights), TorchScript' if null_class_export else
                        'Fashion-MNIST class-conditional noise-prediction UNet for classifier-free guidance '
                        '(EMA weights), TorchScript' if args.conditional else
                        'Fashion-MNIST noise-prediction UNet (EMA weights), TorchScript'),
        'modelType': 'noise',
        'parameterisation': 'UNet predicts v = a*eps - s*x0 internally; forward returns eps = a*v + s*x_t',
        'shape': [1, 28, 28],
        'dataRange': [-1, 1],
        'schedule': {'kind': 'discrete', 'betaSchedule': 'linear', 'betaStart': BETA_START,
                     'betaEnd': BETA_END, 'numSteps': NUM_STEPS},
        'timeInput': 'DDPM index in [0, N-1] as float32: 1000 * (t_continuous - 1/N)',
        'inputs': ['x: float32 [B, 1, 28, 28]', 't: float32 [B]'],
    }
    if null_class_export:
        meta['nullClassOf'] = ('fmnist_cond_unet (train_fmnist.py --conditional): forward(x, t) = '
                               f'cond_model(x, t, one-hot of the null class {NULL_CLASS})')
    elif args.conditional:
        meta['inputs'].append(f'cond: float32 [B, {COND_DIM}]')
        meta['conditioning'] = {
            'kind': 'one-hot',
            'size': COND_DIM,
            'classes': CLASS_NAMES,
            'nullIndex': NULL_CLASS,
            'description': (f'cond row b = one-hot of the class index (0..{NULL_CLASS - 1}, "classes" order = '
                            f'the Fashion-MNIST label values); the null class ({NULL_CLASS}) means no label: '
                            'pass it as uncond for classifier-free guidance, or as cond for plain '
                            'unconditional samples'),
            'labelDropout': args.label_dropout,
        }
    meta.update({
        'parameters': params,
        'architecture': {'base': args.base, 'mults': args.mults, 'blocksPerLevel': args.blocks,
                         'attention': '7x7', 'norm': 'GroupNorm(8)', 'activation': 'SiLU',
                         **({'classEmbedding': f'Linear({COND_DIM}, {4 * args.base}, bias=False) of cond, '
                             'added to the time embedding'} if args.conditional else {})},
        'training': info,
        'torchVersion': torch.__version__,
    })
    with open(os.path.join(args.out_dir, name + '.json'), 'w') as f:
        json.dump(meta, f, indent=2)
        f.write('\n')
    print(f'exported {pt_path} ({os.path.getsize(pt_path)} bytes, {params} parameters)', flush=True)


def update_ema(ema_model: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema_model.parameters(), model.parameters()):
            e.mul_(decay).add_(p, alpha=1.0 - decay)


def init_from(model: NoisePredictor, path: str) -> None:
    """Start from the weights of an exported model or checkpoint (its EMA weights).

    Every tensor of the source must exist in `model` with the same shape; the only tensor
    allowed to be missing from the source is the class embedding, which then stays zero,
    so a conditional network starts as the unconditional source model. A conditional source for
    an unconditional model starts it as the source's null-class branch."""
    if path.endswith('.pt') and not os.path.basename(path) in ('last.pt', 'ema.pt'):
        try:
            source = torch.jit.load(path, map_location='cpu').state_dict()
        except RuntimeError:
            source = torch.load(path, map_location='cpu')['ema']
    else:
        source = torch.load(path, map_location='cpu')['ema']
    tensors = len(source)
    if 'net.label_embed.weight' in source and model.net.cond_dim == 0:
        # A conditional source for an unconditional model: its null-class branch. The class
        # embedding of the null class is a constant added to the time embedding, i.e. to the
        # bias of the time MLP's last layer: folded there, the (x, t) network is exactly the
        # conditional model at the null class.
        source = dict(source)
        null_column = source.pop('net.label_embed.weight')[:, NULL_CLASS]
        source['net.time_embed.mlp.2.bias'] = source['net.time_embed.mlp.2.bias'] + null_column
        print(f'--init-from {path}: conditional source, starting from its null class', flush=True)
    missing, unexpected = model.load_state_dict(source, strict=False)
    if unexpected or any(k != 'net.label_embed.weight' for k in missing):
        raise ValueError(f'--init-from {path}: architecture differs (missing {missing}, unexpected {unexpected})')
    print(f'initialised from {path} ({tensors} tensors; new: {missing or "none"})', flush=True)


def benchmark(args: argparse.Namespace) -> None:
    model = build_model(args)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f'parameters: {sum(p.numel() for p in model.parameters())}', flush=True)
    x = torch.randn(args.batch, 1, 28, 28)
    t = torch.randint(0, NUM_STEPS, (args.batch,)).float()
    cond = one_hot_cond(torch.randint(0, COND_DIM, (args.batch,))) if args.conditional else None
    for i in range(args.bench_iters + 2):
        if i == 2:
            start = time.time()
        loss = F.mse_loss(model.net(x, t, cond), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    per_iter = (time.time() - start) / args.bench_iters
    print(f'batch {args.batch}: {per_iter:.3f} s/iter, {args.batch / per_iter:.1f} img/s, '
          f'epoch of 60000 = {60000 / args.batch * per_iter / 60:.1f} min', flush=True)


def rng_state(device: torch.device) -> Dict[str, object]:
    state: Dict[str, object] = {'cpu': torch.get_rng_state()}
    if device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Dict[str, object], device: torch.device) -> None:
    torch.set_rng_state(state['cpu'])
    if device.type == 'cuda':
        if 'cuda' not in state:
            raise ValueError('the checkpoint was written by a CPU run: its CUDA random stream is unknown '
                             '(resume on the CPU, or start a new run with --init-from CKPT)')
        torch.cuda.set_rng_state(state['cuda'], device)


def save_atomic(obj: dict, path: str) -> None:
    """torch.save to a temporary file, then rename: a kill mid-write leaves the old file intact."""
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)


class StopRequest:
    """SIGTERM / SIGINT ask the loop to stop after the current step (and checkpoint)."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum: int, frame: object) -> None:
        print(f'signal {signum}: stopping after this step', flush=True)
        self.requested = True


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    data = load_training_set().to(device)
    labels = load_training_labels().to(device) if args.conditional else None
    n = data.shape[0]
    abar = alphas_cumprod().float()
    sqrt_abar, sqrt_one_minus_abar = abar.sqrt().to(device), (1.0 - abar).sqrt().to(device)

    model = build_model(args)
    if args.init_from and not args.resume:
        init_from(model, args.init_from)
    model = model.to(device)
    ema_model = build_model(args).to(device)
    ema_model.load_state_dict(model.state_dict())
    for p in ema_model.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f'parameters: {sum(p.numel() for p in model.parameters())}', flush=True)

    step, epoch, previous_seconds = 0, 0, 0.0
    perm: Optional[torch.Tensor] = None  # this epoch's data order; None: draw a new one
    pos = 0  # index into perm of the next batch
    loss_ema: Optional[float] = None
    recent_losses: List[float] = []  # the last 1000 step losses
    if args.resume:
        ckpt = torch.load(args.resume, map_location=device)
        if 'rng' not in ckpt or 'opt' not in ckpt:
            raise ValueError(f'{args.resume}: not a resumable checkpoint (no optimizer / RNG state)')
        model.load_state_dict(ckpt['model'])
        ema_model.load_state_dict(ckpt['ema'])
        opt.load_state_dict(ckpt['opt'])
        step, epoch, previous_seconds = ckpt['step'], ckpt['epoch'], ckpt['seconds']
        perm, pos = ckpt['perm'], ckpt['pos']
        loss_ema, recent_losses = ckpt['loss_ema'], list(ckpt['recent_losses'])
        set_rng_state(ckpt['rng'], device)
        print(f'resumed from {args.resume} at step {step} ({previous_seconds:.0f}s trained)', flush=True)

    os.makedirs(args.ckpt_dir, exist_ok=True)
    ckpt_path = os.path.join(args.ckpt_dir, 'last.pt')
    log = open(os.path.join(args.ckpt_dir, 'loss.log'), 'a')
    start = time.time() - previous_seconds
    deadline = start + 60.0 * args.minutes
    last_save = time.time()
    stop = StopRequest()

    def checkpoint() -> None:
        save_atomic({'model': model.state_dict(), 'ema': ema_model.state_dict(), 'opt': opt.state_dict(),
                     'step': step, 'epoch': epoch, 'seconds': time.time() - start, 'perm': perm, 'pos': pos,
                     'rng': rng_state(device), 'loss_ema': loss_ema, 'recent_losses': recent_losses,
                     'args': vars(args)}, ckpt_path)

    while not (time.time() > deadline or stop.requested or (args.max_steps and step >= args.max_steps)):
        if perm is None or pos + args.batch > n:
            if perm is not None:
                epoch += 1
            perm, pos = torch.randperm(n, device=device), 0
        idx = perm[pos:pos + args.batch]
        pos += args.batch
        x0 = data[idx]
        if torch.rand(()) < 0.5:  # garments are left-right symmetric enough: horizontal flip
            x0 = x0.flip(-1)
        t = torch.randint(0, NUM_STEPS, (args.batch,), device=device)
        noise = torch.randn_like(x0)
        cond = None
        if labels is not None:
            # label dropout: the null class, so the same network learns the unconditional model
            drop = torch.rand(args.batch, device=device) < args.label_dropout
            cond = one_hot_cond(torch.where(drop, torch.full_like(labels[idx], NULL_CLASS), labels[idx]))
        xt = sqrt_abar[t].view(-1, 1, 1, 1) * x0 + sqrt_one_minus_abar[t].view(-1, 1, 1, 1) * noise
        # v-prediction loss: = epsilon MSE weighted by 1 / alpha_bar_t (x_0 MSE weighted by SNR + 1)
        a, s = model.coefficients(t.float())
        loss = F.mse_loss(model.net(xt, t.float(), cond), a * noise - s * x0)

        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for group in opt.param_groups:
            group['lr'] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        update_ema(ema_model, model, min(args.ema, (1.0 + step) / (10.0 + step)))

        value = float(loss)
        recent_losses = recent_losses[-999:] + [value]
        loss_ema = value if loss_ema is None else 0.99 * loss_ema + 0.01 * value
        step += 1
        if step % 50 == 0:
            line = (f'step {step} epoch {epoch} loss {value:.4f} loss_ema {loss_ema:.4f} '
                    f'lr {lr:.2e} elapsed {time.time() - start:.0f}s')
            print(line, flush=True)
            log.write(line + '\n')
            log.flush()
        if (args.ckpt_every and step % args.ckpt_every == 0) or time.time() - last_save > 60.0 * args.ckpt_minutes:
            checkpoint()
            last_save = time.time()

    checkpoint()
    elapsed = time.time() - start
    info = {'steps': step, 'epochs': round(step * args.batch / n, 2), 'batch': args.batch,
            'lr': args.lr, 'emaDecay': args.ema, 'wallClockSeconds': round(elapsed),
            'finalLossEma': round(loss_ema, 5) if loss_ema is not None else None,
            'meanLossLast1000Steps': round(sum(recent_losses) / max(1, len(recent_losses)), 5),
            'seed': args.seed, 'device': args.device}
    if args.conditional:
        info['labelDropout'] = args.label_dropout
    if args.init_from:
        info['initFrom'] = args.init_from
    print(json.dumps(info), flush=True)
    # The EMA weights alone (CPU tensors): small enough to bring back from a GPU machine and
    # export there with `--export-only` under the Debian PyTorch that LibTorch 1.13 can load.
    save_atomic({'ema': {k: v.cpu() for k, v in ema_model.state_dict().items()}, 'args': vars(args),
                 'info': info}, os.path.join(args.ckpt_dir, 'ema.pt'))
    if not args.no_export:
        export(ema_model, args, info)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--conditional', action='store_true',
                        help=f'class-conditional model forward(x, t, cond [B, {COND_DIM}]) -> fmnist_cond_unet.pt')
    parser.add_argument('--label-dropout', type=float, default=0.15,
                        help='probability of training a sample with the null class (classifier-free guidance)')
    parser.add_argument('--init-from', metavar='PT',
                        help='start from the weights of an exported model (e.g. models/fmnist_unet.pt) or a checkpoint')
    parser.add_argument('--base', type=int, default=32, help='channels at 28x28')
    parser.add_argument('--mults', default='1,2,2', help='channel multipliers per resolution')
    parser.add_argument('--blocks', type=int, default=1, help='residual blocks per level (down path)')
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--warmup', type=int, default=200, help='linear learning-rate warm-up steps')
    parser.add_argument('--ema', type=float, default=0.999, help='EMA decay of exported weights')
    parser.add_argument('--minutes', type=float, default=45.0,
                        help='wall-clock training budget, counted over all resumed parts of a run')
    parser.add_argument('--max-steps', type=int, default=0, help='stop at this step (0: no limit)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (2 threads were 6x slower than 1 on a busy 2-core machine)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu', help="torch device to train on, e.g. 'cuda'")
    parser.add_argument('--ckpt-every', type=int, default=0, help='also checkpoint every this many steps (0: off)')
    parser.add_argument('--ckpt-minutes', type=float, default=3.0, help='checkpoint at least this often')
    parser.add_argument('--ckpt-dir', default='/tmp/fmnist_ckpt')
    parser.add_argument('--out-dir', default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument('--no-export', action='store_true', help='write checkpoints only (export later)')
    parser.add_argument('--resume', metavar='CKPT', help='continue from a checkpoint (same flags)')
    parser.add_argument('--benchmark', action='store_true', help='time a few iterations and exit')
    parser.add_argument('--bench-iters', type=int, default=5)
    parser.add_argument('--export-only', metavar='CKPT', help='export the EMA weights of a checkpoint and exit')
    parser.add_argument('--export-unconditional', action='store_true',
                        help='with --conditional: export the null class as forward(x, t) named fmnist_unet '
                             '(a drop-in for the unconditional model)')
    args = parser.parse_args()
    if not 0.0 <= args.label_dropout < 1.0:
        parser.error(f'--label-dropout must be in [0, 1), got {args.label_dropout}')
    torch.set_num_threads(args.threads)
    if args.benchmark:
        benchmark(args)
    elif args.export_only:
        ckpt = torch.load(args.export_only, map_location='cpu')
        model = build_model(args)
        model.load_state_dict(ckpt['ema'])
        info = ckpt['info'] if 'info' in ckpt else {'steps': ckpt['step'], 'note': 'exported from a checkpoint'}
        export(model, args, info)
    else:
        train(args)


if __name__ == '__main__':
    main()
