// worker.terminate() on worker threads that own models with samples in flight: a running
// forward, queued forwards, an execute with onStep events and an AbortSignal listener pending on
// a second model. Each of
// CYCLES (argv[2]) cycles starts a worker, waits until its first step event arrived (samples
// are really running), terminates it and goes on; the last cycle's forward never returns.
// The process must survive every cycle, print 'survived N' and exit by itself.
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

if (isMainThread) {
  const cycles = Number(process.argv[2] || 20);
  (async () => {
    for (let i = 0; i < cycles; i++) {
      const forever = i === cycles - 1;
      const worker = new Worker(__filename, { workerData: { forever }, env: process.env });
      await new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was busy`)));
      });
      await worker.terminate();
      console.log(`cycle ${i + 1}: terminated`);
    }
    console.log(`survived ${cycles}`);
  })().catch((e) => {
    console.error(e);
    process.exit(3);
  });
} else {
  const { load, plan } = require('./common.cjs');
  (async () => {
    const busy = await load('busy_counter.pt');
    const slow = await load('slow_model.pt');
    const x = new Float32Array(4);
    // ~0.3 s of busy work (hours in the last cycle), then more requests queued behind it
    busy.forward(x, [1, 4], workerData.forever ? 1e9 : 5000).catch(() => {});
    for (let k = 0; k < 3; k++) busy.forward(x, [1, 4], 0).catch(() => {});
    busy.execute(plan(4, 100), { x, shape: [1, 4], onStep: () => {} }).catch(() => {});
    let told = false;
    slow.execute(plan(40, 1), {
      x,
      shape: [1, 4],
      signal: new AbortController().signal, // a listener to drop at teardown without calling JS
      onStep: () => {
        if (!told) parentPort.postMessage('busy');
        told = true;
      },
    }).catch(() => {});
  })();
}
