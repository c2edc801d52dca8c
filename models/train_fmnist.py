#!/usr/bin/python3
"""Train the bundled Fashion-MNIST noise-prediction UNet and export it as TorchScript.

Schedule: DDPM discrete, linear betas 1e-4..0.02, N = 1000 steps.
Model convention (what the solver expects):
    forward(x: Tensor[B, 1, 28, 28] float32 in data range [-1, 1] (noised),
            t: Tensor[B] float32, the DDPM index in [0, 999], may be fractional)
        -> predicted noise epsilon, same shape as x.

Loss: v-prediction MSE (the network predicts v internally and returns epsilon, see
NoisePredictor) with t drawn uniformly from {0, ..., 999}.
Weights exported: an exponential moving average (EMA) of the training weights.

Usage (see models/README.md for the exact command that produced fmnist_unet.pt):
    /usr/bin/python3 models/train_fmnist.py --minutes 45 --out-dir models --ckpt-dir /tmp/fmnist_ckpt
    /usr/bin/python3 models/train_fmnist.py --benchmark          # time a few iterations and exit
    /usr/bin/python3 models/train_fmnist.py --export-only CKPT   # export a checkpoint and exit
"""
import argparse
import gzip
import json
import math
import os
import time
from typing import List, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = os.environ.get('FMNIST_DIR', '/usr/share/datasets/fashion-mnist')
NUM_STEPS = 1000
BETA_START = 1e-4
BETA_END = 0.02


# ----------------------------------------------------------------------------- data

def load_idx_images(path: str) -> np.ndarray:
    """Read a gzipped IDX3 image file into a uint8 array [n, rows, cols]."""
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    magic, count, rows, cols = np.frombuffer(raw[:16], dtype='>u4')
    if magic != 2051:
        raise ValueError(f'{path}: not an IDX3 image file (magic {magic})')
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(int(count), int(rows), int(cols))


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

    def __init__(self, base: int = 32, mults: List[int] = [1, 2, 2], blocks: int = 1, groups: int = 8):
        super().__init__()
        temb_dim = 4 * base
        self.time_embed = TimeEmbedding(base, temb_dim)
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

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_embed(t)
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


# ----------------------------------------------------------------------------- schedule

def alphas_cumprod() -> torch.Tensor:
    betas = torch.linspace(BETA_START, BETA_END, NUM_STEPS, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)



# ----------------------------------------------------------------------------- training

def build_model(args: argparse.Namespace) -> NoisePredictor:
    return NoisePredictor(UNet(base=args.base, mults=[int(m) for m in args.mults.split(',')], blocks=args.blocks))


def export(ema_model: NoisePredictor, args: argparse.Namespace, info: dict) -> None:
    ema_model = ema_model.cpu().eval()
    scripted = torch.jit.script(ema_model)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.0, 417.25, 999.0])
    with torch.no_grad():
        eager, script = ema_model(x, t), scripted(x, t)
    if not torch.allclose(eager, script, atol=1e-5):
        raise RuntimeError('scripted model disagrees with the eager model')
    os.makedirs(args.out_dir, exist_ok=True)
    pt_path = os.path.join(args.out_dir, 'fmnist_unet.pt')
    scripted.save(pt_path)
    params = sum(p.numel() for p in ema_model.parameters())
    meta = {
        'name': 'fmnist_unet',
        'description': 'Fashion-MNIST noise-prediction UNet (EMA weights), TorchScript',
        'modelType': 'noise',
        'parameterisation': 'UNet predicts v = a*eps - s*x0 internally; forward returns eps = a*v + s*x_t',
        'shape': [1, 28, 28],
        'dataRange': [-1, 1],
        'schedule': {'kind': 'discrete', 'betaSchedule': 'linear', 'betaStart': BETA_START,
                     'betaEnd': BETA_END, 'numSteps': NUM_STEPS},
        'timeInput': 'DDPM index in [0, N-1] as float32: 1000 * (t_continuous - 1/N)',
        'inputs': ['x: float32 [B, 1, 28, 28]', 't: float32 [B]'],
        'parameters': params,
        'architecture': {'base': args.base, 'mults': args.mults, 'blocksPerLevel': args.blocks,
                         'attention': '7x7', 'norm': 'GroupNorm(8)', 'activation': 'SiLU'},
        'training': info,
        'torchVersion': torch.__version__,
    }
    with open(os.path.join(args.out_dir, 'fmnist_unet.json'), 'w') as f:
        json.dump(meta, f, indent=2)
        f.write('\n')
    print(f'exported {pt_path} ({os.path.getsize(pt_path)} bytes, {params} parameters)', flush=True)


def update_ema(ema_model: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema_model.parameters(), model.parameters()):
            e.mul_(decay).add_(p, alpha=1.0 - decay)


def benchmark(args: argparse.Namespace) -> None:
    model = build_model(args)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f'parameters: {sum(p.numel() for p in model.parameters())}', flush=True)
    x = torch.randn(args.batch, 1, 28, 28)
    t = torch.randint(0, NUM_STEPS, (args.batch,)).float()
    for i in range(args.bench_iters + 2):
        if i == 2:
            start = time.time()
        loss = F.mse_loss(model(x, t), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    per_iter = (time.time() - start) / args.bench_iters
    print(f'batch {args.batch}: {per_iter:.3f} s/iter, {args.batch / per_iter:.1f} img/s, '
          f'epoch of 60000 = {60000 / args.batch * per_iter / 60:.1f} min', flush=True)


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    data = load_training_set().to(device)
    n = data.shape[0]
    abar = alphas_cumprod().float()
    sqrt_abar, sqrt_one_minus_abar = abar.sqrt().to(device), (1.0 - abar).sqrt().to(device)

    model = build_model(args).to(device)
    ema_model = build_model(args).to(device)
    ema_model.load_state_dict(model.state_dict())
    for p in ema_model.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f'parameters: {sum(p.numel() for p in model.parameters())}', flush=True)

    step, epoch, previous_seconds = 0, 0, 0.0
    if args.resume:
        ckpt = torch.load(args.resume, map_location=device)
        model.load_state_dict(ckpt['model'])
        ema_model.load_state_dict(ckpt['ema'])
        opt.load_state_dict(ckpt['opt'])
        step, epoch, previous_seconds = ckpt['step'], ckpt['epoch'], ckpt['seconds']
        print(f'resumed from {args.resume} at step {step} ({previous_seconds:.0f}s trained)', flush=True)

    os.makedirs(args.ckpt_dir, exist_ok=True)
    log = open(os.path.join(args.ckpt_dir, 'loss.log'), 'a')
    start = time.time() - previous_seconds
    deadline = start + 60.0 * args.minutes
    loss_ema = None
    recent_losses: List[float] = []  # the last 1000 step losses
    done = False
    while not done:
        perm = torch.randperm(n, device=device)
        for b in range(0, n - args.batch + 1, args.batch):
            x0 = data[perm[b:b + args.batch]]
            if torch.rand(()) < 0.5:  # garments are left-right symmetric enough: horizontal flip
                x0 = x0.flip(-1)
            t = torch.randint(0, NUM_STEPS, (args.batch,), device=device)
            noise = torch.randn_like(x0)
            xt = sqrt_abar[t].view(-1, 1, 1, 1) * x0 + sqrt_one_minus_abar[t].view(-1, 1, 1, 1) * noise
            # v-prediction loss: = epsilon MSE weighted by 1 / alpha_bar_t (x_0 MSE weighted by SNR + 1)
            a, s = model.coefficients(t.float())
            loss = F.mse_loss(model.net(xt, t.float()), a * noise - s * x0)

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
            if step % args.ckpt_every == 0:
                torch.save({'model': model.state_dict(), 'ema': ema_model.state_dict(),
                            'opt': opt.state_dict(), 'step': step, 'epoch': epoch,
                            'seconds': time.time() - start, 'args': vars(args)},
                           os.path.join(args.ckpt_dir, 'last.pt'))
            if time.time() > deadline:
                done = True
                break
        epoch += 1

    elapsed = time.time() - start
    info = {'steps': step, 'epochs': round(step * args.batch / n, 2), 'batch': args.batch,
            'lr': args.lr, 'emaDecay': args.ema, 'wallClockSeconds': round(elapsed),
            'finalLossEma': round(loss_ema, 5),
            'meanLossLast1000Steps': round(sum(recent_losses) / max(1, len(recent_losses)), 5),
            'seed': args.seed}
    print(json.dumps(info), flush=True)
    torch.save({'model': model.state_dict(), 'ema': ema_model.state_dict(), 'step': step,
                'args': vars(args), 'info': info}, os.path.join(args.ckpt_dir, 'last.pt'))
    # The EMA weights alone (CPU tensors): small enough to bring back from a GPU machine and
    # export there with `--export-only` under the Debian PyTorch that LibTorch 1.13 can load.
    torch.save({'ema': {k: v.cpu() for k, v in ema_model.state_dict().items()}, 'args': vars(args),
                'info': info}, os.path.join(args.ckpt_dir, 'ema.pt'))
    export(ema_model, args, info)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--base', type=int, default=32, help='channels at 28x28')
    parser.add_argument('--mults', default='1,2,2', help='channel multipliers per resolution')
    parser.add_argument('--blocks', type=int, default=1, help='residual blocks per level (down path)')
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--warmup', type=int, default=200, help='linear learning-rate warm-up steps')
    parser.add_argument('--ema', type=float, default=0.999, help='EMA decay of exported weights')
    parser.add_argument('--minutes', type=float, default=45.0, help='wall-clock training budget')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (2 threads were 6x slower than 1 on a busy 2-core machine)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu', help="torch device to train on, e.g. 'cuda'")
    parser.add_argument('--ckpt-every', type=int, default=100)
    parser.add_argument('--ckpt-dir', default='/tmp/fmnist_ckpt')
    parser.add_argument('--out-dir', default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument('--resume', metavar='CKPT', help='continue from a checkpoint (same architecture flags)')
    parser.add_argument('--benchmark', action='store_true', help='time a few iterations and exit')
    parser.add_argument('--bench-iters', type=int, default=5)
    parser.add_argument('--export-only', metavar='CKPT', help='export the EMA weights of a checkpoint and exit')
    args = parser.parse_args()
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
