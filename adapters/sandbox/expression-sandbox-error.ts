import { MsgtraceError, errorCodes } from '../../errors/msgtrace-error.ts';

/**
 * The expression sandbox process itself failed — it could not start, or it
 * kept dying with every expression already stopped — so the page cannot be
 * evaluated and the job fails (the collector does not). An expression that
 * fails or kills the process is NOT this error: that stage is stopped and
 * reported, and the page goes on.
 */
export class ExpressionSandboxError extends MsgtraceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(errorCodes.fieldExpression, `expression sandbox: ${message}`, options);
  }
}
