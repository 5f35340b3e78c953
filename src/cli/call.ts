// `idcall call URL`: parse options, run the diagnosis, hand the report to a renderer.
import { constants, createWriteStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { dirname, resolve } from 'node:path';
import type { Argv } from 'yargs';
import type { DiagnoseOptions } from '../core/diagnosis/call.ts';
import { IdcallError, usageError } from '../core/errors.ts';
import { parseTargetUrl, refusePlainHttp } from '../core/audience.ts';
import { isDirectory, readBoundedFile } from '../core/files.ts';
import { renderJson } from '../render/json.ts';
import { registerSecret } from '../core/redact.ts';
import { contextFor, type IO } from './io.ts';
import { canonicalHeaderName, DEFAULTS, resolveCallSettings, resolveSourceOptions } from '../core/options.ts';
import { withRouting, withSourceOptions, withTargetKind } from './options.ts';
import { readCaFile } from './cacert.ts';
import { injectedExtraCaFile } from '../core/net/routing.ts';
import { styleFor } from './terminal.ts';

// -d @FILE is held in memory to be sent (and replayed on no retry): bounded like every file idcall reads.
const DATA_MAX_BYTES = 256 * 1024 * 1024;

export function callBuilder<T>(y: Argv<T>) {
  return withRouting(withTargetKind(withSourceOptions(y)))
    .positional('url', { type: 'string', describe: 'URL to call, e.g. https://hello-abc123-uc.a.run.app/api', demandOption: true })
    .option('audience', { type: 'string', describe: 'Token audience (default: the URL\'s origin); for custom domains and custom audiences' })
    .option('method', { alias: 'X', type: 'string', describe: `HTTP method (default ${DEFAULTS.method}, or ${DEFAULTS.methodWithBody} with --data)` })
    .option('header', { alias: 'H', type: 'string', array: true, describe: "Request header 'Name: value' (repeatable)" })
    .option('data', { alias: 'd', type: 'string', describe: 'Request body, @FILE to read it from a file, or @- from standard input' })
    .option('header-name', { type: 'string', coerce: canonicalHeaderName, describe: `Header that carries the token (default ${DEFAULTS.headerName}; any letter case; Proxy-Authorization for IAP)` })
    .option('timeout', { type: 'string', describe: `Bound for connecting to the target and for its response headers (default ${DEFAULTS.timeoutMs / 1000}s; 1500, 2s, 1m; IDCALL_TIMEOUT)` })
    .option('max-time', { type: 'string', describe: 'Bound for the whole exchange, body included, as curl\'s --max-time (default none; IDCALL_MAX_TIME)' })
    .option('body', { type: 'string', describe: `How much of the response body to show: a byte count (default ${DEFAULTS.bodyExcerptBytes}) or "full"` })
    .option('output', { alias: 'o', type: 'string', describe: 'Write the response body to FILE instead of showing it (checked before the request is sent; -o - writes it to stdout and the report to stderr)' })
    .option('allow-insecure', { type: 'boolean', describe: 'Allow sending the token over plain http to a non-loopback host' })
    .option('verbose', { alias: 'v', type: 'boolean', describe: 'Show each step\'s details (requests, candidates, claims, headers) under its line' })
    .option('show-token', { type: 'boolean', describe: 'Print the raw token on stderr (it never appears in stdout or --json)' })
    .example('$0 call https://hello-abc123-uc.a.run.app/api', 'Call a private Cloud Run service with ADC')
    .example('$0 https://hello-abc123-uc.a.run.app --impersonate-service-account invoker@proj.iam.gserviceaccount.com', 'Call as a service account you may impersonate')
    .example("$0 call https://api.example.com/v1 --audience https://hello-abc123-uc.a.run.app -X POST -d @req.json -H 'Content-Type: application/json'", 'Custom domain, POST a file')
    .example('$0 call https://hello-abc123-uc.a.run.app --json | jq .verdict', 'Machine-readable report');
}

export async function callCommand(argv: Record<string, unknown>, io: IO): Promise<number> {
  const options = await callOptions(argv, io);
  const output = argv.output as string | undefined;
  const bodyToStdout = output === '-';
  // Checked before anything is sent: a POST has had its effect by the time its body could not be saved.
  if (output !== undefined && !bodyToStdout) await checkOutputPath(output);
  const ctx = contextFor(io, argv);
  // Loaded here, not at the top: yargs imports every command's builder, and only this command needs these.
  const { diagnoseCall } = await import('../core/diagnosis/call.ts');
  const outcome = await diagnoseCall(ctx, options).finally(ctx.stopProgress);
  registerSecret(outcome.token);
  if (argv['show-token'] && outcome.token) io.stderr.write(`${outcome.token}\n`);

  let note: string | undefined;
  if (output && outcome.report.response) {
    // The body was streamed to its place as it arrived; whatever happened there, the report is never lost.
    const bytes = outcome.report.response.bodyBytes;
    const where = bodyToStdout ? 'stdout' : output;
    note = outcome.sinkError ? `Response body (${bytes} bytes) could NOT all be written to ${where} (${outcome.sinkError}).` : `Response body (${bytes} bytes) written to ${where}`;
  }
  // With -o - the body owns stdout, so the report goes to stderr.
  const reportTo = bodyToStdout ? io.stderr : io.stdout;
  if (argv.json) reportTo.write(renderJson(outcome.report));
  else {
    const { renderCallReport } = await import('../render/table.ts');
    const excerpt = output || !outcome.report.response ? null : outcome.body;
    reportTo.write(renderCallReport(outcome.report, styleFor(io, argv), { excerpt, ...(note ? { note } : {}) }, Boolean(argv.verbose)));
  }
  return outcome.report.exitCode;
}

/** -o FILE or -o -: where call streams the body, opened when the response starts (as curl creates its file). */
function sinkFor(output: string, io: IO): () => { stream: Writable; close: boolean } {
  return () => (output === '-' ? { stream: io.stdout, close: false } : { stream: createWriteStream(output), close: true });
}

/** `-d @-`: the body from standard input (curl's spelling), bounded like a file. */
async function readStdin(io: IO, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of io.stdin) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    total += buf.length;
    if (total > maxBytes) throw usageError(`--data @-: standard input is larger than ${maxBytes / 1024 / 1024} MB.`, 'Send a smaller body, or stream a large one with curl and a token from idcall token.');
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** -o FILE must be somewhere a file can be written: not a directory, in a directory that exists and is writable. */
async function checkOutputPath(path: string): Promise<void> {
  const target = resolve(path);
  const info = await stat(target).catch(() => null);
  const fix = 'Give -o a file path in a directory you can write to, or -o - for stdout.';
  if (info?.isDirectory()) throw usageError(`-o ${path} is a directory; the response body needs a file name.`, fix);
  if (info) {
    if (!(await access(target, constants.W_OK).then(() => true, () => false))) throw usageError(`-o ${path} cannot be written (permission denied).`, fix);
    return;
  }
  const parent = dirname(target);
  if (!(await isDirectory(parent))) throw usageError(`-o ${path}: the directory ${parent} does not exist.`, fix);
  if (!(await access(parent, constants.W_OK).then(() => true, () => false))) throw usageError(`-o ${path}: the directory ${parent} cannot be written to (permission denied).`, fix);
}

async function callOptions(argv: Record<string, unknown>, io: IO): Promise<DiagnoseOptions> {
  const headers: [string, string][] = [];
  for (const raw of (argv.header as string[] | undefined) ?? []) {
    const match = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*:\s?(.*)$/s.exec(raw);
    if (!match) throw usageError(`-H ${JSON.stringify(raw)} is not a header: expected 'Name: value'.`, "Pass headers as -H 'Name: value'.");
    // RFC 9110 §5.5: a field value is visible characters, spaces and tabs; HTTP clients refuse anything else at send time.
    if (/[\0-\x08\x0a-\x1f\x7f]/.test(match[2]!)) throw usageError(`-H ${match[1]}: the value contains a control character (a line break, NUL or escape).`, 'Remove control characters from the header value.');
    headers.push([match[1]!, match[2]!]);
  }
  let data: Buffer | undefined;
  const rawData = argv.data as string | undefined;
  if (rawData !== undefined) {
    if (rawData === '@-') {
      data = await readStdin(io, DATA_MAX_BYTES);
    } else if (rawData.startsWith('@')) {
      try {
        data = (await readBoundedFile(rawData.slice(1), DATA_MAX_BYTES)).bytes;
      } catch (err) {
        throw new IdcallError('USAGE_ERROR', `--data ${rawData}: ${(err as Error).message}.`, `Check the file path after @ (a regular file of at most ${DATA_MAX_BYTES / 1024 / 1024} MB).`, { cause: err });
      }
    } else data = Buffer.from(rawData);
  }
  const settings = resolveCallSettings(argv, data !== undefined);
  // NODE_EXTRA_CA_CERTS works for the process that starts with it; an environment handed in (tests, an embedding
  // program) is honoured the same way.
  const injected = injectedExtraCaFile(io.env);
  const extra = injected ? await readCaFile(injected).catch(() => undefined) : undefined;
  const ca = [settings.cacert !== undefined ? await readCaFile(settings.cacert) : undefined, extra].filter(Boolean).join('\n') || undefined;
  // A URL mistake is one usage line before anything runs, not a table of skipped steps.
  refusePlainHttp(parseTargetUrl(settings.url, settings.audience).url, settings.allowInsecure);
  return {
    ...resolveSourceOptions(argv),
    ...settings,
    headers,
    ...(data ? { data } : {}),
    ...(argv.output !== undefined ? { openSink: sinkFor(String(argv.output), io) } : {}),
    ...(ca ? { ca } : {}),
  };
}
