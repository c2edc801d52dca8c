"""Generates test/fixtures/classifier_guidance.json: the authors' classifier guidance,
model_wrapper(..., guidance_type="classifier", classifier_fn=..., condition=labels,
guidance_scale=s), on the analytic Gaussian-mixture model of test/fixtures/models, solved
with SciRE-Solver (scire_solver.py of ShiguiLi/SciRE-Solver) and with DPM-Solver++
multistep (dpm_solver_pytorch.py of LuChengTHU/dpm-solver, whose model_wrapper is the same).

The authors' files are NOT part of this repository; they are input data for this generator.
Pass the two files (or the directories holding them) on the command line:

    SCIRE_REV=5ebe12671b94a832ff1f52272d212dc434ab3667 DPM_SOLVER_REV=52bc3fbcd5de56d60917b826b15d2b69460fc2fa \\
      /usr/bin/python3 test/support/generate_classifier_golden.py /path/to/scire_solver.py /path/to/dpm_solver_pytorch.py \\
      > test/fixtures/classifier_guidance.json

The classifier is the exact posterior of the mixture component given x_t,
log p(k | x_t) = log_softmax(l(x_t, t_input))[k] with the logits of
test/fixtures/models/gmm_D16_<schedule>_clf.pt (make_classifier_models.py): classifier_fn
returns log_softmax(clf(x, t_input))[b, condition[b]] per batch element and the authors'
cond_grad_fn takes its gradient with autograd (torch.enable_grad, autograd.grad of the sum).
The noise model is the TorchScript GMM of ../shared/reference (gmm_D16_<schedule>.pt), given to
the wrapper as model_type 'noise'. (Their noise_pred_fn multiplies x [B, D] by alpha_t [B]
without expand_dims for 'x_start' and 'v', which fails unless B broadcasts; so other model
types are checked in the tests against these noise-model cases, not against their code.)

Setup as ../shared/reference/README.md section 3: float64, float64 schedule tables, x_T of
golden/scire_<schedule>.json ([8, 16]), default t_start / t_end, lower_order_final=True.
Labels: condition = [0, 1, 2, 3, 0, 1, 2, 3] (one per batch element).

'float32_run_max_abs_dev' is max |x0(float32 run) - x0(float64 run)| of the same call made in
float32 (default dtype float32, schedule in float32, x_T cast to float32): the float32
sensitivity of the case, used by the native float32 check (|dx| <= 1e-4 + 10 * deviation).
"""
import hashlib
import json
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', 'fixtures')
REF = os.environ.get('SCIRE_REFERENCE', '/work/shared/reference')


def module_file(arg, name):
    return arg if arg.endswith('.py') else os.path.join(arg, name)


scire_file = module_file(sys.argv[1], 'scire_solver.py')
dpm_file = module_file(sys.argv[2], 'dpm_solver_pytorch.py')
sys.path.insert(0, os.path.dirname(os.path.abspath(scire_file)))
sys.path.insert(0, os.path.dirname(os.path.abspath(dpm_file)))
import scire_solver as sc  # noqa: E402
import dpm_solver_pytorch as dpm  # noqa: E402

N = 1000
LABELS = [0, 1, 2, 3, 0, 1, 2, 3]


def schedule(lib, name, dtype):
    if name == 'discrete':
        return lib.NoiseScheduleVP('discrete', betas=torch.linspace(1e-4, 0.02, N, dtype=torch.float64), dtype=dtype)
    return lib.NoiseScheduleVP('linear', continuous_beta_0=0.1, continuous_beta_1=20.0, dtype=dtype)


def solve(case, x_T, dtype):
    """One run of the authors' code; returns (x0, [t_continuous of each model call])."""
    torch.set_default_dtype(dtype)
    try:
        lib = sc if case['solver'] == 'scire' else dpm
        ns = schedule(lib, case['schedule'], dtype)
        module = torch.jit.load(os.path.join(REF, 'models', f"gmm_D16_{case['schedule']}.pt"))
        clf = torch.jit.load(os.path.join(FIXTURES, 'models', f"gmm_D16_{case['schedule']}_clf.pt"))
        calls = []
        # DPM-Solver's wrapper hands a 'linear' (continuous) schedule's model the continuous time
        # itself; the GMM modules take the SciRE convention 1000 * max(t - 1/N, 0) (README
        # section 2), so both the model and the classifier convert it, as
        # generate_dpmsolver_extra.py does. SciRE's wrapper converts already.
        if lib is dpm and case['schedule'] == 'linear':
            to_input = lambda t: 1000.0 * torch.clamp(t - 1.0 / N, min=0.0)
        else:
            to_input = lambda t: t

        def model(x, t_in):
            t_input = to_input(t_in)
            calls.append(float(t_input[0]))
            eps = module(x, t_input)
            if case['model_type'] == 'noise':
                return eps
            # x_start: the data prediction of the same exact model at this model input time.
            la = clf.log_alpha(t_input).to(x.dtype).unsqueeze(1)
            return (x - torch.sqrt(-torch.expm1(2 * la)) * eps) / torch.exp(la)

        def classifier_fn(x, t_in, condition):
            logp = torch.log_softmax(clf(x, to_input(t_in)), dim=1)
            return logp[torch.arange(x.shape[0]), condition]

        model_fn = lib.model_wrapper(model, ns, model_type=case['model_type'], guidance_type='classifier',
                                     condition=torch.tensor(LABELS), guidance_scale=case['classifier_scale'],
                                     classifier_fn=classifier_fn)
        with torch.no_grad():
            if case['solver'] == 'scire':
                solver = sc.SciRE_Solver(model_fn, ns, algorithm_type=case['algorithm_type'])
            else:
                solver = dpm.DPM_Solver(model_fn, ns, algorithm_type='dpmsolver++')
            x0 = solver.sample(x_T.clone().to(dtype), steps=case['steps'], order=case['order'],
                               skip_type=case['skip_type'], method=case['method'], lower_order_final=True,
                               denoise_to_zero=case['denoise_to_zero'])
        return x0.to(torch.float64), calls
    finally:
        torch.set_default_dtype(torch.float64)


def run(name, x_T, solver, alg, method, order, skip, steps, scale, model_type='noise', dtz=False):
    case = {
        'id': f'{solver}|{name}|{alg}|{method}|o{order}|{skip}|s{steps}|{model_type}|scale{scale:g}' + ('|dtz' if dtz else ''),
        'solver': solver, 'schedule': name, 'algorithm_type': alg, 'method': method, 'order': order,
        'skip_type': skip, 'steps': steps, 'denoise_to_zero': dtz, 'lower_order_final': True,
        't_start': None, 't_end': None, 'model_type': model_type, 'classifier_scale': scale,
        'class_labels': LABELS,
    }
    x0, calls = solve(case, x_T, torch.float64)
    x0_32, _ = solve(case, x_T, torch.float32)
    case['nfe'] = len(calls)
    case['model_t_input'] = calls
    case['float32_run_max_abs_dev'] = float((x0_32 - x0).abs().max())
    case['x0'] = x0.tolist()
    return case


def main():
    torch.set_default_dtype(torch.float64)
    cases = []
    x_T_from = {}
    for name in ['discrete', 'linear']:
        golden = json.load(open(os.path.join(REF, 'golden', f'scire_{name}.json')))
        x_T = torch.tensor(golden['x_T'], dtype=torch.float64)
        x_T_from[name] = f'golden/scire_{name}.json'
        for steps in [6, 10]:
            for scale in [1.0, 4.0]:
                cases.append(run(name, x_T, 'scire', 'scire_v1', 'multistep', 3, 'NSR', steps, scale))
        cases.append(run(name, x_T, 'scire', 'scire_v2', 'multistep', 3, 'NSR', 10, 2.0))
        cases.append(run(name, x_T, 'scire', 'scire_v1', 'singlestep_agile', 3, 'NSR', 9, 2.0))
        cases.append(run(name, x_T, 'scire', 'scire_v2', 'multistep', 2, 'time_uniform', 8, 2.0, dtz=True))
        for order in [2, 3]:
            for scale in [1.0, 4.0]:
                cases.append(run(name, x_T, 'dpmpp', 'dpmsolver++', 'multistep', order, 'logSNR', 10, scale))
    revs = {}
    for key, path, env in [('scire', scire_file, 'SCIRE_REV'), ('dpm_solver', dpm_file, 'DPM_SOLVER_REV')]:
        try:
            revs[key] = subprocess.check_output(['git', '-C', os.path.dirname(os.path.abspath(path)), 'rev-parse', 'HEAD'],
                                                text=True, stderr=subprocess.DEVNULL).strip()
        except Exception:
            revs[key] = os.environ.get(env)
    out = {
        'format': 'scire-classifier-guidance-v1',
        'generator': 'test/support/generate_classifier_golden.py',
        'scire_solver_py_sha256': hashlib.sha256(open(scire_file, 'rb').read()).hexdigest(),
        'scire_rev': revs['scire'],
        'dpm_solver_pytorch_py_sha256': hashlib.sha256(open(dpm_file, 'rb').read()).hexdigest(),
        'dpm_solver_rev': revs['dpm_solver'],
        'torch_version': torch.__version__,
        'x_T_from': x_T_from,
        'classifier_models': {n: f'models/gmm_D16_{n}_clf.pt' for n in ['discrete', 'linear']},
        'cases': cases,
    }
    json.dump(out, sys.stdout)


main()
