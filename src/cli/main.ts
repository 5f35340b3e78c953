// idcall's entry point: yargs wiring, one dispatch, and the one place where errors become exit statuses.
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { looksLikeSchemelessUrl } from '../core/audience.ts';
import { asIdcallError, exitCodeFor, IdcallError, usageError } from '../core/errors.ts';
import { envBoolean, withEnvironment, type OptionTable } from '../core/options.ts';
import { REPORT_VERSION } from '../core/report.ts';
import { renderJson } from '../render/json.ts';
import { processIO, type IO } from './io.ts';
import { packagePath } from './paths.ts';
import { printError, styleFor } from './terminal.ts';

const VERSION: string = JSON.parse(readFileSync(packagePath('package.json')!, 'utf8')).version;

type Command = (argv: Record<string, any>, io: IO, until: Promise<unknown>) => Promise<number>;

type Builder = (y: Argv) => Argv;

interface CommandModule {
  builder: Builder;
  command: Command;
}

// Each command's module loads only when it is named: start-up pays for one command, not all of them.
const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  call: async () => import('./call.ts').then((m) => ({ builder: m.callBuilder, command: m.callCommand })),
  token: async () => import('./token.ts').then((m) => ({ builder: m.tokenBuilder, command: m.tokenCommand })),
  inspect: async () => import('./inspect.ts').then((m) => ({ builder: m.inspectBuilder, command: m.inspectCommand })),
  doctor: async () => import('./doctor.ts').then((m) => ({ builder: m.doctorBuilder, command: m.doctorCommand })),
  proxy: async () => import('./proxy.ts').then((m) => ({ builder: m.proxyBuilder, command: m.proxyCommand })),
  emulator: async () => import('./emulator.ts').then((m) => ({ builder: m.emulatorBuilder, command: m.emulatorCommand })),
};

export interface RunOptions {
  /** Resolves when a long-running command (emulator, proxy) should stop. */
  until?: Promise<unknown>;
}

export async function run(rawArgs: string[], io: IO = processIO(), runOptions: RunOptions = {}): Promise<number> {
  // `idcall https://…` is shorthand for `idcall call https://…`.
  // (A URL without its scheme, `idcall 127.0.0.1:8080`, goes to call too, whose URL check says what to type.)
  const first = rawArgs[0];
  const args = first && !(first in COMMANDS) && (/^[a-z][a-z0-9+.-]*:\/\//i.test(first) || looksLikeSchemelessUrl(first)) ? ['call', ...rawArgs] : rawArgs;
  // `completion zsh` / `completion bash`: yargs picks the script by $SHELL, so the word sets it.
  if (args[0] === 'completion' && (args[1] === 'zsh' || args[1] === 'bash')) {
    process.env.SHELL = `/bin/${args[1]}`;
    args.splice(1, 1);
  }
  // Read before parsing, so that a usage error is reported as asked (IDCALL_JSON=true gives JSON for it too).
  let wantsJson = false;
  let debug = false;
  try {
    wantsJson = globalFlag(args, 'json') ?? envBoolean(io.env, 'IDCALL_JSON') ?? false;
    debug = globalFlag(args, 'debug') ?? envBoolean(io.env, 'IDCALL_DEBUG') ?? false;
    const argv = await parse(args, io);
    if (!argv) return 0;
    const command = String(argv._[0]);
    const load = COMMANDS[command];
    if (!load) throw usageError(`Unknown command ${JSON.stringify(command)}.`);
    return await (await load()).command(argv, io, runOptions.until ?? new Promise(() => {}));
  } catch (err) {
    const error = err instanceof IdcallError ? err : unexpected(err);
    if (wantsJson) {
      io.stdout.write(renderJson({ version: REPORT_VERSION, ok: false, verdict: { code: error.code, summary: error.message, fix: error.fix }, exitCode: exitCodeFor(error.code) }));
    }
    printError(io, error, styleFor(io, args.includes('--no-color') ? { color: false } : args.includes('--color') ? { color: true } : {}), debug);
    return exitCodeFor(error.code);
  }
}

/** --flag, --no-flag or --flag=true|false on the command line, as yargs will read it; undefined when absent. */
function globalFlag(args: string[], name: string): boolean | undefined {
  let value: boolean | undefined;
  for (const arg of args) {
    if (arg === '--') break;
    if (arg === `--${name}`) value = true;
    else if (arg === `--no-${name}`) value = false;
    else if (arg.startsWith(`--${name}=`)) value = /^(1|true|yes)$/i.test(arg.slice(name.length + 3));
  }
  return value;
}

function unexpected(err: unknown): IdcallError {
  return asIdcallError(err, 'INTERNAL_ERROR', `idcall hit an unexpected error, which is a bug in idcall: ${err instanceof Error ? err.message : String(err)}`, 'Run again with --debug for the details (they are redacted) and report them at the project\'s issue tracker.');
}

/**
 * yargs runs only the named command's builder, but each builder's module must be loaded to hand it over:
 * load the one named on the command line, and all of them only when none is (top-level help, completion).
 */
async function buildersFor(args: string[]): Promise<Record<string, Builder>> {
  const named = args.find((arg) => !arg.startsWith('-'));
  const wanted = named && named in COMMANDS ? [named] : Object.keys(COMMANDS);
  const none: Builder = (y) => y;
  const builders: Record<string, Builder> = Object.fromEntries(Object.keys(COMMANDS).map((name) => [name, none]));
  await Promise.all(wanted.map(async (name) => (builders[name] = (await COMMANDS[name]!()).builder)));
  return builders;
}

async function parse(args: string[], io: IO): Promise<Record<string, any> | null> {
  const { default: yargs } = await import('yargs');
  const { withGlobalOptions } = await import('./options.ts');
  const builders = await buildersFor(args);
  let failure: IdcallError | undefined;
  // The matched command's options, as the middleware saw them: what a misspelt flag is compared with.
  let known: OptionTable | undefined;
  const parser = withGlobalOptions(yargs(args))
    .scriptName('idcall')
    .usage('$0 <command> [options]\n\nCall private Google-authenticated URLs (Cloud Run, Cloud Functions) from anywhere, and know exactly why it fails.')
    .command('call <url>', 'Mint the right ID token, call the URL, and explain every step', builders.call)
    .command('doctor', 'Check every credential source on this machine and whether it works, without calling a target', builders.doctor)
    .command('token', 'Print an ID token for an audience (the gcloud auth print-identity-token of every ADC source)', builders.token)
    .command('inspect [token]', 'Explain a token you already have, and whether a target would accept it', builders.inspect)
    .command('proxy [action]', 'Token-injecting proxy: a local port for one private service (HTTP and gRPC), or an HTTP_PROXY sidecar', builders.proxy)
    .command('emulator', 'Run a local emulator of Google\'s auth endpoints and private services', builders.emulator)
    .completion('completion', 'Print a shell completion script (bash or zsh): idcall completion >> ~/.bashrc')
    .demandCommand(1, 'Name a command, or pass a URL to call.')
    .strict()
    .exitProcess(false)
    .version(VERSION)
    .help()
    .alias('h', 'help')
    // yargs renders (and caches) the help text on every run; wrapping it is most of that cost, so wrap only when shown.
    .wrap(args.includes('--help') ? Math.min(110, io.stdout.columns ?? 100) : null)
    .epilogue('Exit status: 0 2xx, 1 other non-2xx, 2 usage error, 3 no usable credentials or token, 4 target rejected the token, 5 target unreachable or timed out.\nDocs: docs/commands.md, docs/troubleshooting.md')
    // Middleware sees the matched command's own options, so IDCALL_* fills exactly the flags that command has.
    .middleware(((argv: Record<string, any>, y: { getOptions(): OptionTable }) => {
      known = y.getOptions();
      withEnvironment(argv, io.env, known);
    }) as never, true)
    .fail((message, err) => {
      // yargs' messages span lines; ours are one line each.
      failure = err ? asIdcallError(err, 'USAGE_ERROR') : usageError((message ?? 'Invalid arguments.').replace(/\s*\n\s*/g, ' '), didYouMean(args, message ?? '', known));
    });
  let output = '';
  const argv = await parser.parseAsync(args, {}, (_err: unknown, _argv: unknown, out: string) => {
    // yargs calls back once per (nested) parse; completing a command's options answers in one of them.
    if (out) output = out;
  });
  if (failure) throw failure;
  if (output) {
    io.stdout.write(output.endsWith('\n') ? output : output + '\n');
    return null;
  }
  return argv as Record<string, any>;
}

/** "Did you mean …" for a misspelt command or flag, from what yargs knows; the generic advice otherwise. */
function didYouMean(args: string[], message: string, known: OptionTable | undefined): string {
  const first = args[0] ?? '';
  const commands = Object.keys(COMMANDS);
  if (first && !first.startsWith('-') && !(first in COMMANDS)) {
    const near = closest(first, [...commands, 'completion']);
    if (near) return `Did you mean \`idcall ${near}\`? Run \`idcall --help\` for the commands.`;
  }
  const unknown = /Unknown arguments?: (.+)$/.exec(message.trim())?.[1]?.split(/,\s*/) ?? [];
  const flags = Object.keys(known?.key ?? {}).filter((k) => k.length > 1);
  for (const word of unknown) {
    const near = closest(word.replace(/^-+/, ''), flags);
    if (near) return `Did you mean --${near}? Run \`idcall ${commands.includes(first) ? `${first} ` : ''}--help\` for the options.`;
  }
  return 'Run `idcall --help` for usage.';
}

/** The candidate within two edits of `word`, if exactly one is nearest. */
function closest(word: string, candidates: string[]): string | undefined {
  const distance = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0]!;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const current = row[j]!;
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
        previous = current;
      }
    }
    return row[b.length]!;
  };
  const scored = candidates.map((c) => [c, distance(word.toLowerCase(), c.toLowerCase())] as const).filter(([, d]) => d <= 2).sort((a, b) => a[1] - b[1]);
  return scored[0] && scored[0][1] !== scored[1]?.[1] ? scored[0][0] : undefined;
}
