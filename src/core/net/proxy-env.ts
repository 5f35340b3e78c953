// Which proxy a request goes through: HTTPS_PROXY, HTTP_PROXY and NO_PROXY (either case, lowercase first, as
// curl reads them), the way Google's libraries and gcloud honour them. One decision for every request idcall
// makes, so the report can say which went through a proxy.
import { bareHost, isLinkLocal, isLoopback } from './addresses.ts';
import type { Env } from '../context.ts';

const variable = (env: Env, name: string): string | undefined => env[name.toLowerCase()] || env[name] || undefined;

/**
 * The proxy URL for `url`, or undefined to connect directly. Loopback and link-local addresses (the metadata servers
 * of Google, AWS and Azure: 169.254.169.254, fd00:ec2::254, metadata.google.internal) are always direct: through a
 * proxy they would reach the proxy's machine, not this one.
 */
export function proxyFor(url: URL, env: Env): string | undefined {
  if (isLoopback(url.hostname) || isLinkLocal(url.hostname)) return undefined;
  const proxy = url.protocol === 'https:' ? (variable(env, 'HTTPS_PROXY') ?? variable(env, 'HTTP_PROXY')) : variable(env, 'HTTP_PROXY');
  if (!proxy || exemptFromProxy(url, env)) return undefined;
  return proxy;
}

/** Whether any of HTTPS_PROXY / HTTP_PROXY (either case) is set. */
export function proxyConfigured(env: Env): boolean {
  return Boolean(variable(env, 'HTTPS_PROXY') ?? variable(env, 'HTTP_PROXY'));
}

/** NO_PROXY: `*`, or host names (a leading `.` or `*.` optional, matching subdomains too) and IPs, each with an optional :port. */
export function exemptFromProxy(url: URL, env: Env): boolean {
  const noProxy = variable(env, 'NO_PROXY') ?? '';
  const host = bareHost(url.hostname);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return noProxy
    .split(/[\s,]+/)
    .filter(Boolean)
    .some((raw) => {
      if (raw === '*') return true;
      const lower = raw.toLowerCase().replace(/^\*?\./, '.');
      // An IPv6 address without brackets has no port: its colons are its own.
      const entry = (lower.match(/:/g) ?? []).length > 1 && !lower.startsWith('[') ? [lower, lower, undefined] : /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(lower);
      if (!entry) return false;
      const [, name, entryPort] = entry;
      if (entryPort && entryPort !== port) return false;
      const bare = name!.replace(/^\./, '');
      return host === bare || host.endsWith(`.${bare}`);
    });
}

/** A proxy URL fit for a report: no user name or password. */
export function displayProxy(proxy: string): string {
  try {
    const url = new URL(proxy);
    return `${url.protocol}//${url.host}`;
  } catch {
    return '(unparseable proxy URL)';
  }
}
