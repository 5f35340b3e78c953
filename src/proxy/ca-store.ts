// The intercepting proxy's CA (--intercept-tls): the operator's (--ca-cert/--ca-key), or one generated on first start
// in a state directory (0700, key 0600) and reused, name-constrained to the allowlisted domains so that its key
// cannot sign for any other site. Leaves are short-lived and cached per host.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { createCertificateAuthority, loadCertificateAuthority, type CertificateAuthority } from '../core/net/certificates.ts';
import { IdcallError, usageError } from '../core/errors.ts';
import { isDirectory, isRegularFile } from '../core/files.ts';
import { isIP } from 'node:net';
import { parseHostPort } from './guards.ts';

/** Where a generated CA lives by default: the user's config directory. */
export function defaultCaDir(env: Record<string, string | undefined>): string {
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'idcall', 'ca');
}

/** `*.run.app`, `run.app:443`, `api.example.com` → the DNS names the CA may sign for. */
export function constraintsFor(allowHosts: string[]): string[] {
  // Interception picks the leaf by SNI, which never names an IP address: IP entries need no room in the CA.
  return [...new Set(allowHosts.map((h) => parseHostPort(h)?.hostname ?? h.replace(/:\d+$/, '').toLowerCase()).map((h) => h.replace(/^\*\./, '')).filter((h) => h && !isIP(h)))].sort();
}

export interface CaSource {
  caCert?: string;
  caKey?: string;
  caDir: string;
  allowHosts: string[];
  now: number;
}

/** The CA and where it came from; a generated one is written once and reused while its constraints still fit. */
export async function loadOrCreateCa(source: CaSource): Promise<{ ca: CertificateAuthority; origin: string; generated: boolean }> {
  if (source.caCert !== undefined || source.caKey !== undefined) {
    if (source.caCert === undefined || source.caKey === undefined) throw usageError('--ca-cert and --ca-key go together.', 'Pass both (the CA certificate and its private key), or neither to use a generated CA.');
    const [cert, key] = await Promise.all([readPem(source.caCert, '--ca-cert'), readPem(source.caKey, '--ca-key')]);
    return { ca: loadCertificateAuthority(cert, key), origin: source.caCert, generated: false };
  }
  const dir = source.caDir;
  const certPath = join(dir, 'ca.pem');
  const keyPath = join(dir, 'ca-key.pem');
  const constraintsPath = join(dir, 'constraints.json');
  const wanted = constraintsFor(source.allowHosts);
  // A CA for `*`, or for nothing, could not be constrained: its key would sign for every site.
  if (wanted.includes('*') || wanted.length === 0) {
    throw usageError(`--intercept-tls needs --allow-host domains to decrypt (${source.allowHosts.length ? source.allowHosts.join(', ') : 'none given'}): the CA is constrained to them, and '*' or no domain would let it sign for every site.`, "Name the domains, e.g. --allow-host '*.run.app' --allow-host '*.cloudfunctions.net'.");
  }
  if ((await isRegularFile(certPath)) && (await isRegularFile(keyPath))) {
    const recorded = JSON.parse(await readFile(constraintsPath, 'utf8').catch(() => '{}')) as { domains?: string[]; ipsExcluded?: boolean } | string[];
    // Reused while it covers every allowlisted domain (a CA that does not would make clients reject the leaves) and
    // excludes IP addresses (CAs generated before that, recorded as a bare list, could sign for any IP: replaced).
    const existing = Array.isArray(recorded) || !recorded.ipsExcluded ? null : (recorded.domains ?? []);
    if (existing && wanted.every((d) => existing.includes(d))) return { ca: loadCertificateAuthority(await readFile(certPath, 'utf8'), await readFile(keyPath, 'utf8')), origin: certPath, generated: false };
  }
  const ca = createCertificateAuthority({ commonName: `idcall proxy CA (${wanted.join(', ') || 'no hosts'})`, permittedDns: wanted, now: source.now });
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await isDirectory(dir))) throw usageError(`--ca-dir ${dir} is not a directory.`, 'Point --ca-dir at a directory of your own.');
    await chmod(dir, 0o700);
    await writeFile(keyPath, ca.keyPem, { mode: 0o600 });
    await chmod(keyPath, 0o600);
    await writeFile(certPath, ca.certPem, { mode: 0o644 });
    await writeFile(constraintsPath, JSON.stringify({ domains: wanted, ipsExcluded: true }) + '\n', { mode: 0o644 });
  } catch (err) {
    if (err instanceof IdcallError) throw err;
    throw new IdcallError('USAGE_ERROR', `--ca-dir ${dir}: the CA cannot be written there (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`, 'Point --ca-dir at a directory you can write to, or pass --ca-cert and --ca-key.', { cause: err });
  }
  return { ca, origin: certPath, generated: true };
}

async function readPem(path: string, flag: string): Promise<string> {
  if (!(await isRegularFile(path))) throw usageError(`${flag} ${path} is not a readable file.`, `Point ${flag} at a PEM file.`);
  const text = await readFile(path, 'utf8');
  if (!/-----BEGIN [A-Z ]+-----/.test(text)) throw usageError(`${flag} ${path} is not PEM.`, `Point ${flag} at a PEM file.`);
  return text;
}

/** Short-lived leaves per host, reissued well before they expire. */
export function leafCache(ca: CertificateAuthority, now: () => number, lifetimeMs = 24 * 3_600_000): (host: string) => SecureContext {
  const leaves = new Map<string, { context: SecureContext; renewAt: number }>();
  return (host) => {
    const cached = leaves.get(host);
    if (cached && now() < cached.renewAt) return cached.context;
    const leaf = ca.issue([host], { now: now(), lifetimeMs });
    const context = createSecureContext({ cert: leaf.certPem, key: leaf.keyPem });
    if (leaves.size > 1000) leaves.clear();
    leaves.set(host, { context, renewAt: now() + lifetimeMs / 2 });
    return context;
  };
}
