// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A real S3 API server on loopback for tests: s3rver (a root dev dependency) on a free port,
 * storing into a fresh temporary directory, with buckets made on demand. Credentials are
 * s3rver's fixed `S3RVER` / `S3RVER`.
 *
 * s3rver does not check V4 signatures (neither their headers nor their expiry); tests of what a
 * signature covers inspect the URL instead of relying on the server.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

/** A running test server. */
export interface S3TestServer {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Creates a fresh bucket (3–63 characters) and returns its name. */
  createBucket(prefix?: string): Promise<string>;
  /** Stops the server and deletes its files. */
  stop(): Promise<void>;
}

/** Starts s3rver on 127.0.0.1 and a free port. */
export async function startS3TestServer(): Promise<S3TestServer> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const directory = await mkdtemp(join(tmpdir(), 'parley-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const admin = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
  let n = 0;
  return {
    endpoint,
    credentials,
    async createBucket(prefix = 'parley-test') {
      const name = `${prefix}-${process.pid}-${++n}`;
      await admin.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async stop() {
      admin.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
