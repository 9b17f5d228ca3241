import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';

/**
 * A pipeline cannot be compiled: an unknown pipeline id, a function whose
 * `conf` has the wrong shape, a filter/value/replacement expression that does
 * not compile, a bad regex, or an attempt to write an internal `__` field.
 * Thrown once per job, before any page is fetched, so a typo stops the job at
 * once instead of failing on every event. Like `FieldExpressionError`, it
 * names where the problem is and never echoes an expression.
 */
export class PipelineError extends MsgtraceError {
  readonly pipelineId: string;

  constructor(pipelineId: string, where: string, reason: string, options?: { cause?: unknown }) {
    super(errorCodes.configInvalid, `pipeline "${pipelineId}"${where === '' ? '' : `, ${where}`}: ${reason}`, options);
    this.pipelineId = pipelineId;
  }
}
