// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import {
  ATTACHMENT_IV_BYTES,
  ATTACHMENT_MAC_BYTES,
  ATTACHMENT_MIN_PADDED_BYTES,
  CryptoError,
  createAttachmentDecryptor,
  createAttachmentEncryptor,
  encryptedAttachmentSize,
  generateAttachmentKey,
  paddedAttachmentSize,
  type AttachmentEncryptResult,
} from '../src/index.js';

/** Collects a stream's output. */
class Sink extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    done();
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Feeds `bytes` in chunks of `chunkSize` (odd sizes find boundary bugs). */
function source(bytes: Uint8Array, chunkSize = 1000): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) parts.push(Buffer.from(bytes.subarray(i, i + chunkSize)));
  return Readable.from(parts);
}

async function encrypt(plain: Uint8Array, chunkSize = 1000): Promise<{ blob: Buffer; result: AttachmentEncryptResult }> {
  const enc = createAttachmentEncryptor({ plaintextSize: plain.length });
  const sink = new Sink();
  await pipeline(source(plain, chunkSize), enc, sink);
  return { blob: sink.bytes(), result: enc.result() };
}

async function decrypt(blob: Uint8Array, pointer: { key: Uint8Array; digest: Uint8Array; size: number }, chunkSize = 777): Promise<Buffer> {
  const sink = new Sink();
  await pipeline(source(blob, chunkSize), createAttachmentDecryptor({ key: pointer.key, digest: pointer.digest, plaintextSize: pointer.size }), sink);
  return sink.bytes();
}

const refused = (e: unknown): boolean => CryptoError.is(e, 'INVALID_ATTACHMENT');

describe('attachment padding', () => {
  it('pads to 5% buckets from 541 bytes, never below the size, at most 5% over it', () => {
    assert.equal(paddedAttachmentSize(0), ATTACHMENT_MIN_PADDED_BYTES);
    assert.equal(paddedAttachmentSize(541), 541);
    assert.equal(paddedAttachmentSize(542), 568); // floor(541 * 1.05)
    for (const n of [1, 100, 541, 542, 1000, 4096, 65_536, 1_000_000, 5 * 1024 * 1024, 100 * 1024 * 1024]) {
      const p = paddedAttachmentSize(n);
      assert.ok(p >= n, `${n} pads to ${p}`);
      if (n > ATTACHMENT_MIN_PADDED_BYTES) assert.ok(p <= Math.ceil(n * 1.05) + 1, `${n} pads to ${p}`);
      // A bucket pads to itself: sizes of one bucket are indistinguishable.
      assert.equal(paddedAttachmentSize(p), p);
    }
    // Few classes: all sizes up to 100 MiB fall into a few hundred buckets.
    let buckets = 0;
    for (let b = paddedAttachmentSize(0); b <= 100 * 1024 * 1024; b = paddedAttachmentSize(b + 1)) buckets++;
    assert.ok(buckets > 200 && buckets < 300, `${buckets} buckets`);
  });

  it('refuses sizes that are negative, fractional or beyond 2^40', () => {
    for (const n of [-1, 1.5, Number.NaN, 2 ** 40 + 1]) {
      assert.throws(() => paddedAttachmentSize(n), (e) => CryptoError.is(e, 'INVALID_ARGUMENT'));
    }
  });

  it('predicts the encrypted size exactly', async () => {
    for (const n of [0, 1, 15, 16, 541, 542, 10_000]) {
      const { blob, result } = await encrypt(randomBytes(n));
      assert.equal(blob.length, encryptedAttachmentSize(n), `size ${n}`);
      assert.equal(result.encryptedSize, blob.length);
      assert.equal(result.size, n);
    }
  });
});

describe('attachment encryption', () => {
  it('round-trips through the streams, for many sizes and chunkings', async () => {
    for (const n of [0, 1, 31, 32, 33, 541, 4096, 100_003]) {
      const plain = randomBytes(n);
      const { blob, result } = await encrypt(plain, 1 + (n % 97));
      assert.equal(result.key.length, 64);
      assert.equal(result.digest.length, 32);
      assert.deepEqual(result.digest, new Uint8Array(createHash('sha256').update(blob).digest()));
      for (const chunk of [1, 17, 48, 65_536]) {
        assert.deepEqual(await decrypt(blob, result, chunk), Buffer.from(plain), `size ${n} chunk ${chunk}`);
      }
    }
  });

  it('writes IV || AES-256-CBC(padded plaintext) || HMAC-SHA256(IV || ciphertext)', async () => {
    const plain = randomBytes(1000);
    const key = generateAttachmentKey();
    const iv = randomBytes(16);
    const enc = createAttachmentEncryptor({ plaintextSize: plain.length, key, iv });
    const sink = new Sink();
    await pipeline(source(plain), enc, sink);
    const blob = sink.bytes();
    const padded = Buffer.concat([plain, Buffer.alloc(paddedAttachmentSize(1000) - 1000)]);
    const cipher = createCipheriv('aes-256-cbc', key.subarray(0, 32), iv);
    const body = Buffer.concat([iv, cipher.update(padded), cipher.final()]);
    const mac = createHmac('sha256', key.subarray(32)).update(body).digest();
    assert.deepEqual(blob, Buffer.concat([body, mac]));
    // The same key and IV give the same blob (an upload retry re-encrypts identically).
    const again = createAttachmentEncryptor({ plaintextSize: plain.length, key, iv });
    const sink2 = new Sink();
    await pipeline(source(plain, 333), again, sink2);
    assert.deepEqual(sink2.bytes(), blob);
    assert.deepEqual(again.result().digest, enc.result().digest);
  });

  it('refuses more or less plaintext than declared', async () => {
    await assert.rejects(
      pipeline(source(randomBytes(101)), createAttachmentEncryptor({ plaintextSize: 100 }), new Sink()),
      (e) => CryptoError.is(e, 'INVALID_ARGUMENT'),
    );
    await assert.rejects(
      pipeline(source(randomBytes(99)), createAttachmentEncryptor({ plaintextSize: 100 }), new Sink()),
      (e) => CryptoError.is(e, 'INVALID_ARGUMENT'),
    );
    assert.throws(() => createAttachmentEncryptor({ plaintextSize: 10, key: new Uint8Array(32) }), (e) => CryptoError.is(e, 'INVALID_ARGUMENT'));
    assert.throws(() => createAttachmentEncryptor({ plaintextSize: 10, iv: new Uint8Array(8) }), (e) => CryptoError.is(e, 'INVALID_ARGUMENT'));
  });

  it('gives a result only once the stream has ended', () => {
    const enc = createAttachmentEncryptor({ plaintextSize: 1 });
    assert.throws(() => enc.result(), /not been encrypted completely/);
  });
});

describe('attachment decryption refuses', () => {
  const plain = randomBytes(5000);
  const made = encrypt(plain);

  it('a flipped bit anywhere: IV, ciphertext, MAC', async () => {
    const { blob, result } = await made;
    for (const at of [0, ATTACHMENT_IV_BYTES, 100, blob.length - ATTACHMENT_MAC_BYTES - 1, blob.length - 1]) {
      const bad = Buffer.from(blob);
      bad[at]! ^= 0x01;
      await assert.rejects(decrypt(bad, result), refused, `bit at ${at}`);
    }
  });

  it('a wrong key, and a right key with a wrong digest', async () => {
    const { blob, result } = await made;
    await assert.rejects(decrypt(blob, { ...result, key: generateAttachmentKey() }), refused);
    const otherMacKey = new Uint8Array(result.key);
    otherMacKey[63]! ^= 1;
    await assert.rejects(decrypt(blob, { ...result, key: otherMacKey }), refused);
    const digest = new Uint8Array(result.digest);
    digest[0]! ^= 1;
    await assert.rejects(decrypt(blob, { ...result, digest }), refused);
  });

  it('truncation at any length, an extra byte, and an empty blob', async () => {
    const { blob, result } = await made;
    for (const n of [0, 5, ATTACHMENT_IV_BYTES, ATTACHMENT_IV_BYTES + 16, blob.length - ATTACHMENT_MAC_BYTES, blob.length - 1]) {
      await assert.rejects(decrypt(blob.subarray(0, n), result), refused, `truncated to ${n}`);
    }
    await assert.rejects(decrypt(Buffer.concat([blob, Buffer.of(0)]), result), refused);
  });

  it('a blob of another attachment, and a size that is not the pointer’s', async () => {
    const { blob, result } = await made;
    const other = await encrypt(randomBytes(5000));
    await assert.rejects(decrypt(other.blob, result), refused);
    // A size of another bucket means another blob length. (Within one bucket the size cannot be
    // checked: it comes from the pointer, which the sender's end-to-end encryption vouches for.)
    await assert.rejects(decrypt(blob, { ...result, size: 3999 }), refused);
    await assert.rejects(decrypt(blob, { ...result, size: paddedAttachmentSize(5000) + 1 }), refused);
  });

  it('with one message that names no check and holds no key material', async () => {
    const { blob, result } = await made;
    const bad = Buffer.from(blob);
    bad[200]! ^= 0xff;
    const err = await decrypt(bad, result).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof CryptoError);
    assert.doesNotMatch(err.message, /mac|digest|padding/i);
    assert.ok(!err.message.includes(Buffer.from(result.key).toString('hex').slice(0, 16)));
  });
});

describe('attachment streaming', () => {
  it('encrypts and decrypts 100 MiB with bounded memory', { timeout: 120_000 }, async () => {
    const SIZE = 100 * 1024 * 1024;
    const CHUNK = 64 * 1024;
    // Plaintext made chunk by chunk: one random block with the chunk number in front, so every
    // chunk differs (a misplaced or repeated chunk changes the hash) and none is kept.
    const block = randomBytes(CHUNK);
    const chunkAt = (i: number): Buffer => {
      const b = Buffer.from(block);
      b.writeUInt32BE(i, 0);
      return b;
    };
    function* plaintext(): Generator<Buffer> {
      for (let i = 0; i < SIZE / CHUNK; i++) yield chunkAt(i);
    }
    const inHash = createHash('sha256');
    for (const c of plaintext()) inHash.update(c);
    const expected = inHash.digest('hex');

    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      // Encrypt into a hash and a counter only: the blob is streamed, never collected.
      const blobHash = createHash('sha256');
      let blobBytes = 0;
      const key = generateAttachmentKey();
      const iv = randomBytes(16);
      const enc1 = createAttachmentEncryptor({ plaintextSize: SIZE, key, iv });
      await pipeline(
        Readable.from(plaintext()),
        enc1,
        new Writable({
          write(chunk: Buffer, _e, done) {
            blobHash.update(chunk);
            blobBytes += chunk.length;
            done();
          },
        }),
      );
      assert.equal(blobBytes, encryptedAttachmentSize(SIZE));
      assert.equal(blobHash.digest('hex'), Buffer.from(enc1.result().digest).toString('hex'));
      // Decrypt a second, identical encryption (same key and IV) as it is produced, so that
      // no 100 MiB blob is ever stored anywhere.
      const enc2 = createAttachmentEncryptor({ plaintextSize: SIZE, key, iv });
      const outHash = createHash('sha256');
      let outBytes = 0;
      await pipeline(
        Readable.from(plaintext()),
        enc2,
        createAttachmentDecryptor({ key, digest: enc1.result().digest, plaintextSize: SIZE }),
        new Writable({
          write(chunk: Buffer, _e, done) {
            outHash.update(chunk);
            outBytes += chunk.length;
            done();
          },
        }),
      );
      assert.equal(outBytes, SIZE);
      assert.equal(outHash.digest('hex'), expected);
    } finally {
      clearInterval(sample);
    }
    const grownMiB = (peak - baseline) / (1024 * 1024);
    // Holding the file would cost at least 100 MiB; streaming stays within a few buffers.
    assert.ok(grownMiB < 40, `RSS grew by ${grownMiB.toFixed(1)} MiB while streaming 100 MiB`);
  });
});
