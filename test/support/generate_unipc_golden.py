"""Generates test/fixtures/unipc_{discrete,linear}.json: reference outputs of the authors' UniPC
code (Zhao et al., NeurIPS 2023; github.com/wl-zhao/UniPC, file uni_pc.py at the repository
root) on the analytic Gaussian-mixture model of the golden reference (exact noise prediction).

The authors' file is NOT part of this repository; it is input data for this generator. Pass
the file (or the directory holding it) on the command line, or set UNIPC_PY:

    UNIPC_REV=<commit> /usr/bin/python3 test/support/generate_unipc_golden.py /path/to/uni_pc.py discrete > test/fixtures/unipc_discrete.json
    UNIPC_REV=<commit> /usr/bin/python3 test/support/generate_unipc_golden.py /path/to/uni_pc.py linear > test/fixtures/unipc_linear.json

Setup (as ../shared/reference/README.md section 3): float64 everywhere, float64 schedule
tables, the seed-0 GMM TorchScript module of that folder (SCIRE_REFERENCE, default
/work/shared/reference), the x_T of golden/dpmsolver_discrete.json reshaped to [8, 1, 4, 4]
(the authors' update contracts its differences with einsum over 'bkchw', so it needs a
4-d image batch; the module flattens it), the SciRE model-time convention (the authors'
wrapper passes the plain continuous t for 'linear'; it is converted as for DPM-Solver).

Cases (UniPC class, algorithm_type 'data_prediction', noise-prediction model):
  - UniPC.sample(..., method='multistep') as published: the corrector UniC after every step
    except the last (the authors skip it there: it would cost one more evaluation);
  - 'final_corrector': the same loop, but the last step is corrected too, which evaluates
    the model once more at t_end (NFE = steps + 1). The sample loop of uni_pc.py has no
    switch for it, so this generator drives the authors' multistep_uni_pc_update itself,
    step by step in the same order as their loop, with use_corrector=True at every step.
"""
import hashlib
import json
import os
import subprocess
import sys
import importlib.util

import torch

REF = os.environ.get('SCIRE_REFERENCE', '/work/shared/reference')
N = 1000


def load_unipc(path):
    if os.path.isdir(path):
        path = os.path.join(path, 'uni_pc.py')
    spec = importlib.util.spec_from_file_location('uni_pc_authors', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, path


def schedule_and_model(up, name):
    module = torch.jit.load(os.path.join(REF, 'models', f'gmm_D16_{name}.pt'))
    if name == 'discrete':
        ns = up.NoiseScheduleVP('discrete', betas=torch.linspace(1e-4, 0.02, N, dtype=torch.float64), dtype=torch.float64)
        to_input = lambda t: (t - 1.0 / N) * 1000.0
    else:
        ns = up.NoiseScheduleVP('linear', continuous_beta_0=0.1, continuous_beta_1=20.0, dtype=torch.float64)
        to_input = lambda t: 1000.0 * torch.clamp(t - 1.0 / N, min=0.0)
    calls = []

    def model_fn(x, t_cont):
        calls.append((float(t_cont[0]), float(to_input(t_cont)[0])))
        return module(x, to_input(t_cont))

    return ns, model_fn, calls


def sample_with_final_corrector(solver, x, steps, order, skip, lower_order_final):
    """The authors' multistep loop with use_corrector=True at every step (also the last)."""
    ts = solver.get_time_steps(skip_type=skip, t_T=solver.noise_schedule.T, t_0=1.0 / N, N=steps, device=x.device)
    t_prev = [ts[0]]
    m_prev = [solver.model_fn(x, ts[0])]
    for step in range(1, steps + 1):
        t = ts[step]
        if step < order:
            step_order = step
        else:
            step_order = min(order, steps + 1 - step) if lower_order_final else order
        x, m_t = solver.multistep_uni_pc_update(x, m_prev, t_prev, t, step_order, use_corrector=True)
        t_prev.append(t)
        m_prev.append(m_t)
        if len(t_prev) > order:
            t_prev.pop(0)
            m_prev.pop(0)
    return x


def run(up, name, x_T, variant, order, skip, steps, lower_order_final=True, final_corrector=False, dtz=False, thresholding=None):
    ns, model_fn, calls = schedule_and_model(up, name)
    kwargs = {}
    if thresholding is not None:
        kwargs = dict(correcting_x0_fn='dynamic_thresholding', dynamic_thresholding_ratio=thresholding['ratio'],
                      thresholding_max_val=thresholding['maxVal'])
    solver = up.UniPC(model_fn, ns, algorithm_type='data_prediction', variant=variant, **kwargs)
    with torch.no_grad():
        if final_corrector:
            x0 = sample_with_final_corrector(solver, x_T.clone(), steps, order, skip, lower_order_final)
        else:
            x0 = solver.sample(x_T.clone(), steps=steps, order=order, skip_type=skip, method='multistep',
                               lower_order_final=lower_order_final, denoise_to_zero=dtz)
    case_id = (f'unipc|{name}|{variant}|o{order}|{skip}|s{steps}' + ('' if lower_order_final else '|no_lof')
               + ('|final_corrector' if final_corrector else '') + ('|dtz' if dtz else '') + ('|thr' if thresholding else ''))
    return {
        'id': case_id, 'schedule': name, 'variant': variant, 'order': order, 'skip_type': skip, 'steps': steps,
        'lower_order_final': lower_order_final, 'final_corrector': final_corrector, 'denoise_to_zero': dtz,
        'thresholding': thresholding, 'nfe': len(calls),
        'model_t_continuous': [c[0] for c in calls], 'model_t_input': [c[1] for c in calls],
        'x0': x0.reshape(x0.shape[0], -1).tolist(),
    }


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get('UNIPC_PY')
    name = sys.argv[2] if len(sys.argv) > 2 else 'discrete'
    if not path or name not in ('discrete', 'linear'):
        sys.exit('usage: generate_unipc_golden.py /path/to/uni_pc.py discrete|linear  (or UNIPC_PY=...)')
    # The authors' update prints a line per step; keep stdout for the JSON.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    up, file_path = load_unipc(path)
    torch.set_default_dtype(torch.float64)
    golden = json.load(open(os.path.join(REF, 'golden', 'dpmsolver_discrete.json')))
    x_T = torch.tensor(golden['x_T'], dtype=torch.float64).reshape(-1, 1, 4, 4)
    cases = []
    for variant in ['bh1', 'bh2']:
        for order in [1, 2, 3]:
            for skip in ['logSNR', 'time_uniform', 'time_quadratic']:
                for steps in [5, 6, 10, 20]:
                    if steps < order:
                        continue
                    cases.append(run(up, name, x_T, variant, order, skip, steps))
        for order in [2, 3]:
            for steps in [6, 10]:
                cases.append(run(up, name, x_T, variant, order, 'logSNR', steps, lower_order_final=False))
                cases.append(run(up, name, x_T, variant, order, 'logSNR', steps, final_corrector=True))
                cases.append(run(up, name, x_T, variant, order, 'time_uniform', steps, lower_order_final=False, final_corrector=True))
        cases.append(run(up, name, x_T, variant, 1, 'logSNR', 8, final_corrector=True))
        cases.append(run(up, name, x_T, variant, 3, 'logSNR', 8, dtz=True))
        cases.append(run(up, name, x_T, variant, 2, 'time_uniform', 8, thresholding={'ratio': 0.9, 'maxVal': 1.0}))
    src = open(file_path, 'rb').read()
    try:
        rev = subprocess.check_output(['git', '-C', os.path.dirname(os.path.abspath(file_path)), 'rev-parse', 'HEAD'],
                                      text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:
        rev = None
    out = {
        'format': 'unipc-golden-v1',
        'generator': 'test/support/generate_unipc_golden.py',
        'source': 'github.com/wl-zhao/UniPC, uni_pc.py (repository root)',
        'uni_pc_py_sha256': hashlib.sha256(src).hexdigest(),
        'unipc_rev': os.environ.get('UNIPC_REV') or rev,
        'torch_version': torch.__version__,
        'schedule': name,
        'model_params_file': f'models/gmm_D16_{name}.json',
        'x_T_from': 'golden/dpmsolver_discrete.json',
        'x_T': golden['x_T'],
        'x_T_shape': list(x_T.shape),
        'cases': cases,
    }
    json.dump(out, real_stdout)


main()
