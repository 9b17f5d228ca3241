/**
 * The scheduler's leader lease in NATS KV (`msgtrace-leader`, key
 * `scheduler`): one active scheduler among any number started, the others
 * standing by. The entry holds the holder's id and when the lease expires;
 * every change is a compare-and-set on the entry's revision, so two
 * schedulers can never both believe they took it. The holder renews well
 * before expiry; a standby takes an expired lease over.
 *
 * Expiry is the holder's clock plus the lease period, read by the standby's
 * clock: schedulers are assumed to run with synchronised clocks (NTP), as
 * any lease without a coordinator needs. A holder that was paused past its
 * expiry finds its renewal refused (the revision moved) and steps down.
 */
import { StorageType } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { isWrongLastSequence } from './compare-and-set.ts';
import { NatsError } from './nats-error.ts';

export const leaderBucket = 'msgtrace-leader';
const leaseKey = 'scheduler';

export interface LeaseHolder {
  readonly holder: string;
  readonly expiresAtMs: number;
}

export interface LeaderLease {
  /** Takes the lease when it is free or expired (or already ours); true when this process holds it now. */
  acquire(): Promise<boolean>;
  /** Extends our lease; false when it is no longer ours (someone took it over). */
  renew(): Promise<boolean>;
  /** Gives it up at once (graceful stop), so a standby need not wait for expiry. */
  release(): Promise<void>;
  /** Who holds it now, for logs and `msgtrace jobs`. */
  current(): Promise<LeaseHolder | null>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function decode(bytes: Uint8Array): LeaseHolder | null {
  try {
    const value = JSON.parse(decoder.decode(bytes)) as Partial<LeaseHolder>;
    return typeof value.holder === 'string' && typeof value.expiresAtMs === 'number' ? { holder: value.holder, expiresAtMs: value.expiresAtMs } : null;
  } catch {
    return null;
  }
}

export async function openLeaderBucket(nc: NatsConnection, options: { readonly replicas?: number } = {}): Promise<KV> {
  try {
    return await new Kvm(nc).create(leaderBucket, {
      history: 1,
      storage: StorageType.File,
      replicas: options.replicas ?? 1,
      description: 'msgtrace scheduler leader lease',
    });
  } catch (cause) {
    throw new NatsError(`cannot open the KV bucket ${leaderBucket}: ${(cause as Error).message}`, { cause });
  }
}

export function createLeaderLease(kv: KV, options: { readonly holder: string; readonly leaseMs: number; readonly now: () => number }): LeaderLease {
  const { holder, leaseMs, now } = options;
  /** The revision of our last write; 0 when we do not hold the lease. */
  let revision = 0;

  const read = async (): Promise<{ value: LeaseHolder | null; revision: number }> => {
    const entry = await kv.get(leaseKey);
    if (entry === null || entry.operation !== 'PUT') return { value: null, revision: entry?.revision ?? 0 };
    return { value: decode(entry.value), revision: entry.revision };
  };

  const write = async (expected: number, exists: boolean): Promise<boolean> => {
    const bytes = encoder.encode(JSON.stringify({ holder, expiresAtMs: now() + leaseMs }));
    try {
      revision = exists ? await kv.update(leaseKey, bytes, expected) : await kv.create(leaseKey, bytes);
      return true;
    } catch (error) {
      if (isWrongLastSequence(error)) {
        revision = 0;
        return false;
      }
      throw error;
    }
  };

  return {
    async acquire() {
      const { value, revision: current } = await read();
      if (value !== null && value.holder !== holder && value.expiresAtMs > now()) return false;
      // A deleted or purged key (revision > 0, no value) is taken over with update, a missing one created.
      return write(current, current > 0);
    },

    async renew() {
      if (revision === 0) return false;
      return write(revision, true);
    },

    async release() {
      if (revision === 0) return;
      const bytes = encoder.encode(JSON.stringify({ holder, expiresAtMs: 0 }));
      try {
        await kv.update(leaseKey, bytes, revision);
      } catch {
        // Already someone else's, or NATS is gone: expiry frees it either way.
      }
      revision = 0;
    },

    async current() {
      return (await read()).value;
    },
  };
}
