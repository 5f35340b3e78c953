// Raw sockets for tests that must send what well-behaved clients never do (bad CONNECT lines, early closes).
import { connect, type Socket } from 'node:net';

/** Send `text`, collect everything until the server closes or `waitMs` passes; resolves with what came back. */
export function rawExchange(port: number, text: string | Buffer, waitMs = 2000, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    let received = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (d) => (received += d));
    socket.on('close', done);
    socket.on('error', done);
    socket.write(text);
  });
}

/** Open a socket, send `text`, resolve once it is written; the caller closes it however the test needs. */
export async function rawOpen(port: number, text: string, host = '127.0.0.1'): Promise<Socket> {
  const socket = connect(port, host);
  socket.on('error', () => {});
  await new Promise<void>((r) => socket.write(text, () => r()));
  return socket;
}

/** Poll `check` until it holds or `ms` passes (a bound for the test, not a speed claim). */
export async function eventually(check: () => boolean, ms = 5000, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The status code of the first response line in raw HTTP text. */
export const statusOf = (raw: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);

/** After an upgrade handshake on `socket`, send "ping" and resolve with everything received once "echo:ping" is back. */
export function pingThroughUpgrade(socket: Socket): Promise<string> {
  let received = '';
  return new Promise((resolve) => {
    socket.on('data', (d) => {
      received += d;
      if (received.includes('\r\n\r\n') && !received.includes('echo:')) socket.write('ping');
      if (received.includes('echo:ping')) resolve(received);
    });
  });
}
