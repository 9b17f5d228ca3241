import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey, verify, constants } from 'node:crypto';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import { MockAgent } from 'undici';
import { createTokenSource, type TokenSourceInput } from '../adapters/o365/token-source.ts';
import { expandEnvVars } from '../adapters/o365/client-certificate.ts';
import { createSimulatorPki, type SimulatorPki } from '../simulator/certificates.ts';

const tenantId = '7d3b5a4e-1c2f-4e8a-9b6d-0f1e2d3c4b5a';
const clientId = 'a1b2c3d4-0000-4000-8000-123456789abc';
const clientSecret = 'Sup3r~Secret.Value_42';
const loginOrigin = 'https://login.test';
const graphUrl = 'https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces';
const rwsUrl = 'https://reports.office365.com/ecp/reportingwebservice/reporting.svc/MessageTrace';

let agent: MockAgent;
let posts: Array<{ origin: string; path: string; form: URLSearchParams }>;
let clock: number;

function openIdConfig(origin: string) {
  return {
    token_endpoint: `${origin}/${tenantId}/oauth2/v2.0/token`,
    authorization_endpoint: `${origin}/${tenantId}/oauth2/v2.0/authorize`,
    end_session_endpoint: `${origin}/${tenantId}/oauth2/v2.0/logout`,
    issuer: `${origin}/${tenantId}/v2.0`,
    jwks_uri: `${origin}/${tenantId}/discovery/v2.0/keys`,
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
  };
}

/** Serves the OpenID configuration and queues token endpoint answers (one per call). */
function serveLogin(origin: string, answers: Array<{ status: number; body: object } | { error: Error }>) {
  const pool = agent.get(origin);
  pool
    .intercept({ path: `/${tenantId}/v2.0/.well-known/openid-configuration`, method: 'GET' })
    .reply(200, openIdConfig(origin), { headers: { 'content-type': 'application/json' } })
    .persist();
  for (const answer of answers) {
    const scope = pool.intercept({ path: (p) => p.startsWith(`/${tenantId}/oauth2/v2.0/token`), method: 'POST' });
    if ('error' in answer) {
      scope.replyWithError(answer.error);
      continue;
    }
    scope.reply((opts) => {
      posts.push({ origin, path: opts.path, form: new URLSearchParams(String(opts.body)) });
      return { statusCode: answer.status, data: JSON.stringify(answer.body), responseOptions: { headers: { 'content-type': 'application/json' } } };
    });
  }
}

function tokenBody(accessToken: string, expiresIn = 3599) {
  return { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: accessToken };
}

function source(input: Partial<TokenSourceInput>, files: Record<string, string> = {}, env: Record<string, string> = {}) {
  return createTokenSource({
    input: { authType: 'oauthSecret', url: graphUrl, tenantId, clientId, clientSecret, loginUrl: loginOrigin, ...input },
    dispatcher: agent,
    now: () => clock,
    readFile: async (path) => {
      const content = files[path];
      if (content === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
      return content;
    },
    env,
  });
}

beforeEach(() => {
  agent = new MockAgent();
  agent.disableNetConnect();
  posts = [];
  clock = Date.now();
});

afterEach(async () => {
  await agent.close();
});

describe('token source: Basic', () => {
  it('manual → Basic base64(user:pass), ok at once without expiry', async () => {
    const tokens = source({ authType: 'manual', username: 'reader@contoso.com', password: 'pa:ss wörd' });
    assert.deepEqual(await tokens.acquire(false), { status: 'ok', expiresAtMs: null });
    assert.equal(await tokens.authorizationHeader(), `Basic ${Buffer.from('reader@contoso.com:pa:ss wörd').toString('base64')}`);
  });

  it('secret without a password → failed, and no header', async () => {
    const tokens = source({ authType: 'secret', username: 'reader@contoso.com', password: undefined });
    const result = await tokens.acquire(false);
    assert.equal(result.status, 'failed');
    assert.match(result.status === 'failed' ? result.reason : '', /credentialsSecret/);
    await assert.rejects(tokens.authorizationHeader());
  });
});

describe('token source: client secret via MSAL', () => {
  it('asks for <graph>/.default with the secret, caches, and renews on force', async () => {
    serveLogin(loginOrigin, [{ status: 200, body: tokenBody('token-one') }, { status: 200, body: tokenBody('token-two') }]);
    const tokens = source({});
    const first = await tokens.acquire(false);
    assert.equal(first.status, 'ok');
    assert.ok(first.status === 'ok' && first.expiresAtMs !== null && first.expiresAtMs > clock + 3_500_000);
    assert.equal(posts.length, 1);
    assert.equal(posts[0]!.form.get('grant_type'), 'client_credentials');
    assert.equal(posts[0]!.form.get('client_id'), clientId);
    assert.equal(posts[0]!.form.get('client_secret'), clientSecret);
    assert.equal(posts[0]!.form.get('scope'), 'https://graph.microsoft.com/.default');

    assert.equal(await tokens.authorizationHeader(), 'Bearer token-one');
    assert.equal(await tokens.acquire(false).then((r) => r.status), 'ok');
    assert.equal(posts.length, 1, 'served from the cache');

    await tokens.acquire(true);
    assert.equal(posts.length, 2, 'forceRefresh bypasses the cache');
    assert.equal(await tokens.authorizationHeader(), 'Bearer token-two');
  });

  it('renews by the injected clock 5 minutes before expiry', async () => {
    serveLogin(loginOrigin, [{ status: 200, body: tokenBody('early') }, { status: 200, body: tokenBody('renewed') }]);
    const tokens = source({});
    assert.equal(await tokens.authorizationHeader(), 'Bearer early');
    clock += 54 * 60_000;
    assert.equal(await tokens.authorizationHeader(), 'Bearer early');
    clock += 2 * 60_000; // 56 min: inside the 5-minute margin of a 60-minute token
    assert.equal(await tokens.authorizationHeader(), 'Bearer renewed');
    assert.equal(posts.length, 2);
  });

  it('an RWS url defaults the scope to the Exchange resource; `resource` overrides it', async () => {
    serveLogin(loginOrigin, [{ status: 200, body: tokenBody('a') }, { status: 200, body: tokenBody('b') }]);
    await source({ url: rwsUrl }).acquire(false);
    await source({ url: rwsUrl, resource: 'https://outlook.office365.us/' }).acquire(false);
    assert.deepEqual(posts.map((p) => p.form.get('scope')), ['https://outlook.office365.com/.default', 'https://outlook.office365.us/.default']);
  });

  it('planType gcc_high signs in at login.microsoftonline.us', async () => {
    serveLogin('https://login.microsoftonline.us', [{ status: 200, body: tokenBody('us') }]);
    const result = await source({ url: rwsUrl, planType: 'gcc_high', loginUrl: undefined }).acquire(false);
    assert.equal(result.status, 'ok');
    assert.equal(posts[0]!.origin, 'https://login.microsoftonline.us');
    assert.equal(posts[0]!.form.get('scope'), 'https://outlook.office365.us/.default');
  });

  it('invalid_client → failed with the AADSTS code and description, never the secret', async () => {
    serveLogin(loginOrigin, [
      {
        status: 401,
        body: {
          error: 'invalid_client',
          error_description: "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'a1b2'.",
          error_codes: [7000215],
          timestamp: '2026-11-20 10:00:00Z',
          trace_id: 't',
          correlation_id: 'c',
        },
      },
    ]);
    const result = await source({}).acquire(false);
    assert.equal(result.status, 'failed');
    const reason = result.status === 'failed' ? result.reason : '';
    assert.match(reason, /invalid_client: AADSTS7000215: Invalid client secret provided\./);
    assert.ok(!reason.includes(clientSecret));
  });

  it('a 503 from the token endpoint → retryable http 503', async () => {
    serveLogin(loginOrigin, [{ status: 503, body: { error: 'temporarily_unavailable', error_description: 'AADSTS50196: try again later' } }]);
    const result = await source({}).acquire(false);
    assert.equal(result.status, 'retryable');
    assert.deepEqual(result.status === 'retryable' && result.cause, { kind: 'http', httpStatus: 503 });
  });

  it('a reset connection to the token endpoint → retryable', async () => {
    serveLogin(loginOrigin, [{ error: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) }]);
    const tokens = source({});
    const result = await tokens.acquire(false);
    assert.equal(result.status, 'retryable');
    assert.deepEqual(result.status === 'retryable' && result.cause, { kind: 'reset' });
    await assert.rejects(tokens.authorizationHeader());
  });

  it('missing clientSecret → failed naming the field', async () => {
    const result = await source({ authType: 'oauth', clientSecret: undefined }).acquire(false);
    assert.deepEqual(result, { status: 'failed', reason: 'authType oauth needs clientSecret (or textSecret)' });
  });
});

describe('token source: certificate via MSAL', () => {
  const passphrase = 'correct horse battery';
  let pki: SimulatorPki;
  let encryptedKey: string;

  before(async () => {
    pki = await createSimulatorPki({ hostnames: [] });
    encryptedKey = createPrivateKey(pki.appKeyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }).toString();
  });


  const files = () => ({ '/etc/msgtrace/app-cert.pem': pki.appCertPem, '/etc/msgtrace/app-key.pem': encryptedKey });
  const certOptions = { certPath: '$MSGTRACE_CERTS/app-cert.pem', privKeyPath: '${MSGTRACE_CERTS}/app-key.pem', passphrase };

  it('signs a client assertion with the encrypted key ($ENV paths expanded), x5t#S256 = the certificate thumbprint', async () => {
    serveLogin(loginOrigin, [{ status: 200, body: tokenBody('cert-token') }]);
    const tokens = source({ authType: 'oauthCert', clientSecret: undefined, certOptions }, files(), { MSGTRACE_CERTS: '/etc/msgtrace' });
    const result = await tokens.acquire(false);
    assert.equal(result.status, 'ok', JSON.stringify(result));
    const form = posts[0]!.form;
    assert.equal(form.get('client_secret'), null);
    assert.equal(form.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    const [headerB64, payloadB64, signatureB64] = form.get('client_assertion')!.split('.');
    const header = JSON.parse(Buffer.from(headerB64!, 'base64url').toString()) as Record<string, unknown>;
    const payload = JSON.parse(Buffer.from(payloadB64!, 'base64url').toString()) as Record<string, unknown>;
    const certificate = new X509Certificate(pki.appCertPem);
    assert.equal(header['x5t#S256'], Buffer.from(certificate.fingerprint256.replaceAll(':', ''), 'hex').toString('base64url'));
    assert.equal(payload.iss, clientId);
    assert.equal(payload.sub, clientId);
    assert.equal(payload.aud, `${loginOrigin}/${tenantId}/oauth2/v2.0/token`);
    const alg = header.alg;
    const signed = Buffer.from(`${headerB64}.${payloadB64}`);
    const key = createPublicKey(pki.appCertPem);
    const ok =
      alg === 'PS256'
        ? verify('sha256', signed, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(signatureB64!, 'base64url'))
        : verify('sha256', signed, key, Buffer.from(signatureB64!, 'base64url'));
    assert.ok(ok, `the assertion (${String(alg)}) verifies with the certificate's public key`);
    assert.equal(await tokens.authorizationHeader(), 'Bearer cert-token');
  });

  it('a wrong passphrase → failed saying so, without the passphrase', async () => {
    const result = await source({ authType: 'oauthCert', certOptions: { ...certOptions, passphrase: 'wrong-passphrase' } }, files(), { MSGTRACE_CERTS: '/etc/msgtrace' }).acquire(false);
    assert.equal(result.status, 'failed');
    const reason = result.status === 'failed' ? result.reason : '';
    assert.match(reason, /check certOptions\.passphrase/);
    assert.ok(!reason.includes('wrong-passphrase') && !reason.includes(passphrase));
  });

  it('a passphrase written $NAME is read from the environment, like every other secret', async () => {
    serveLogin(loginOrigin, [{ status: 200, body: tokenBody('env-passphrase-token') }]);
    const env = { MSGTRACE_CERTS: '/etc/msgtrace', KEY_PASSPHRASE: passphrase };
    const tokens = source({ authType: 'oauthCert', clientSecret: undefined, certOptions: { ...certOptions, passphrase: '$KEY_PASSPHRASE' } }, files(), env);
    const result = await tokens.acquire(false);
    assert.equal(result.status, 'ok', JSON.stringify(result));
    const unset = await source({ authType: 'oauthCert', certOptions: { ...certOptions, passphrase: '$KEY_PASSPHRASE' } }, files(), { MSGTRACE_CERTS: '/etc/msgtrace' }).acquire(false);
    assert.match(unset.status === 'failed' ? unset.reason : '', /environment variable KEY_PASSPHRASE .* is not set/);
  });

  it('an encrypted key without passphrase → failed asking for one', async () => {
    const result = await source({ authType: 'oauthCert', certOptions: { ...certOptions, passphrase: undefined } }, files(), { MSGTRACE_CERTS: '/etc/msgtrace' }).acquire(false);
    assert.match(result.status === 'failed' ? result.reason : '', /set certOptions\.passphrase/);
  });

  it('an unset environment variable in a path → failed naming it', async () => {
    const result = await source({ authType: 'oauthCert', certOptions }, files(), {}).acquire(false);
    assert.match(result.status === 'failed' ? result.reason : '', /environment variable MSGTRACE_CERTS .* is not set/);
  });

  it('a key of another certificate → failed', async () => {
    const other = await createSimulatorPki({ hostnames: [] });
    const result = await source(
      { authType: 'oauthCert', certOptions: { certPath: '/c.pem', privKeyPath: '/k.pem' } },
      { '/c.pem': pki.appCertPem, '/k.pem': other.appKeyPem },
    ).acquire(false);
    assert.match(result.status === 'failed' ? result.reason : '', /does not belong to the certificate/);
  });

  it('a missing file → failed naming the key and path', async () => {
    const result = await source({ authType: 'oauthCert', certOptions: { certPath: '/nope.pem' } }).acquire(false);
    assert.match(result.status === 'failed' ? result.reason : '', /certOptions\.certPath: cannot read \/nope\.pem \(ENOENT\)/);
  });
});

describe('expandEnvVars', () => {
  it('expands $NAME and ${NAME}, refuses unset ones', () => {
    assert.equal(expandEnvVars('$HOME_DIR/a/${SUB}/b$', { HOME_DIR: '/h', SUB: 's' }), '/h/a/s/b$');
    assert.throws(() => expandEnvVars('$NOPE/x', {}), /NOPE/);
  });
});
