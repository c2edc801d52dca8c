#!/usr/bin/python3
"""Train a small CNN classifier on Fashion-MNIST and export it as TorchScript.

It is the feature extractor of the Frechet distance in benchmarks/fid.py (an FID in the
spirit of the paper, with this classifier in place of Inception-v3).

Input: float32 [B, 1, 28, 28] in the data range [-1, 1] (pixel / 127.5 - 1, the range of
the bundled UNet's samples). forward(x) returns (logits [B, 10], features [B, 128]); the
features are the penultimate layer (after its ReLU), the input of the final linear layer.

Network (small, so that it trains on one CPU thread in minutes): conv3x3(1->16)+BN+ReLU,
maxpool 2, conv3x3(16->32)+BN+ReLU, maxpool 2, conv3x3(32->64)+BN+ReLU, maxpool 2 (7x7 ->
3x3), flatten 576 -> linear 128 (+ReLU: the features; dropout 0.3 in training) -> linear 10. Adam, lr 2e-3, batch 128, random
horizontal flips; training stops after --minutes of wall clock (default 4.5) or --epochs.
Debian torch 1.13 (/usr/bin/python3), one thread (torch.set_num_threads(1)).

Usage:
    /usr/bin/python3 models/fmnist_classifier.py                # train, test, export
    /usr/bin/python3 models/fmnist_classifier.py --minutes 1    # shorter
Writes models/fmnist_classifier.pt and models/fmnist_classifier.json (test accuracy,
training time, epochs, seed).
"""
import argparse
import gzip
import json
import os
import time
from typing import Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = '/usr/share/datasets/fashion-mnist'
HERE = os.path.dirname(os.path.abspath(__file__))


def read_idx(path: str) -> np.ndarray:
    """A gzipped IDX file (images: magic 2051, labels: 2049) as a uint8 array."""
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], 'big')
    if magic == 2051:
        n, rows, cols = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(3))
        return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, rows, cols)
    if magic == 2049:
        return np.frombuffer(raw[8:], dtype=np.uint8)
    raise ValueError(f'{path}: not an IDX image/label file (magic {magic})')


def load_split(split: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """('train' | 't10k') -> images float32 [n, 1, 28, 28] in [-1, 1], labels int64 [n]."""
    images = read_idx(os.path.join(DATA_DIR, f'{split}-images-idx3-ubyte.gz'))
    labels = read_idx(os.path.join(DATA_DIR, f'{split}-labels-idx1-ubyte.gz'))
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).unsqueeze(1).contiguous()
    return x, torch.from_numpy(labels.astype(np.int64))


class FashionClassifier(nn.Module):
    FEATURES = 128

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64 * 3 * 3, self.FEATURES)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.FEATURES, 10)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        h = F.max_pool2d(F.relu(self.bn2(self.conv2(h))), 2)
        h = F.max_pool2d(F.relu(self.bn3(self.conv3(h))), 2)
        features = F.relu(self.fc(h.flatten(1)))
        return self.head(self.dropout(features)), features


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        logits, _ = model(x[i:i + batch])
        correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return correct / x.shape[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--minutes', type=float, default=4.5, help='wall-clock training budget (default 4.5)')
    ap.add_argument('--epochs', type=int, default=20, help='upper bound on epochs (default 20)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default=os.path.join(HERE, 'fmnist_classifier.pt'))
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    x_train, y_train = load_split('train')
    x_test, y_test = load_split('t10k')
    model = FashionClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    budget = args.minutes * 60
    start = time.time()
    epochs_done = 0.0
    n = x_train.shape[0]
    batch = 128
    steps_per_epoch = (n + batch - 1) // batch
    stop = False
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n)
        for s in range(steps_per_epoch):
            idx = perm[s * batch:(s + 1) * batch]
            xb = x_train[idx]
            flip = torch.rand(xb.shape[0]) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            logits, _ = model(xb)
            loss = F.cross_entropy(logits, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if time.time() - start > budget:
                epochs_done = epoch + (s + 1) / steps_per_epoch
                stop = True
                break
        if stop:
            break
        epochs_done = epoch + 1
        # Halve the learning rate every epoch after the second (short budget, fast decay).
        if epoch >= 1:
            for g in opt.param_groups:
                g['lr'] *= 0.5
        print(f'epoch {epoch + 1}: loss {loss.item():.4f}, {time.time() - start:.0f} s', flush=True)
    train_seconds = time.time() - start
    test_acc = accuracy(model, x_test, y_test)
    print(f'test accuracy {test_acc:.4f} after {epochs_done:.2f} epochs, {train_seconds:.0f} s')

    model.eval()
    scripted = torch.jit.script(model)
    scripted.save(args.out)
    # The exported module must give the same answer as the trained one.
    reloaded = torch.jit.load(args.out)
    with torch.no_grad():
        a = model(x_test[:64])[1]
        b = reloaded(x_test[:64])[1]
    assert torch.allclose(a, b, atol=1e-5), 'exported classifier differs from the trained one'
    meta = {
        'file': os.path.basename(args.out),
        'input': 'float32 [B, 1, 28, 28] in [-1, 1] (pixel / 127.5 - 1)',
        'outputs': ['logits [B, 10]', f'features [B, {FashionClassifier.FEATURES}] (penultimate layer, after ReLU)'],
        'test_accuracy': round(test_acc, 4),
        'test_images': int(x_test.shape[0]),
        'epochs': round(epochs_done, 2),
        'train_seconds': round(train_seconds, 1),
        'threads': 1,
        'seed': args.seed,
        'torch': torch.__version__,
        'command': '/usr/bin/python3 models/fmnist_classifier.py',
    }
    with open(os.path.splitext(args.out)[0] + '.json', 'w') as f:
        json.dump(meta, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main()
