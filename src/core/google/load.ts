// Parse and validate a credential file: one clear sentence naming the file and the field when it is wrong.
import { createPrivateKey } from 'node:crypto';
import { GOOGLE_STS_URL } from '../endpoints.ts';
import { IdcallError } from '../errors.ts';
import { describeFileProblem, FileReadError, readBoundedFile, type FileProblem } from '../files.ts';
import { registerCredentialSecrets } from '../redact.ts';
import type { CredentialType } from '../report.ts';

export interface LoadedCredential {
  type: CredentialType;
  path: string | null;
  json: Record<string, any>;
  /** Who the credential acts as, as far as the file says. */
  principal: string | null;
  /** Facts a person wants to see (source of an impersonation, pool of a federation). */
  details: string[];
  /** Problems with the file that do not stop it working, each with its fix. */
  warnings: { text: string; fix: string }[];
}

const MAX_BYTES = 256 * 1024;
const TYPES: CredentialType[] = ['service_account', 'authorized_user', 'impersonated_service_account', 'external_account', 'external_account_authorized_user', 'gdch_service_account'];

/** What to do about a credential file that cannot be read as one (doctor says the same before loading it). */
export function credentialFileFix(problem: FileProblem, via: string): string {
  switch (problem) {
    case 'missing':
      return `Point ${via} at an existing key or credential file, or unset it.`;
    case 'denied':
      return 'Make it readable by this user (chmod 600 and chown to you).';
    case 'directory':
      return `Point ${via} at the JSON file inside it.`;
    case 'not_regular':
      return `Point ${via} at a regular JSON file.`;
    default:
      return `Check the path in ${via}.`;
  }
}

async function readCredentialFile(path: string, via: string): Promise<{ json: Record<string, any>; mode: number }> {
  const fileError = (message: string, fix: string, cause?: unknown) => new IdcallError('CREDENTIALS_FILE_ERROR', message, fix, { cause });
  const named = `${path} (from ${via})`;
  let bytes: Buffer;
  let mode: number;
  try {
    ({ bytes, mode } = await readBoundedFile(path, MAX_BYTES));
  } catch (err) {
    if (!(err instanceof FileReadError)) throw err;
    switch (err.problem) {
      case 'missing':
      case 'denied':
      case 'directory':
      case 'not_regular':
        throw fileError(`Credential file ${named} ${describeFileProblem(err.problem)}.`, credentialFileFix(err.problem, via), err);
      case 'too_large':
        throw fileError(`Credential file ${named} is ${((err.size ?? MAX_BYTES) / 1024 / 1024).toFixed(1)} MB; a credential file is a few KB.`, `Point ${via} at the JSON key or credential file, not another file.`, err);
      default:
        throw fileError(`Credential file ${named} cannot be opened: ${err.message}.`, `Check the path in ${via}.`, err);
    }
  }
  if (bytes.length === 0 || bytes.toString('utf8').trim() === '') throw fileError(`Credential file ${named} is empty.`, `Download the key again, or run \`gcloud auth application-default login\`.`);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (text.includes('\uFFFD')) throw fileError(`Credential file ${named} is not UTF-8 text (it contains invalid bytes).`, `Point ${via} at the JSON file Google gave you, not a binary (a .p12 key needs converting to JSON).`);
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    const line = jsonErrorLine(text, (err as Error).message);
    // V8's message quotes the text around the error, which may be part of a key or refresh token: the cause keeps
    // only the position, even under --debug.
    throw fileError(`Credential file ${named} is not valid JSON${line ? ` (error at line ${line})` : ''}.`, `Download the key again; a truncated or hand-edited file is the usual cause.`, new SyntaxError(`JSON syntax error${line ? ` at line ${line}` : ''}`));
  }
  registerCredentialSecrets(json);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw fileError(`Credential file ${named} must contain a JSON object, not ${json === null ? 'null' : Array.isArray(json) ? 'an array' : `a ${typeof json}`}.`, `Point ${via} at a Google credential file.`);
  return { json: json as Record<string, any>, mode };
}

export async function loadCredentialFile(path: string, via: string, platform: NodeJS.Platform = process.platform): Promise<LoadedCredential> {
  const { json, mode } = await readCredentialFile(path, via);
  const loaded = parseCredential(json, path, via);
  const holdsSecret = 'private_key' in json || 'refresh_token' in json || typeof json.source_credentials === 'object';
  if (holdsSecret && platform !== 'win32' && (mode & 0o077) !== 0) {
    loaded.warnings.push({ text: `${path} is readable by other users (mode ${(mode & 0o777).toString(8)}); it holds a secret`, fix: `chmod 600 ${shellPath(path)}` });
  }
  return loaded;
}

/** Validate one parsed credential object; used for files and for impersonation sources nested inside them. */
export function parseCredential(json: Record<string, any>, path: string | null, via: string, field = ''): LoadedCredential {
  const where = path ? `Credential file ${path}${via ? ` (from ${via})` : ''}` : 'The credential';
  const bad = (name: string, problem: string, fix: string) => new IdcallError('CREDENTIALS_FILE_ERROR', `${where}: field "${field}${name}" ${problem}.`, fix);
  const need = (name: string, fix: string) => {
    const value = json[name];
    if (value === undefined || value === null || value === '') throw bad(name, 'is missing', fix);
    if (typeof value !== 'string') throw bad(name, `must be a string, not ${Array.isArray(value) ? 'an array' : typeof value}`, fix);
    return value;
  };
  const type = json.type;
  if (type === undefined) throw bad('type', 'is missing', 'A Google credential file has a "type" such as "service_account" or "authorized_user"; download it again.');
  if (typeof type !== 'string' || !TYPES.includes(type as CredentialType)) {
    throw new IdcallError(
      'UNSUPPORTED_CREDENTIAL_TYPE',
      `${where}: field "${field}type" is ${JSON.stringify(type)}, which is not a credential type Google's libraries accept (${TYPES.join(', ')}).`,
      'Use a service-account key, `gcloud auth application-default login`, an impersonation or a workload identity federation configuration file.',
    );
  }
  const result: LoadedCredential = { type: type as CredentialType, path, json, principal: null, details: [], warnings: [] };
  const redownload = 'Download a new key: gcloud iam service-accounts keys create key.json --iam-account=SA_EMAIL';
  const relogin = 'Run `gcloud auth application-default login` to write a fresh file.';

  switch (type) {
    case 'service_account': {
      result.principal = need('client_email', redownload);
      const pem = need('private_key', redownload);
      try {
        const key = createPrivateKey(pem);
        if (key.asymmetricKeyType !== 'rsa') throw bad('private_key', `is a ${key.asymmetricKeyType} key; Google service-account keys are RSA`, redownload);
      } catch (err) {
        if (err instanceof IdcallError) throw err;
        throw bad('private_key', 'is not a PEM private key', redownload);
      }
      if (json.token_uri !== undefined) checkUrl(json.token_uri, 'token_uri', bad, redownload);
      result.details.push(`key ${typeof json.private_key_id === 'string' ? json.private_key_id.slice(0, 8) + '…' : '(no private_key_id)'} of ${result.principal}`);
      break;
    }
    case 'authorized_user': {
      need('client_id', relogin);
      need('client_secret', relogin);
      need('refresh_token', relogin);
      if (json.token_uri !== undefined) checkUrl(json.token_uri, 'token_uri', bad, relogin);
      result.principal = typeof json.account === 'string' && json.account ? json.account : null;
      result.details.push(`user credentials for OAuth client ${json.client_id}${json.quota_project_id ? `, quota project ${json.quota_project_id}` : ''}`);
      break;
    }
    case 'impersonated_service_account': {
      const url = need('service_account_impersonation_url', relogin.replace('login', 'login --impersonate-service-account=SA_EMAIL'));
      checkUrl(url, 'service_account_impersonation_url', bad, relogin);
      result.principal = impersonationTarget(url) ?? (() => {
        throw bad('service_account_impersonation_url', `does not name a service account (expected …/serviceAccounts/EMAIL:generateAccessToken)`, relogin);
      })();
      const source = json.source_credentials;
      if (typeof source !== 'object' || source === null || Array.isArray(source)) throw bad('source_credentials', 'is missing or not an object', relogin);
      const nested = parseCredential(source, path, via, `${field}source_credentials.`);
      if (json.delegates !== undefined && json.delegates !== null && !Array.isArray(json.delegates)) throw bad('delegates', 'must be an array', relogin);
      const delegates = (json.delegates ?? []) as unknown[];
      result.details.push(`impersonates ${result.principal} using ${nested.type}${nested.principal ? ` ${nested.principal}` : ''}${delegates.length ? ` via ${delegates.join(' → ')}` : ''}`);
      break;
    }
    case 'external_account': {
      const fix = 'Recreate it with `gcloud iam workload-identity-pools create-cred-config`.';
      const audience = need('audience', fix);
      need('subject_token_type', fix);
      const tokenUrl = json.token_url ?? GOOGLE_STS_URL;
      checkUrl(tokenUrl, 'token_url', bad, fix);
      const cs = json.credential_source;
      if (typeof cs !== 'object' || cs === null || Array.isArray(cs)) throw bad('credential_source', 'is missing or not an object', fix);
      const kinds = ['file', 'url', 'executable', 'environment_id', 'certificate'].filter((k) => cs[k] !== undefined);
      if (kinds.length === 0) throw bad('credential_source', "has none of 'file', 'url', 'executable', 'environment_id' or 'certificate'", fix);
      if (kinds.includes('url')) checkUrl(cs.url, 'credential_source.url', bad, fix);
      const pool = /workload(?:Identity)?Pools\/([^/]+)\/providers\/([^/]+)/.exec(audience) ?? /workforcePools\/([^/]+)\/providers\/([^/]+)/.exec(audience);
      const sa = typeof json.service_account_impersonation_url === 'string' ? impersonationTarget(json.service_account_impersonation_url) : null;
      if (json.service_account_impersonation_url !== undefined) checkUrl(json.service_account_impersonation_url, 'service_account_impersonation_url', bad, fix);
      result.principal = sa ?? federatedPrincipal(audience);
      result.details.push(`pool ${pool?.[1] ?? '?'}, provider ${pool?.[2] ?? '?'}, subject token from ${kinds[0] === 'environment_id' ? String(cs.environment_id) : kinds[0]}${sa ? `, impersonates ${sa}` : ', no service-account impersonation'}`);
      break;
    }
    case 'external_account_authorized_user':
      need('refresh_token', 'Run `gcloud auth application-default login --login-config=…` again.');
      need('client_id', 'Run `gcloud auth application-default login --login-config=…` again.');
      need('client_secret', 'Run `gcloud auth application-default login --login-config=…` again.');
      result.principal = typeof json.audience === 'string' ? `workforce user of ${json.audience}` : null;
      break;
    case 'gdch_service_account':
      result.principal = typeof json.name === 'string' ? json.name : null;
      break;
  }
  return result;
}

export function impersonationTarget(url: string): string | null {
  const match = /serviceAccounts\/([^/:]+):(generateAccessToken|generateIdToken)$/.exec(url);
  return match ? decodeURIComponent(match[1]!) : null;
}

function checkUrl(value: unknown, name: string, bad: (n: string, p: string, f: string) => IdcallError, fix: string): void {
  if (typeof value !== 'string') throw bad(name, 'must be a URL string', fix);
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('scheme');
  } catch {
    throw bad(name, `is not an http(s) URL (${JSON.stringify(value.slice(0, 80))})`, fix);
  }
}

function shellPath(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

/** The line of a JSON syntax error, from V8's message: a position when it gives one, else its quoted excerpt. */
function jsonErrorLine(text: string, message: string): number | undefined {
  const position = /position (\d+)/.exec(message)?.[1];
  if (position) return text.slice(0, Number(position)).split('\n').length;
  const excerpt = /"(?:\.\.\.)?([\s\S]*?)(?:\.\.\.)?" is not valid JSON/.exec(message)?.[1];
  const token = /Unexpected token '([\s\S])'/.exec(message)?.[1];
  if (!excerpt || !token) return undefined;
  const at = text.indexOf(excerpt);
  if (at < 0) return undefined;
  return text.slice(0, at + Math.max(0, excerpt.indexOf(token))).split('\n').length;
}

/**
 * The IAM member a federated identity acts as, from the provider's audience: what a grant names and what a report can
 * show. Every identity of the pool is covered (principalSet …/*); the exact subject is only known to the provider.
 */
export function federatedPrincipal(audience: string): string {
  const workload = /\/\/iam\.googleapis\.com\/projects\/([^/]+)\/locations\/global\/workloadIdentityPools\/([^/]+)\//.exec(audience);
  if (workload) return `principalSet://iam.googleapis.com/projects/${workload[1]}/locations/global/workloadIdentityPools/${workload[2]}/*`;
  const workforce = /\/\/iam\.googleapis\.com\/locations\/global\/workforcePools\/([^/]+)\//.exec(audience);
  if (workforce) return `principalSet://iam.googleapis.com/locations/global/workforcePools/${workforce[1]}/*`;
  return 'principalSet://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/*';
}
