import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';

/**
 * A metadata field's expression cannot be compiled. Thrown once, when the job
 * compiles its fields, so a typo stops the job before any page is fetched
 * instead of failing on every event. Names the field, never echoes the
 * expression (a config author may have pasted something sensitive into it).
 */
export class FieldExpressionError extends MsgtraceError {
  readonly field: string;

  constructor(field: string, reason: string, options?: { cause?: unknown }) {
    super(
      errorCodes.fieldExpression,
      `metadata field "${field}": the value is not a usable JS expression (${reason}); ` +
        'fix the expression (quote constants: \'prod\' or `prod`) and run again',
      options,
    );
    this.field = field;
  }
}
