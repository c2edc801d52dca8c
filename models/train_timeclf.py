#!/usr/bin/python3
"""Train the noise-aware (time-conditioned) Fashion-MNIST classifier used for classifier
guidance of the bundled UNet (models/fmnist_unet.pt), and export it as TorchScript.

Convention (the one the executor's classifier guidance calls):
    forward(x: Tensor[B, 1, 28, 28] float32, the noised image x_t in the data range of the UNet,
            t: Tensor[B] float32, the DDPM index in [0, 999] (the UNet's model input time),
            may be fractional)
        -> logits [B, 10]  (log p(y | x_t, t) = log_softmax(logits)[y])

Training data: x_t = a_t x0 + s_t eps with x0 the Fashion-MNIST training images in [-1, 1]
(pixel / 127.5 - 1), eps ~ N(0, I), t uniform on {0, ..., 999}, a_t = sqrt(alphas_cumprod[t]),
s_t = sqrt(1 - alphas_cumprod[t]) of the bundled schedule (DDPM linear betas 1e-4..0.02,
N = 1000). Labels from /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).

Network (small and smooth: SiLU and average pooling, so that grad_x log p is a useful
guidance direction): a sinusoidal embedding of t -> MLP(64); three conv3x3 stages
(1->32->64->64 channels, GroupNorm, SiLU, the time embedding added as a per-channel bias,
average pooling 2x: 28 -> 14 -> 7 -> 3), flatten 576 -> linear 128 (SiLU) -> linear 10.
Adam, lr 2e-3 (cosine decay), batch 128, random horizontal flips, one CPU thread.

Usage:
    nice -n 10 /usr/bin/python3 models/train_timeclf.py                # train, test, export
    nice -n 10 /usr/bin/python3 models/train_timeclf.py --minutes 1    # shorter
Writes models/fmnist_timeclf.pt and models/fmnist_timeclf.json (test accuracy per noise level,
training time, steps, seed, command, hardware).
"""
import argparse
import json
import math
import os
import platform
import time
from typing import Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fmnist_classifier import read_idx  # the IDX reader of the FD classifier's script (same folder)

DATA_DIR = os.environ.get('FMNIST_DIR', '/usr/share/datasets/fashion-mnist')
HERE = os.path.dirname(os.path.abspath(__file__))
NUM_STEPS = 1000
CLASS_NAMES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']
EVAL_TIMES = [0, 250, 500, 750, 900, 999]


def load_split(split: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """('train' | 't10k') -> images float32 [n, 1, 28, 28] in [-1, 1], labels int64 [n]."""
    images = read_idx(os.path.join(DATA_DIR, f'{split}-images-idx3-ubyte.gz'))
    labels = read_idx(os.path.join(DATA_DIR, f'{split}-labels-idx1-ubyte.gz'))
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).unsqueeze(1).contiguous()
    return x, torch.from_numpy(labels.astype(np.int64))


def schedule() -> Tuple[torch.Tensor, torch.Tensor]:
    """(a_t, s_t) for t = 0..999 of the bundled DDPM schedule, float32."""
    betas = torch.linspace(1e-4, 0.02, NUM_STEPS, dtype=torch.float64)
    abar = torch.cumprod(1.0 - betas, dim=0)
    return abar.sqrt().float(), (1.0 - abar).sqrt().float()


class TimeClassifier(nn.Module):
    def __init__(self, emb: int = 64):
        super().__init__()
        self.half = emb // 2
        self.temb = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        chans = [1, 32, 64, 64]
        self.convs = nn.ModuleList([nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(3)])
        self.norms = nn.ModuleList([nn.GroupNorm(8, chans[i + 1]) for i in range(3)])
        self.tproj = nn.ModuleList([nn.Linear(emb, chans[i + 1]) for i in range(3)])
        self.fc1 = nn.Linear(64 * 3 * 3, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        freqs = torch.exp(torch.arange(self.half, dtype=torch.float32, device=x.device)
                          * (-math.log(10000.0) / self.half))
        angles = t.float().unsqueeze(1) * freqs.unsqueeze(0)
        e = self.temb(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).to(x.dtype))
        h = x
        for conv, norm, tp in zip(self.convs, self.norms, self.tproj):
            h = F.silu(norm(conv(h)) + tp(e).unsqueeze(-1).unsqueeze(-1))
            h = F.avg_pool2d(h, 2)
        h = F.silu(self.fc1(h.flatten(1)))
        return self.fc2(h)


def noised(x0: torch.Tensor, t: torch.Tensor, a: torch.Tensor, s: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    eps = torch.randn(x0.shape, generator=gen)
    return a[t].view(-1, 1, 1, 1) * x0 + s[t].view(-1, 1, 1, 1) * eps


@torch.no_grad()
def accuracy_per_time(model: nn.Module, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> dict:
    """Test-set accuracy at each t of EVAL_TIMES (noise drawn with seed 1234 + t)."""
    model.eval()
    out = {}
    for t in EVAL_TIMES:
        gen = torch.Generator().manual_seed(1234 + t)
        correct = 0
        for i in range(0, x.shape[0], 1000):
            xb = x[i:i + 1000]
            tb = torch.full((xb.shape[0],), t, dtype=torch.long)
            logits = model(noised(xb, tb, a, s, gen), tb.float())
            correct += int((logits.argmax(1) == y[i:i + 1000]).sum())
        out[str(t)] = correct / x.shape[0]
    return out


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--minutes', type=float, default=5.0, help='wall-clock training budget')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', default=HERE)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x_train, y_train = load_split('train')
    x_test, y_test = load_split('t10k')
    a, s = schedule()
    model = TimeClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    budget = args.minutes * 60.0
    started = time.time()
    step = 0
    n = x_train.shape[0]
    perm = torch.randperm(n, generator=gen)
    at = 0
    batch = 128
    while time.time() - started < budget:
        if at + batch > n:
            perm = torch.randperm(n, generator=gen)
            at = 0
        idx = perm[at:at + batch]
        at += batch
        xb = x_train[idx]
        flip = torch.rand(batch, generator=gen) < 0.5
        xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
        tb = torch.randint(0, NUM_STEPS, (batch,), generator=gen)
        lr = 2e-3 * 0.5 * (1 + math.cos(math.pi * min(1.0, (time.time() - started) / budget)))
        for g in opt.param_groups:
            g['lr'] = lr
        model.train()
        loss = F.cross_entropy(model(noised(xb, tb, a, s, gen), tb.float()), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            print(f'step {step} loss {loss.item():.4f} {time.time() - started:.0f}s', flush=True)
    train_seconds = time.time() - started
    acc = accuracy_per_time(model, x_test, y_test, a, s)
    print('test accuracy per t:', acc, flush=True)
    model.eval()
    scripted = torch.jit.script(model)
    pt = os.path.join(args.out_dir, 'fmnist_timeclf.pt')
    scripted.save(pt)
    card = {
        'file': 'fmnist_timeclf.pt',
        'input': 'x: float32 [B, 1, 28, 28], the noised image x_t = a_t x0 + s_t eps (x0 in [-1, 1]); '
                 't: float32 [B], the DDPM index in [0, 999] of the bundled schedule (the UNet\'s model input time)',
        'outputs': ['logits [B, 10]'],
        'classes': CLASS_NAMES,
        'schedule': 'DDPM discrete, linear betas 1e-4..0.02, N = 1000 (as models/fmnist_unet.pt)',
        'test_accuracy_per_t': acc,
        'test_images': int(x_test.shape[0]),
        'train_steps': step,
        'batch_size': batch,
        'epochs': round(step * batch / n, 2),
        'train_seconds': round(train_seconds, 1),
        'threads': 1,
        'seed': args.seed,
        'parameterCount': sum(p.numel() for p in model.parameters()),
        'torch': torch.__version__,
        'hardware': f'{cpu_name()} ({platform.machine()}), 1 thread, shared with other jobs (nice -n 10)',
        'command': 'nice -n 10 /usr/bin/python3 models/train_timeclf.py' + (f' --minutes {args.minutes:g}' if args.minutes != 5.0 else ''),
    }
    with open(os.path.join(args.out_dir, 'fmnist_timeclf.json'), 'w') as f:
        json.dump(card, f, indent=2)
        f.write('\n')
    print(f'wrote {pt} ({os.path.getsize(pt)} bytes)')


if __name__ == '__main__':
    main()
