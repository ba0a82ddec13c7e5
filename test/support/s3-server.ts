// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A real S3 API server on loopback for end-to-end tests: s3rver (a root dev dependency) in this
 * process, on a free port, storing into a fresh temporary directory, with one bucket. The relay
 * process under test reaches it over HTTP like any object store. Credentials are s3rver's fixed
 * `S3RVER` / `S3RVER`; it does not check signatures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

/** A running server with one bucket. */
export interface S3Server {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  readonly bucket: string;
  /** Where s3rver keeps the objects (to look at what the relay stored). */
  readonly directory: string;
  stop(): Promise<void>;
}

/** Starts s3rver with bucket `bucket` (3–63 characters). */
export async function startS3Server(bucket = 'parley-e2e'): Promise<S3Server> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const directory = await mkdtemp(join(tmpdir(), 'parley-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    directory,
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
