// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay's sealed-sender keys (DESIGN §5): a trust root key pair, whose public half clients
 * pin, and a server certificate signed by it, whose private key signs the short-lived sender
 * certificates devices fetch. Both live in `<data>/sealed-sender/` as two JSON files (mode 0600,
 * directory 0700), created on the first start and loaded afterwards:
 *
 * - `trust-root.json` `{ publicKey, privateKey? }` — the private key is needed only to create a
 *   server certificate; an operator may keep it offline and leave only the public key here.
 * - `server-certificate.json` `{ keyId, certificate, privateKey }` — rotating it (a new key id
 *   under the same root) is invisible to clients; changing the trust root breaks every client's
 *   pin (docs/operations.md, "Sealed sender keys").
 *
 * At load the pair is checked end to end: a sender certificate issued with the server key must
 * validate against the trust root, so mismatched files stop the relay at start instead of
 * producing certificates every recipient refuses.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  REVOKED_SERVER_CERTIFICATE_KEY_ID,
  createServerCertificate,
  generateTrustRoot,
  issueSenderCertificate,
  publicKeyOf,
  readServerCertificate,
  validateSenderCertificate,
} from '@parley/crypto';
import { fromBase64Url, toBase64Url } from '@parley/protocol';

/** What the relay signs sender certificates with. */
export interface SenderCertificateAuthority {
  /** 33 bytes; published on /v1/info as `senderCertificateTrustRoot`. */
  readonly trustRoot: Uint8Array;
  /** The serialized server certificate. */
  readonly serverCertificate: Uint8Array;
  /** 32 bytes; the key `serverCertificate` certifies. */
  readonly serverPrivateKey: Uint8Array;
  /** The server certificate's key id. */
  readonly serverKeyId: number;
}

/** The key files are missing, unreadable, malformed or do not belong together. Messages never hold key bytes. */
export class SealedSenderKeyError extends Error {
  override readonly name = 'SealedSenderKeyError';
  /** Stable code. */
  readonly code = 'SEALED_SENDER_KEYS';
}

/** The directory under the data directory that holds the key files. */
export const SEALED_SENDER_DIR = 'sealed-sender';
/** The trust root file's name. */
export const TRUST_ROOT_FILE = 'trust-root.json';
/** The server certificate file's name. */
export const SERVER_CERTIFICATE_FILE = 'server-certificate.json';

/** What {@link loadSenderCertificateAuthority} did. */
export interface LoadedAuthority {
  readonly authority: SenderCertificateAuthority;
  /** Files created by this call (first start, or a server certificate after rotation). */
  readonly created: readonly string[];
}

/** A fresh authority held only in memory (tests, throwaway relays). */
export function createEphemeralSenderCertificateAuthority(nowMs: number): SenderCertificateAuthority {
  const root = generateTrustRoot();
  const keyId = serverKeyIdAt(nowMs);
  const server = createServerCertificate(keyId, root.privateKey);
  return Object.freeze({ trustRoot: root.publicKey, serverCertificate: server.certificate, serverPrivateKey: server.privateKey, serverKeyId: keyId });
}

/**
 * Loads the sealed-sender keys from `<dataDir>/sealed-sender/`, creating what is missing: the
 * trust root on the very first start, a server certificate whenever there is none (which needs
 * the trust root's private key).
 * @param nowMs the time; a new server certificate's key id is the Unix time in seconds.
 * @throws SealedSenderKeyError naming the file and the problem.
 */
export function loadSenderCertificateAuthority(dataDir: string, nowMs: number): LoadedAuthority {
  const dir = join(dataDir, SEALED_SENDER_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const rootPath = join(dir, TRUST_ROOT_FILE);
  const serverPath = join(dir, SERVER_CERTIFICATE_FILE);
  const created: string[] = [];

  let root = readJson(rootPath);
  let server = readJson(serverPath);
  if (root === undefined) {
    if (server !== undefined) throw new SealedSenderKeyError(`${serverPath} exists but ${rootPath} does not: restore the trust root from the backup`);
    const fresh = generateTrustRoot();
    writeSecretFile(rootPath, { publicKey: toBase64Url(fresh.publicKey), privateKey: toBase64Url(fresh.privateKey) });
    created.push(rootPath);
    root = readJson(rootPath)!;
  }
  const trustRoot = bytesField(root, 'publicKey', rootPath, 33);
  const rootPrivate = root.privateKey === undefined ? undefined : bytesField(root, 'privateKey', rootPath, 32);
  if (rootPrivate && !sameBytes(derivePublic(rootPrivate, rootPath), trustRoot)) {
    throw new SealedSenderKeyError(`${rootPath}: the private key does not belong to the public key`);
  }
  if (server === undefined) {
    if (!rootPrivate) throw new SealedSenderKeyError(`${serverPath} is missing and ${rootPath} holds no private key to create one`);
    const keyId = serverKeyIdAt(nowMs);
    const fresh = createServerCertificate(keyId, rootPrivate);
    writeSecretFile(serverPath, { keyId, certificate: toBase64Url(fresh.certificate), privateKey: toBase64Url(fresh.privateKey) });
    created.push(serverPath);
    server = readJson(serverPath)!;
  }
  const serverCertificate = bytesField(server, 'certificate', serverPath);
  const serverPrivateKey = bytesField(server, 'privateKey', serverPath, 32);
  let serverKeyId: number;
  try {
    serverKeyId = readServerCertificate(serverCertificate).keyId;
  } catch {
    throw new SealedSenderKeyError(`${serverPath}: certificate is not a server certificate`);
  }
  const authority: SenderCertificateAuthority = Object.freeze({ trustRoot, serverCertificate, serverPrivateKey, serverKeyId });
  checkChain(authority, nowMs, serverPath, rootPath);
  return { authority, created };
}

/** A server key id for a certificate made at `nowMs`: the Unix time in seconds (u32, rising with each rotation). */
function serverKeyIdAt(nowMs: number): number {
  const id = Math.floor(nowMs / 1000) >>> 0;
  return id === REVOKED_SERVER_CERTIFICATE_KEY_ID ? id + 1 : id;
}

/** Issues a throwaway certificate and validates it against the root: the files must belong together. */
function checkChain(a: SenderCertificateAuthority, nowMs: number, serverPath: string, rootPath: string): void {
  let certificate: Uint8Array;
  try {
    certificate = issueSenderCertificate({
      senderAci: '00000000-0000-4000-8000-000000000001',
      senderDeviceId: 1,
      senderIdentityKey: a.trustRoot,
      expiresAt: nowMs + 60_000,
      serverCertificate: a.serverCertificate,
      serverPrivateKey: a.serverPrivateKey,
    });
  } catch {
    throw new SealedSenderKeyError(`${serverPath}: the private key does not belong to the certificate`);
  }
  if (!validateSenderCertificate(certificate, [a.trustRoot], nowMs)) {
    throw new SealedSenderKeyError(`${serverPath}: the server certificate is not signed by the trust root in ${rootPath}`);
  }
}

function derivePublic(privateKey: Uint8Array, path: string): Uint8Array {
  try {
    return publicKeyOf(privateKey);
  } catch {
    throw new SealedSenderKeyError(`${path}: privateKey is not a private key`);
  }
}

function readJson(path: string): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SealedSenderKeyError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below, without the content
  }
  throw new SealedSenderKeyError(`${path} is not a JSON object`);
}

function bytesField(o: Record<string, unknown>, field: string, path: string, length?: number): Uint8Array {
  const v = o[field];
  const bytes = typeof v === 'string' ? fromBase64Url(v) : undefined;
  if (!bytes || bytes.length === 0 || (length !== undefined && bytes.length !== length)) {
    throw new SealedSenderKeyError(`${path}: ${field} must be unpadded base64url${length === undefined ? '' : ` of ${length} bytes`}`);
  }
  return bytes;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Writes a new file readable by its owner only: a temporary file, fsynced, renamed into place. */
function writeSecretFile(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, JSON.stringify(value, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  // The rename is durable only once the directory entry is.
  const dirFd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
