import { MsgtraceError, errorCodes } from '../../errors/msgtrace-error.ts';

/**
 * A NATS or JetStream operation msgtrace could not complete (connect,
 * stream setup, a publish that was not acknowledged). Carries the client's
 * error as `cause`; the message says what was attempted and never holds a
 * password, token or credentials file content.
 */
export class NatsError extends MsgtraceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(errorCodes.nats, message, options);
  }
}
