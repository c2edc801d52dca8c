/**
 * scire-solver/scaleout: BullMQ (Redis) sampling workers and their client (docs/scaling.md).
 *
 *   const { createWorker, createClient } = require('scire-solver/scaleout');
 *
 * A subpath of its own because it needs the optional peer dependency `bullmq` (its types too):
 * an app that samples in-process never loads or type-checks it.
 */
export { createWorker } from './worker';
export type { CreateWorkerOptions, ScireWorker } from './worker';
export { createClient, prepareRequest } from './client';
export type { CreateClientOptions, EnqueueOptions, SubmitOptions, ScireClient } from './client';
export { jobIdFor, parseJobData, OUTPUT_FORMATS } from './job';
export type { SampleJobData, OutputFormat } from './job';
export type { SampleJobResult, StoredResult } from './result';
