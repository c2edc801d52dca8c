#!/usr/bin/python3
"""Check the exported TorchScript model with plain DDIM (eta = 0) in Python.

This is a sanity check of the bundled model, independent of the TypeScript solvers:
    /usr/bin/python3 models/sample_ddim_check.py --steps 12 --out /tmp/fmnist_ddim12.png
    /usr/bin/python3 models/sample_ddim_check.py --steps 50 --out /tmp/fmnist_ddim50.png

Schedule: DDPM discrete, linear betas 1e-4..0.02, N = 1000. The model's input time is the
DDPM index. DDIM visits `steps` indices evenly spaced from 999 down to 0 (rounded), one
network evaluation each; the last update goes from index 0 to the clean image (alpha_bar = 1).
"""
import argparse
import os

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def alphas_cumprod() -> torch.Tensor:
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


@torch.no_grad()
def ddim(model, x: torch.Tensor, steps: int) -> torch.Tensor:
    abar = alphas_cumprod()
    indices = torch.linspace(999, 0, steps).round().long().tolist()
    x = x.double()
    for k, i in enumerate(indices):
        a_t = abar[i]
        a_next = abar[indices[k + 1]] if k + 1 < len(indices) else torch.tensor(1.0, dtype=torch.float64)
        t_in = torch.full((x.shape[0],), float(i), dtype=torch.float32)
        eps = model(x.float(), t_in).double()
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
    return x.float()


def save_grid(images: torch.Tensor, path: str, cols: int = 8, zoom: int = 3) -> None:
    """images [n, 1, h, w] in [-1, 1] -> one grayscale PNG grid with 2-pixel gaps."""
    n, _, h, w = images.shape
    rows = (n + cols - 1) // cols
    pix = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    grid = np.zeros((rows * (h + 2) + 2, cols * (w + 2) + 2), dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        grid[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + c * (w + 2):2 + c * (w + 2) + w] = pix[k, 0]
    Image.fromarray(grid).resize((grid.shape[1] * zoom, grid.shape[0] * zoom), Image.NEAREST).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default=os.path.join(HERE, 'fmnist_unet.pt'))
    parser.add_argument('--steps', type=int, default=12)
    parser.add_argument('-n', type=int, default=64)
    parser.add_argument('--seed', type=int, default=42)
    parser.add_argument('--out', default='/tmp/fmnist_ddim12.png')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = torch.jit.load(args.model).eval()
    x = torch.randn(args.n, 1, 28, 28, generator=torch.Generator().manual_seed(args.seed))
    out = ddim(model, x, args.steps)
    save_grid(out, args.out)
    print(f'{args.out}: {args.n} samples, {args.steps} evaluations, '
          f'mean {out.mean():.3f} std {out.std():.3f} min {out.min():.3f} max {out.max():.3f} '
          f'(|x|>1.05: {(out.abs() > 1.05).float().mean() * 100:.1f}%)')


if __name__ == '__main__':
    main()
