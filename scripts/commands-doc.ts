// Writes docs/commands.md from the CLI's own --help output, so the help text is the one source.
// `node scripts/commands-doc.ts` rewrites it; `--check` exits 1 when it is stale (a test runs that).
import { readFile, writeFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { run } from '../src/cli/main.ts';

const COMMANDS = ['call', 'token', 'inspect', 'doctor', 'proxy', 'emulator'];

async function help(args: string[]): Promise<string> {
  const stdout = Object.assign(new PassThrough(), { columns: 100 });
  let out = '';
  stdout.on('data', (c) => (out += c));
  await run([...args, '--help'], { stdout, stderr: new PassThrough(), stdin: new PassThrough(), env: {} });
  return out.trimEnd();
}

export async function commandsDoc(): Promise<string> {
  const parts = [
    '# Commands',
    '',
    'Generated from `idcall … --help` by `node scripts/commands-doc.ts`; a test fails when this page and the help text disagree.',
    '',
    '## Configuration',
    '',
    'Every flag can also come from the environment as `IDCALL_` + the flag name in upper case with `_` for `-` (`--metadata-timeout` → `IDCALL_METADATA_TIMEOUT`, `--json` → `IDCALL_JSON=true`, repeatable flags comma-separated). Order: the flag, then the environment variable, then the default. Google\'s own variables keep their meaning: `GOOGLE_APPLICATION_CREDENTIALS`, `CLOUDSDK_CONFIG`, `GCE_METADATA_HOST`, `GCE_METADATA_IP`, `METADATA_SERVER_DETECTION`, `GOOGLE_CLOUD_QUOTA_PROJECT`, `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES`. `NO_COLOR` turns colour off.',
    '',
    'Durations take milliseconds (`1500`) or seconds (`2s`).',
    '',
    '## Exit status',
    '',
    '| status | meaning |',
    '|---|---|',
    '| 0 | success (for `call`, the target answered 2xx) |',
    '| 1 | the target answered another non-2xx status, or a 2xx body could not be written where `-o` sends it |',
    '| 2 | usage error: a flag, argument or environment value is wrong |',
    '| 3 | credentials could not be found, loaded or turned into a token |',
    '| 4 | the target rejected the token (401 or 403); for `inspect`, a target would |',
    '| 5 | the target could not be reached or timed out |',
    '',
    '## idcall',
    '',
    '```text',
    await help([]),
    '```',
  ];
  for (const command of COMMANDS) parts.push('', `## idcall ${command}`, '', '```text', await help([command]), '```');
  return parts.join('\n') + '\n';
}

/** Help text of every command, for the start-up fast path in src/cli/entry.ts. */
export async function helpTexts(): Promise<Record<string, string>> {
  const texts: Record<string, string> = { '': (await help([])) + '\n' };
  for (const command of COMMANDS) texts[command] = (await help([command])) + '\n';
  return texts;
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv.includes('--help-json')) {
  await writeFile(new URL('../dist/help.json', import.meta.url), JSON.stringify(await helpTexts()));
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const file = new URL('../docs/commands.md', import.meta.url);
  const fresh = await commandsDoc();
  if (process.argv.includes('--check')) {
    const current = await readFile(file, 'utf8').catch(() => '');
    if (current !== fresh) {
      process.stderr.write('docs/commands.md is stale: run node scripts/commands-doc.ts\n');
      process.exitCode = 1;
    }
  } else await writeFile(file, fresh);
}
