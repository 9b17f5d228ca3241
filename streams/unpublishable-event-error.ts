import { errorCodes, MsgtraceError } from '../errors/msgtrace-error.ts';

/**
 * An event the publisher cannot send however often it tries: its message
 * would exceed the NATS server's `max_payload`, or it cannot be serialised
 * (nested deeper than JSON.stringify's stack). Retrying cannot help, so the
 * stream routes it to the dead-letter subject instead of failing the page.
 */
export class UnpublishableEventError extends MsgtraceError {
  readonly reason: string;

  constructor(reason: string, options?: { cause?: unknown }) {
    super(errorCodes.unpublishableEvent, `event cannot be published: ${reason}`, options);
    this.reason = reason;
  }
}
