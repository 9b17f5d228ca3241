import { MsgtraceError, errorCodes } from '../errors/msgtrace-error.ts';

/**
 * A simulator that was asked for something it cannot do: an invalid fault
 * plan or flag, a bad option. The message names the offending key, because
 * the person reading it is writing a test or a `--fault` flag and wants to
 * know which part to fix.
 */
export class SimulatorError extends MsgtraceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(errorCodes.simulator, message, options);
  }
}
