// One port for HTTP/1.1 and HTTP/2 cleartext with prior knowledge (how gRPC clients reach a local port): each new
// connection is recognised by the HTTP/2 connection preface and handed to an http2 server, or left to node:http.
import type { Server } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { Socket } from 'node:net';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Route connections on `server` that open with the HTTP/2 preface to `h2`. Call before `server` starts listening. */
export function shareWithH2c(server: Server, h2: Http2Server): { close(): void } {
  // node:http's own connection listener, called for everything that is not HTTP/2.
  const http1 = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  // Connections that have not sent a byte yet belong to neither server: bound their wait, and end them on close.
  const undecided = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    let seen = Buffer.alloc(0);
    undecided.add(socket);
    socket.setTimeout(server.headersTimeout || 60_000, () => socket.destroy());
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const h2Preface = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2Preface && seen.length < PREFACE.length) return; // a preface split across packets: wait for the rest
      undecided.delete(socket);
      socket.setTimeout(0);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      socket.unshift(seen);
      if (h2Preface) {
        // node:http's sockets allow half-open connections; HTTP/2 has no use for one, and a client that sent its
        // preface and went away would otherwise hold the socket (and its session) open until a timeout.
        socket.allowHalfOpen = false;
        h2.emit('connection', socket);
      } else for (const listener of http1) listener.call(server, socket);
      process.nextTick(() => socket.resume());
    };
    // A client that closes before it has said which protocol it speaks is done: no half-open wait.
    const onEnd = () => socket.destroy();
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', () => undecided.delete(socket));
    socket.on('error', () => socket.destroy());
  });
  return {
    close() {
      for (const socket of undecided) socket.destroy();
    },
  };
}
