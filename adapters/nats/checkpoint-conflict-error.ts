import { MsgtraceError, errorCodes } from '../../errors/msgtrace-error.ts';

/**
 * A compare-and-set write of a checkpoint found a newer revision than the one
 * this process last read: another writer moved the input's checkpoint. The
 * usual cause is two collectors running the same input against one NATS
 * account; continuing would let them overwrite each other's progress, so the
 * job must stop instead of retrying blindly.
 */
export class CheckpointConflictError extends MsgtraceError {
  readonly inputId: string;
  readonly expectedRevision: number;

  constructor(inputId: string, expectedRevision: number, options?: { cause?: unknown }) {
    super(
      errorCodes.checkpointConflict,
      `the checkpoint of input ${inputId} is no longer at revision ${expectedRevision}: another writer moved it ` +
        '(are two collectors running this input?) — stop the other collector, then restart this one so it reloads the checkpoint',
      options,
    );
    this.inputId = inputId;
    this.expectedRevision = expectedRevision;
  }
}
