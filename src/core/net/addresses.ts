// What kind of address a host is: loopback (this machine) or link-local (where cloud metadata servers live).
// Every rule that treats these specially (plain http allowed, never proxied, never relayed) asks here.
import { isIP } from 'node:net';

/** A host without the brackets of an IPv6 literal, lower-cased: what sockets and comparisons want. */
export function bareHost(host: string): string {
  return host.replace(/^\[|\]$/g, '').toLowerCase();
}

export function isLoopback(host: string): boolean {
  const h = bareHost(host);
  if (h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)) return true;
  const inner = embeddedIpv4(h);
  return inner !== null && inner.mapped && inner.v4.startsWith('127.');
}

/**
 * 169.254.0.0/16, fe80::/10, AWS's fd00:ec2::254 (IPv4-mapped and NAT64 forms of the IPv4 ones too, in any spelling)
 * and Google's metadata names: the metadata servers of Google, AWS and Azure.
 */
export function isLinkLocal(hostname: string): boolean {
  const h = bareHost(hostname).replace(/\.$/, '');
  if (h === 'metadata.google.internal' || h === 'metadata' || h === 'metadata.goog') return true;
  const v4 = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(embeddedIpv4(h)?.v4 ?? h);
  if (v4) return v4[1] === '169' && v4[2] === '254';
  if (isIP(h) !== 6) return false;
  const groups = ipv6Groups(h)!;
  return (groups[0]! & 0xffc0) === 0xfe80 || (groups[0] === 0xfd00 && groups[1] === 0xec2 && groups.slice(2, 7).every((g) => g === 0) && groups[7] === 0x254);
}

/** The IPv4 address inside an IPv4-mapped (::ffff:0:0/96, either spelling) or NAT64 (64:ff9b::/96) IPv6 address. */
export function embeddedIpv4(host: string): { v4: string; mapped: boolean } | null {
  const groups = isIP(host) === 6 ? ipv6Groups(host) : null;
  if (!groups) return null;
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0);
  if (!mapped && !nat64) return null;
  return { v4: [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.'), mapped };
}

/** The eight 16-bit groups of a valid IPv6 literal (zone dropped, a trailing dotted quad folded in). */
function ipv6Groups(address: string): number[] | null {
  let s = address.split('%')[0]!;
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const first = head ? head.split(':') : [];
  const last = tail ? tail.split(':') : [];
  const groups = [...first, ...Array<string>(tail === undefined ? 0 : 8 - first.length - last.length).fill('0'), ...last].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : null;
}
