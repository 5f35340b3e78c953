// Process entry: `--version` and `--help` are answered from text prepared at build time, before anything heavy loads.
import { readFileSync, realpathSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { packagePath } from './paths.ts';

export async function main(args = process.argv.slice(2)): Promise<void> {
  const fast = fastAnswer(args);
  if (fast !== undefined) {
    process.stdout.write(fast);
    return;
  }
  const { nodeTooOld, MIN_NODE_MAJOR, run, processIO } = await import('./program.ts');
  if (nodeTooOld()) process.stderr.write(`idcall: warning: Node.js ${process.versions.node} is older than the supported ${MIN_NODE_MAJOR}: \`idcall call\` and \`idcall proxy\` need Node.js ${MIN_NODE_MAJOR} or newer (token, doctor and inspect still run).\n`);
  // A reader that went away (`idcall call … | head -c 10`) ends the command quietly, as a Unix tool killed by SIGPIPE.
  // Output that could not be written (a full disk behind `> file`) is not a success a script may trust: `idcall token
  // > token.txt` would leave an empty file and exit 0. Checked at exit, when every write has settled.
  let outputFailed: string | undefined;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? process.exit(141) : (outputFailed ??= err.code ?? err.message)));
  }
  process.once('exit', (code) => {
    if (outputFailed === undefined || code !== 0) return;
    try {
      writeSync(2, `idcall: the output could not be written (${outputFailed}).\n`);
    } catch {
      // stderr is gone too: the status says it
    }
    process.exitCode = 1;
  });
  const stop = new Promise((resolve) => {
    // proxy and emulator shut down gracefully on the first signal (and at once on a second); every other command
    // stops at once, 130 for Ctrl-C and 143 for SIGTERM, with its report never half-written (it is one write).
    const longRunning = LONG_RUNNING.has(args[0] ?? '');
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (longRunning && !stopping) {
        stopping = true;
        return resolve(signal);
      }
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  process.exitCode = await run(args, processIO(), { until: stop });
}

const LONG_RUNNING = new Set(['proxy', 'emulator']);

/** The version, or help for `idcall [COMMAND] --help`, from dist/help.json (written by `npm run build`). */
function fastAnswer(args: string[]): string | undefined {
  try {
    if (args.length === 1 && args[0] === '--version') {
      return JSON.parse(readFileSync(packagePath('package.json')!, 'utf8')).version + '\n';
    }
    const help = args.at(-1) === '--help' && args.length <= 2 ? (args.length === 1 ? '' : args[0]!) : undefined;
    if (help === undefined) return undefined;
    const helpFile = packagePath('dist/help.json') ?? packagePath('help.json');
    if (!helpFile || !import.meta.url.includes('/dist/')) return undefined; // from source: yargs answers, so help is never stale
    const texts = JSON.parse(readFileSync(helpFile, 'utf8')) as Record<string, string>;
    return texts[help];
  } catch {
    return undefined; // no prepared text (running from source): yargs answers
  }
}

// `node src/cli/entry.ts …` during development (the published bin imports main() instead).
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
