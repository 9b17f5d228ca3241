/**
 * Three real nats-servers (Debian package) as one JetStream cluster, from the
 * project's own nats-cluster/node-{1,2,3}.conf, on free loopback ports with
 * temporary stores. Each node config includes nats.conf ("../nats.conf",
 * relative to the node file), so the users and permissions under test are
 * nats.conf's, the one source; only the listen ports, the store and the
 * route ports are rewritten here.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deriveNatsConfig, startLocalNatsServer, type LocalNatsServer } from '../../adapters/nats/local-nats-server.ts';
import { freePorts, projectNatsConf } from './nats-server.ts';

export const clusterNodeConfigs = [1, 2, 3].map((n) => fileURLToPath(new URL(`../../nats-cluster/node-${n}.conf`, import.meta.url)));

export interface ClusterNodePorts {
  readonly port: number;
  readonly monitorPort: number;
  readonly websocketPort: number;
  readonly clusterPort: number;
}

/**
 * A node config with its ports and store moved: the client, monitor and
 * websocket ports and the store as nats.conf's are (`deriveNatsConfig`),
 * the cluster `listen` and every route's port in order. Throws when a value
 * did not land, so a changed node file cannot silently start on 4222.
 */
export function deriveClusterNodeConfig(text: string, values: ClusterNodePorts & { readonly storeDir: string; readonly routePorts: ReadonlyArray<number> }): string {
  let routes = 0;
  const derived = deriveNatsConfig(text, values)
    .replace(/^(\s*listen:\s*127\.0\.0\.1:)\d+/m, `$1${values.clusterPort}`)
    .replace(/(routes:\s*\[)([^\]]*)\]/m, (_, open: string, list: string) => {
      const moved = list.replace(/(nats-route:\/\/[^"\s]*@127\.0\.0\.1:)\d+/g, (_m, prefix: string) => `${prefix}${values.routePorts[routes++] ?? 0}`);
      return `${open}${moved}]`;
    });
  const expected = [
    `\nport: ${values.port}`,
    `\nhttp_port: ${values.monitorPort}`,
    `port: ${values.websocketPort}`,
    `listen: 127.0.0.1:${values.clusterPort}`,
    `store_dir: ${JSON.stringify(values.storeDir)}`,
    ...values.routePorts.map((port) => `@127.0.0.1:${port}"`),
  ];
  const missing = expected.filter((value) => !derived.includes(value));
  if (missing.length > 0 || routes !== values.routePorts.length) {
    throw new Error(`the cluster node config did not take ${missing.join(', ') || `${values.routePorts.length} routes (found ${routes})`}`);
  }
  return derived;
}

export interface ClusterNode {
  /** `server_name` of the node (msgtrace_n1 …), as JetStream's stream info names leaders and replicas. */
  readonly name: string;
  readonly url: string;
  readonly ports: ClusterNodePorts;
  readonly storeDir: string;
  /** The running server, or null after `kill`/`stop`. */
  readonly server: LocalNatsServer | null;
  /** Kills the server at once (SIGKILL: no shutdown, no leader hand-off). */
  kill(): Promise<void>;
  /** Starts it again on the same ports and store. */
  start(): Promise<void>;
}

export interface TestNatsCluster {
  readonly nodes: ReadonlyArray<ClusterNode>;
  /** Every node's client URL, for `nats.servers`. */
  readonly urls: ReadonlyArray<string>;
  /** The node named `serverName` (as stream info reports a leader). */
  node(serverName: string): ClusterNode;
  /** Resolves when every running node routes to the other running ones and agrees on a JetStream meta leader. */
  ready(timeoutMs?: number): Promise<void>;
  /** Stops every node and deletes the stores. */
  close(): Promise<void>;
}

async function monitor<T>(port: number, path: string): Promise<T | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return response.ok ? ((await response.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts the three nodes of nats-cluster/ on free ports and waits for the cluster to be ready. */
export async function startTestNatsCluster(options: { readyTimeoutMs?: number } = {}): Promise<TestNatsCluster> {
  const workDir = await mkdtemp(join(tmpdir(), 'msgtrace-nats-cluster-'));
  // The layout of the repository: <dir>/nats.conf and <dir>/nats-cluster/node-N.conf, so "../nats.conf" resolves.
  const nodeDir = join(workDir, 'nats-cluster');
  await mkdir(nodeDir, { recursive: true });
  await copyFile(projectNatsConf, join(workDir, 'nats.conf'));
  const free = await freePorts(12);
  const ports: ClusterNodePorts[] = [0, 1, 2].map((i) => ({
    port: free[i * 4]!,
    monitorPort: free[i * 4 + 1]!,
    websocketPort: free[i * 4 + 2]!,
    clusterPort: free[i * 4 + 3]!,
  }));

  const nodes = await Promise.all(
    clusterNodeConfigs.map(async (file, i): Promise<ClusterNode> => {
      const text = await readFile(file, 'utf8');
      const name = /^server_name:\s*(\S+)\s*$/m.exec(text)?.[1];
      if (!name) throw new Error(`${file} has no server_name`);
      const own = ports[i]!;
      const storeDir = join(workDir, `store-${i + 1}`);
      const routePorts = ports.filter((_, j) => j !== i).map((other) => other.clusterPort);
      // Written with the cluster ports moved; startLocalNatsServer moves the rest (the same rewrite, checked here first).
      const source = join(nodeDir, `node-${i + 1}.source.conf`);
      await writeFile(source, deriveClusterNodeConfig(text, { ...own, storeDir, routePorts }));
      let server: LocalNatsServer | null = null;
      const node: ClusterNode = {
        name,
        url: `nats://127.0.0.1:${own.port}`,
        ports: own,
        storeDir,
        get server() {
          return server;
        },
        async kill() {
          const running = server;
          server = null;
          if (!running || running.process.exitCode !== null || running.process.signalCode !== null) return;
          const exited = new Promise((done) => running.process.once('exit', done));
          running.process.kill('SIGKILL');
          await exited;
        },
        async start() {
          if (server) return;
          server = await startLocalNatsServer({
            configFile: source,
            workDir: nodeDir,
            port: own.port,
            monitorPort: own.monitorPort,
            websocketPort: own.websocketPort,
            storeDir,
          });
        },
      };
      return node;
    }),
  );

  const cluster: TestNatsCluster = {
    nodes,
    urls: nodes.map((node) => node.url),
    node(serverName) {
      const found = nodes.find((node) => node.name === serverName);
      if (!found) throw new Error(`no cluster node is named ${serverName}`);
      return found;
    },
    async ready(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const running = nodes.filter((node) => node.server !== null);
        const states = await Promise.all(
          running.map(async (node) => ({
            routes: (await monitor<{ num_routes: number }>(node.ports.monitorPort, '/routez'))?.num_routes,
            leader: (await monitor<{ meta_cluster?: { leader?: string } }>(node.ports.monitorPort, '/jsz'))?.meta_cluster?.leader,
          })),
        );
        const leaders = new Set(states.map((state) => state.leader));
        if (states.every((state) => state.routes === running.length - 1 && state.leader) && leaders.size === 1) return;
        if (Date.now() > deadline) throw new Error(`the NATS cluster is not ready after ${timeoutMs} ms: ${JSON.stringify(states)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async close() {
      await Promise.all(nodes.map((node) => node.server?.stop()));
      await rm(workDir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((node) => node.start()));
    await cluster.ready(options.readyTimeoutMs);
  } catch (error) {
    await cluster.close();
    throw error;
  }
  return cluster;
}
