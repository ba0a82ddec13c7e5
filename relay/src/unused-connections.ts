// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Connections that were opened but never carried a request. HTTP clients open such spare
 * connections (Node's fetch does after an aborted upload), and Node's `server.close()` waits for
 * them: it closes idle keep-alive connections, but not one that has sent nothing yet, which it
 * keeps until its header timeout — a shutdown took 70 s instead of 20 ms. Nothing is lost by
 * closing them: no request is in flight on them.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Starts tracking `server`'s connections; the function it returns closes those that never sent a request. */
export function trackUnusedConnections(server: Server): () => void {
  const unused = new Set<Socket>();
  const track = (socket: Socket): void => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  };
  // A TLS server hands requests the TLS socket, which 'secureConnection' gives; 'connection'
  // would give the TCP socket underneath, never seen again.
  const isTls = typeof (server as unknown as { setSecureContext?: unknown }).setSecureContext === 'function';
  server.on(isTls ? 'secureConnection' : 'connection', track);
  server.on('request', (req: { socket: Socket }) => unused.delete(req.socket));
  server.on('upgrade', (req: { socket: Socket }) => unused.delete(req.socket));
  return () => {
    for (const socket of unused) socket.destroy();
    unused.clear();
  };
}
