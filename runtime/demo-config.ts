import type { SimulatorDescription } from '../simulator/start-simulator.ts';
import { embeddedNatsCollector } from './embedded-defaults.ts';

/**
 * The built-in config `msgtrace run` uses without `--config`: one Graph input
 * against the simulator's tenant, signing in with the registered app's client
 * secret, published to JetStream on the embedded nats-server. Returned as raw
 * config (validated like any user file) so it exercises the same path.
 */
export function demoConfig(simulator: SimulatorDescription, natsUrl: string): Record<string, unknown> {
  return {
    nats: { servers: [natsUrl], user: embeddedNatsCollector.user, password: embeddedNatsCollector.pass },
    inputs: [
      {
        id: 'demo',
        type: 'office365_msg_trace',
        description: 'The simulator tenant, through Microsoft Graph',
        url: simulator.graphUrl,
        loginUrl: simulator.url,
        authType: 'oauth',
        tenantId: simulator.tenantId,
        clientId: simulator.clientId,
        clientSecret: simulator.clientSecret,
        interval: 1,
        startDate: '-2h@m',
        endDate: '-1h@m',
        pageSize: 1000,
      },
    ],
  };
}
