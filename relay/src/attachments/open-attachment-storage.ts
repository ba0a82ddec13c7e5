// SPDX-License-Identifier: AGPL-3.0-only
/** Opens the blob store the config names, for the composition root (`bin/main.ts`). */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { openFsBlobStore } from '../storage/fs-blob-store.js';
import { openS3BlobStore, type S3SdkLogger } from '../storage/s3-blob-store.js';
import type { AttachmentConfig } from './attachment-config.js';
import type { AttachmentStorage } from './attachment-routes.js';
import { UploadTokens } from './upload-tokens.js';

/**
 * The filesystem store under `<dataDir>/attachments`, or the S3 bucket (checked with one
 * listing, so a wrong endpoint, bucket or credential stops the relay at start, not at the
 * first upload).
 * @throws Error naming the store when it cannot be opened (never a credential).
 */
export async function openAttachmentStorage(
  config: AttachmentConfig,
  deps: { readonly dataDir: string; readonly clock: Clock; readonly log: Logger },
): Promise<AttachmentStorage> {
  const tokens = new UploadTokens({ clock: deps.clock });
  if (config.attachmentStore === 'filesystem') {
    return { store: await openFsBlobStore({ root: join(deps.dataDir, 'attachments'), clock: deps.clock, tokens }), tokens };
  }
  const store = openS3BlobStore({
    bucket: config.s3Bucket!,
    region: config.s3Region,
    ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
    forcePathStyle: config.s3ForcePathStyle,
    ...(config.s3AccessKeyId && config.s3SecretAccessKey ? { credentials: { accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey } } : {}),
    clock: deps.clock,
    log: deps.log.child({ component: 's3' }) as unknown as S3SdkLogger,
  });
  try {
    await store.listExpired(0, 1);
  } catch (err) {
    await store.close();
    throw new Error(`cannot use S3 bucket ${config.s3Bucket}${config.s3Endpoint ? ` at ${config.s3Endpoint}` : ''}: ${(err as Error).message}`, { cause: err });
  }
  return { store, tokens };
}
