import { pino, type Logger } from 'pino';
import type { InputConfig, LogLevel } from '../config/schema.ts';

/** Cribl's `silly` is pino's `trace`; the other levels share names. */
function pinoLevel(level: LogLevel): string {
  return level === 'silly' ? 'trace' : level;
}

/**
 * msgtrace's structured log: JSON lines on stderr (stdout stays for command
 * output). Secret-bearing keys are censored as a second line of defence; the
 * first is that messages are built from classified reasons, never from raw
 * requests or config.
 */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      name: 'msgtrace',
      level: options.level ?? process.env.MSGTRACE_LOG_LEVEL ?? 'info',
      redact: {
        paths: ['password', 'clientSecret', 'passphrase', 'token', 'authorization', '*.password', '*.clientSecret', '*.passphrase', '*.token', '*.authorization'],
        censor: '[redacted]',
      },
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
}

/** A child logger for one input, at the input's own `logLevel`. */
export function inputLogger(logger: Logger, input: Pick<InputConfig, 'id' | 'logLevel'>): Logger {
  return logger.child({ inputId: input.id }, { level: pinoLevel(input.logLevel) });
}
