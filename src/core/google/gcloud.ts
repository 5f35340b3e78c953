// The gcloud CLI as a token source (`--source gcloud`) and its configuration read without running it.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { Context } from '../context.ts';
import { gcloudConfigDir } from './discover.ts';
import { IdcallError } from '../errors.ts';
import { isRegularFile, readOptionalText } from '../files.ts';
import { decodeJwtClaims } from './jwt.ts';

export interface GcloudState {
  configDir: string;
  activeConfig: string;
  account: string | null;
  project: string | null;
  /** auth/impersonate_service_account: gcloud then mints as that service account, whatever the account. */
  impersonate: string | null;
  /** Config files that exist but cannot be read as gcloud's (a FIFO, a device, too large): each one sentence. */
  problems: string[];
}

// gcloud's config files are a few hundred bytes.
const CONFIG_MAX_BYTES = 64 * 1024;

/** Active configuration, account and project, as gcloud itself would resolve them. */
export async function readGcloudState(ctx: Pick<Context, 'env' | 'homedir' | 'platform'>): Promise<GcloudState> {
  const configDir = gcloudConfigDir(ctx);
  const problems: string[] = [];
  const read = async (path: string) => {
    try {
      return await readOptionalText(path, CONFIG_MAX_BYTES);
    } catch (err) {
      problems.push(`gcloud config file ${(err as Error).message}; idcall ignores it (gcloud itself may hang or fail on it)`);
      return undefined;
    }
  };
  const activeConfig = ctx.env.CLOUDSDK_ACTIVE_CONFIG_NAME ?? (((await read(join(configDir, 'active_config'))) ?? 'default').trim() || 'default');
  const ini = (await read(join(configDir, 'configurations', `config_${activeConfig}`))) ?? '';
  const core = iniSection(ini, 'core');
  const auth = iniSection(ini, 'auth');
  return {
    configDir,
    activeConfig,
    account: ctx.env.CLOUDSDK_CORE_ACCOUNT ?? core.account ?? null,
    project: ctx.env.CLOUDSDK_CORE_PROJECT ?? core.project ?? null,
    impersonate: ctx.env.CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT || auth.impersonate_service_account || null,
    problems,
  };
}

function iniSection(text: string, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  let inside = false;
  for (const line of text.split(/\r?\n/)) {
    const header = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (header) inside = header[1] === name;
    else if (inside) {
      const kv = /^\s*([\w.-]+)\s*=\s*(.*?)\s*$/.exec(line);
      if (kv) out[kv[1]!] = kv[2]!;
    }
  }
  return out;
}

export interface GcloudToken {
  token: string;
  account: string | null;
  /** gcloud cannot choose the audience for a user account. */
  audienceHonoured: boolean;
  command: string;
}

export async function gcloudIdentityToken(ctx: Context, audience: string, timeoutMs: number, impersonate?: string): Promise<GcloudToken> {
  const state = await readGcloudState(ctx);
  // Only a user account refuses --audiences. No account at all is the metadata server's service account (gcloud on a
  // VM), and a configured auth/impersonate_service_account is a service account whatever the account is.
  // gcloud 528 checks the active account's type for --audiences even when auth/impersonate_service_account is set,
  // so a configured impersonation is passed explicitly, as the flag it stands for.
  const target = impersonate ?? state.impersonate ?? undefined;
  const user = state.account !== null && !state.account.endsWith('.gserviceaccount.com') && !target;
  const vm = state.account === null && !target;
  const args = [
    'auth',
    'print-identity-token',
    ...(user ? [] : [`--audiences=${audience}`]),
    ...(target ? [`--impersonate-service-account=${target}`, '--include-email'] : []),
    // The metadata server's standard token has no email: full says who the VM's account is.
    ...(vm ? ['--token-format=full'] : []),
    '--quiet',
  ];
  const command = `gcloud ${args.join(' ')}`;
  const token = await new Promise<string>((resolve, reject) => {
    execFile(ctx.env.IDCALL_GCLOUD ?? 'gcloud', args, { env: ctx.env as NodeJS.ProcessEnv, timeout: timeoutMs, maxBuffer: 1 << 20, signal: ctx.signal }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        if (e.code === 'ENOENT') return reject(new IdcallError('NO_CREDENTIALS', 'The gcloud CLI is not installed or not on PATH.', 'Install the Google Cloud CLI, or drop --source gcloud to use Application Default Credentials.', { cause: err }));
        if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return reject(new IdcallError('TOKEN_ENDPOINT_ERROR', `\`${command}\` printed more than 1 MB, which no token is; it was stopped.`, `Run it by hand and check its output; \`command -v ${ctx.env.IDCALL_GCLOUD ?? 'gcloud'}\` shows which program answers to the name.`, { cause: err }));
        if (e.killed) return reject(new IdcallError('TOKEN_ENDPOINT_ERROR', `\`${command}\` did not finish within ${timeoutMs} ms.`, 'Run it by hand to see what it waits for (a login prompt, a network timeout).', { cause: err }));
        const line = errorLine(stderr) || `exit status ${String(e.code)}`;
        return reject(new IdcallError(/login|credentials|reauth|active account|no account/i.test(line) ? 'NO_CREDENTIALS' : 'TOKEN_ENDPOINT_ERROR', `\`${command}\` failed: ${line}`, 'Run `gcloud auth login` (or `gcloud auth activate-service-account`) and try again.', { cause: err }));
      }
      resolve(stdout.trim());
    });
  });
  if (token.split('.').length !== 3) throw new IdcallError('TOKEN_ENDPOINT_ERROR', `\`${command}\` printed something that is not a JWT.`, 'Run it by hand and check its output.');
  // What gcloud minted says what it could do: the audience asked for, or (a user account) its own client's.
  const claims = decodeJwtClaims(token);
  const email = typeof claims?.email === 'string' ? claims.email : null;
  return { token, account: email ?? target ?? state.account, audienceHonoured: claims?.aud === audience, command };
}

/** gcloud's `ERROR: (group.command) …` line says what went wrong; the lines after it are advice. */
function errorLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const error = lines.find((l) => l.startsWith('ERROR:')) ?? lines.at(-1) ?? '';
  return error.replace(/^ERROR:\s*/, '');
}

/**
 * Run `read` on one of gcloud's SQLite files, read-only, where this Node has node:sqlite; undefined when there is
 * nothing to read (no file, no node:sqlite, another schema). Never throws. Regular files only: SQLite would block
 * opening a FIFO.
 */
async function readGcloudDb<T>(path: string, read: (db: import('node:sqlite').DatabaseSync) => T | undefined): Promise<T | undefined> {
  try {
    if (!(await isRegularFile(path))) return undefined;
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      return read(db);
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  }
}

/** The accounts gcloud has credentials for (what `gcloud auth list` lists), from credentials.db. */
export function readGcloudCredentialAccounts(configDir: string): Promise<string[] | undefined> {
  return readGcloudDb(join(configDir, 'credentials.db'), (db) => (db.prepare('SELECT account_id FROM credentials').all() as { account_id: string }[]).map((r) => r.account_id));
}

export interface GcloudSession {
  /** When gcloud's cached access token for the account expires (ms since the epoch). */
  accessTokenExpiry: number | null;
  /** exp of the last ID token gcloud cached for the account. */
  idTokenExpiry: number | null;
}

/**
 * gcloud's cached tokens for an account, from access_tokens.db (SQLite), where this Node has node:sqlite.
 * Undefined when there is nothing to read; never throws.
 */
export function readGcloudSession(configDir: string, account: string): Promise<GcloudSession | undefined> {
  return readGcloudDb(join(configDir, 'access_tokens.db'), (db) => {
    const row = db.prepare('SELECT token_expiry, id_token FROM access_tokens WHERE account_id = ?').get(account) as { token_expiry?: string; id_token?: string } | undefined;
    if (!row) return undefined;
    // gcloud stores naive UTC timestamps ("2026-01-01 12:00:00.123456").
    const expiry = row.token_expiry ? Date.parse(`${row.token_expiry.replace(' ', 'T').replace(/\.(\d{3})\d*$/, '.$1')}Z`) : NaN;
    const idExp = row.id_token ? Number(JSON.parse(Buffer.from(row.id_token.split('.')[1] ?? '', 'base64url').toString() || '{}').exp) : NaN;
    return { accessTokenExpiry: Number.isFinite(expiry) ? expiry : null, idTokenExpiry: Number.isFinite(idExp) ? idExp * 1000 : null };
  });
}
