import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { createPageSource } from '../adapters/o365/page-source.ts';
import { createSimulatorPki } from '../simulator/certificates.ts';

describe('dispatcher over real HTTPS', () => {
  let server: Server;
  let origin: string;
  let sockets = 0;
  let caPem = '';
  let previousNoProxy: string | undefined;

  before(async () => {
    const pki = await createSimulatorPki({ hostnames: [] });
    server = createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ value: [{ id: 'a', url: req.url }] }));
    });
    server.on('secureConnection', () => sockets++);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A proxy configured on the test machine must not intercept loopback.
    previousNoProxy = process.env.NO_PROXY;
    process.env.NO_PROXY = '127.0.0.1,localhost';
    caPem = pki.caCertPem;
  });
  after(async () => {
    if (previousNoProxy === undefined) delete process.env.NO_PROXY;
    else process.env.NO_PROXY = previousNoProxy;
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  });

  const pages = (dispatcher: ReturnType<typeof createDispatcher>) =>
    createPageSource({
      url: `${origin}/v1.0/admin/exchange/tracing/messageTraces`,
      dispatcher,
      authorizationHeader: () => 'Bearer t',
      pageSize: 10,
      requestTimeoutMs: 5000,
      now: () => 0,
    });
  const request = { window: { startMs: 0, endMs: 3_600_000 }, cursor: { kind: 'first' as const }, page: 1 };

  it('trusts an extra CA and reuses one connection for consecutive pages', async () => {
    const dispatcher = createDispatcher({ caPem });
    try {
      const before = sockets;
      const source = pages(dispatcher);
      const results = [];
      for (let page = 1; page <= 4; page++) results.push(await source.fetchPage({ ...request, page }));
      assert.deepEqual(results.map((r) => r.status), ['page', 'page', 'page', 'page']);
      // undici may open a second socket while the first is still being
      // released; what matters is that pages reuse kept-alive connections.
      assert.ok(sockets - before <= 2, `keep-alive: 4 pages over ${sockets - before} TLS connections`);
    } finally {
      await dispatcher.close();
    }
  });

  it('without the CA the certificate is refused and the page fails saying why', async () => {
    const dispatcher = createDispatcher({});
    try {
      const result = await pages(dispatcher).fetchPage(request);
      assert.equal(result.status, 'failed');
      assert.match(result.status === 'failed' ? result.reason : '', /not trusted; add its CA/);
    } finally {
      await dispatcher.close();
    }
  });
});
