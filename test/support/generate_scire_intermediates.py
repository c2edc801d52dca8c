"""Generates test/fixtures/scire_intermediates.json: the authors' SciRE-Solver
sample(..., return_intermediate=True) lists on the analytic Gaussian-mixture model of the golden
reference, for the whole batch (the shared golden files keep batch element 0 only).

The authors' file is NOT part of this repository; it is input data for this generator. Pass
the file (or the directory holding it) on the command line:

    SCIRE_REV=5ebe12671b94a832ff1f52272d212dc434ab3667 /usr/bin/python3 test/support/generate_scire_intermediates.py /path/to/scire_solver.py > test/fixtures/scire_intermediates.json

Setup as ../shared/reference/README.md section 3 (float64, float64 schedule tables,
model_wrapper(module, ns, model_type='noise'), SciRE_Solver(model_fn, ns, algorithm_type=...),
the x_T of golden/scire_<schedule>.json, default t_start / t_end, lower_order_final=True).

Each case stores the authors' list as they return it ('intermediates': their internal state,
x/alpha_t for scire_v1 and x/sigma_t for scire_v2, plus the denoised x last with
denoise_to_zero) and, for every entry, the continuous time t of the state and the factor
'state_scale' (alpha_t or sigma_t from their NoiseScheduleVP; 1 for the denoised entry) that
turns it into x_t, so that x_t = state_scale * intermediate.

'float32_run_max_abs_dev' is, per entry, max |x_t(float32 run) - x_t(float64 run)| of the same
call made in float32 (default dtype float32, schedule tables in float32, x_T cast to float32),
as the golden files' float32_run_max_abs_dev: the float32 sensitivity of that entry, which the
native float32 check uses (README section 6 rule: |dx| <= 1e-4 + 10 * float32 deviation).
"""
import hashlib
import json
import os
import subprocess
import sys

import torch

REF = os.environ.get('SCIRE_REFERENCE', '/work/shared/reference')
arg = sys.argv[1]
scire_file = arg if arg.endswith('.py') else os.path.join(arg, 'scire_solver.py')
sys.path.insert(0, os.path.dirname(os.path.abspath(scire_file)))
import scire_solver as sc  # noqa: E402

torch.set_default_dtype(torch.float64)
N = 1000


def schedule(name, dtype=torch.float64):
    if name == 'discrete':
        return sc.NoiseScheduleVP('discrete', betas=torch.linspace(1e-4, 0.02, N, dtype=torch.float64), dtype=dtype)
    return sc.NoiseScheduleVP('linear', continuous_beta_0=0.1, continuous_beta_1=20.0, dtype=dtype)


def state_times(solver, ns, method, order, skip, steps):
    """The continuous time of every state the authors' loop records (same grids as their sample)."""
    t_T, t_0 = ns.T, 1.0 / ns.total_N
    if method == 'multistep':
        return [float(t) for t in solver.get_time_steps(skip_type=skip, t_T=t_T, t_0=t_0, N=steps, device='cpu')]
    if method == 'singlestep_agile':
        outer, _ = solver.get_orders_and_timesteps_for_singlestep_solver(steps=steps, order=order, skip_type=skip, t_T=t_T, t_0=t_0, device='cpu')
    else:
        outer = solver.get_time_steps(skip_type=skip, t_T=t_T, t_0=t_0, N=steps // order, device='cpu')
    return [float(t) for t in outer[1:]]


def run_float32(name, x_T, alg, method, order, skip, steps, dtz):
    torch.set_default_dtype(torch.float32)
    try:
        ns = schedule(name, torch.float32)
        module = torch.jit.load(os.path.join(REF, 'models', f'gmm_D16_{name}.pt'))
        solver = sc.SciRE_Solver(sc.model_wrapper(module, ns, model_type='noise'), ns, algorithm_type=alg)
        with torch.no_grad():
            _, inter = solver.sample(x_T.clone().to(torch.float32), steps=steps, order=order, skip_type=skip, method=method,
                                     lower_order_final=True, denoise_to_zero=dtz, return_intermediate=True)
        return [v.to(torch.float64) for v in inter]
    finally:
        torch.set_default_dtype(torch.float64)


def run(name, x_T, alg, method, order, skip, steps, dtz=False):
    ns = schedule(name)
    module = torch.jit.load(os.path.join(REF, 'models', f'gmm_D16_{name}.pt'))
    calls = []

    def counted(x, t):
        calls.append(float(t[0]))
        return module(x, t)

    model_fn = sc.model_wrapper(counted, ns, model_type='noise')
    solver = sc.SciRE_Solver(model_fn, ns, algorithm_type=alg)
    with torch.no_grad():
        x0, inter = solver.sample(x_T.clone(), steps=steps, order=order, skip_type=skip, method=method,
                                  lower_order_final=True, denoise_to_zero=dtz, return_intermediate=True)
        times = state_times(solver, ns, method, order, skip, steps)
        fn = ns.marginal_alpha if alg == 'scire_v1' else ns.marginal_std
        scales = [float(fn(torch.tensor([t]))[0]) for t in times]
    if dtz:
        times.append(1.0 / N)
        scales.append(1.0)
    assert len(times) == len(inter), (len(times), len(inter))
    inter32 = run_float32(name, x_T, alg, method, order, skip, steps, dtz)
    dev32 = [float((scale * (a - b)).abs().max()) for scale, a, b in zip(scales, inter32, inter)]
    return {
        'id': f'scire|{name}|{alg}|{method}|o{order}|{skip}|s{steps}' + ('|dtz' if dtz else ''),
        'schedule': name, 'algorithm_type': alg, 'method': method, 'order': order, 'skip_type': skip,
        'steps': steps, 'denoise_to_zero': dtz, 'lower_order_final': True, 't_start': None, 't_end': None,
        'dtype': 'float64', 'nfe': len(calls),
        'state_t_continuous': times, 'state_scale': scales,
        'intermediates': [v.tolist() for v in inter],
        'float32_run_max_abs_dev': dev32,
        'x0': x0.tolist(),
    }


def main():
    cases = []
    x_T_by_schedule = {}
    for name in ['discrete', 'linear']:
        golden = json.load(open(os.path.join(REF, 'golden', f'scire_{name}.json')))
        x_T = torch.tensor(golden['x_T'], dtype=torch.float64)
        x_T_by_schedule[name] = f'golden/scire_{name}.json'
        for alg in ['scire_v1', 'scire_v2']:
            for order in [2, 3]:
                cases.append(run(name, x_T, alg, 'multistep', order, 'NSR', 8))
            cases.append(run(name, x_T, alg, 'multistep', 3, 'time_uniform', 10, dtz=True))
            cases.append(run(name, x_T, alg, 'singlestep_agile', 3, 'NSR', 8))
            cases.append(run(name, x_T, alg, 'singlestep_fixed', 2, 'time_uniform', 6))
    src = open(scire_file, 'rb').read()
    try:
        rev = subprocess.check_output(['git', '-C', os.path.dirname(os.path.abspath(scire_file)), 'rev-parse', 'HEAD'],
                                      text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:
        rev = os.environ.get('SCIRE_REV')
    out = {
        'format': 'scire-intermediates-v1',
        'generator': 'test/support/generate_scire_intermediates.py',
        'scire_solver_py_sha256': hashlib.sha256(src).hexdigest(),
        'scire_rev': rev,
        'torch_version': torch.__version__,
        'x_T_from': x_T_by_schedule,
        'cases': cases,
    }
    json.dump(out, sys.stdout)


main()
