// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Provisioning sockets (DESIGN §3, linking): a device being linked opens an unauthenticated
 * WebSocket and gets a random address; an existing device of the account sends that socket
 * exactly one opaque message (encrypted to a key the relay never sees), and the socket closes.
 * Sockets live at most `ttlMs` and their number is capped.
 */
import { randomBytes } from 'node:crypto';
import { encodeFrame, ParleyError, toBase64Url } from '@parley/protocol';
import type { Clock } from './clock.js';

/** The part of a WebSocket the hub uses. */
export interface ProvisioningSocket {
  send(data: Uint8Array): void;
  close(code: number, reason: string): void;
  on(event: 'close', listener: () => void): unknown;
}

/** Options of a ProvisioningHub. */
export interface ProvisioningHubOptions {
  readonly clock: Clock;
  /** How long a socket may wait for its message, ms. */
  readonly ttlMs: number;
  /** Most provisioning sockets open at once. */
  readonly maxSockets: number;
}

interface Entry {
  readonly socket: ProvisioningSocket;
  readonly timer: NodeJS.Timeout;
}

/** See the module comment. */
export class ProvisioningHub {
  private readonly opts: ProvisioningHubOptions;
  private readonly byAddress = new Map<string, Entry>();

  constructor(opts: ProvisioningHubOptions) {
    this.opts = opts;
  }

  /** Open provisioning sockets. */
  get size(): number {
    return this.byAddress.size;
  }

  /** Whether another socket may be opened. */
  get full(): boolean {
    return this.byAddress.size >= this.opts.maxSockets;
  }

  /** Registers a socket and sends it its address. */
  open(socket: ProvisioningSocket): string {
    const address = toBase64Url(randomBytes(18));
    const timer = setTimeout(() => this.drop(address, 1000, 'provisioning expired'), this.opts.ttlMs);
    timer.unref();
    this.byAddress.set(address, { socket, timer });
    socket.on('close', () => this.forget(address));
    socket.send(
      encodeFrame({
        kind: { case: 'provisioningAddress', value: { address, expiresAt: BigInt(this.opts.clock.now() + this.opts.ttlMs) } },
      }),
    );
    return address;
  }

  /**
   * Hands `body` to the socket at `address` and closes it.
   * @throws ParleyError NOT_FOUND when no socket waits there (never opened, expired or used).
   */
  deliver(address: string, body: Uint8Array): void {
    const entry = this.byAddress.get(address);
    if (!entry) throw new ParleyError('NOT_FOUND', 'no device is waiting at this provisioning address');
    this.forget(address);
    entry.socket.send(encodeFrame({ kind: { case: 'provisioningMessage', value: { body } } }));
    entry.socket.close(1000, 'provisioned');
  }

  /** Closes every socket (shutdown). */
  closeAll(): void {
    for (const address of [...this.byAddress.keys()]) this.drop(address, 1012, 'SERVER_SHUTDOWN');
  }

  private drop(address: string, code: number, reason: string): void {
    const entry = this.byAddress.get(address);
    if (!entry) return;
    this.forget(address);
    entry.socket.close(code, reason);
  }

  private forget(address: string): void {
    const entry = this.byAddress.get(address);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.byAddress.delete(address);
  }
}
