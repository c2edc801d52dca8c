// process.exit() while a model's forward loops for hours (busy_counter.pt with t = 1e9), with
// more requests queued behind it: the process must exit at once with the given code.
// argv[2]: 'exit' (process.exit(0) after 300 ms) or 'dispose' (dispose the model, then let
// the event loop end by itself: nothing may keep it alive).
'use strict';
const { load, plan } = require('./common.cjs');

(async () => {
  const model = await load('busy_counter.pt');
  const x = new Float32Array(4);
  const settled = [];
  model.forward(x, [1, 4], 1e9).then(() => settled.push('forward resolved'), (e) => settled.push(`forward: ${e.code}`));
  model.forward(x, [1, 4], 0).catch((e) => settled.push(`queued forward: ${e.code}`));
  model.execute(plan(3, 0), { x, shape: [1, 4], onStep: () => {} }).catch((e) => settled.push(`queued execute: ${e.code}`));
  await new Promise((r) => setTimeout(r, 300));
  if (process.argv[2] === 'dispose') {
    model.dispose();
    await new Promise((r) => setImmediate(r));
    console.log(`disposed: ${settled.join('; ')}`);
    return; // the loop must end although the forward still runs on the model's thread
  }
  console.log(`exiting; settled so far: ${settled.length ? settled.join('; ') : 'none'}`);
  process.exit(0);
})();
