// How a command hands its result to the terminal: errors with their fix, and exit statuses.
import { IdcallError } from '../core/errors.ts';
import { redact } from '../core/redact.ts';
import { detectStyle, paint, type Style } from '../render/style.ts';
import type { IO } from './io.ts';

export function styleFor(io: IO, argv: Record<string, unknown>): Style {
  return detectStyle(io.stdout, io.env, typeof argv.color === 'boolean' ? argv.color : undefined);
}

/** Print an error that ended a command before any report existed, and return its exit status. */
export function printError(io: IO, err: IdcallError, style: Style, debug: boolean): void {
  const lines = [`${paint(style, 'red', 'error')} [${err.code}]: ${err.message}`];
  if (err.fix) lines.push(`  Fix: ${err.fix}`);
  if (debug && err.cause instanceof Error && err.cause.stack) lines.push(err.cause.stack);
  if (debug && err.stack) lines.push(err.stack);
  io.stderr.write(redact(lines.join('\n')) + '\n');
}
