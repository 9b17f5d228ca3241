import { MsgtraceError, errorCodes } from '../../errors/msgtrace-error.ts';
import { canInstallDebianPackages, findOnPath, installDebianPackages } from '../system/debian-packages.ts';

export class NatsServerMissingError extends MsgtraceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(errorCodes.natsServerMissing, message, options);
  }
}

/**
 * Locates the `nats-server` executable: `MSGTRACE_NATS_SERVER` if set, else
 * the PATH. The project promises a Quick start on a machine with only Node,
 * npm and Debian's apt, so when the binary is missing and we are root with
 * apt-get, the Debian package is installed (`installDebianPackages`).
 */
export function resolveNatsServerBinary(options: { install?: boolean } = {}): string {
  const explicit = process.env.MSGTRACE_NATS_SERVER;
  if (explicit) return explicit;
  const found = findOnPath('nats-server');
  if (found) return found;
  if (options.install === false || !canInstallDebianPackages()) {
    throw new NatsServerMissingError(
      'nats-server was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install -y nats-server`) or set MSGTRACE_NATS_SERVER to its path.',
    );
  }
  const failed = installDebianPackages(['nats-server']);
  if (failed !== null) throw new NatsServerMissingError(`${failed}; install nats-server by hand and try again.`);
  const installed = findOnPath('nats-server');
  if (!installed) throw new NatsServerMissingError('nats-server was installed but is not on PATH.');
  return installed;
}
