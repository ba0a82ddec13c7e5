// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Protocol limits as named defaults. Relays may lower the operator-tunable ones in their
 * config; clients must stay within these. Units are in the names.
 */
export const LIMITS = {
  /** Largest WebSocket message a relay accepts (a Send with every device's ciphertext). */
  maxFrameBytes: 1024 * 1024,
  /** Largest ciphertext of one device message. */
  maxEnvelopeBytes: 256 * 1024,
  /**
   * Default cap of a SendMulti's payload (the sealed-sender v2 upload), bytes: room for a shared
   * body of maxEnvelopeBytes and the per-recipient part of 1,000 accounts with several devices
   * each (about 50 bytes an account plus 3 a device). Relays may set it from 1 KiB to maxFrameBytes.
   */
  maxMultiPayloadBytes: 512 * 1024,
  /** Default cap of the recipient accounts one SendMulti may name (a group of 1,000 members). */
  maxMultiRecipients: 1000,
  /** Most device messages in one Send (an account has at most this many devices). */
  maxDevicesPerSend: 64,
  /** Default device cap per account; operators may set it from 1 to maxDevicesPerSend. */
  defaultMaxDevicesPerAccount: 16,
  /** Largest number of unacknowledged envelopes in flight on one connection. */
  defaultWindowEnvelopes: 1024,
  /** Most envelopes the relay packs into one Deliver frame. */
  maxEnvelopesPerDeliver: 256,
  /** Most sequence numbers in one Ack's selective list. */
  maxAckSeqs: 4096,
  /** Default queue cap per device (envelopes); past it senders get QUEUE_FULL. */
  defaultMaxQueueDepth: 100_000,
  /** Default retention of queued envelopes and of message-id dedup entries, milliseconds. */
  defaultRetentionMs: 30 * 24 * 3600 * 1000,
  /** Message ids are exactly this many bytes. */
  messageIdBytes: 16,
  /** ACIs are exactly this many bytes (a UUID). */
  aciBytes: 16,
  /** Sealed-sender access keys (derived from a profile key) are exactly this many bytes. */
  accessKeyBytes: 16,
  /** Presence tokens (PUT /v1/accounts/me/presence, PresenceTarget.token) are exactly this many bytes. */
  presenceTokenBytes: 32,
  /** Device ids are 1..maxDeviceId. */
  maxDeviceId: 127,
  /** libsignal registration ids are 1..maxRegistrationId (14 bits). */
  maxRegistrationId: 0x3fff,
  /** Sender timestamps may be at most this far in the future of the relay clock, milliseconds. */
  maxClockSkewMs: 24 * 3600 * 1000,
  /** Most one-time EC or Kyber prekeys in one upload. */
  maxPreKeysPerUpload: 100,
  /** Most one-time prekeys of each kind stored per device. */
  maxStoredPreKeys: 1000,
  /** Largest JSON body on REST endpoints, bytes. */
  maxHttpBodyBytes: 512 * 1024,
  /** Largest provisioning message (an encrypted identity key pair and a link token), bytes. */
  maxProvisioningMessageBytes: 64 * 1024,
  /** How long a provisioning socket stays open, milliseconds. */
  provisioningSocketTtlMs: 10 * 60 * 1000,
  /** Username length bounds. */
  minUsernameLength: 3,
  maxUsernameLength: 32,
  /** Domain length bound (DNS name, optionally with :port). */
  maxDomainLength: 253,
} as const;
