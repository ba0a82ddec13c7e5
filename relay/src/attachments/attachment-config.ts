// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The attachment settings of the relay config: which blob store, its cap and limits, and the S3
 * connection. The defaults live in DEFAULT_RELAY_CONFIG with the rest; this module checks them.
 */
import { encryptedAttachmentSize } from '@parley/crypto';

/** The blob stores a relay can use. */
export const ATTACHMENT_STORES = ['filesystem', 's3'] as const;

/** One of {@link ATTACHMENT_STORES}. */
export type AttachmentStoreKind = (typeof ATTACHMENT_STORES)[number];

/** The attachment part of RelayConfig. */
export interface AttachmentConfig {
  /** `filesystem` (files under `<data>/attachments`) or `s3`. Default filesystem. */
  readonly attachmentStore: AttachmentStoreKind;
  /** Largest attachment (the file; its encrypted blob is up to 5% larger), bytes. Default 100 MiB. */
  readonly maxAttachmentBytes: number;
  /** Upload slots per device per hour. Default 200. */
  readonly attachmentSlotsPerHour: number;
  /** S3 bucket (required with `attachmentStore: 's3'`). Default none. */
  readonly s3Bucket: string | undefined;
  /** S3 service URL (MinIO, Ceph…); default AWS. */
  readonly s3Endpoint: string | undefined;
  /** S3 region. Default us-east-1. */
  readonly s3Region: string;
  /** S3 access key id; with the secret, else the SDK's credential chain. Default none. */
  readonly s3AccessKeyId: string | undefined;
  /** S3 secret access key (secret: give it by environment). Default none. */
  readonly s3SecretAccessKey: string | undefined;
  /** Path-style S3 URLs (`endpoint/bucket/key`), which most non-AWS services need. Default false. */
  readonly s3ForcePathStyle: boolean;
}

/** Largest `maxAttachmentBytes` an operator can set: 2 GiB. */
export const MAX_ATTACHMENT_BYTES_LIMIT = 2 * 1024 * 1024 * 1024;

/** The largest encrypted blob a relay accepts for files of at most `maxAttachmentBytes`. */
export function maxBlobBytes(maxAttachmentBytes: number): number {
  return encryptedAttachmentSize(maxAttachmentBytes);
}

/** What is wrong with the attachment settings, or undefined. Messages name the flag, never a secret. */
export function attachmentConfigProblem(c: AttachmentConfig): string | undefined {
  if (!ATTACHMENT_STORES.includes(c.attachmentStore)) return `--attachment-store must be ${ATTACHMENT_STORES.join(' or ')}`;
  if (!Number.isSafeInteger(c.maxAttachmentBytes) || c.maxAttachmentBytes < 1024 || c.maxAttachmentBytes > MAX_ATTACHMENT_BYTES_LIMIT) {
    return `--max-attachment-bytes must be an integer from 1024 to ${MAX_ATTACHMENT_BYTES_LIMIT}`;
  }
  if (!Number.isSafeInteger(c.attachmentSlotsPerHour) || c.attachmentSlotsPerHour < 1 || c.attachmentSlotsPerHour > 1_000_000) {
    return '--attachment-slots-per-hour must be an integer from 1 to 1000000';
  }
  for (const [flag, v] of [
    ['--s3-bucket', c.s3Bucket],
    ['--s3-endpoint', c.s3Endpoint],
    ['--s3-access-key-id', c.s3AccessKeyId],
    ['PARLEY_S3_SECRET_ACCESS_KEY', c.s3SecretAccessKey],
  ] as const) {
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) return `${flag} must not be empty`;
  }
  if (typeof c.s3Region !== 'string' || !/^[a-z0-9-]{1,64}$/.test(c.s3Region)) return '--s3-region must be a region name such as us-east-1';
  if (typeof c.s3ForcePathStyle !== 'boolean') return '--s3-path-style must be true or false';
  if (c.s3Endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(c.s3Endpoint);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) {
      return '--s3-endpoint must be an http:// or https:// URL without credentials, query or fragment';
    }
  }
  if ((c.s3AccessKeyId === undefined) !== (c.s3SecretAccessKey === undefined)) {
    return '--s3-access-key-id and PARLEY_S3_SECRET_ACCESS_KEY go together: give both, or neither to use the SDK credential chain';
  }
  if (c.attachmentStore === 's3') {
    if (c.s3Bucket === undefined) return '--attachment-store s3 needs --s3-bucket';
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(c.s3Bucket)) return '--s3-bucket must be an S3 bucket name (3-63 of a-z, 0-9, . and -)';
  }
  return undefined;
}
