// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Attachment encryption (DESIGN §9), as Node Transform streams so that a file of any size passes
 * through in chunks and is never held in memory.
 *
 * Blob layout: IV (16) | AES-256-CBC(PKCS#7) of the padded plaintext | HMAC-SHA256 (32) over
 * IV || ciphertext. The 64-byte attachment key is the AES-256 key followed by the HMAC key. The
 * pointer a recipient gets carries the key, the SHA-256 digest of the whole blob and the
 * plaintext size.
 *
 * Padding: before encryption the plaintext is extended with zero bytes to the next size bucket
 * (see {@link paddedAttachmentSize}), so the stored blob tells the relay only a size class, not
 * the size. Buckets start at 541 bytes and grow by 5% in integer steps (the scheme Signal uses,
 * computed in integers so every implementation agrees on it to the byte): at most 5% overhead,
 * and about 380 classes between 1 KiB and 100 MiB. A simpler power-of-two scheme would hide
 * more but cost up to 100% in storage and transfer, which matters at 100 MiB.
 *
 * Decryption verifies the HMAC (constant time) and the digest at the end of the stream and
 * fails with CryptoError INVALID_ATTACHMENT on any mismatch, on truncation and on a wrong key;
 * one code and one message for all of them, so a failure tells nothing about which check it
 * was. Plaintext is emitted before the end is verified (that is what streaming means): callers
 * write it to a temporary file and keep it only when the stream ends without error.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomFillSync, timingSafeEqual, type Cipheriv, type Decipheriv, type Hash, type Hmac } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { CryptoError } from './errors.js';

/** Bytes of an attachment key: a 32-byte AES-256 key, then a 32-byte HMAC-SHA256 key. */
export const ATTACHMENT_KEY_BYTES = 64;
/** Bytes of the SHA-256 digest of an encrypted blob. */
export const ATTACHMENT_DIGEST_BYTES = 32;
/** Bytes of the CBC initialisation vector at the front of a blob. */
export const ATTACHMENT_IV_BYTES = 16;
/** Bytes of the HMAC-SHA256 at the end of a blob. */
export const ATTACHMENT_MAC_BYTES = 32;
/** The smallest padding bucket, bytes: every attachment is at least this big once padded. */
export const ATTACHMENT_MIN_PADDED_BYTES = 541;
/**
 * The largest plaintext these functions accept, bytes (1 TiB). Relays cap uploads far lower
 * (100 MiB by default); this only keeps the size arithmetic exact.
 */
export const ATTACHMENT_MAX_PLAINTEXT_BYTES = 2 ** 40;

const AES_BLOCK = 16;
const INVALID = 'the attachment does not match its pointer (wrong key, or tampered or truncated data)';

/** What the sender puts into the pointer, known once encryption has finished. */
export interface AttachmentEncryptResult {
  /** The 64-byte key (secret). */
  readonly key: Uint8Array;
  /** SHA-256 of the whole encrypted blob. */
  readonly digest: Uint8Array;
  /** Plaintext bytes (what the recipient keeps). */
  readonly size: number;
  /** Bytes of the encrypted blob, equal to {@link encryptedAttachmentSize}(size). */
  readonly encryptedSize: number;
}

/** Options of {@link AttachmentEncryptor}. */
export interface AttachmentEncryptorOptions {
  /** Exactly how many plaintext bytes will be written; anything else fails the stream. */
  readonly plaintextSize: number;
  /** 64 bytes; default a fresh random key. Pass the same key and IV to re-encrypt identically (an upload retry). */
  readonly key?: Uint8Array;
  /** 16 bytes; default random. */
  readonly iv?: Uint8Array;
}

/** Options of {@link AttachmentDecryptor}: what the pointer says. */
export interface AttachmentDecryptorOptions {
  /** The 64-byte key from the pointer. */
  readonly key: Uint8Array;
  /** The 32-byte digest of the blob from the pointer. */
  readonly digest: Uint8Array;
  /** The plaintext size from the pointer. */
  readonly plaintextSize: number;
}

function checkSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > ATTACHMENT_MAX_PLAINTEXT_BYTES) {
    throw new CryptoError('INVALID_ARGUMENT', `${what} must be a whole number of bytes from 0 to 2^40`);
  }
}

function checkBytes(bytes: Uint8Array | undefined, length: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) throw new CryptoError('INVALID_ARGUMENT', `${what} must be ${length} bytes`);
}

/** A fresh random 64-byte attachment key. */
export function generateAttachmentKey(): Uint8Array {
  return randomFillSync(new Uint8Array(ATTACHMENT_KEY_BYTES));
}

/**
 * The size `plaintextSize` is padded to before encryption: the smallest bucket that holds it.
 * Buckets: 541, then each the previous one times 1.05 rounded down (at least one more).
 * @throws CryptoError INVALID_ARGUMENT for a size out of range.
 */
export function paddedAttachmentSize(plaintextSize: number): number {
  checkSize(plaintextSize, 'plaintextSize');
  let bucket = ATTACHMENT_MIN_PADDED_BYTES;
  while (bucket < plaintextSize) bucket = Math.max(bucket + 1, Math.floor((bucket * 105) / 100));
  return bucket;
}

/**
 * Bytes of the encrypted blob of a `plaintextSize`-byte attachment: IV, the padded plaintext
 * with PKCS#7 (always 1..16 more bytes), and the MAC. The sender asks the relay for an upload
 * slot of exactly this size before encrypting; the recipient knows when a download is complete.
 */
export function encryptedAttachmentSize(plaintextSize: number): number {
  const padded = paddedAttachmentSize(plaintextSize);
  return ATTACHMENT_IV_BYTES + (Math.floor(padded / AES_BLOCK) + 1) * AES_BLOCK + ATTACHMENT_MAC_BYTES;
}

/**
 * Encrypts an attachment as it streams: plaintext in, the blob out. After the stream ends,
 * {@link AttachmentEncryptor.result} gives the pointer's key, digest and sizes. Writing more or
 * fewer than `plaintextSize` bytes fails the stream with CryptoError INVALID_ARGUMENT.
 */
export class AttachmentEncryptor extends Transform {
  readonly #key: Uint8Array;
  readonly #plaintextSize: number;
  readonly #cipher: Cipheriv;
  readonly #mac: Hmac;
  readonly #digest: Hash;
  #seen = 0;
  #out = 0;
  #result: AttachmentEncryptResult | undefined;

  /** @throws CryptoError INVALID_ARGUMENT for a bad size, key or IV. */
  constructor(options: AttachmentEncryptorOptions) {
    super();
    checkSize(options.plaintextSize, 'plaintextSize');
    const key = options.key ?? generateAttachmentKey();
    checkBytes(key, ATTACHMENT_KEY_BYTES, 'the attachment key');
    const iv = options.iv ?? randomFillSync(new Uint8Array(ATTACHMENT_IV_BYTES));
    checkBytes(iv, ATTACHMENT_IV_BYTES, 'the IV');
    this.#key = new Uint8Array(key);
    this.#plaintextSize = options.plaintextSize;
    this.#cipher = createCipheriv('aes-256-cbc', key.subarray(0, 32), iv);
    this.#mac = createHmac('sha256', key.subarray(32, 64));
    this.#digest = createHash('sha256');
    this.#emit(Buffer.from(iv));
  }

  /** The pointer fields; available once the stream has ended. @throws Error before that. */
  result(): AttachmentEncryptResult {
    if (!this.#result) throw new Error('the attachment has not been encrypted completely yet');
    return this.#result;
  }

  #emit(bytes: Buffer, mac = true): void {
    if (bytes.length === 0) return;
    if (mac) this.#mac.update(bytes);
    this.#digest.update(bytes);
    this.#out += bytes.length;
    this.push(bytes);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#plaintextSize) {
      done(new CryptoError('INVALID_ARGUMENT', 'more plaintext than the declared size'));
      return;
    }
    this.#emit(this.#cipher.update(chunk));
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.#seen !== this.#plaintextSize) {
      done(new CryptoError('INVALID_ARGUMENT', 'less plaintext than the declared size'));
      return;
    }
    // Zero padding up to the bucket, in bounded pieces (a bucket may add up to 5 MiB at 100 MiB).
    let padding = paddedAttachmentSize(this.#plaintextSize) - this.#plaintextSize;
    const zeros = Buffer.alloc(Math.min(padding, 64 * 1024));
    while (padding > 0) {
      const n = Math.min(padding, zeros.length);
      this.#emit(this.#cipher.update(zeros.subarray(0, n)));
      padding -= n;
    }
    this.#emit(this.#cipher.final());
    this.#emit(this.#mac.digest(), false);
    this.#result = Object.freeze({
      key: this.#key,
      digest: new Uint8Array(this.#digest.digest()),
      size: this.#plaintextSize,
      encryptedSize: this.#out,
    });
    done();
  }
}

/**
 * Decrypts a blob as it streams: the blob in, the plaintext (without padding) out. The MAC, the
 * digest, the padding and the size are checked when the input ends; any mismatch fails the
 * stream with CryptoError INVALID_ARGUMENT (bad options, at construction) or INVALID_ATTACHMENT.
 */
export class AttachmentDecryptor extends Transform {
  readonly #key: Uint8Array;
  readonly #expectedDigest: Uint8Array;
  readonly #plaintextSize: number;
  readonly #encryptedSize: number;
  readonly #mac: Hmac;
  readonly #digest: Hash;
  #decipher: Decipheriv | undefined;
  /** Bytes not yet passed on: the IV until it is complete, then the last MAC_BYTES seen. */
  #held: Buffer = Buffer.alloc(0);
  #in = 0;
  #emitted = 0;

  /** @throws CryptoError INVALID_ARGUMENT for a bad key, digest or size. */
  constructor(options: AttachmentDecryptorOptions) {
    super();
    checkBytes(options.key, ATTACHMENT_KEY_BYTES, 'the attachment key');
    checkBytes(options.digest, ATTACHMENT_DIGEST_BYTES, 'the attachment digest');
    checkSize(options.plaintextSize, 'plaintextSize');
    this.#key = new Uint8Array(options.key);
    this.#expectedDigest = new Uint8Array(options.digest);
    this.#plaintextSize = options.plaintextSize;
    this.#encryptedSize = encryptedAttachmentSize(options.plaintextSize);
    this.#mac = createHmac('sha256', this.#key.subarray(32, 64));
    this.#digest = createHash('sha256');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#in += chunk.length;
    if (this.#in > this.#encryptedSize) {
      done(new CryptoError('INVALID_ATTACHMENT', INVALID));
      return;
    }
    this.#digest.update(chunk);
    let data = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    if (!this.#decipher) {
      if (data.length < ATTACHMENT_IV_BYTES) {
        this.#held = Buffer.from(data);
        done();
        return;
      }
      const iv = data.subarray(0, ATTACHMENT_IV_BYTES);
      this.#mac.update(iv);
      this.#decipher = createDecipheriv('aes-256-cbc', this.#key.subarray(0, 32), iv);
      data = data.subarray(ATTACHMENT_IV_BYTES);
    }
    // The last MAC_BYTES of what has arrived may be the MAC: keep them back until more comes.
    const pass = data.length - ATTACHMENT_MAC_BYTES;
    if (pass <= 0) {
      this.#held = Buffer.from(data);
      done();
      return;
    }
    this.#held = Buffer.from(data.subarray(pass));
    const body = data.subarray(0, pass);
    this.#mac.update(body);
    this.#push(this.#decipher.update(body));
    done();
  }

  override _flush(done: TransformCallback): void {
    // Every check runs, and all of them fail alike; no partial answer about which one it was.
    const complete = this.#decipher !== undefined && this.#in === this.#encryptedSize && this.#held.length === ATTACHMENT_MAC_BYTES;
    let ok = complete;
    if (complete) {
      const macOk = timingSafeEqual(this.#mac.digest(), this.#held);
      const digestOk = timingSafeEqual(this.#digest.digest(), this.#expectedDigest);
      ok = macOk && digestOk;
    }
    if (ok) {
      try {
        this.#push(this.#decipher!.final());
      } catch {
        ok = false;
      }
    }
    if (!ok || this.#emitted !== this.#plaintextSize) {
      done(new CryptoError('INVALID_ATTACHMENT', INVALID));
      return;
    }
    done();
  }

  /** Passes plaintext on up to the declared size; the rest is the zero padding. */
  #push(plain: Buffer): void {
    const room = this.#plaintextSize - this.#emitted;
    if (room <= 0 || plain.length === 0) return;
    const part = plain.length > room ? plain.subarray(0, room) : plain;
    this.#emitted += part.length;
    this.push(part);
  }
}

/** A new {@link AttachmentEncryptor}. */
export function createAttachmentEncryptor(options: AttachmentEncryptorOptions): AttachmentEncryptor {
  return new AttachmentEncryptor(options);
}

/** A new {@link AttachmentDecryptor}. */
export function createAttachmentDecryptor(options: AttachmentDecryptorOptions): AttachmentDecryptor {
  return new AttachmentDecryptor(options);
}
