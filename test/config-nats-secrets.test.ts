import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectNats, natsConnectionOptions } from '../adapters/nats/nats-connection.ts';
import { NatsError } from '../adapters/nats/nats-error.ts';
import { errorCodes } from '../errors/msgtrace-error.ts';

const servers = ['nats://127.0.0.1:4222'];

describe('nats.password and nats.token written $NAME', () => {
  it('are read from the environment when the connection options are built', async () => {
    const withPassword = await natsConnectionOptions({ servers, user: 'msgtrace', password: '$NATS_PASSWORD' }, { env: { NATS_PASSWORD: 'from-env' } });
    assert.equal(withPassword.user, 'msgtrace');
    assert.equal(withPassword.pass, 'from-env');
    const withToken = await natsConnectionOptions({ servers, token: '${NATS_TOKEN}' }, { env: { NATS_TOKEN: 'token-from-env' } });
    assert.equal(withToken.token, 'token-from-env');
  });

  it('are sent as written when they do not start with $', async () => {
    const options = await natsConnectionOptions({ servers, user: 'msgtrace', password: 'pa$$word' }, { env: {} });
    assert.equal(options.pass, 'pa$$word');
    assert.equal((await natsConnectionOptions({ servers, token: 'tok$EN' }, { env: { EN: 'x' } })).token, 'tok$EN');
  });

  it('fail with a NatsError naming the unset variable, never a value', async () => {
    for (const [config, key, name] of [
      [{ servers, user: 'msgtrace', password: '$NATS_PASSWORD_UNSET' }, 'password', 'NATS_PASSWORD_UNSET'],
      [{ servers, token: '$NATS_TOKEN_UNSET' }, 'token', 'NATS_TOKEN_UNSET'],
    ] as const) {
      await assert.rejects(natsConnectionOptions(config, { env: { OTHER: 'secret-value' } }), (error: unknown) => {
        assert.ok(error instanceof NatsError);
        assert.equal(error.code, errorCodes.nats);
        assert.equal(error.message, `nats.${key} reads environment variable ${name}, which is not set — set it in msgtrace's environment`);
        assert.ok(!error.message.includes('secret-value'));
        return true;
      });
    }
  });

  it('connectNats fails with that error before trying to connect', async () => {
    await assert.rejects(connectNats({ servers: ['nats://127.0.0.1:1'], user: 'msgtrace', password: '$NATS_PASSWORD_UNSET' }, { env: {} }), /nats\.password reads environment variable NATS_PASSWORD_UNSET, which is not set/);
  });

  it('default to process.env', async () => {
    const name = 'MSGTRACE_TEST_NATS_PASSWORD';
    process.env[name] = 'from-process-env';
    try {
      assert.equal((await natsConnectionOptions({ servers, user: 'msgtrace', password: `$${name}` })).pass, 'from-process-env');
    } finally {
      delete process.env[name];
    }
  });

  it('a creds file wins over both, as before', async () => {
    const options = await natsConnectionOptions({ servers, credsFile: '/etc/nats.creds', token: '$NATS_TOKEN_UNSET' }, {
      env: {},
      // Read, not parsed: the authenticator parses the file only when the client connects.
      readFile: async () => 'creds file content',
    });
    assert.equal(options.token, undefined);
    assert.equal(typeof options.authenticator, 'function');
  });
});
