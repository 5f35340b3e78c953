// `idcall inspect [TOKEN|-]`: explain a token you already have.
import type { Argv } from 'yargs';
import { usageError } from '../core/errors.ts';
import { renderJson } from '../render/json.ts';
import { contextFor, type IO } from './io.ts';
import { resolveInspectSettings, resolveSourceOptions } from '../core/options.ts';
import { withTargetKind } from './options.ts';
import { styleFor } from './terminal.ts';

export function inspectBuilder<T>(y: Argv<T>) {
  return withTargetKind(y)
    .positional('token', { type: 'string', describe: 'The token, a "Bearer …" value or a whole Authorization header line; - or nothing reads stdin' })
    .option('audience', { type: 'string', describe: 'Check the token against the audience a target expects (exactly as given: a function URL, an OAuth client ID)' })
    .option('certs-url', { type: 'string', describe: 'Google\'s signing certificates (IDCALL_CERTS_URL)' })
    .option('auth-timeout', { type: 'string', describe: 'Bound for fetching the certificates (default 10000 ms)' })
    .example('$0 inspect "$TOKEN" --audience https://hello-abc123-uc.a.run.app', 'Would this service accept it?')
    .example("pbpaste | $0 inspect -", 'Paste a header line from a log');
}

export async function inspectCommand(argv: Record<string, unknown>, io: IO): Promise<number> {
  // yargs hands a lone "-" to a string positional as "".
  const raw = argv.token as string | undefined;
  const arg = raw === '' ? '-' : raw;
  let input: string;
  if (arg !== undefined && arg !== '-') input = arg;
  else if (arg === undefined && io.stdin.isTTY) throw usageError('No token given.', 'Pass a token as an argument, or pipe one: idcall inspect - < token.txt');
  else input = await readLimited(io.stdin, 128 * 1024);
  const source = resolveSourceOptions(argv);
  const settings = resolveInspectSettings(argv);
  const { inspectToken } = await import('../core/diagnosis/inspect.ts');
  const { renderInspect } = await import('../render/inspect.ts');
  const report = await inspectToken(contextFor(io), input, { ...settings, certsUrl: source.certsUrl, timeoutMs: Math.min(source.authTimeoutMs, 5000) });
  io.stdout.write(argv.json ? renderJson(report) : renderInspect(report, styleFor(io, argv)));
  return report.exitCode;
}

async function readLimited(stream: NodeJS.ReadableStream, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) throw usageError(`The input on stdin is over ${limit / 1024} KB; a Google token is at most a few KB.`, 'Pipe just the token.');
    chunks.push(Buffer.from(chunk as Buffer));
  }
  return Buffer.concat(chunks).toString('utf8');
}
