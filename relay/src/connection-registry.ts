// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The devices connected to this relay process: one consumer per device queue. A second
 * connection of a device takes over and the first is closed with CONNECTED_ELSEWHERE.
 */
import type { DeviceConnection } from './device-connection.js';

/** See the module comment. */
export class ConnectionRegistry {
  private readonly byKey = new Map<string, DeviceConnection>();

  /** Connected devices. */
  get size(): number {
    return this.byKey.size;
  }

  /** Registers `conn` as its device's consumer, closing a previous connection of the same device. */
  attach(conn: DeviceConnection): void {
    const previous = this.byKey.get(conn.key);
    this.byKey.set(conn.key, conn);
    if (previous && previous !== conn) previous.closeWith('CONNECTED_ELSEWHERE');
  }

  /** Forgets `conn` if it is still its device's consumer. */
  detach(conn: DeviceConnection): void {
    if (this.byKey.get(conn.key) === conn) this.byKey.delete(conn.key);
  }

  /** The connection of a device, if connected here. */
  get(key: string): DeviceConnection | undefined {
    return this.byKey.get(key);
  }

  /** Every connection (for keepalive and shutdown). */
  all(): IterableIterator<DeviceConnection> {
    return this.byKey.values();
  }
}
