// What kind of address a host is: loopback (this machine) or link-local (where cloud metadata servers live).
// Every rule that treats these specially (plain http allowed, never proxied, never relayed) asks here.
import { isIP } from 'node:net';

/** A host without the brackets of an IPv6 literal, lower-cased: what sockets and comparisons want. */
export function bareHost(host: string): string {
  return host.replace(/^\[|\]$/g, '').toLowerCase();
}

export function isLoopback(host: string): boolean {
  const h = bareHost(host);
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * 169.254.0.0/16, fe80::/10, AWS's fd00:ec2::254 (IPv4-mapped forms too) and Google's metadata names: the metadata
 * servers of Google, AWS and Azure.
 */
export function isLinkLocal(hostname: string): boolean {
  const h = bareHost(hostname).replace(/\.$/, '');
  if (h === 'metadata.google.internal' || h === 'metadata' || h === 'metadata.goog') return true;
  const v4 = /^(?:::ffff:)?(\d+)\.(\d+)\.\d+\.\d+$/.exec(h);
  if (v4) return v4[1] === '169' && v4[2] === '254';
  if (isIP(h) !== 6) return false;
  return /^fe[89ab][0-9a-f]?:/.test(h) || /^fd00:0*ec2::0*254$/.test(h);
}
