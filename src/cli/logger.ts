/** The one pino root logger of a sluice process: JSON lines, or pretty when stdout is a terminal. */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel, opts: { pretty?: boolean } = {}): Logger {
  const options = {
    level,
    // Secrets never reach a log line: tokens, passwords, private keys, Authorization headers.
    redact: {
      paths: [
        '*.token',
        '*.password',
        '*.secret',
        '*.privateKey',
        '*.authorization',
        '*.headers.authorization',
        '*.headers["x-gitlab-token"]',
      ],
      censor: '[redacted]',
    },
  };
  const usePretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  return usePretty
    ? pino(options, pretty({ colorize: true, ignore: 'pid,hostname', sync: true }))
    : pino(options);
}
