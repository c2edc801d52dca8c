"""Generates test/fixtures/inpaint.json: the authors' sample(..., correcting_xt_fn=<inpainting>)
on the analytic Gaussian-mixture model of the golden reference, for SciRE-Solver (multistep and
singlestep, v1 and v2), DPM-Solver++ (multistep and singlestep) and UniPC (bh1, bh2), discrete
and linear schedules, with and without denoise_to_zero.

The authors' files are NOT part of this repository; they are input data for this generator.
Pass scire_solver.py (github.com/ShiguiLi/SciRE-Solver), the folder holding
dpm_solver_pytorch.py (github.com/LuChengTHU/dpm-solver) and uni_pc.py (github.com/wl-zhao/UniPC,
repository root); set the commits when the files do not sit in git checkouts:

    SCIRE_REV=5ebe12671b94a832ff1f52272d212dc434ab3667 DPM_SOLVER_REV=52bc3fbcd5de56d60917b826b15d2b69460fc2fa \\
      UNIPC_REV=cf9de85bf2ed68137e6fba5f165f451677b174c4 /usr/bin/python3 test/support/generate_inpaint_golden.py \\
      /path/to/scire_solver.py /path/to/dpm-solver /path/to/uni_pc.py > test/fixtures/inpaint.json

Setup as ../shared/reference/README.md section 3 (float64, float64 schedule tables, the
gmm_D16_<schedule>.pt modules, the x_T of golden/scire_<schedule>.json, default t_start/t_end,
lower_order_final=True).

The correction (the inpainting function of lib/inpaint.ts, written with the authors' own
NoiseScheduleVP):  x_t <- m * (alpha_t x0 + sigma_t z) + (1 - m) * x_t,  z = x_T (the run's
starting noise), x0 and the mask m below (a soft mask: 1, 0 and values in between, different
per batch element). SciRE's sample hands correcting_xt_fn its internal state y (x/alpha_t for
scire_v1, x/sigma_t for scire_v2) after every solver step, but x_t itself after denoise_to_zero;
the generator's function converts y to x_t and back (y <- correct(scale * y) / scale), so that
every call applies the same correction to x_t. DPM-Solver and UniPC hand it x_t throughout
(UniPC: after the corrector; the model output of that step was evaluated at the predictor's
x_t). UniPC runs on the batch reshaped to [8, 1, 4, 4] (its update contracts with einsum over
'bkchw'; the module flattens it), as test/support/generate_unipc_golden.py; its progress
prints go to stderr.

Every case stores the authors' result 'x0' (their sample's return value: the state after the
last correction, at t_end; the known region is alpha_tEnd x0 + sigma_tEnd z there) and
'float32_run_max_abs_dev' (max |result of the same call in float32 - float64 result|), the
float32 sensitivity the native check uses.
"""
import contextlib
import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import torch

REF = os.environ.get('SCIRE_REFERENCE', '/work/shared/reference')
scire_arg, dpm_dir, unipc_file = sys.argv[1], sys.argv[2], sys.argv[3]
scire_file = scire_arg if scire_arg.endswith('.py') else os.path.join(scire_arg, 'scire_solver.py')
dpm_file = os.path.join(dpm_dir, 'dpm_solver_pytorch.py')
sys.path.insert(0, os.path.dirname(os.path.abspath(scire_file)))
sys.path.insert(0, os.path.abspath(dpm_dir))
import scire_solver as sc  # noqa: E402
import dpm_solver_pytorch as dpm  # noqa: E402

_spec = importlib.util.spec_from_file_location('uni_pc_authors', unipc_file)
up = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(up)

torch.set_default_dtype(torch.float64)
N = 1000
B, D = 8, 16


def known_data():
    """x0 (the known data) and the mask m, [8, 16], float64 (deterministic, no RNG)."""
    i = torch.arange(D, dtype=torch.float64)
    b = torch.arange(B, dtype=torch.float64).unsqueeze(1)
    x0 = torch.sin(0.7 * i + 1.3 * b) * 1.5 + 0.1 * b
    # element b: known for i < 4 + b, a soft edge of two values, unknown after
    edge = 4 + torch.arange(B).unsqueeze(1)
    m = torch.where(i < edge, torch.ones(()), torch.zeros(()))
    m = torch.where(i == edge, torch.full((), 0.75), m)
    m = torch.where(i == edge + 1, torch.full((), 0.25), m)
    return x0, m


def schedule(lib, name, dtype):
    if name == 'discrete':
        return lib.NoiseScheduleVP('discrete', betas=torch.linspace(1e-4, 0.02, N, dtype=torch.float64), dtype=dtype)
    return lib.NoiseScheduleVP('linear', continuous_beta_0=0.1, continuous_beta_1=20.0, dtype=dtype)


def to_input(name, t):
    if name == 'discrete':
        return (t - 1.0 / N) * 1000.0
    return 1000.0 * torch.clamp(t - 1.0 / N, min=0.0)


def solve(kind, name, x_T, alg, method, order, skip, steps, dtz, dtype):
    """One authors' call; returns (result float64, number of model calls, number of corrections)."""
    torch.set_default_dtype(dtype)
    try:
        lib = {'scire': sc, 'dpm': dpm, 'unipc': up}[kind]
        ns = schedule(lib, name, dtype)
        module = torch.jit.load(os.path.join(REF, 'models', f'gmm_D16_{name}.pt'))
        x0, m = (v.to(dtype) for v in known_data())
        z = x_T.clone().to(dtype)
        if kind == 'unipc':  # a 4-d batch for the authors' einsum
            x0, m, z, x_T = (v.reshape(B, 1, 4, 4) for v in (x0, m, z, x_T))
        calls = []
        corrections = []

        def correct_xt(x_t, t):
            a = ns.marginal_alpha(t).to(dtype)
            s = ns.marginal_std(t).to(dtype)
            return m * (a * x0 + s * z) + (1 - m) * x_t

        if kind == 'scire':
            scale_fn = ns.marginal_alpha if alg == 'scire_v1' else ns.marginal_std
            loop_calls = steps + 1 if method == 'multistep' else None

            def correcting_xt_fn(x, t, step):
                corrections.append(float(t.reshape(-1)[0]))
                # after denoise_to_zero (the call after the loop's last) x is x_t itself
                if dtz and len(corrections) == n_loop[0] + 1:
                    return correct_xt(x, t)
                scale = scale_fn(t)
                return correct_xt(scale * x, t) / scale

            def counted(x, t):
                calls.append(float(t[0]))
                return module(x, t)

            model_fn = sc.model_wrapper(counted, ns, model_type='noise')
            solver = sc.SciRE_Solver(model_fn, ns, algorithm_type=alg, correcting_xt_fn=correcting_xt_fn)
            if method == 'multistep':
                n_loop = [loop_calls]
            elif method == 'singlestep_agile':
                _, orders = solver.get_orders_and_timesteps_for_singlestep_solver(steps=steps, order=order, skip_type=skip,
                                                                                  t_T=ns.T, t_0=1.0 / N, device='cpu')
                n_loop = [len(orders)]
            else:
                n_loop = [steps // order]
        else:
            def correcting_xt_fn(x, t, step):
                corrections.append(float(t.reshape(-1)[0]))
                return correct_xt(x, t)

            def model_fn(x, t_cont):
                calls.append(float(t_cont[0]))
                return module(x, to_input(name, t_cont))

            if kind == 'dpm':
                solver = dpm.DPM_Solver(model_fn, ns, algorithm_type=alg, correcting_xt_fn=correcting_xt_fn)
            else:
                solver = up.UniPC(model_fn, ns, algorithm_type='data_prediction', variant=alg,
                                  correcting_xt_fn=correcting_xt_fn)
        with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
            out = solver.sample(x_T.clone().to(dtype), steps=steps, order=order, skip_type=skip, method=method,
                                lower_order_final=True, denoise_to_zero=dtz)
        return out.to(torch.float64).reshape(B, D), len(calls), corrections
    finally:
        torch.set_default_dtype(torch.float64)


def run(kind, name, x_T, alg, method, order, skip, steps, dtz=False):
    out, nfe, corrections = solve(kind, name, x_T, alg, method, order, skip, steps, dtz, torch.float64)
    out32, _, _ = solve(kind, name, x_T, alg, method, order, skip, steps, dtz, torch.float32)
    prefix = {'scire': 'scire', 'dpm': 'dpm_solver', 'unipc': 'unipc'}[kind]
    return {
        'id': f'{prefix}|{name}|{alg}|{method}|o{order}|{skip}|s{steps}' + ('|dtz' if dtz else ''),
        'schedule': name, 'algorithm_type': alg, 'method': method, 'order': order, 'skip_type': skip,
        'steps': steps, 'denoise_to_zero': dtz, 'lower_order_final': True, 't_start': None, 't_end': None,
        'dtype': 'float64', 'nfe': nfe, 'correction_t': corrections,
        'x0': out.tolist(),
        'float32_run_max_abs_dev': float((out32 - out).abs().max()),
    }


def rev_of(path, env):
    try:
        return subprocess.check_output(['git', '-C', os.path.dirname(os.path.abspath(path)), 'rev-parse', 'HEAD'],
                                       text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:
        return os.environ.get(env)


def main():
    cases = []
    x_T_from = {}
    for name in ['discrete', 'linear']:
        golden = json.load(open(os.path.join(REF, 'golden', f'scire_{name}.json')))
        x_T = torch.tensor(golden['x_T'], dtype=torch.float64)
        assert list(x_T.shape) == [B, D]
        x_T_from[name] = f'golden/scire_{name}.json'
        for alg in ['scire_v1', 'scire_v2']:
            for steps in [6, 10]:
                cases.append(run('scire', name, x_T, alg, 'multistep', 3, 'NSR', steps))
            cases.append(run('scire', name, x_T, alg, 'multistep', 2, 'time_uniform', 8, dtz=True))
            cases.append(run('scire', name, x_T, alg, 'singlestep_agile', 3, 'NSR', 8))
            cases.append(run('scire', name, x_T, alg, 'singlestep_fixed', 2, 'time_uniform', 6, dtz=True))
        for steps in [5, 10]:
            cases.append(run('dpm', name, x_T, 'dpmsolver++', 'multistep', 2, 'logSNR', steps))
        cases.append(run('dpm', name, x_T, 'dpmsolver++', 'multistep', 3, 'time_uniform', 8, dtz=True))
        cases.append(run('dpm', name, x_T, 'dpmsolver++', 'singlestep', 3, 'logSNR', 8))
        cases.append(run('unipc', name, x_T, 'bh1', 'multistep', 3, 'logSNR', 7))
        cases.append(run('unipc', name, x_T, 'bh2', 'multistep', 2, 'time_uniform', 8, dtz=True))
    x0, m = known_data()
    out = {
        'format': 'scire-inpaint-v1',
        'generator': 'test/support/generate_inpaint_golden.py',
        'scire_solver_py_sha256': hashlib.sha256(open(scire_file, 'rb').read()).hexdigest(),
        'scire_rev': rev_of(scire_file, 'SCIRE_REV'),
        'dpm_solver_pytorch_py_sha256': hashlib.sha256(open(dpm_file, 'rb').read()).hexdigest(),
        'dpm_solver_rev': rev_of(dpm_file, 'DPM_SOLVER_REV'),
        'uni_pc_py_sha256': hashlib.sha256(open(unipc_file, 'rb').read()).hexdigest(),
        'unipc_rev': rev_of(unipc_file, 'UNIPC_REV'),
        'torch_version': torch.__version__,
        'x_T_from': x_T_from,
        'noise': 'x_T',
        'known_x0': x0.tolist(),
        'mask': m.tolist(),
        'cases': cases,
    }
    json.dump(out, sys.stdout)


main()
