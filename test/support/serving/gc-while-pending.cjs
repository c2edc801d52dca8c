// A Model garbage-collected while its requests are still pending (run with --expose-gc): the
// requests must still run in order and settle, then the model's thread ends and the process
// exits by itself. Prints 'collected' once the JS object is gone and the forward counts.
'use strict';
const { load } = require('./common.cjs');

(async () => {
  let model = await load('busy_counter.pt');
  const collected = new Promise((resolve) => {
    const registry = new FinalizationRegistry(resolve);
    registry.register(model, 'model');
    globalThis.keepRegistry = registry;
  });
  const x = new Float32Array(4);
  const pending = [model.forward(x, [1, 4], 5000), model.forward(x, [1, 4], 0)];
  model = null;
  let gone = false;
  collected.then(() => (gone = true));
  for (let i = 0; i < 50 && !gone; i++) {
    global.gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  console.log(gone ? 'collected' : 'not collected');
  const counts = (await Promise.all(pending)).map((y) => y[0]);
  console.log(`counts ${counts.join(',')}`);
})();
