#!/usr/bin/python3
"""Scores class-conditional Fashion-MNIST samples with the project classifier
(models/fmnist_classifier.pt, the one benchmarks/fid.py uses):

  - accuracy: the share of samples whose classifier label (argmax of the logits) is the
    class they were sampled for, overall and per class, with the confusion counts, and the
    same share on the 10 000 real test images (the classifier's own recall per class);
  - optionally (--fd-per-class) the Frechet distance of the classifier's penultimate features
    (fid.py's method) between the samples of each class and the test images of that class
    (1000 per class), and, as the value a perfect generator would get with the same number of
    samples, the FD of as many training images of that class.

Each .npy holds float32 samples [C * K, 1, 28, 28] in class-major order: K samples of class
0, then K of class 1, ... (C = 10). Samples are clamped to [-1, 1] as fid.py does.

Usage:
  /usr/bin/python3 benchmarks/class_accuracy.py --json OUT.json --per-class K [--fd-per-class] A.npy ...
"""
import argparse
import gzip
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fid import DATA_DIR, ROOT, features, frechet_distance, gaussian, read_images, read_npy  # noqa: E402

NUM_CLASSES = 10


def read_labels(split: str) -> torch.Tensor:
    """Fashion-MNIST labels of a split as int64 [n]."""
    with gzip.open(os.path.join(DATA_DIR, f'{split}-labels-idx1-ubyte.gz'), 'rb') as f:
        raw = f.read()
    if int.from_bytes(raw[:4], 'big') != 2049:
        raise ValueError(f'{split}: not an IDX label file')
    n = int.from_bytes(raw[4:8], 'big')
    return torch.frombuffer(bytearray(raw[8:8 + n]), dtype=torch.uint8).long()


@torch.no_grad()
def predicted_labels(model: torch.jit.ScriptModule, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    return torch.cat([model(x[i:i + batch].float().clamp(-1, 1))[0].argmax(1) for i in range(0, x.shape[0], batch)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('samples', nargs='+', help='.npy files of samples [10 * K, 1, 28, 28], class-major')
    ap.add_argument('--json', required=True, help='write the results here')
    ap.add_argument('--per-class', type=int, required=True, help='K: samples per class in each file')
    ap.add_argument('--fd-per-class', action='store_true', help='also the FD of each class vs its test images')
    ap.add_argument('--classifier', default=os.path.join(ROOT, 'models', 'fmnist_classifier.pt'))
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = torch.jit.load(args.classifier, map_location='cpu').eval()
    k = args.per_class
    wanted = torch.arange(NUM_CLASSES).repeat_interleave(k)
    results = {'classifier': os.path.basename(args.classifier), 'per_class': k, 'files': {}}

    # The same measure on the real test images: what the classifier itself gets right.
    test_x, test_y = read_images('t10k'), read_labels('t10k')
    test_hit = predicted_labels(model, test_x) == test_y
    results['test_images'] = {'n': int(test_y.shape[0]), 'accuracy': float(test_hit.double().mean()),
                              'accuracy_per_class': [float(test_hit[test_y == c].double().mean())
                                                     for c in range(NUM_CLASSES)]}
    ref = None
    if args.fd_per_class:
        train_x, train_y = read_images('train'), read_labels('train')
        g = torch.Generator().manual_seed(0)
        ref = []
        for c in range(NUM_CLASSES):
            mu_r, s_r = gaussian(features(model, test_x[test_y == c]))
            pool = train_x[train_y == c]
            pick = torch.randperm(pool.shape[0], generator=g)[:k].sort().values
            mu_t, s_t = gaussian(features(model, pool[pick]))
            ref.append((mu_r, s_r, frechet_distance(mu_t, s_t, mu_r, s_r)))
        results['train_reference_fd_per_class'] = [r[2] for r in ref]
        results['test_images_per_class'] = int((test_y == 0).sum())

    for path in args.samples:
        x = read_npy(path)
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28) or x.shape[0] != NUM_CLASSES * k:
            sys.exit(f'{path}: expected samples [{NUM_CLASSES * k}, 1, 28, 28], got {tuple(x.shape)}')
        entry = {'n': int(x.shape[0]), 'nonfinite': int((~torch.isfinite(x)).sum())}
        x = torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
        pred = predicted_labels(model, x)
        hit = (pred == wanted)
        entry['accuracy'] = float(hit.double().mean())
        entry['accuracy_per_class'] = [float(hit[c * k:(c + 1) * k].double().mean()) for c in range(NUM_CLASSES)]
        confusion = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)
        confusion.index_put_((wanted, pred), torch.ones_like(pred), accumulate=True)
        entry['confusion'] = confusion.tolist()  # [requested][predicted]
        if ref is not None:
            f = features(model, x)
            entry['fd_per_class'] = []
            for c in range(NUM_CLASSES):
                mu, s = gaussian(f[c * k:(c + 1) * k])
                entry['fd_per_class'].append(frechet_distance(mu, s, ref[c][0], ref[c][1]))
        results['files'][os.path.basename(path)] = entry
    results['seconds'] = round(time.time() - t0, 1)
    with open(args.json, 'w') as fh:
        json.dump(results, fh, indent=1)
        fh.write('\n')
    print(json.dumps({name: round(e['accuracy'], 4) for name, e in results['files'].items()}))


if __name__ == '__main__':
    main()
