/**
 * An event read back as a consumer of the stream would see it, from the very
 * message the JetStream publisher sends (`writeWireMessage`): what a cassette
 * records of each publish and what a replay's events are.
 */
import type { EventPublisher } from '../../streams/event-publisher.types.ts';
import type { TraceEvent } from '../../streams/trace-event.types.ts';
import { internalFieldOfHeader, writeWireMessage } from '../../streams/wire-message.ts';

/** An event as a consumer reads it: the JSON payload, the headers, and the internal fields those headers carry. */
export interface WireEvent {
  readonly payload: Record<string, unknown>;
  readonly headers: Record<string, string>;
  /** `Msgtrace-Page` → `__page` and so on, typed back (`true`/`false`, `__page` a number). */
  readonly internal: Record<string, unknown>;
}

/**
 * The message a publish of `event` becomes — the same `writeWireMessage`
 * the JetStream publisher sends — read back. Throws when the event cannot
 * be serialised (the store refuses such an event too).
 */
export function wireEventOf(event: TraceEvent, msgId: string, added: Parameters<EventPublisher['publish']>[3]): WireEvent {
  const map = new Map<string, string[]>();
  const payload = JSON.parse(writeWireMessage(event, msgId, added, map)) as Record<string, unknown>;
  const headers: Record<string, string> = {};
  const internal: Record<string, unknown> = {};
  for (const [name, values] of map) {
    const value = values[0] ?? '';
    headers[name] = value;
    const field = internalFieldOfHeader(name);
    if (field !== null) internal[field] = value === 'true' ? true : value === 'false' ? false : field === '__page' ? Number(value) : value;
  }
  return { payload, headers, internal };
}
