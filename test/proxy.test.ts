/**
 * Corporate egress: with HTTPS_PROXY set, every Office 365 request — the
 * token (through MSAL's network client) and the pages — goes through the
 * proxy as a CONNECT tunnel, and TLS to the tenant still checks its CA.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect as connectTcp, type AddressInfo } from 'node:net';
import { createDispatcher } from '../adapters/http/dispatcher.ts';
import { validateConfig } from '../config/load-config.ts';
import { runCollectJob } from '../runtime/collect-job-runner.ts';
import { createMemoryPublisher } from './support/memory-publisher.ts';
import { fetchTruthKeys, graphInput, startTestSimulator, type TestSimulator } from './support/simulator.ts';

const hourMs = 3_600_000;

/** A minimal forward proxy that only tunnels (CONNECT), recording each target. */
function startConnectProxy(): Promise<{ server: Server; url: string; tunnels: string[] }> {
  const tunnels: string[] = [];
  const server = createServer((_request, response) => {
    response.writeHead(405).end('CONNECT only');
  });
  server.on('connect', (request, client, head) => {
    const target = request.url ?? '';
    tunnels.push(target);
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    const upstream = connectTcp({ host, port }, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  return new Promise((done) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      done({ server, url: `http://127.0.0.1:${port}`, tunnels });
    });
  });
}

describe('HTTPS_PROXY', () => {
  let sim: TestSimulator;
  let proxy: Awaited<ReturnType<typeof startConnectProxy>>;
  const saved = { HTTPS_PROXY: process.env.HTTPS_PROXY, NO_PROXY: process.env.NO_PROXY };

  before(async () => {
    [sim, proxy] = await Promise.all([startTestSimulator({ seed: 5, recordsPerHour: 1200 }), startConnectProxy()]);
  });

  after(async () => {
    process.env.HTTPS_PROXY = saved.HTTPS_PROXY ?? '';
    process.env.NO_PROXY = saved.NO_PROXY ?? '';
    if (saved.HTTPS_PROXY === undefined) delete process.env.HTTPS_PROXY;
    if (saved.NO_PROXY === undefined) delete process.env.NO_PROXY;
    await sim?.close();
    await new Promise((done) => proxy?.server.close(done));
  });

  it('sends token and page requests through the proxy, and collects exactly the ground truth', async () => {
    // EnvHttpProxyAgent reads the environment when it is built.
    process.env.HTTPS_PROXY = proxy.url;
    process.env.NO_PROXY = '';
    const dispatcher = createDispatcher({ caPem: sim.caPem });
    const validated = validateConfig({
      inputs: [
        graphInput(sim, 'proxied', {
          pageSize: 400,
        }),
      ],
    });
    assert.ok(validated.ok);
    const publisher = createMemoryPublisher();
    const endMs = Math.floor(Date.now() / hourMs) * hourMs - 26 * hourMs;
    const window = { startMs: endMs - hourMs, endMs };
    try {
      const summary = await runCollectJob(
        { input: validated.config.inputs[0]!, secrets: [], dispatcher, publisher },
        { jobId: 'proxy-test', window },
      );
      assert.equal(summary.state, 'done', summary.error ?? '');
      const truth = await fetchTruthKeys(sim, { start: new Date(window.startMs), end: new Date(window.endMs), input: 'proxied' });
      assert.equal(summary.events, truth.length);
      assert.ok(summary.pages > 1);
    } finally {
      await dispatcher.close();
    }
    const simHost = new URL(sim.url).host;
    assert.ok(proxy.tunnels.length >= 1, 'at least one tunnel was opened');
    assert.ok(proxy.tunnels.every((target) => target === simHost), `every tunnel went to the tenant: ${proxy.tunnels.join(', ')}`);
  });
});
