/** Finding and naming the Debian packages msgtrace needs (the install itself needs root and apt; CI's fresh machine exercises it). */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import { NatsServerMissingError, resolveNatsServerBinary } from '../adapters/nats/nats-server-binary.ts';
import { findOnPath } from '../adapters/system/debian-packages.ts';

function withEnv<T>(changes: Record<string, string | undefined>, body: () => T): T {
  const saved = Object.fromEntries(Object.keys(changes).map((key) => [key, process.env[key]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  apply(changes);
  try {
    return body();
  } finally {
    apply(saved);
  }
}

describe('Debian packages', () => {
  it('finds an executable on PATH, and says null for one that is not there', () => {
    withEnv({ PATH: `/nonexistent-dir::${dirname(process.execPath)}` }, () => {
      assert.equal(findOnPath('node'), process.execPath.replace(/\/[^/]+$/, '/node'));
      assert.equal(findOnPath('no-such-executable-msgtrace'), null);
    });
  });

  it('a missing nats-server that may not be installed is named with the apt-get command', () => {
    withEnv({ PATH: '/nonexistent-dir', MSGTRACE_NATS_SERVER: undefined }, () => {
      assert.throws(
        () => resolveNatsServerBinary({ install: false }),
        (error: unknown) => error instanceof NatsServerMissingError && /sudo apt-get install -y nats-server/.test(error.message),
      );
    });
  });

  it('MSGTRACE_NATS_SERVER wins over the PATH', () => {
    withEnv({ PATH: '/nonexistent-dir', MSGTRACE_NATS_SERVER: '/opt/nats/nats-server' }, () => {
      assert.equal(resolveNatsServerBinary({ install: false }), '/opt/nats/nats-server');
    });
  });
});
