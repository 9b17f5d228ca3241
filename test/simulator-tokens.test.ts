import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { createPrivateKey, randomUUID, sign, constants, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { ConfidentialClientApplication, type INetworkModule } from '@azure/msal-node';
import { createSimulatorPki, writePki, type SimulatorPki } from '../simulator/certificates.ts';
import { createRegisteredApp } from '../simulator/registered-app.ts';
import { expiredTokenResponse } from '../simulator/auth-responses.ts';
import { createTokenService } from '../simulator/token-service.ts';
import type { RegisteredApp } from '../simulator/simulator.types.ts';
import { startTestSimulator, type TestSimulator } from './support/simulator.ts';
import { createMsalNetworkClient } from '../adapters/o365/msal-network.ts';
import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';

/*
 * The simulator's identity side, exercised as a collector would: real
 * @azure/msal-node over HTTPS (trusting only the simulator's CA through the
 * project's undici network client), and plain undici requests for the failure
 * shapes and the APIs' answers to each kind of credential.
 */

interface Harness {
  readonly url: string;
  readonly host: string;
  readonly app: RegisteredApp;
  readonly dispatcher: Agent;
  /** The simulator's injected clock. */
  readonly clock: { nowMs: number };
  expireTokens(): Promise<void>;
  close(): Promise<void>;
}

/** The full simulator (H1's server over this file's token service), on an injected clock. */
async function startHarness(tokenLifetimeS = 3599): Promise<Harness> {
  const clock = { nowMs: Date.now() };
  const sim: TestSimulator = await startTestSimulator({ seed: 7, tokenLifetimeS, now: () => clock.nowMs });
  const url = new URL(sim.url);
  return {
    url: sim.url,
    host: url.host,
    app: sim.app,
    dispatcher: sim.dispatcher,
    clock,
    async expireTokens() {
      const res = await request(`${sim.url}/_sim/expire-tokens`, { method: 'POST', dispatcher: sim.dispatcher });
      await res.body.text();
      assert.equal(res.statusCode, 200);
    },
    close: () => sim.close(),
  };
}

/** A valid one-hour window ending an hour before the simulator's now, for each API's list call. */
function graphPath(h: Harness): string {
  const end = new Date(h.clock.nowMs - 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const start = new Date(h.clock.nowMs - 7_200_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `/v1.0/admin/exchange/tracing/messageTraces?$top=1&$filter=${encodeURIComponent(`receivedDateTime ge ${start} and receivedDateTime le ${end}`)}`;
}

function rwsPath(h: Harness): string {
  const end = new Date(h.clock.nowMs - 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const start = new Date(h.clock.nowMs - 7_200_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `/ecp/reportingwebservice/reporting.svc/MessageTrace?$top=1&$filter=${encodeURIComponent(`StartDate eq datetime'${start}' and EndDate eq datetime'${end}'`)}`;
}

function msalApp(h: Harness, auth: { clientSecret: string } | { clientCertificate: { thumbprint?: string; thumbprintSha256?: string; privateKey: string } }) {
  return new ConfidentialClientApplication({
    auth: { clientId: h.app.clientId, authority: `${h.url}/${h.app.tenantId}`, knownAuthorities: [h.host], ...auth },
    system: { networkClient: createMsalNetworkClient(h.dispatcher) },
  });
}

const hex = (base64url: string) => Buffer.from(base64url, 'base64url').toString('hex');

async function call(h: Harness, path: string, authorization?: string) {
  const res = await request(`${h.url}${path}`, {
    dispatcher: h.dispatcher,
    headers: { accept: 'application/json', ...(authorization ? { authorization } : {}) },
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

async function postForm(h: Harness, path: string, form: Record<string, string>) {
  const res = await request(`${h.url}${path}`, {
    dispatcher: h.dispatcher,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.body.text();
  return { status: res.statusCode, text, json: JSON.parse(text) as Record<string, unknown> };
}

function signJwt(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  key: KeyObject,
  alg: 'RS256' | 'PS256' = 'RS256',
): string {
  const input = `${Buffer.from(JSON.stringify({ alg, typ: 'JWT', ...header })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature =
    alg === 'RS256'
      ? sign('sha256', Buffer.from(input), key)
      : sign('sha256', Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  return `${input}.${signature.toString('base64url')}`;
}

function assertionClaims(h: Harness, overrides: Record<string, unknown> = {}) {
  const nowS = Math.floor(h.clock.nowMs / 1000);
  return {
    aud: `${h.url}/${h.app.tenantId}/oauth2/v2.0/token`,
    iss: h.app.clientId,
    sub: h.app.clientId,
    jti: randomUUID(),
    nbf: nowS,
    exp: nowS + 600,
    ...overrides,
  };
}

function assertionForm(h: Harness, assertion: string) {
  return {
    grant_type: 'client_credentials',
    client_id: h.app.clientId,
    scope: 'https://graph.microsoft.com/.default',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  };
}

function assertAadstsError(
  res: { status: number; text: string; json: Record<string, unknown> },
  status: number,
  error: string,
  code: number,
) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json['error'], error);
  assert.deepEqual(res.json['error_codes'], [code]);
  assert.match(String(res.json['error_description']), new RegExp(`^AADSTS${code}: `));
  assert.match(String(res.json['timestamp']), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  assert.match(String(res.json['trace_id']), /^[0-9a-f-]{36}$/);
  assert.match(String(res.json['correlation_id']), /^[0-9a-f-]{36}$/);
}

/** One PKI for the file: RSA key generation is the slowest step here. */
let pki: SimulatorPki;
before(async () => {
  pki = await createSimulatorPki({ hostnames: ['sim.test'] });
});

describe('simulator tokens', () => {
  let h: Harness;
  let appKey: KeyObject;

  before(async () => {
    h = await startHarness();
    appKey = createPrivateKey(h.app.privateKeyPem);
  });
  after(async () => {
    await h.close();
  });

  describe('PKI and registered app', () => {
    it('signs a server certificate for every loopback name with the fresh CA', () => {
      const ca = new X509Certificate(pki.caCertPem);
      const server = new X509Certificate(pki.serverCertPem);
      assert.equal(ca.ca, true);
      assert.equal(server.ca, false);
      assert.ok(server.checkIssued(ca));
      assert.ok(server.verify(ca.publicKey));
      for (const name of ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1', 'DNS:sim.test']) {
        assert.ok(server.subjectAltName?.includes(name), `${name} in ${server.subjectAltName}`);
      }
      assert.ok(server.keyUsage?.includes('1.3.6.1.5.5.7.3.1'), 'serverAuth EKU');
      assert.ok(server.checkHost('localhost'));
      assert.ok(server.checkIP('127.0.0.1'));
    });

    it('gives the app a self-signed RSA 2048 certificate with a PKCS#8 key', () => {
      const cert = new X509Certificate(pki.appCertPem);
      assert.ok(cert.verify(cert.publicKey));
      assert.equal(cert.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
      assert.match(pki.appKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.ok(cert.checkPrivateKey(createPrivateKey(pki.appKeyPem)));
    });

    it('writes ca.pem, app-cert.pem and a 0600 app-key.pem', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'msgtrace-pki-'));
      try {
        const files = await writePki(dir, pki);
        assert.equal(await readFile(files.caFile, 'utf8'), pki.caCertPem);
        assert.equal(await readFile(files.certFile, 'utf8'), pki.appCertPem);
        assert.equal(await readFile(files.keyFile, 'utf8'), pki.appKeyPem);
        assert.equal((await stat(files.keyFile)).mode & 0o777, 0o600);
        assert.deepEqual(
          [files.caFile, files.certFile, files.keyFile].map((f) => f.slice(dir.length + 1)),
          ['ca.pem', 'app-cert.pem', 'app-key.pem'],
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('derives ids and secrets from the seed and thumbprints from the certificate DER', () => {
      const a = createRegisteredApp(7, pki);
      const b = createRegisteredApp(7, pki);
      const c = createRegisteredApp(8, pki);
      assert.deepEqual(a, b);
      assert.notEqual(a.tenantId, c.tenantId);
      assert.notEqual(a.clientId, c.clientId);
      assert.notEqual(a.clientSecret, c.clientSecret);
      assert.match(a.tenantId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.match(a.clientId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const cert = new X509Certificate(pki.appCertPem);
      assert.equal(hex(a.thumbprintSha1), cert.fingerprint.replace(/:/g, '').toLowerCase());
      assert.equal(hex(a.thumbprintSha256), cert.fingerprint256.replace(/:/g, '').toLowerCase());
    });
  });

  describe('@azure/msal-node through the undici network client', () => {
    it('gets a Graph token with the client secret, which Graph accepts and RWS refuses', async () => {
      const cca = msalApp(h, { clientSecret: h.app.clientSecret });
      const result = await cca.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
      assert.ok(result?.accessToken);
      assert.equal(result.tokenType, 'Bearer');
      const graph = await call(h, graphPath(h), `Bearer ${result.accessToken}`);
      assert.equal(graph.status, 200);
      assert.ok(Array.isArray(JSON.parse(graph.text).value), 'a Graph page');
      const rws = await call(h, rwsPath(h), `Bearer ${result.accessToken}`);
      assert.equal(rws.status, 401);
      assert.match(rws.text, /401 - Unauthorized: Access is denied due to invalid credentials\./);
    });

    it('gets an RWS token with an RS256 certificate assertion (x5t)', async () => {
      const cca = msalApp(h, { clientCertificate: { thumbprint: hex(h.app.thumbprintSha1), privateKey: h.app.privateKeyPem } });
      const result = await cca.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/.default'] });
      assert.ok(result?.accessToken);
      const rws = await call(h, rwsPath(h), `Bearer ${result.accessToken}`);
      assert.equal(rws.status, 200);
      const graph = await call(h, graphPath(h), `Bearer ${result.accessToken}`);
      assert.equal(graph.status, 401);
      assert.equal(JSON.parse(graph.text).error.code, 'InvalidAuthenticationToken');
      assert.match(JSON.parse(graph.text).error.message, /Invalid audience/);
    });

    it('gets a Graph token with a PS256 certificate assertion (x5t#S256)', async () => {
      const cca = msalApp(h, { clientCertificate: { thumbprintSha256: hex(h.app.thumbprintSha256), privateKey: h.app.privateKeyPem } });
      const result = await cca.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
      assert.ok(result?.accessToken);
      const graph = await call(h, graphPath(h), `Bearer ${result.accessToken}`);
      assert.equal(graph.status, 200);
    });

    it('works without knownAuthorities, through the simulator\'s instance discovery', async () => {
      // MSAL asks login.microsoftonline.com for instance metadata; route that one call to the simulator.
      const inner = createMsalNetworkClient(h.dispatcher);
      const seen: string[] = [];
      const networkClient: INetworkModule = {
        sendGetRequestAsync: (url, options, timeout) => {
          const rerouted = url.replace(/^https:\/\/login\.microsoftonline\.com(?=\/common\/discovery\/instance)/, h.url);
          seen.push(new URL(rerouted).pathname);
          return inner.sendGetRequestAsync(rerouted, options, timeout);
        },
        sendPostRequestAsync: (url, options) => inner.sendPostRequestAsync(url, options),
      };
      const cca = new ConfidentialClientApplication({
        auth: { clientId: h.app.clientId, authority: `${h.url}/${h.app.tenantId}`, clientSecret: h.app.clientSecret },
        system: { networkClient },
      });
      const result = await cca.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
      assert.ok(result?.accessToken);
      assert.ok(seen.includes('/common/discovery/instance'), seen.join(' '));
      assert.equal((await call(h, graphPath(h), `Bearer ${result.accessToken}`)).status, 200);
    });

    it('surfaces AADSTS7000215 for a wrong secret without echoing it', async () => {
      const wrong = 'Wrong8Q~not-the-registered-secret-value';
      const cca = msalApp(h, { clientSecret: wrong });
      await assert.rejects(cca.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] }), (err: Error) => {
        assert.match(err.message, /AADSTS7000215/);
        assert.ok(!err.message.includes(wrong));
        return true;
      });
    });
  });

  describe('token endpoint over plain HTTPS', () => {
    it('serves the v1 endpoint with resource=, numbers as strings like Entra', async () => {
      const res = await postForm(h, `/${h.app.tenantId}/oauth2/token`, {
        grant_type: 'client_credentials',
        client_id: h.app.clientId,
        client_secret: h.app.clientSecret,
        resource: 'https://outlook.office365.com',
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json['token_type'], 'Bearer');
      assert.equal(res.json['expires_in'], '3599');
      assert.equal(res.json['resource'], 'https://outlook.office365.com');
      assert.equal(Number(res.json['expires_on']), Math.floor(h.clock.nowMs / 1000) + 3599);
      const rws = await call(h, rwsPath(h), `Bearer ${String(res.json['access_token'])}`);
      assert.equal(rws.status, 200);
    });

    it('serves the v2 endpoint with numeric expires_in', async () => {
      const res = await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, {
        grant_type: 'client_credentials',
        client_id: h.app.clientId,
        client_secret: h.app.clientSecret,
        scope: 'https://outlook.office365.us/.default',
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json['expires_in'], 3599);
      assert.equal(res.json['ext_expires_in'], 3599);
      assert.equal(typeof res.json['access_token'], 'string');
    });

    it('answers a wrong secret with 401 invalid_client AADSTS7000215, never echoing the secret', async () => {
      const wrong = 'abc8Q~THIS-IS-A-WRONG-SECRET-1234567890';
      const res = await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, {
        grant_type: 'client_credentials',
        client_id: h.app.clientId,
        client_secret: wrong,
        scope: 'https://graph.microsoft.com/.default',
      });
      assertAadstsError(res, 401, 'invalid_client', 7000215);
      assert.ok(!res.text.includes(wrong));
      assert.ok(!res.text.includes(h.app.clientSecret));
    });

    it('answers an unknown tenant with 400 AADSTS90002', async () => {
      const res = await postForm(h, `/00000000-1111-4222-8333-444444444444/oauth2/v2.0/token`, {
        grant_type: 'client_credentials',
        client_id: h.app.clientId,
        client_secret: h.app.clientSecret,
        scope: 'https://graph.microsoft.com/.default',
      });
      assertAadstsError(res, 400, 'invalid_request', 90002);
    });

    it('answers an unknown client with 400 unauthorized_client AADSTS700016', async () => {
      const res = await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, {
        grant_type: 'client_credentials',
        client_id: '11111111-2222-4333-8444-555555555555',
        client_secret: h.app.clientSecret,
        scope: 'https://graph.microsoft.com/.default',
      });
      assertAadstsError(res, 400, 'unauthorized_client', 700016);
    });

    it('answers an unknown resource with 400 invalid_resource AADSTS500011', async () => {
      const res = await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, {
        grant_type: 'client_credentials',
        client_id: h.app.clientId,
        client_secret: h.app.clientSecret,
        scope: 'https://example.com/.default',
      });
      assertAadstsError(res, 400, 'invalid_resource', 500011);
    });

    it('answers a missing parameter with 400 AADSTS900144 naming it', async () => {
      const res = await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, {
        client_id: h.app.clientId,
        client_secret: h.app.clientSecret,
        scope: 'https://graph.microsoft.com/.default',
      });
      assertAadstsError(res, 400, 'invalid_request', 900144);
      assert.match(String(res.json['error_description']), /'grant_type'/);
      const noScope = await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, {
        grant_type: 'client_credentials',
        client_id: h.app.clientId,
        client_secret: h.app.clientSecret,
      });
      assertAadstsError(noScope, 400, 'invalid_request', 900144);
      assert.match(String(noScope.json['error_description']), /'scope'/);
    });

    it('echoes the client-request-id query parameter as correlation id', () => {
      // Through the token service itself: the server decides which URL it passes as requestUrl.
      const service = createTokenService({ app: h.app, now: () => h.clock.nowMs, tokenLifetimeS: 3599, baseUrl: () => h.url });
      const correlation = randomUUID();
      const res = service.handleToken({
        tenantSegment: h.app.tenantId,
        version: 'v2',
        form: new URLSearchParams({ grant_type: 'client_credentials', client_id: h.app.clientId, client_secret: 'wrong', scope: 'https://graph.microsoft.com/.default' }),
        requestUrl: `${h.url}/${h.app.tenantId}/oauth2/v2.0/token?client-request-id=${correlation}`,
      });
      assert.equal(res.status, 401);
      assert.equal(JSON.parse(res.body).correlation_id, correlation);
    });
  });

  describe('client assertions signed by hand', () => {
    it('accepts a PS256 assertion with x5t#S256 and an RS256 one with x5t', async () => {
      const ps = signJwt({ 'x5t#S256': h.app.thumbprintSha256 }, assertionClaims(h), appKey, 'PS256');
      assert.equal((await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, ps))).status, 200);
      const rs = signJwt({ x5t: h.app.thumbprintSha1 }, assertionClaims(h), appKey, 'RS256');
      assert.equal((await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, rs))).status, 200);
    });

    it('refuses a tampered assertion with AADSTS700027, never echoing it', async () => {
      const good = signJwt({ x5t: h.app.thumbprintSha1 }, assertionClaims(h), appKey);
      const [header, , signature] = good.split('.');
      const forgedClaims = Buffer.from(JSON.stringify(assertionClaims(h, { jti: 'forged' }))).toString('base64url');
      const tampered = `${header}.${forgedClaims}.${signature}`;
      const res = await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, tampered));
      assertAadstsError(res, 401, 'invalid_client', 700027);
      assert.ok(!res.text.includes(tampered));
      assert.ok(!res.text.includes(signature ?? '-'));
    });

    it('refuses an assertion signed by another key or naming an unregistered thumbprint (AADSTS700027)', async () => {
      const otherKey = createPrivateKey(pki.serverKeyPem);
      const otherSigned = signJwt({ x5t: h.app.thumbprintSha1 }, assertionClaims(h), otherKey);
      assertAadstsError(await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, otherSigned)), 401, 'invalid_client', 700027);
      const unregistered = signJwt({ x5t: Buffer.alloc(20, 7).toString('base64url') }, assertionClaims(h), appKey);
      assertAadstsError(await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, unregistered)), 401, 'invalid_client', 700027);
      const psWithSha1Only = signJwt({ x5t: h.app.thumbprintSha1 }, assertionClaims(h), appKey, 'PS256');
      assertAadstsError(await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, psWithSha1Only)), 401, 'invalid_client', 700027);
    });

    it('refuses an expired, not-yet-valid or over-long assertion with AADSTS700024', async () => {
      const nowS = Math.floor(h.clock.nowMs / 1000);
      const cases = [
        { nbf: nowS - 1200, exp: nowS - 600 },
        { nbf: nowS + 3600, exp: nowS + 3900 },
        { nbf: nowS, exp: nowS + 3600 },
      ];
      for (const times of cases) {
        const jwt = signJwt({ x5t: h.app.thumbprintSha1 }, assertionClaims(h, times), appKey);
        assertAadstsError(await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, jwt)), 401, 'invalid_client', 700024);
      }
    });

    it('refuses a wrong audience, wrong issuer or missing jti', async () => {
      const wrongAud = signJwt({ x5t: h.app.thumbprintSha1 }, assertionClaims(h, { aud: 'https://login.microsoftonline.com/x/oauth2/v2.0/token' }), appKey);
      assertAadstsError(await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, wrongAud)), 401, 'invalid_client', 700021);
      const wrongIss = signJwt({ x5t: h.app.thumbprintSha1 }, assertionClaims(h, { iss: 'someone-else' }), appKey);
      assertAadstsError(await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, wrongIss)), 401, 'invalid_client', 700023);
      const noJti = signJwt({ x5t: h.app.thumbprintSha1 }, assertionClaims(h, { jti: undefined }), appKey);
      assertAadstsError(await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, noJti)), 401, 'invalid_client', 50027);
    });

    it('accepts an audience with a trailing slash', async () => {
      const jwt = signJwt({ x5t: h.app.thumbprintSha1 }, assertionClaims(h, { aud: `${h.url}/${h.app.tenantId}/oauth2/v2.0/token/` }), appKey);
      assert.equal((await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, assertionForm(h, jwt))).status, 200);
    });
  });

  describe('API authorization', () => {
    it('answers an expired token with the Graph JSON 401 and the RWS HTML 401', async () => {
      const short = await startHarness(60);
      try {
        const get = async (resource: string) => {
          const res = await postForm(short, `/${short.app.tenantId}/oauth2/v2.0/token`, {
            grant_type: 'client_credentials',
            client_id: short.app.clientId,
            client_secret: short.app.clientSecret,
            scope: `${resource}/.default`,
          });
          assert.equal(res.json['expires_in'], 60);
          return `Bearer ${String(res.json['access_token'])}`;
        };
        const graphToken = await get('https://graph.microsoft.com');
        const rwsToken = await get('https://outlook.office365.com');
        assert.equal((await call(short, graphPath(short), graphToken)).status, 200);
        short.clock.nowMs += 60_000;
        const graph = await call(short, graphPath(short), graphToken);
        assert.equal(graph.status, 401);
        const body = JSON.parse(graph.text);
        assert.equal(body.error.code, 'InvalidAuthenticationToken');
        assert.match(body.error.message, /token is expired/);
        assert.match(String(graph.headers['www-authenticate']), /^Bearer /);
        const rws = await call(short, rwsPath(short), rwsToken);
        assert.equal(rws.status, 401);
        assert.match(String(rws.headers['content-type']), /text\/html/);
        assert.match(rws.text, /<title>401 - Unauthorized/);
      } finally {
        await short.close();
      }
    });

    it('expireTokens() expires every issued token at once', async () => {
      const res = await postForm(h, `/${h.app.tenantId}/oauth2/v2.0/token`, {
        grant_type: 'client_credentials',
        client_id: h.app.clientId,
        client_secret: h.app.clientSecret,
        scope: 'https://graph.microsoft.com/.default',
      });
      const bearer = `Bearer ${String(res.json['access_token'])}`;
      assert.equal((await call(h, graphPath(h), bearer)).status, 200);
      await h.expireTokens();
      const after = await call(h, graphPath(h), bearer);
      assert.equal(after.status, 401);
      assert.equal(after.text.includes('token is expired'), true);
      assert.equal(expiredTokenResponse('graph').status, 401);
    });

    it('refuses missing and unknown bearer tokens in each API\'s shape', async () => {
      const none = await call(h, graphPath(h));
      assert.equal(none.status, 401);
      assert.equal(JSON.parse(none.text).error.message, 'Access token is empty.');
      const unknown = await call(h, graphPath(h), 'Bearer not-a-token');
      assert.equal(unknown.status, 401);
      assert.equal(JSON.parse(unknown.text).error.code, 'InvalidAuthenticationToken');
      const rws = await call(h, rwsPath(h), 'Bearer not-a-token');
      assert.equal(rws.status, 401);
      assert.match(rws.text, /Access is denied/);
    });

    it('accepts Basic on RWS only, with the registered account', async () => {
      const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      const good = basic(h.app.basicUsername, h.app.basicPassword);
      const rws = await call(h, rwsPath(h), good);
      assert.equal(rws.status, 200);
      assert.ok(Array.isArray(JSON.parse(rws.text).value), 'an RWS JSON-light page');
      const wrong = await call(h, rwsPath(h), basic(h.app.basicUsername, 'nope'));
      assert.equal(wrong.status, 401);
      assert.match(wrong.text, /Access is denied/);
      assert.ok(!wrong.text.includes('nope'));
      const graph = await call(h, graphPath(h), good);
      assert.equal(graph.status, 401);
      assert.equal(JSON.parse(graph.text).error.code, 'InvalidAuthenticationToken');
    });
  });

  describe('discovery documents', () => {
    it('serves the v2 OpenID configuration MSAL needs, pointing back at the simulator', async () => {
      const res = await call(h, `/${h.app.tenantId}/v2.0/.well-known/openid-configuration`);
      assert.equal(res.status, 200);
      const doc = JSON.parse(res.text);
      assert.equal(doc.token_endpoint, `${h.url}/${h.app.tenantId}/oauth2/v2.0/token`);
      assert.equal(doc.issuer, `${h.url}/${h.app.tenantId}/v2.0`);
      for (const key of ['authorization_endpoint', 'end_session_endpoint', 'jwks_uri']) {
        assert.ok(String(doc[key]).startsWith(`${h.url}/${h.app.tenantId}/`), key);
      }
      const v1 = JSON.parse((await call(h, `/${h.app.tenantId}/.well-known/openid-configuration`)).text);
      assert.equal(v1.token_endpoint, `${h.url}/${h.app.tenantId}/oauth2/token`);
    });

    it('refuses discovery for an unknown tenant with AADSTS90002', async () => {
      const res = await call(h, '/contoso.example/v2.0/.well-known/openid-configuration');
      assert.equal(res.status, 400);
      assert.deepEqual(JSON.parse(res.text).error_codes, [90002]);
    });

    it('answers instance discovery with the simulator host', async () => {
      const authorize = `${h.url}/${h.app.tenantId}/oauth2/v2.0/authorize`;
      const res = await call(h, `/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(authorize)}`);
      assert.equal(res.status, 200);
      const doc = JSON.parse(res.text);
      assert.equal(doc.tenant_discovery_endpoint, `${h.url}/${h.app.tenantId}/v2.0/.well-known/openid-configuration`);
      assert.deepEqual(doc.metadata, [{ preferred_network: h.host, preferred_cache: h.host, aliases: [h.host] }]);
    });
  });
});

describe('msal network client', () => {

  it('throws a typed bad-response error for a non-JSON body, without the body', async () => {
    const secretish = 'session=abc123-do-not-leak';
    const server = createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html>Sign in to Outlook ${secretish}</html>`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dispatcher = new Agent({ connect: { ca: pki.caCertPem } });
    try {
      const client = createMsalNetworkClient(dispatcher);
      const { port } = server.address() as AddressInfo;
      await assert.rejects(client.sendPostRequestAsync(`https://127.0.0.1:${port}/t/oauth2/v2.0/token?x=1`, { body: 'client_secret=s3cr3t' }), (err: unknown) => {
        assert.ok(err instanceof MsgtraceError);
        assert.equal(err.code, errorCodes.badResponse);
        assert.match(err.message, /HTTP 200 with a text\/html body/);
        assert.ok(!err.message.includes(secretish));
        assert.ok(!err.message.includes('s3cr3t'));
        assert.ok(!err.message.includes('x=1'));
        assert.equal(err.cause, undefined, 'no cause quoting the body');
        return true;
      });
      const getFailure = await client.sendGetRequestAsync(`https://127.0.0.1:${port}/`).catch((e: unknown) => e);
      assert.ok(getFailure instanceof MsgtraceError);
    } finally {
      await dispatcher.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('returns 4xx bodies to MSAL as responses with lower-case headers', async () => {
    const server = createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (_req, res) => {
      res.writeHead(400, { 'Content-Type': 'application/json', 'X-Ms-Request-Id': 'r1' });
      res.end('{"error":"invalid_request"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dispatcher = new Agent({ connect: { ca: pki.caCertPem } });
    try {
      const { port } = server.address() as AddressInfo;
      const res = await createMsalNetworkClient(dispatcher).sendGetRequestAsync<{ error: string }>(`https://127.0.0.1:${port}/x`);
      assert.equal(res.status, 400);
      assert.deepEqual(res.body, { error: 'invalid_request' });
      assert.equal(res.headers['x-ms-request-id'], 'r1');
    } finally {
      await dispatcher.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('turns a connection that never answers into a typed HTTP error when the request timeout passes', async () => {
    // A TCP server that accepts and never speaks: the client's own timeout must end the request.
    const sockets = new Set<import('node:net').Socket>();
    const tcp: TcpServer = createTcpServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const { port } = tcp.address() as AddressInfo;
    const dispatcher = new Agent();
    try {
      const client = createMsalNetworkClient(dispatcher, { timeoutMs: 50 });
      await assert.rejects(client.sendGetRequestAsync(`https://127.0.0.1:${port}/discovery`), (err: unknown) => {
        assert.ok(err instanceof MsgtraceError);
        assert.equal(err.code, errorCodes.http);
        assert.match(err.message, /no complete response within 50 ms/);
        return true;
      });
    } finally {
      await dispatcher.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    }
  });

  it('reports a refused connection as a typed HTTP error', async () => {
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const dispatcher = new Agent();
    try {
      await assert.rejects(createMsalNetworkClient(dispatcher).sendGetRequestAsync(`https://127.0.0.1:${port}/`), (err: unknown) => {
        assert.ok(err instanceof MsgtraceError);
        assert.equal(err.code, errorCodes.http);
        assert.match(err.message, /ECONNREFUSED/);
        return true;
      });
    } finally {
      await dispatcher.close();
    }
  });
});
