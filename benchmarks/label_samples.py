#!/usr/bin/python3
"""Labels generated Fashion-MNIST samples with the bundled FD classifier
(models/fmnist_classifier.pt, the one benchmarks/fid.py uses): argmax of its logits, the
samples clamped to [-1, 1] first as fid.py does. Used by benchmarks/classifier-guidance.ts and
test/classifier-guidance-fmnist.test.ts.

Usage:
  /usr/bin/python3 benchmarks/label_samples.py SAMPLES.npy ...   -> JSON on stdout:
      {"<file>": [label, ...], ...}
Each .npy holds float32 samples [N, 1, 28, 28] (encodeNpy). Only torch is needed.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fid import read_npy  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    model = torch.jit.load(os.environ.get('SCIRE_FD_CLASSIFIER', os.path.join(HERE, '..', 'models', 'fmnist_classifier.pt')))
    model.eval()
    out = {}
    with torch.no_grad():
        for path in sys.argv[1:]:
            x = read_npy(path).clamp(-1, 1)
            logits, _ = model(x)
            out[path] = logits.argmax(1).tolist()
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
