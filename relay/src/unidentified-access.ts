// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Authorization of unidentified (sealed-sender) sends (DESIGN §5): the relay does not know who
 * sends, so a send is allowed when it presents the destination's access key — for a
 * multi-recipient send, the XOR of every recipient's key. Every failure before the key has been
 * verified (no key, a wrong key, an unknown account, an account without a key) answers the same
 * UNAUTHORIZED after the same work, so the socket cannot tell which accounts exist. Keys are
 * compared in constant time, against a dummy where the account has none.
 *
 * Failed keys are counted per destination account (unknown ones alike); while an account's
 * bucket is empty every unidentified send to it is refused RATE_LIMITED before its key is
 * compared, so even a right guess is not told from a wrong one.
 */
import { timingSafeEqual } from 'node:crypto';
import type { RateLimiter } from '@parley/keyserver';
import { LIMITS, ParleyError, type Aci } from '@parley/protocol';
import type { DeviceDirectory, DirectoryDevice } from './envelope-intake.js';
import type { RelayMetrics } from './relay-metrics.js';

/** The one refusal of every failed unidentified send. */
export function unauthorizedSend(): ParleyError {
  return new ParleyError('UNAUTHORIZED', 'the access key does not open this destination');
}

// Compared against when the account has no key (or the presented key has a wrong length), so
// that path does the same comparison as a wrong key.
const DUMMY_KEY = new Uint8Array(LIMITS.accessKeyBytes);

/** See the module comment. */
export class UnidentifiedAccess {
  private readonly directory: DeviceDirectory;
  private readonly failures: RateLimiter | undefined;
  private readonly metrics: RelayMetrics;

  /** @param failures failed keys per destination account; undefined: not limited. */
  constructor(directory: DeviceDirectory, failures: RateLimiter | undefined, metrics: RelayMetrics) {
    this.directory = directory;
    this.failures = failures;
    this.metrics = metrics;
  }

  /**
   * Checks the access key of a one-recipient unidentified send.
   * @returns the destination's devices.
   * @throws ParleyError UNAUTHORIZED or RATE_LIMITED.
   */
  async authorize(destination: Aci, presented: Uint8Array): Promise<ReadonlyArray<DirectoryDevice>> {
    const [devices] = await this.authorizeMany([destination], presented);
    return devices!;
  }

  /**
   * Checks the combined access key (XOR of every recipient's key) of a multi-recipient
   * unidentified send; one recipient alone is the one-recipient case.
   * @returns each recipient's devices, in order.
   * @throws ParleyError UNAUTHORIZED or RATE_LIMITED (with the longest wait of the recipients).
   */
  async authorizeMany(recipients: readonly Aci[], presented: Uint8Array): Promise<Array<ReadonlyArray<DirectoryDevice>>> {
    if (this.failures) {
      const decisions = await Promise.all(recipients.map((aci) => this.failures!.peek(aci)));
      const wait = Math.max(0, ...decisions.filter((d) => !d.allowed).map((d) => d.retryAfterMs));
      if (decisions.some((d) => !d.allowed)) {
        this.metrics.rateLimitHit('access_key_failure');
        throw new ParleyError('RATE_LIMITED', 'too many wrong access keys for a destination', { retryAfterMs: wait });
      }
    }
    const [keys, devices] = await Promise.all([this.directory.getAccessKeys(recipients), Promise.all(recipients.map((aci) => this.directory.getDevices(aci)))]);
    const expected = new Uint8Array(LIMITS.accessKeyBytes);
    let complete = true;
    for (let i = 0; i < recipients.length; i++) {
      const key = keys.get(recipients[i]!);
      if (!key || key.length !== LIMITS.accessKeyBytes || !devices[i]) complete = false;
      const k = key?.length === LIMITS.accessKeyBytes ? key : DUMMY_KEY;
      for (let b = 0; b < LIMITS.accessKeyBytes; b++) expected[b]! ^= k[b]!;
    }
    const given = presented.length === LIMITS.accessKeyBytes ? presented : DUMMY_KEY;
    const equal = timingSafeEqual(expected, given);
    if (!equal || !complete || presented.length !== LIMITS.accessKeyBytes) {
      if (this.failures) await Promise.all(recipients.map((aci) => this.failures!.take(aci)));
      throw unauthorizedSend();
    }
    return devices as Array<ReadonlyArray<DirectoryDevice>>;
  }
}
