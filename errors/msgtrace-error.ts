/**
 * The one registry of msgtrace's error codes. Every thrown error is a
 * `MsgtraceError` subclass with a stable `code`, so logs, job records and the
 * inspector can group failures without parsing messages.
 *
 * Messages say what was expected, what came, and what to do — and never carry
 * a secret (client secret, password, private key, passphrase or token).
 */
export const errorCodes = {
  configInvalid: 'MSGTRACE_CONFIG_INVALID',
  timeExpression: 'MSGTRACE_TIME_EXPRESSION',
  auth: 'MSGTRACE_AUTH',
  http: 'MSGTRACE_HTTP',
  badResponse: 'MSGTRACE_BAD_RESPONSE',
  nats: 'MSGTRACE_NATS',
  natsServerMissing: 'MSGTRACE_NATS_SERVER_MISSING',
  fieldExpression: 'MSGTRACE_FIELD_EXPRESSION',
  job: 'MSGTRACE_JOB',
  simulator: 'MSGTRACE_SIMULATOR',
  checkpointConflict: 'MSGTRACE_CHECKPOINT_CONFLICT',
  unpublishableEvent: 'MSGTRACE_UNPUBLISHABLE_EVENT',
} as const;

export type ErrorCode = (typeof errorCodes)[keyof typeof errorCodes];

export class MsgtraceError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
