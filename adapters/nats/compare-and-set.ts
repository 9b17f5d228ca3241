import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';

/**
 * Whether a KV `create`/`update` lost a compare-and-set race: the key was
 * not at the expected revision (JetStream's "wrong last sequence"), which
 * is also how `create` answers for a key that already exists.
 */
export function isWrongLastSequence(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence || error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
