// `idcall emulator`: run the local Google auth emulator until interrupted.
import { readBoundedFile } from '../core/files.ts';
import { listenOrExplain } from './listen.ts';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { IdcallError, usageError } from '../core/errors.ts';
import type { IO } from './io.ts';

export function emulatorBuilder<T>(y: Argv<T>) {
  return y
    .option('port', { type: 'number', describe: 'Port of the Google APIs server (token, IAM, STS, certificates); 0 picks a free one' })
    .option('metadata-port', { type: 'number', describe: 'Port of the metadata server, for a fixed GCE_METADATA_HOST; 0 picks a free one' })
    .option('scenario', { type: 'string', describe: 'Scenario file (JSON, see docs/emulator.md); the default scenario otherwise' })
    .option('write-credentials', { type: 'string', describe: 'Write one credential file per ADC type into DIR, pointing at this emulator' })
    .example('$0 emulator --write-credentials ./emu', 'Start it and write credential files; then `source ./emu/env.sh`')
    .example('$0 emulator --port 9090 --metadata-port 9091', 'Fixed ports, e.g. for containers: GCE_METADATA_HOST=127.0.0.1:9091');
}

export async function emulatorCommand(argv: Record<string, unknown>, io: IO, until: Promise<unknown>): Promise<number> {
  const { normaliseScenario, ScenarioError } = await import('../emulator/scenario.ts');
  const { startEmulator } = await import('../emulator/index.ts');
  let scenario: import('../emulator/scenario.ts').Scenario | undefined;
  if (argv.scenario) {
    const path = String(argv.scenario);
    let text: string;
    try {
      text = (await readBoundedFile(path, 4 * 1024 * 1024)).bytes.toString('utf8');
    } catch (err) {
      throw new IdcallError('USAGE_ERROR', `--scenario ${(err as Error).message}.`, 'Check the path (a regular JSON file).', { cause: err });
    }
    try {
      scenario = normaliseScenario(JSON.parse(text), path);
    } catch (err) {
      if (err instanceof ScenarioError) throw usageError(err.message, 'See docs/emulator.md for the scenario format.');
      throw usageError(`--scenario ${path} is not valid JSON.`, 'See docs/emulator.md for the scenario format.');
    }
  }
  const port = portOption(argv, 'port');
  const metadataPort = portOption(argv, 'metadata-port');
  const emu = await listenOrExplain(`--port ${port ?? 0} / --metadata-port ${metadataPort ?? 0}`, '--port and --metadata-port with other ports (or leave them out for free ones)', () =>
    startEmulator(scenario, { ...(port !== undefined ? { port } : {}), ...(metadataPort !== undefined ? { metadataPort } : {}) }),
  );
  // Files first, banner after: whoever waits for the banner (a script, the README's Quick start) finds env.sh written.
  let written;
  if (argv['write-credentials']) {
    const dir = resolve(String(argv['write-credentials']));
    try {
      written = await emu.writeCredentials(dir);
    } catch (err) {
      await emu.close();
      throw new IdcallError('USAGE_ERROR', `--write-credentials ${dir}: ${(err as Error).message}.`, 'Pick a directory of your own that only you can write to (mkdir -m 700 DIR).', { cause: err });
    }
  }
  const out = io.stdout;
  // --json: one line once everything listens and every file is written, for scripts to wait on and parse.
  if (argv.json) {
    out.write(JSON.stringify({ version: 1, command: 'emulator', ready: true, project: emu.state.scenario.project.id, urls: emu.urls, runUrls: emu.serviceRunUrls, ...(written ? { dir: written.dir, files: written.files, env: written.env } : {}) }) + '\n');
    await until;
    await emu.close();
    return 0;
  }
  out.write(`idcall emulator: Google auth endpoints on 127.0.0.1 (project ${emu.state.scenario.project.id})\n`);
  const rows: [string, string][] = [
    ['token', emu.urls.token],
    ['IAM Credentials', emu.urls.iam],
    ['STS', emu.urls.sts],
    ['JWKS', emu.urls.jwks],
    ['PEM certificates', emu.urls.pemCerts],
    ['metadata server', emu.urls.metadata],
    ['external IdP token', emu.urls.externalToken],
    ...Object.entries(emu.urls.services).map(([name, url]): [string, string] => [`service ${name}`, `${url}  (also ${emu.serviceRunUrls[name]![0]})`]),
  ];
  for (const [name, url] of rows) out.write(`  ${name.padEnd(20)} ${url}\n`);
  if (written) {
    out.write(`\nCredential files in ${written.dir}:\n`);
    for (const [kind, path] of Object.entries(written.files)) out.write(`  ${kind.padEnd(20)} ${path}\n`);
    out.write(`\nExport this environment (or: source ${resolve(written.dir, 'env.sh')}):\n`);
    for (const [k, v] of Object.entries(written.env)) out.write(`  export ${k}=${v}\n`);
  }
  out.write('\nPress Ctrl-C to stop.\n');
  await until;
  await emu.close();
  return 0;
}

function portOption(argv: Record<string, unknown>, name: string): number | undefined {
  const value = argv[name];
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 65535) throw usageError(`--${name} ${String(value)} is not a port number.`, 'Use a number from 0 to 65535.');
  return value as number;
}
