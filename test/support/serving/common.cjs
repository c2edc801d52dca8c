// Shared by the child processes of test/serving-lifecycle.test.ts: the addon named by
// SCIRE_ADDON, the fixture models, and a hand-made plan of `evals` evaluations whose model
// input time is `t` (busy_counter.pt busy-works int(t) steps per forward).
'use strict';
const path = require('path');

const addon = require(process.env.SCIRE_ADDON);
const MODELS = path.resolve(__dirname, '..', '..', 'fixtures', 'models');

function plan(evals, t) {
  const ops = [];
  for (let i = 0; i < evals; i++) ops.push({ op: 'eval', t, tCont: 0.5, src: 0, inScale: 1, dst: 0, outX: 0.5, outM: 0.5 });
  return { format: 'scire-plan-v1', numRegs: 1, initScale: 1, ops, final: { src: 0, scale: 1 }, nfe: evals };
}

function load(name) {
  return addon.loadModel(path.join(MODELS, name), { device: 'cpu', dtype: 'float32' });
}

module.exports = { addon, MODELS, plan, load };
