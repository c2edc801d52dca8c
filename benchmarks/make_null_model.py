#!/usr/bin/python3
"""Write benchmarks/models/null_eps.pt: a noise predictor that does almost nothing.

forward(x, t) = 0.1 * x (one elementwise multiply; t unused but part of the signature the
executor calls). benchmarks/speed.ts runs plans against it, so that the measured time is
the solver's own overhead (register arithmetic, call and copy costs) and not the network's.

Usage: /usr/bin/python3 benchmarks/make_null_model.py
"""
import os

import torch


class NullEps(torch.nn.Module):
    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x * 0.1


def main() -> None:
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'models', 'null_eps.pt')
    os.makedirs(os.path.dirname(out), exist_ok=True)
    module = torch.jit.script(NullEps())
    module.save(out)
    x = torch.randn(2, 1, 4, 4)
    assert torch.equal(torch.jit.load(out)(x, torch.zeros(2)), x * 0.1)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
