"""Generates test/fixtures/dpmsolver_extra.json: extra reference outputs of the official
DPM-Solver code (LuChengTHU/dpm-solver, dpm_solver_pytorch.py) for what the shared golden
files do not cover: DPM-Solver++ singlestep (agile 'singlestep' and 'singlestep_fixed'),
time_quadratic steps, denoise_to_zero and dynamic thresholding.

The official file is not part of this repository; pass the directory that holds it (a
checkout, or a folder with the file; then set DPM_SOLVER_REV to its commit):

    DPM_SOLVER_REV=52bc3fbcd5de56d60917b826b15d2b69460fc2fa /usr/bin/python3 test/support/generate_dpmsolver_extra.py /path/to/dpm-solver > test/fixtures/dpmsolver_extra.json

Setup as ../shared/reference/README.md section 3 (float64, float64 schedule tables, the
seed-0 GMM TorchScript module, x_T of the golden file, the SciRE model-time convention).
"""
import hashlib
import json
import os
import subprocess
import sys

import torch

REF = os.environ.get('SCIRE_REFERENCE', '/work/shared/reference')
dpm_dir = sys.argv[1]
sys.path.insert(0, dpm_dir)
import dpm_solver_pytorch as dpm  # noqa: E402

torch.set_default_dtype(torch.float64)
N = 1000


def schedule_and_model(name):
    module = torch.jit.load(os.path.join(REF, 'models', f'gmm_D16_{name}.pt'))
    if name == 'discrete':
        ns = dpm.NoiseScheduleVP('discrete', betas=torch.linspace(1e-4, 0.02, N, dtype=torch.float64), dtype=torch.float64)
        to_input = lambda t: (t - 1.0 / N) * 1000.0
    else:
        ns = dpm.NoiseScheduleVP('linear', continuous_beta_0=0.1, continuous_beta_1=20.0, dtype=torch.float64)
        to_input = lambda t: 1000.0 * torch.clamp(t - 1.0 / N, min=0.0)
    calls = []

    def model_fn(x, t_cont):
        calls.append((float(t_cont[0]), float(to_input(t_cont)[0])))
        return module(x, to_input(t_cont))

    return ns, model_fn, calls


def run(name, x_T, algorithm_type, method, order, skip, steps, dtz=False, thresholding=None):
    ns, model_fn, calls = schedule_and_model(name)
    kwargs = {}
    if thresholding is not None:
        kwargs = dict(correcting_x0_fn='dynamic_thresholding', dynamic_thresholding_ratio=thresholding['ratio'],
                      thresholding_max_val=thresholding['maxVal'])
    solver = dpm.DPM_Solver(model_fn, ns, algorithm_type=algorithm_type, **kwargs)
    with torch.no_grad():
        x0 = solver.sample(x_T.clone(), steps=steps, order=order, skip_type=skip, method=method,
                           lower_order_final=True, denoise_to_zero=dtz)
    case_id = f'dpm_solver|{name}|{algorithm_type}|{method}|o{order}|{skip}|s{steps}' + ('|dtz' if dtz else '') + ('|thr' if thresholding else '')
    return {
        'id': case_id, 'schedule': name, 'algorithm_type': algorithm_type, 'method': method, 'order': order,
        'skip_type': skip, 'steps': steps, 'denoise_to_zero': dtz, 'lower_order_final': True,
        'thresholding': thresholding, 'nfe': len(calls),
        'model_t_continuous': [c[0] for c in calls], 'model_t_input': [c[1] for c in calls],
        'x0': x0.tolist(),
    }


def main():
    golden = json.load(open(os.path.join(REF, 'golden', 'dpmsolver_discrete.json')))
    x_T = torch.tensor(golden['x_T'], dtype=torch.float64)
    cases = []
    thr = {'ratio': 0.9, 'maxVal': 1.0}
    for name in ['discrete', 'linear']:
        for method, orders, steps_list in [('singlestep', [1, 2, 3], [6, 7, 8]), ('singlestep_fixed', [2, 3], [6, 8])]:
            for order in orders:
                for skip in ['logSNR', 'time_uniform', 'time_quadratic']:
                    for steps in steps_list:
                        cases.append(run(name, x_T, 'dpmsolver++', method, order, skip, steps))
        for order in [2, 3]:
            cases.append(run(name, x_T, 'dpmsolver++', 'multistep', order, 'time_quadratic', 12))
        cases.append(run(name, x_T, 'dpmsolver++', 'multistep', 2, 'logSNR', 12, dtz=True))
        cases.append(run(name, x_T, 'dpmsolver++', 'singlestep', 3, 'logSNR', 12, dtz=True))
        cases.append(run(name, x_T, 'dpmsolver', 'multistep', 1, 'time_quadratic', 12, dtz=True))
    for order, method in [(1, 'multistep'), (2, 'multistep'), (3, 'multistep'), (3, 'singlestep')]:
        cases.append(run('discrete', x_T, 'dpmsolver++', method, order, 'logSNR', 10, thresholding=thr))
    src = open(os.path.join(dpm_dir, 'dpm_solver_pytorch.py'), 'rb').read()
    try:
        rev = subprocess.check_output(['git', '-C', dpm_dir, 'rev-parse', 'HEAD'], text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:
        rev = os.environ.get('DPM_SOLVER_REV')
    out = {
        'format': 'dpmsolver-extra-v1',
        'generator': 'test/support/generate_dpmsolver_extra.py',
        'dpm_solver_pytorch_py_sha256': hashlib.sha256(src).hexdigest(),
        'dpm_solver_rev': rev,
        'torch_version': torch.__version__,
        'x_T_from': 'golden/dpmsolver_discrete.json',
        'x_T_shape': list(x_T.shape),
        'cases': cases,
    }
    json.dump(out, sys.stdout)


main()
