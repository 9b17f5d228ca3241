/**
 * `msgtrace run`'s composition (runtime/scheduled-collection.ts) run in the
 * test process until one input's checkpoint has collected up to an instant,
 * then stopped as on shutdown — the shape of every integration test that
 * lets the scheduler catch up a window against the simulator.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { createDispatcher } from '../../adapters/http/dispatcher.ts';
import type { CheckpointStore } from '../../adapters/nats/checkpoint-store.ts';
import type { Logger } from 'pino';
import type { MsgtraceConfig } from '../../config/schema.ts';
import type { Checkpoint } from '../../machines/scheduler.types.ts';
import { startScheduledCollection } from '../../runtime/scheduled-collection.ts';
import { waitFor } from './msgtrace-process.ts';

export interface RunUntilCollected {
  readonly config: MsgtraceConfig;
  readonly nc: NatsConnection;
  readonly caPem: string;
  readonly logger: Logger;
  readonly checkpoints: CheckpointStore;
  readonly inputId: string;
  /** Done once the input's `completedUntilMs` equals this. */
  readonly untilMs: number;
  /** Named in the timeout error. */
  readonly what: string;
  readonly timeoutMs: number;
}

/** The input's checkpoint once it reached `untilMs`; the collection is stopped either way. */
export async function runScheduledUntilCollected(run: RunUntilCollected): Promise<Checkpoint> {
  const dispatcher = createDispatcher({ caPem: run.caPem });
  const collection = await startScheduledCollection({ config: run.config, nc: run.nc, dispatcher, logger: run.logger, branch: null });
  try {
    return await waitFor(
      async () => {
        const { checkpoint } = await run.checkpoints.load(run.inputId);
        return checkpoint?.completedUntilMs === run.untilMs ? checkpoint : undefined;
      },
      run.what,
      { timeoutMs: run.timeoutMs },
    );
  } finally {
    await collection.stop('test over');
    await dispatcher.close();
  }
}
