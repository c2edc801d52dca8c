#!/usr/bin/python3
"""Frechet distance of generated Fashion-MNIST samples to the test set, in the feature
space of the project's own classifier (models/fmnist_classifier.pt) -- an FID in the
spirit of the paper's, with that classifier in place of Inception-v3.

Method:
  1. Features: the classifier's penultimate layer (128 values after ReLU) of each image,
     images as float32 [N, 1, 28, 28] in [-1, 1] (samples are clamped to [-1, 1] first,
     as they would be when saved as images).
  2. Reference: all 10 000 Fashion-MNIST test images (Debian dataset-fashion-mnist).
  3. Fit a Gaussian to each feature set: mean mu and covariance S (unbiased, N - 1).
  4. FD = |mu_g - mu_r|^2 + tr(S_g + S_r - 2 (S_r^1/2 S_g S_r^1/2)^1/2), in float64, the
     matrix square roots by symmetric eigendecomposition (negative eigenvalues from
     rounding clipped to 0).
  Like FID, FD has a positive bias that shrinks with the number of samples: compare rows
  with the same N only. The "train images" row (N training images vs the test set) is the
  value a perfect generator would get at that N.

Usage:
  /usr/bin/python3 benchmarks/fid.py --json OUT.json [--train-ref N] SAMPLES.npy ...
  /usr/bin/python3 benchmarks/fid.py --save-ref-stats REF.pt [--train-ref N]   (then --ref-stats REF.pt
      scores without the dataset, e.g. on another machine)
  /usr/bin/python3 benchmarks/fid.py --json OUT.json --ref-npy ODE.npy SAMPLES.npy ...   (vs other samples)
  /usr/bin/python3 benchmarks/fid.py --self-test
Each .npy holds float32 samples [N, 1, 28, 28] (as written by the scire CLI / encodeNpy).
Only torch is needed (no numpy), so it also runs with a pip PyTorch on a GPU machine.
"""
import argparse
import ast
import gzip
import json
import os
import sys
import time

import torch

DATA_DIR = '/usr/share/datasets/fashion-mnist'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_images(split: str) -> torch.Tensor:
    """Fashion-MNIST images of a split as float32 [n, 1, 28, 28] in [-1, 1]."""
    with gzip.open(os.path.join(DATA_DIR, f'{split}-images-idx3-ubyte.gz'), 'rb') as f:
        raw = f.read()
    if int.from_bytes(raw[:4], 'big') != 2051:
        raise ValueError(f'{split}: not an IDX image file')
    n = int.from_bytes(raw[4:8], 'big')
    images = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).reshape(n, 1, 28, 28)
    return images.float() / 127.5 - 1.0


def read_npy(path: str) -> torch.Tensor:
    """A little-endian float32 C-order .npy file (NPY 1.0/2.0, as encodeNpy writes) as a tensor."""
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:6] != b'\x93NUMPY':
        raise ValueError(f'{path}: not an .npy file')
    major = raw[6]
    hlen = int.from_bytes(raw[8:10], 'little') if major == 1 else int.from_bytes(raw[8:12], 'little')
    start = 10 + hlen if major == 1 else 12 + hlen
    header = ast.literal_eval(raw[start - hlen:start].decode('latin1'))
    if header['descr'] != '<f4' or header['fortran_order']:
        raise ValueError(f'{path}: expected little-endian float32 in C order, got {header}')
    shape = tuple(header['shape'])
    return torch.frombuffer(bytearray(raw[start:]), dtype=torch.float32).reshape(shape)


def read_samples(path: str, what: str = 'samples') -> torch.Tensor:
    """A samples file [N, 1, 28, 28]; exits with a message naming the file otherwise."""
    if not os.path.isfile(path):
        sys.exit(f'{what} {path}: no such file')
    try:
        x = read_npy(path)
    except (ValueError, KeyError, SyntaxError, RuntimeError) as e:
        sys.exit(f'{what} {path}: {e}')
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        sys.exit(f'{what} {path}: expected samples [N, 1, 28, 28], got {tuple(x.shape)}')
    return x


@torch.no_grad()
def features(model: torch.jit.ScriptModule, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    out = [model(images[i:i + batch].float().clamp(-1, 1))[1].double() for i in range(0, images.shape[0], batch)]
    return torch.cat(out)


def gaussian(f: torch.Tensor):
    """Mean and unbiased covariance (N - 1) of feature rows."""
    mu = f.mean(0)
    d = f - mu
    return mu, d.T @ d / (f.shape[0] - 1)


def sqrt_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
    r = sqrt_psd(s2)
    m = r @ s1 @ r
    tr_sqrt = float(torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum())
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt)


def self_test() -> None:
    """frechet_distance against closed forms: 0 for equal Gaussians; for diagonal covariances
    |dmu|^2 + sum (sqrt(a_i) - sqrt(b_i))^2; for commuting full covariances the same in their
    common eigenbasis. Prints the largest deviation and exits non-zero above 1e-9 relative."""
    g = torch.Generator().manual_seed(1)
    worst = 0.0
    for _ in range(5):
        d = 16
        q, _r = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        a = torch.rand(d, generator=g, dtype=torch.float64) * 2.9 + 0.1
        b = torch.rand(d, generator=g, dtype=torch.float64) * 2.9 + 0.1
        mu1 = torch.randn(d, generator=g, dtype=torch.float64)
        mu2 = torch.randn(d, generator=g, dtype=torch.float64)
        s1, s2 = (q * a) @ q.T, (q * b) @ q.T
        expect = float(((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
        worst = max(worst, abs(frechet_distance(mu1, s1, mu2, s2) - expect) / expect)
        worst = max(worst, abs(frechet_distance(mu1, s1, mu1, s1)) / expect)
    print(json.dumps({'self_test_max_rel_dev': worst}))
    sys.exit(0 if worst < 1e-9 else 1)


def reference_stats(model, train_ref: int, test_limit: int = 0) -> dict:
    """Gaussian of the test-set features (the first test_limit images; 0: all), and of
    train_ref training images (0: none)."""
    test = read_images('t10k')
    if test_limit:
        test = test[:test_limit]
    mu_r, s_r = gaussian(features(model, test))
    stats = {'mu': mu_r, 'cov': s_r, 'n': int(test.shape[0]), 'train_ref_n': train_ref}
    if train_ref:
        train = read_images('train')
        pick = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(0))[:train_ref].sort().values
        mu, s = gaussian(features(model, train[pick]))
        stats['train_ref_fd'] = frechet_distance(mu, s, mu_r, s_r)
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('samples', nargs='*', help='.npy files of samples [N, 1, 28, 28] in [-1, 1]')
    ap.add_argument('--json', help='write results here (required unless --self-test or --save-ref-stats)')
    ap.add_argument('--self-test', action='store_true', help='check frechet_distance against closed forms and exit')
    ap.add_argument('--classifier', default=os.path.join(ROOT, 'models', 'fmnist_classifier.pt'))
    ap.add_argument('--train-ref', type=int, default=0, help='also score N training images (the perfect-generator value)')
    ap.add_argument('--ref-stats', help='reference statistics saved by --save-ref-stats (no dataset needed)')
    ap.add_argument('--ref-npy', help='use these samples (.npy [N, 1, 28, 28]) as the reference instead of the test images, '
                    'e.g. the converged ODE solution from the same noise: FD then measures how far a solver moves the distribution')
    ap.add_argument('--save-ref-stats', metavar='FILE', help='compute the reference statistics, save them and exit')
    ap.add_argument('--test-limit', type=int, default=0, help='use only the first N test images (smoke tests)')
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    if args.self_test:
        self_test()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = torch.jit.load(args.classifier, map_location='cpu').eval()
    if args.save_ref_stats:
        torch.save(reference_stats(model, args.train_ref), args.save_ref_stats)
        print(f'wrote {args.save_ref_stats} ({time.time() - t0:.0f} s)')
        return
    if not args.json:
        ap.error('--json is required')
    if args.ref_npy:
        ref = read_samples(args.ref_npy, '--ref-npy')
        if ref.shape[0] < 2 or not torch.isfinite(ref).all():
            sys.exit(f'--ref-npy {args.ref_npy}: needs at least 2 finite samples')
        mu, s = gaussian(features(model, ref))
        stats = {'mu': mu, 'cov': s, 'n': int(ref.shape[0]), 'source': os.path.basename(args.ref_npy)}
    else:
        stats = torch.load(args.ref_stats) if args.ref_stats else reference_stats(model, args.train_ref, args.test_limit)
    mu_r, s_r = stats['mu'], stats['cov']
    against = f'the {stats["n"]} samples of {stats["source"]}' if 'source' in stats else f'{stats["n"]} test images'
    results = {'method': f'Frechet distance of classifier penultimate features (128-d) vs {against}',
               'classifier': os.path.basename(args.classifier), 'reference_images': stats['n'], 'scores': {}}
    if stats.get('train_ref_n'):
        results['train_reference'] = {'n': stats['train_ref_n'], 'fd': stats['train_ref_fd']}
    for path in args.samples:
        x = read_samples(path)
        if not torch.isfinite(x).all():
            results['scores'][os.path.basename(path)] = {'n': int(x.shape[0]), 'fd': float('nan'), 'nonfinite': True}
            continue
        mu, s = gaussian(features(model, x))
        results['scores'][os.path.basename(path)] = {'n': int(x.shape[0]), 'fd': frechet_distance(mu, s, mu_r, s_r)}
    results['seconds'] = round(time.time() - t0, 1)
    with open(args.json, 'w') as f:
        json.dump(results, f, indent=1)
        f.write('\n')
    print(json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
