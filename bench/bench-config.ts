/**
 * The collector config a bench run uses: one Graph input pointed at the
 * simulator process (client-secret OAuth), the bench's nats-server. Built as
 * the raw document a user would write, then validated like any config, so
 * the bench runs with the same defaults as production.
 */
import { writeFile } from 'node:fs/promises';
import { validateConfig } from '../config/load-config.ts';
import type { MsgtraceConfig } from '../config/schema.ts';
import type { SimulatorDescription } from '../simulator/start-simulator.ts';
import { collectorUser } from './bench-nats.ts';

export interface BenchInputOptions {
  readonly id: string;
  readonly pageSize: number;
  /** Extra input keys (e.g. `requestQuota`), passed through validation. */
  readonly extra?: Readonly<Record<string, unknown>>;
}

export function benchConfigDocument(sim: SimulatorDescription, natsUrl: string, input: BenchInputOptions): Record<string, unknown> {
  return {
    nats: { servers: natsUrl, user: collectorUser.user, password: collectorUser.pass },
    inputs: [
      {
        id: input.id,
        type: 'office365_msg_trace',
        url: sim.graphUrl,
        authType: 'oauth',
        loginUrl: sim.url,
        tenantId: sim.tenantId,
        clientId: sim.clientId,
        clientSecret: sim.clientSecret,
        pageSize: input.pageSize,
        ...input.extra,
      },
    ],
  };
}

export function benchConfig(document: Record<string, unknown>): MsgtraceConfig {
  const validated = validateConfig(document);
  if (!validated.ok) throw new Error(`bench config is invalid: ${JSON.stringify(validated.problems)}`);
  return validated.config;
}

/** Writes the document for `msgtrace collect --config` (mode 0600: it holds the simulator's fake secret). */
export async function writeBenchConfig(path: string, document: Record<string, unknown>): Promise<void> {
  await writeFile(path, JSON.stringify(document, null, 2), { mode: 0o600 });
}
