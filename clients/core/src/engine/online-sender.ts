// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Online-only sends (typing indicators): encrypted for every device of the destination like any
 * message, but sent with `online: true`, so the relay hands them only to devices connected right
 * now and never queues them (DESIGN §5). They do not go through the durable outbox either: a
 * typing indicator that could not go out now is worth nothing later. The session state the
 * encryption advanced is committed before the send, as for the outbox.
 */
import { isParleyError, aciToBytes, type Aci, type SendResult } from '@parley/protocol';
import { randomMessageId } from '@parley/crypto';
import type { RelayConnection } from '../transport/relay-connection.js';
import { TransportError } from '../transport/transport-error.js';
import type { EngineStore } from './engine-store.js';
import type { Serial } from './serial.js';
import type { SessionManager } from './session-manager.js';

/** Device-set repairs per online send before it is given up. */
const MAX_REPAIRS = 3;

/** What an online sender needs. */
export interface OnlineSenderDeps {
  readonly store: Pick<EngineStore, 'stageProtocol' | 'transaction'>;
  readonly sessions: SessionManager;
  readonly serial: Serial;
  readonly connection: () => RelayConnection | undefined;
  readonly now: () => number;
}

/** See the module comment. */
export class OnlineSender {
  private readonly deps: OnlineSenderDeps;

  constructor(deps: OnlineSenderDeps) {
    this.deps = deps;
  }

  /**
   * Encrypts `content` for every device of `destinationAci` and sends it online-only. Resolves
   * with the number of devices the relay handed it to (0: none was connected).
   * @throws TransportError when not connected; ParleyError or CryptoError when the relay or the
   *   session refused it (UNTRUSTED_IDENTITY for a changed key: nothing was sent).
   */
  async send(destinationAci: string, content: Uint8Array): Promise<number> {
    for (let round = 0; ; round++) {
      const conn = this.deps.connection();
      if (!conn?.connected) throw new TransportError('DISCONNECTED', 'not connected to the relay');
      const ciphertexts = await this.deps.serial.run(async () => {
        const staged = this.deps.store.stageProtocol();
        let out;
        try {
          const sessions = this.deps.sessions.withStores(staged.stores);
          await sessions.ensureSessions(destinationAci);
          out = await sessions.encryptForAccount(destinationAci, content);
        } catch (err) {
          staged.discard();
          throw err;
        }
        this.deps.store.transaction(() => staged.commit());
        return out;
      });
      if (ciphertexts.length === 0) return 0;
      let result: SendResult;
      try {
        result = await conn.send({
          destination: aciToBytes(destinationAci as Aci),
          messageId: randomMessageId(),
          timestamp: BigInt(this.deps.now()),
          urgent: false,
          online: true,
          messages: ciphertexts.map((c) => ({ ...c })),
        });
      } catch (err) {
        if (round < MAX_REPAIRS && (isParleyError(err, 'MISMATCHED_DEVICES') || isParleyError(err, 'STALE_DEVICES'))) {
          const d = err.details;
          await this.deps.serial.run(() =>
            this.deps.sessions.repair(destinationAci, { missing: d.missingDevices ?? [], extra: d.extraDevices ?? [], stale: d.staleDevices ?? [] }),
          );
          continue;
        }
        throw err;
      }
      return result.devices.length;
    }
  }
}
