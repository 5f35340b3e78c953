// Every `gcloud …` command idcall can print as a fix exists and takes every flag it is given: checked against the
// installed gcloud's own --help, for the commands in the fix builders (src/) and in docs/troubleshooting.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const hasGcloud = spawnSync('gcloud', ['--version'], { timeout: 30_000 }).status === 0;

async function sources(): Promise<string[]> {
  const root = new URL('../../', import.meta.url).pathname;
  const files = [join(root, 'docs/troubleshooting.md')];
  for (const dir of ['src/core', 'src/cli']) for (const name of await readdir(join(root, dir))) if (name.endsWith('.ts')) files.push(join(root, dir, name));
  return Promise.all(files.map((f) => readFile(f, 'utf8')));
}

/** `gcloud GROUP …` commands in the text, up to the end of their string or code span; `${…}` parts become X. */
export function commandsIn(text: string): string[] {
  const out = new Set<string>();
  const plain = text.replace(/\$\{[^}]*\}/g, 'X');
  for (const m of plain.matchAll(/gcloud (?:auth|iam|run|functions|config|logging|info|projects)(?: [^`'"\n\\]*)?/g)) {
    out.add(m[0].split(/\s*(?:\)|;|, or | \(|\?| —)/)[0]!.replace(/[).,]+$/, '').trim());
  }
  return [...out];
}

const help = new Map<string, Promise<string | null>>();
function helpFor(path: string[]): Promise<string | null> {
  const key = path.join(' ');
  if (!help.has(key)) {
    help.set(
      key,
      promisify(execFile)('gcloud', [...path, '--help'], { timeout: 60_000, env: { ...process.env, CLOUDSDK_CORE_DISABLE_PROMPTS: '1', PAGER: 'cat' } }).then(
        (r) => r.stdout,
        () => null,
      ),
    );
  }
  return help.get(key)!;
}

test('every gcloud command idcall prints as a fix exists and takes its flags', { skip: hasGcloud ? false : 'gcloud is not installed', timeout: 300_000 }, async () => {
  const commands = [...new Set((await sources()).flatMap(commandsIn))];
  assert.ok(commands.length >= 10, `found ${commands.length} commands`);
  const problems: string[] = [];
  for (const command of commands) {
    const words = command.split(/\s+/).slice(1);
    const path: string[] = [];
    for (const w of words) {
      if (!/^[a-z][a-z0-9-]*$/.test(w)) break;
      path.push(w);
    }
    // The longest prefix gcloud knows is the command; the rest are its positional arguments.
    let text: string | null = null;
    let found = path.length;
    for (; found > 0 && text === null; found--) text = await helpFor(path.slice(0, found));
    if (text === null) {
      problems.push(`${command}: no such gcloud command`);
      continue;
    }
    const known = path.slice(0, found + 1).join(' ');
    const flags = [...command.matchAll(/--([a-z][a-z0-9-]*)/g)].map((f) => f[1]!);
    // A command with flags that resolves only to a group: its command word is wrong (prose mentioning gcloud has no flags).
    if (flags.length && /(?:GROUP|COMMAND) is one of the following/.test(text)) {
      problems.push(`${command}: gcloud ${known} is a command group; ${path[found + 1] ?? '(nothing)'} is not one of its commands`);
      continue;
    }
    for (const flag of flags) {
      if (!new RegExp(`--(?:\\[no-\\])?${flag}(?![a-z0-9-])`).test(text)) problems.push(`${command}: gcloud ${known} takes no --${flag}`);
    }
  }
  assert.deepEqual(problems, []);
});
