/**
 * Dynamic batching: requests that can share one solve are concatenated along dimension 0,
 * run with ONE model.execute, and split again.
 *
 * Every plan op is elementwise per sample (thresholding is per sample too), so a batched
 * solve gives each member what it would get alone, up to the network's own dependence on
 * the batch size. Requests can share a solve when they have the same plan (same solver
 * options and tStart: compared by content, so two Samplers with equal options share), the
 * same per-sample shape, model dtype, conditioning layout (cond / uncond present, per-sample
 * cond shape), guidance scale, classifier (the same loaded classifier and classifierScale; the
 * class labels are per sample and concatenated like x) and cudaGraph mode: batchKey() puts all
 * of that in one string.
 *
 * Each member keeps its own starting noise (the caller made it), its own onStep (the batch's
 * step events fan out to the members still running), its own AbortSignal (an aborted member
 * is rejected at once and its slice dropped; when every member has left, the solve itself is
 * aborted) and its own result (a copy of its slice, so results do not share memory).
 */
import { createHash } from 'node:crypto';
import { abortError } from '../execute';
import type { NativeExecuteOptions, NativeExecuteResult, NativeStepEvent } from '../native-types';
import type { Plan } from '../plan';
import { asModelError, checkExecuteResult } from '../result-check';
import type { BatchRunner, QueueItem, QueuedRequest } from './queue';
import { onAbort } from './signals';

/** A request for one solve on the model. */
export interface ExecuteItem extends QueueItem {
  readonly plan: Plan;
  /**
   * What the model's execute takes, already validated: x, shape, cond, condShape, uncond,
   * guidanceScale, cudaGraph (and abortHandle for an unbatched request). No signal, no onStep.
   */
  readonly options: NativeExecuteOptions;
  readonly onStep?: (ev: NativeStepEvent) => void;
}

/** The timings a served request adds to the executor's. */
export interface ServingTimings {
  /** From submit to dispatch. */
  queueMs: number;
  /** Samples in the solve the request ran in (its own leading dimension when alone). */
  batchSize: number;
  /** Requests in that solve. */
  batchRequests: number;
  /** Wall time of that solve (the model's execute call), as seen from JS. */
  runMs: number;
}

export type ServedResult = NativeExecuteResult & { timings: NativeExecuteResult['timings'] & ServingTimings };

/** The model function a batch runs on: model.execute, bound. */
export type ExecuteFn = (plan: Plan, options: NativeExecuteOptions) => Promise<NativeExecuteResult>;

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

const fingerprints = new WeakMap<Plan, string>();

/** A content hash of a plan (cached per plan object): equal plans batch together. */
export function planFingerprint(plan: Plan): string {
  let fp = fingerprints.get(plan);
  if (fp === undefined) {
    fp = createHash('sha1').update(JSON.stringify(plan)).digest('base64');
    fingerprints.set(plan, fp);
  }
  return fp;
}

const classifierIds = new WeakMap<object, number>();
let nextClassifierId = 1;
/** A stable id per classifier object: requests batch only with the same classifier. */
function classifierId(clf: object): number {
  let id = classifierIds.get(clf);
  if (id === undefined) {
    id = nextClassifierId++;
    classifierIds.set(clf, id);
  }
  return id;
}

/** The string that requests must share to run as one solve. */
export function batchKey(plan: Plan, options: NativeExecuteOptions, dtype: string): string {
  const perSample = options.shape.slice(1).join('x');
  const cond = options.cond === undefined ? '-' : `cond:${(options.condShape ?? []).slice(1).join('x')}`;
  const guidance = options.uncond === undefined ? '-' : `cfg:${String(options.guidanceScale)}`;
  const inter = `inter:${options.intermediates ?? '-'}`;
  // Inpainting requests batch too (their x0, mask and noise are per sample); the plan differs anyway.
  const inpaint = `inpaint:${options.inpaint ? 1 : 0}`;
  // Classifier guidance: the labels are per sample (concatenated), the classifier and scale shared.
  const clf = options.classifier === undefined ? '-' : `clf:${classifierId(options.classifier)}:${String(options.classifierScale ?? 1)}`;
  return [planFingerprint(plan), perSample, dtype, cond, guidance, `graph:${String(options.cudaGraph ?? 'auto')}`, inter, inpaint, clf].join('|');
}

function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The members' options concatenated along dimension 0 (they share a batch key). */
export function concatOptions(members: readonly NativeExecuteOptions[]): NativeExecuteOptions {
  const first = members[0];
  const rows = members.reduce((n, m) => n + m.shape[0], 0);
  const out: NativeExecuteOptions = { x: concatFloat32(members.map((m) => m.x)), shape: [rows, ...first.shape.slice(1)] };
  if (first.cond !== undefined && first.condShape !== undefined) {
    out.cond = concatFloat32(members.map((m) => m.cond as Float32Array));
    out.condShape = [rows, ...first.condShape.slice(1)];
  }
  if (first.uncond !== undefined) {
    out.uncond = concatFloat32(members.map((m) => m.uncond as Float32Array));
    out.guidanceScale = first.guidanceScale;
  }
  if (first.classifier !== undefined) {
    out.classifier = first.classifier;
    const labels = new Int32Array(rows);
    let at = 0;
    for (const m of members) {
      labels.set(m.classLabels as Int32Array, at);
      at += m.shape[0];
    }
    out.classLabels = labels;
    if (first.classifierScale !== undefined) out.classifierScale = first.classifierScale;
  }
  if (first.cudaGraph !== undefined) out.cudaGraph = first.cudaGraph;
  if (first.intermediates !== undefined) out.intermediates = first.intermediates;
  if (first.inpaint !== undefined) {
    const part = (k: 'x0' | 'mask' | 'noise') => concatFloat32(members.map((m) => (m.inpaint as NonNullable<NativeExecuteOptions['inpaint']>)[k]));
    out.inpaint = { x0: part('x0'), mask: part('mask'), noise: part('noise') };
  }
  return out;
}

/** A member's own copy of a shared error (each caller may rewrite its stack). */
function memberError(error: unknown, shared: boolean): unknown {
  if (!shared || !(error instanceof Error)) return error;
  const copy = Object.create(Object.getPrototypeOf(error) as object) as Error;
  Object.assign(copy, error); // own enumerable fields: code, details, ...
  Object.defineProperty(copy, 'message', { value: error.message, writable: true, configurable: true });
  Object.defineProperty(copy, 'name', { value: error.name, writable: true, configurable: true });
  Object.defineProperty(copy, 'stack', { value: error.stack, writable: true, configurable: true });
  if (error.cause !== undefined) Object.defineProperty(copy, 'cause', { value: error.cause, writable: true, configurable: true });
  return copy;
}

/**
 * Flags of an executor result that describe the whole batch, made safe for one member: a
 * non-finite flag (finite: false, nonFiniteEval > 0) may come from another member's samples,
 * so a member gets "not measured" instead and its own slice is what gets checked.
 */
function memberFlags(result: NativeExecuteResult): Record<string, unknown> {
  const r = result as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if ('finite' in r) out.finite = undefined;
  if (typeof r.nonFiniteEval === 'number' && r.nonFiniteEval > 0) out.nonFiniteEval = -1;
  return out;
}

/**
 * The runner of a model's queue: one execute per batch. All members of a batch share a
 * batch key (the queue only merges equal keys), and a member without a key runs alone.
 */
export function batchRunner(execute: ExecuteFn): BatchRunner<ExecuteItem, ServedResult> {
  return (batch) => runBatch(execute, batch);
}

async function runBatch(execute: ExecuteFn, batch: ReadonlyArray<QueuedRequest<ExecuteItem, ServedResult>>): Promise<void> {
  const controller = new AbortController();
  const live = new Set(batch);
  const leave = (req: QueuedRequest<ExecuteItem, ServedResult>, error: unknown): void => {
    if (!live.delete(req)) return;
    req.reject(error);
    if (live.size === 0) controller.abort();
  };
  const unsubscribe: Array<() => void> = [];
  for (const req of batch) {
    const signal = req.item.signal;
    if (!signal) continue;
    if (signal.aborted) leave(req, abortError(signal));
    else unsubscribe.push(onAbort(signal, () => leave(req, abortError(signal))));
  }
  try {
    const members = [...live];
    if (members.length === 0) return;
    const alone = members.length === 1;
    const options: NativeExecuteOptions = alone ? { ...members[0].item.options } : concatOptions(members.map((m) => m.item.options));
    options.signal = controller.signal;
    // Each member's rows of the batch: an intermediate (ev.x) is sliced to the member's own samples.
    const rows = new Map<QueuedRequest<ExecuteItem, ServedResult>, [number, number]>();
    let row = 0;
    for (const m of members) {
      const n = numel(m.item.options.shape);
      rows.set(m, [row, row + n]);
      row += n;
    }
    const stepped = members.filter((m) => m.item.onStep !== undefined);
    if (stepped.length > 0) {
      options.onStep = (ev) => {
        for (const m of stepped) {
          if (!live.has(m)) continue;
          try {
            if (ev.x !== undefined && !alone) {
              const [from, to] = rows.get(m) as [number, number];
              m.item.onStep?.({ ...ev, x: ev.x.slice(from, to) });
            } else {
              m.item.onStep?.(ev);
            }
          } catch (e) {
            leave(m, e); // a throwing onStep fails its own request only
          }
        }
      };
    }
    const started = performance.now();
    let result: NativeExecuteResult;
    try {
      result = checkExecuteResult(await execute(members[0].item.plan, options), numel(options.shape));
    } catch (e) {
      const error = asModelError(e);
      for (const m of [...live]) leave(m, memberError(error, !alone));
      return;
    }
    const runMs = performance.now() - started;
    const batchSize = options.shape[0];
    const shared = alone ? {} : memberFlags(result);
    let offset = 0;
    for (const m of members) {
      const n = numel(m.item.options.shape);
      const data = alone ? result.data : result.data.slice(offset, offset + n);
      offset += n;
      if (!live.has(m)) continue; // aborted: its slice is dropped
      live.delete(m);
      m.resolve({
        ...result,
        ...shared,
        data,
        shape: [...m.item.options.shape],
        timings: { ...result.timings, queueMs: m.dispatchedAt - m.enqueuedAt, batchSize, batchRequests: members.length, runMs },
      });
    }
  } finally {
    for (const u of unsubscribe) u();
  }
}
