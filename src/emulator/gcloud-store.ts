// gcloud's own credential store (google-wire.md §8.6), so the written gcloud/ folder is a real login:
// credentials.db (SQLite `credentials (account_id TEXT PRIMARY KEY, value BLOB)`, the credential as JSON) and
// access_tokens.db (`access_tokens (account_id, access_token, token_expiry TIMESTAMP, rapt_token, id_token)`).
// `gcloud auth list`, `print-access-token` and `print-identity-token` then work offline against the emulator.
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface StoredAccount {
  account: string;
  credential: Record<string, unknown>;
  /** A cached access token and when it expires (ms since the epoch), as gcloud keeps them. */
  accessToken?: { token: string; expiresAt: number; idToken?: string };
}

/** Python's naive UTC `str(datetime)`, which gcloud's sqlite TIMESTAMP columns hold. */
const timestamp = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '').replace(/\.(\d{3})$/, '.$1000');

/** Writes both databases (0600); false when this Node has no node:sqlite (Node 22 before 22.13), and nothing is written. */
export async function writeGcloudStore(gcloudDir: string, accounts: StoredAccount[]): Promise<boolean> {
  let DatabaseSync: typeof import('node:sqlite').DatabaseSync;
  try {
    ({ DatabaseSync } = await import('node:sqlite'));
  } catch {
    return false;
  }
  const credentials = join(gcloudDir, 'credentials.db');
  const tokens = join(gcloudDir, 'access_tokens.db');
  // Written anew each time: a planted file (or link) in its place is replaced, never opened.
  await rm(credentials, { force: true });
  await rm(tokens, { force: true });
  const creds = new DatabaseSync(credentials);
  try {
    creds.exec('CREATE TABLE IF NOT EXISTS "credentials" (account_id TEXT PRIMARY KEY, value BLOB)');
    const insert = creds.prepare('INSERT INTO "credentials" (account_id, value) VALUES (?, ?)');
    for (const a of accounts) insert.run(a.account, JSON.stringify(a.credential));
  } finally {
    creds.close();
  }
  const cache = new DatabaseSync(tokens);
  try {
    cache.exec('CREATE TABLE IF NOT EXISTS "access_tokens" (account_id TEXT PRIMARY KEY, access_token TEXT, token_expiry TIMESTAMP, rapt_token TEXT, id_token TEXT)');
    const insert = cache.prepare('INSERT INTO "access_tokens" (account_id, access_token, token_expiry, rapt_token, id_token) VALUES (?, ?, ?, NULL, ?)');
    for (const a of accounts) if (a.accessToken) insert.run(a.account, a.accessToken.token, timestamp(a.accessToken.expiresAt), a.accessToken.idToken ?? null);
  } finally {
    cache.close();
  }
  await chmod(credentials, 0o600);
  await chmod(tokens, 0o600);
  return true;
}
