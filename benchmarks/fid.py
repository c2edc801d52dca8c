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
Each .npy holds float32 samples [N, 1, 28, 28] (as written by the scire CLI / encodeNpy).
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch

DATA_DIR = '/usr/share/datasets/fashion-mnist'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_images(split: str) -> np.ndarray:
    with gzip.open(os.path.join(DATA_DIR, f'{split}-images-idx3-ubyte.gz'), 'rb') as f:
        raw = f.read()
    if int.from_bytes(raw[:4], 'big') != 2051:
        raise ValueError(f'{split}: not an IDX image file')
    n = int.from_bytes(raw[4:8], 'big')
    images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, 1, 28, 28)
    return images.astype(np.float32) / 127.5 - 1.0


@torch.no_grad()
def features(model: torch.jit.ScriptModule, images: np.ndarray, batch: int = 500) -> np.ndarray:
    out = []
    for i in range(0, images.shape[0], batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch], dtype=np.float32)).clamp(-1, 1)
        out.append(model(x)[1].double().numpy())
    return np.concatenate(out)


def gaussian(f: np.ndarray):
    return f.mean(axis=0), np.cov(f, rowvar=False)


def sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
    r = sqrt_psd(s2)
    m = r @ s1 @ r
    w = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(w, 0, None)).sum())
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def self_test() -> None:
    """frechet_distance against closed forms: 0 for equal Gaussians; for diagonal covariances
    |dmu|^2 + sum (sqrt(a_i) - sqrt(b_i))^2; for commuting full covariances the same in their
    common eigenbasis. Prints the largest deviation and exits non-zero above 1e-9 relative."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(5):
        d = 16
        q, _r = np.linalg.qr(rng.normal(size=(d, d)))
        a = rng.uniform(0.1, 3, d)
        b = rng.uniform(0.1, 3, d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = (q * a) @ q.T, (q * b) @ q.T
        expect = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
        worst = max(worst, abs(frechet_distance(mu1, s1, mu2, s2) - expect) / expect)
        worst = max(worst, abs(frechet_distance(mu1, s1, mu1, s1)) / expect)
    print(json.dumps({'self_test_max_rel_dev': worst}))
    sys.exit(0 if worst < 1e-9 else 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('samples', nargs='*', help='.npy files of samples [N, 1, 28, 28] in [-1, 1]')
    ap.add_argument('--json', help='write results here (required unless --self-test)')
    ap.add_argument('--self-test', action='store_true', help='check frechet_distance against closed forms and exit')
    ap.add_argument('--classifier', default=os.path.join(ROOT, 'models', 'fmnist_classifier.pt'))
    ap.add_argument('--train-ref', type=int, default=0, help='also score N training images (the perfect-generator value)')
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    if args.self_test:
        self_test()
    if not args.json:
        ap.error('--json is required')
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = torch.jit.load(args.classifier).eval()
    mu_r, s_r = gaussian(features(model, read_images('t10k')))
    results = {'method': 'Frechet distance of classifier penultimate features (128-d) vs the 10 000 test images',
               'classifier': os.path.relpath(args.classifier, ROOT), 'reference_images': 10000, 'scores': {}}
    if args.train_ref:
        rng = np.random.default_rng(0)
        train = read_images('train')
        pick = rng.choice(train.shape[0], size=args.train_ref, replace=False)
        mu, s = gaussian(features(model, train[np.sort(pick)]))
        results['train_reference'] = {'n': args.train_ref, 'fd': frechet_distance(mu, s, mu_r, s_r)}
    for path in args.samples:
        x = np.load(path)
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            sys.exit(f'{path}: expected samples [N, 1, 28, 28], got {x.shape}')
        if not np.isfinite(x).all():
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
