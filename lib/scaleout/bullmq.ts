/**
 * BullMQ, loaded on first use, and Redis connection options.
 *
 * bullmq is an optional peer dependency: most users of scire-solver sample in-process and
 * never need Redis, and those who run a queue already have a bullmq (and often a dashboard
 * such as bull-board) whose version should be theirs. `npm install bullmq` next to
 * scire-solver enables createWorker / createClient / `scire worker` / `scire submit`;
 * without it they throw an error that says so.
 */
import type * as BullMQ from 'bullmq';
import { invalidType, isPlainObject } from '../validate';

export type BullMQModule = typeof BullMQ;

let cached: BullMQModule | undefined;

/** The bullmq module, or an error with the install command. */
export function loadBullMQ(): BullMQModule {
  if (cached) return cached;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    cached = require('bullmq') as BullMQModule;
  } catch (err) {
    const e = new Error(
      'scire-solver: the queue workers need the optional peer dependency bullmq (^5.81), which is not installed. ' +
        `Install it next to scire-solver: npm install bullmq@5 (${(err as Error).message.split('\n')[0]})`,
    ) as Error & { code: string };
    e.code = 'ERR_SCIRE_NO_BULLMQ';
    throw e;
  }
  return cached;
}

/** Redis connection options as ioredis takes them. */
export interface RedisOptions {
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: Record<string, unknown>;
  [key: string]: unknown;
}

/** A Redis URL ('redis://[user:pass@]host:port[/db]', 'rediss://' for TLS) or ioredis options. */
export type Connection = string | RedisOptions;

/** ioredis options from a URL or an options object (copied, so BullMQ may add its own). */
export function connectionOptions(connection: unknown): RedisOptions {
  if (isPlainObject(connection)) return { ...connection };
  if (typeof connection !== 'string') {
    throw invalidType('connection', "a Redis URL ('redis://127.0.0.1:6379') or ioredis options { host, port, ... }", connection);
  }
  let url: URL;
  try {
    url = new URL(connection);
  } catch {
    throw invalidType('connection', "a Redis URL such as 'redis://127.0.0.1:6379'", connection);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw invalidType('connection', "a URL with scheme redis:// or rediss://", connection);
  }
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw invalidType('connection', 'a database number after the host (redis://host:6379/0)', connection);
  const out: RedisOptions = { host: url.hostname || '127.0.0.1', port: url.port ? Number(url.port) : 6379 };
  if (url.username) out.username = decodeURIComponent(url.username);
  if (url.password) out.password = decodeURIComponent(url.password);
  if (db !== '') out.db = Number(db);
  if (url.protocol === 'rediss:') out.tls = {};
  return out;
}
