// HTTP/2 upstreams through a corporate proxy (HTTPS_PROXY): node:http2 wants its socket the moment it connects, and a
// CONNECT tunnel only exists once the proxy has said 200. A linked pair of streams bridges the two: one side goes to
// node:http2 (or TLS) at once and buffers what it writes; the other is joined to the proxy's socket once the tunnel
// is open. A proxy that refuses, stalls or speaks nonsense fails the side node:http2 holds, with the reason.
import { connect as netConnect } from 'node:net';
import { duplexPair, type Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { bareHost } from '../core/net/addresses.ts';

const MAX_RESPONSE_HEAD = 16 * 1024;

/** A stream to `host:port` through the HTTP proxy `proxy` (userinfo becomes Proxy-Authorization: Basic). */
export function tunnelThrough(proxy: URL, host: string, port: number, timeoutMs: number, tls?: ConnectionOptions): Duplex {
  const [ours, theirs] = duplexPair();
  const proxyPort = Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80));
  const raw = proxy.protocol === 'https:' ? tlsConnect({ ...tls, host: bareHost(proxy.hostname), port: proxyPort, servername: bareHost(proxy.hostname) }) : netConnect({ host: bareHost(proxy.hostname), port: proxyPort });
  const fail = (err: Error) => {
    raw.destroy();
    ours.destroy(err);
  };
  raw.setTimeout(timeoutMs, () => fail(Object.assign(new Error(`the proxy did not open a tunnel within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
  let open = false;
  raw.once('error', fail);
  // A proxy that hangs up before answering CONNECT fails the stream too, rather than leave node:http2 waiting.
  raw.once('close', () => (open ? theirs.destroy() : fail(Object.assign(new Error('the proxy closed the connection before answering CONNECT'), { code: 'ECONNRESET' }))));
  theirs.on('error', () => raw.destroy());
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const credentials = proxy.username ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}\r\n` : '';
  raw.once(proxy.protocol === 'https:' ? 'secureConnect' : 'connect', () => raw.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${credentials}\r\n`));
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_RESPONSE_HEAD) fail(Object.assign(new Error('the proxy answered CONNECT with an endless head'), { code: 'ERR_PROXY_TUNNEL' }));
      return;
    }
    raw.off('data', onData);
    const statusLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
    // describeNetworkError reads the reason after the last colon, as for Node's own tunnel errors.
    if (status < 200 || status > 299) return fail(Object.assign(new Error(`the proxy refused the tunnel to ${authority}: ${statusLine.slice(9) || 'no status line'}`), { code: 'ERR_PROXY_TUNNEL' }));
    raw.setTimeout(0);
    open = true;
    const rest = head.subarray(end + 4);
    if (rest.length) theirs.write(rest);
    raw.pipe(theirs);
    theirs.pipe(raw);
  };
  raw.on('data', onData);
  return ours;
}
