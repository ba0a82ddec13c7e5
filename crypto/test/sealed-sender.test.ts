// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  ProtocolAddress,
  SenderCertificate,
  UnidentifiedSenderMessageContent,
  sealedSenderEncrypt,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import {
  CryptoError,
  type CryptoErrorCode,
  type GroupEncryptInput,
  type SealedDecryptResult,
  SenderCertificateMemo,
  SessionCipher,
  createServerCertificate,
  generateTrustRoot,
  issueSenderCertificate,
  joinMultiRecipientPart,
  parseMultiRecipientMessage,
  randomBytes,
} from '../src/index.js';
import { PortCall } from '../src/libsignal-adapters.js';
import { type TestDevice, createTestDevice } from '../src/testing/index.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const HOUR = 3_600_000;

async function rejectsWith(promise: Promise<unknown>, code: CryptoErrorCode): Promise<CryptoError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected ${code}, but it succeeded`),
    (err: unknown) => {
      caught = err;
    },
  );
  assert.ok(caught instanceof CryptoError, `expected CryptoError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

/** A relay's certificate issuer. */
function makeIssuer(): { root: Uint8Array; certify(d: TestDevice, expiresAt?: number, identityKey?: Uint8Array): Uint8Array } {
  const root = generateTrustRoot();
  const server = createServerCertificate(1, root.privateKey);
  return {
    root: root.publicKey,
    certify: (d, expiresAt = Date.now() + 24 * HOUR, identityKey = d.identity.identityKey) =>
      issueSenderCertificate({
        senderAci: d.address.aci,
        senderDeviceId: d.address.deviceId,
        senderIdentityKey: identityKey,
        expiresAt,
        serverCertificate: server.certificate,
        serverPrivateKey: server.privateKey,
      }),
  };
}

type Issuer = ReturnType<typeof makeIssuer>;

function open(at: TestDevice, ciphertext: Uint8Array, issuer: Issuer, timestamp = Date.now()): Promise<SealedDecryptResult> {
  return at.cipher.sealedDecrypt(ciphertext, {
    trustRoots: [issuer.root],
    timestamp,
    localAci: at.address.aci,
    localDeviceId: at.address.deviceId,
  });
}

/** A linked device of `first`'s account. */
function linked(first: TestDevice, deviceId: number): Promise<TestDevice> {
  return createTestDevice({ aci: first.address.aci, deviceId, identityKeyPair: first.identity.identityKeyPair });
}

describe('sealed sender v1 (1:1)', () => {
  it('seals a first message (prekey content), and later ones (ciphertext), both ways', async () => {
    const issuer = makeIssuer();
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle());

    const first = await alice.cipher.sealedEncrypt(bob.address, text('hello'), issuer.certify(alice), { contentHint: 'resendable' });
    const opened = await open(bob, first, issuer);
    assert.equal(opened.kind, 'prekey');
    assert.equal(str(opened.plaintext), 'hello');
    assert.equal(opened.senderAci, alice.address.aci);
    assert.equal(opened.senderDeviceId, 1);
    assert.deepEqual(opened.senderIdentityKey, alice.identity.identityKey);
    assert.equal(opened.contentHint, 'resendable');
    assert.equal(opened.groupId, undefined);

    const reply = await bob.cipher.sealedEncrypt(alice.address, text('hi'), issuer.certify(bob));
    const r = await open(alice, reply, issuer);
    assert.deepEqual([r.kind, str(r.plaintext), r.senderAci, r.contentHint], ['ciphertext', 'hi', bob.address.aci, 'default']);

    const groupId = randomBytes(32);
    const next = await alice.cipher.sealedEncrypt(bob.address, text('again'), issuer.certify(alice), { groupId, contentHint: 'implicit' });
    const n = await open(bob, next, issuer);
    assert.deepEqual([n.kind, str(n.plaintext), n.contentHint], ['ciphertext', 'again', 'implicit']);
    assert.deepEqual(n.groupId, groupId);
  });

  it('interleaves with unsealed messages on the same session', async () => {
    const issuer = makeIssuer();
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle());
    const m1 = await alice.cipher.encrypt(bob.address, text('plain'));
    const m2 = await alice.cipher.sealedEncrypt(bob.address, text('sealed'), issuer.certify(alice));
    assert.equal(str(await bob.cipher.decrypt(alice.address, m1.type, m1.body)), 'plain');
    assert.equal(str((await open(bob, m2, issuer)).plaintext), 'sealed');
  });

  it('refuses a replayed sealed message with DUPLICATE_MESSAGE, prekey and ciphertext alike', async () => {
    const issuer = makeIssuer();
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle());
    const first = await alice.cipher.sealedEncrypt(bob.address, text('one'), issuer.certify(alice));
    await open(bob, first, issuer);
    await rejectsWith(open(bob, first, issuer), 'DUPLICATE_MESSAGE');
    await open(alice, await bob.cipher.sealedEncrypt(alice.address, text('ok'), issuer.certify(bob)), issuer);
    const later = await alice.cipher.sealedEncrypt(bob.address, text('two'), issuer.certify(alice));
    await open(bob, later, issuer);
    const err = await rejectsWith(open(bob, later, issuer), 'DUPLICATE_MESSAGE');
    assert.equal(err.address, `${alice.address.aci}.1`, 'the sender is named once the certificate is believed');
  });

  it('needs a session to seal, and the device’s own current certificate', async () => {
    const issuer = makeIssuer();
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await rejectsWith(alice.cipher.sealedEncrypt(bob.address, text('x'), issuer.certify(alice)), 'NO_SESSION');
    await alice.cipher.processBundle(bob.address, bob.bundle());
    await rejectsWith(alice.cipher.sealedEncrypt(bob.address, text('x'), issuer.certify(bob)), 'INVALID_CERTIFICATE');
    await rejectsWith(alice.cipher.sealedEncrypt(bob.address, text('x'), randomBytes(120)), 'INVALID_CERTIFICATE');
    const otherKey = issuer.certify(alice, undefined, bob.identity.identityKey);
    await rejectsWith(alice.cipher.sealedEncrypt(bob.address, text('x'), otherKey), 'INVALID_CERTIFICATE');
    await rejectsWith(
      alice.cipher.sealedEncrypt(bob.address, text('x'), issuer.certify(alice), { contentHint: 'loud' as 'default' }),
      'INVALID_ARGUMENT',
    );
  });
});

describe('sealed sender certificate memo', () => {
  const openWith = (cipher: SessionCipher, at: TestDevice, sealed: Uint8Array, roots: Uint8Array[], timestamp = Date.now()) =>
    cipher.sealedDecrypt(sealed, { trustRoots: roots, timestamp, localAci: at.address.aci, localDeviceId: at.address.deviceId });

  it('remembers a certificate that checked out, yet refuses it once expired or under other roots', async () => {
    const issuer = makeIssuer();
    const foreign = makeIssuer();
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle());
    const memo = new SenderCertificateMemo();
    const expiresAt = Date.now() + HOUR;
    const certificate = issuer.certify(alice, expiresAt);
    const sealed = [];
    for (const t of ['one', 'two', 'three', 'four']) sealed.push(await alice.cipher.sealedEncrypt(bob.address, text(t), certificate));
    // Ciphers come and go (one per delivered batch); the memo stays.
    const cipher = () => new SessionCipher(bob.stores, { localAddress: bob.address, certificateMemo: memo });
    assert.equal(str((await openWith(cipher(), bob, sealed[0]!, [issuer.root])).plaintext), 'one');
    assert.equal(memo.size, 1);
    assert.equal(str((await openWith(cipher(), bob, sealed[1]!, [issuer.root])).plaintext), 'two');
    assert.equal(memo.size, 1, 'one entry per certificate');
    await rejectsWith(openWith(cipher(), bob, sealed[2]!, [issuer.root], expiresAt + 1), 'INVALID_CERTIFICATE');
    await rejectsWith(openWith(cipher(), bob, sealed[2]!, [foreign.root]), 'INVALID_CERTIFICATE');
    assert.equal(str((await openWith(cipher(), bob, sealed[2]!, [issuer.root], expiresAt)).plaintext), 'three', 'valid up to its expiry, inclusive');
    // Under a list of roots it was never checked against, it is checked in full (and passes).
    assert.equal(str((await openWith(cipher(), bob, sealed[3]!, [foreign.root, issuer.root])).plaintext), 'four');
  });

  it('never remembers a certificate that failed, and keeps at most its capacity', async () => {
    const issuer = makeIssuer();
    const rogue = makeIssuer();
    const bob = await createTestDevice();
    const memo = new SenderCertificateMemo(2);
    const cipher = new SessionCipher(bob.stores, { localAddress: bob.address, certificateMemo: memo });
    const senders = [];
    for (let i = 0; i < 3; i++) {
      const d = await createTestDevice();
      await d.cipher.processBundle(bob.address, bob.bundle());
      senders.push(d);
    }
    const forged = await senders[0]!.cipher.sealedEncrypt(bob.address, text('forged'), rogue.certify(senders[0]!));
    await rejectsWith(openWith(cipher, bob, forged, [issuer.root]), 'INVALID_CERTIFICATE');
    await rejectsWith(openWith(cipher, bob, forged, [issuer.root]), 'INVALID_CERTIFICATE');
    assert.equal(memo.size, 0);
    for (const d of senders) await openWith(cipher, bob, await d.cipher.sealedEncrypt(bob.address, text('hi'), issuer.certify(d)), [issuer.root]);
    assert.equal(memo.size, 2);
    assert.throws(() => new SenderCertificateMemo(0), RangeError);
  });
});

describe('sealed sender certificate checks on receipt', () => {
  async function firstMessage(): Promise<{ issuer: Issuer; alice: TestDevice; bob: TestDevice; expiresAt: number; sealed: Uint8Array }> {
    const issuer = makeIssuer();
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle());
    const expiresAt = Date.now() + HOUR;
    const sealed = await alice.cipher.sealedEncrypt(bob.address, text('hello'), issuer.certify(alice, expiresAt));
    return { issuer, alice, bob, expiresAt, sealed };
  }

  it('refuses a certificate expired at the envelope’s timestamp, and changes no state doing so', async () => {
    const { issuer, bob, expiresAt, sealed } = await firstMessage();
    await rejectsWith(open(bob, sealed, issuer, expiresAt + 1), 'INVALID_CERTIFICATE');
    // The same message, judged at a time its certificate was valid, still opens: nothing was consumed.
    assert.equal(str((await open(bob, sealed, issuer, expiresAt)).plaintext), 'hello');
  });

  it('refuses a certificate no trusted root signed', async () => {
    const { issuer, bob, sealed } = await firstMessage();
    const foreign = makeIssuer();
    await rejectsWith(open(bob, sealed, foreign), 'INVALID_CERTIFICATE');
    const both = await bob.cipher.sealedDecrypt(sealed, {
      trustRoots: [foreign.root, issuer.root],
      timestamp: Date.now(),
      localAci: bob.address.aci,
      localDeviceId: 1,
    });
    assert.equal(str(both.plaintext), 'hello');
  });

  it('refuses garbage and tampered seals with INVALID_MESSAGE, and bad options with INVALID_ARGUMENT', async () => {
    const { issuer, bob, sealed } = await firstMessage();
    for (const bad of [new Uint8Array(0), randomBytes(1), randomBytes(300), sealed.subarray(0, 60)]) {
      await rejectsWith(open(bob, bad, issuer), 'INVALID_MESSAGE');
    }
    const flipped = new Uint8Array(sealed);
    flipped[flipped.length - 5]! ^= 1;
    await rejectsWith(open(bob, flipped, issuer), 'INVALID_MESSAGE');
    await rejectsWith(bob.cipher.sealedDecrypt(sealed, { trustRoots: [], timestamp: 1, localAci: bob.address.aci, localDeviceId: 1 }), 'INVALID_ARGUMENT');
    await rejectsWith(
      bob.cipher.sealedDecrypt(sealed, { trustRoots: [issuer.root], timestamp: -1, localAci: bob.address.aci, localDeviceId: 1 }),
      'INVALID_ARGUMENT',
    );
    assert.equal(str((await open(bob, sealed, issuer)).plaintext), 'hello');
  });

  it('refuses a sealed message that is not addressed to this device', async () => {
    const { issuer, alice, sealed } = await firstMessage();
    const carol = await createTestDevice();
    await rejectsWith(open(carol, sealed, issuer), 'INVALID_MESSAGE');
    await rejectsWith(open(alice, sealed, issuer), 'INVALID_MESSAGE');
  });

  it('refuses a message whose certificate names this very device', async () => {
    const { issuer, alice, bob, sealed } = await firstMessage();
    const options = { trustRoots: [issuer.root], timestamp: Date.now(), localAci: alice.address.aci, localDeviceId: 1 };
    await rejectsWith(bob.cipher.sealedDecrypt(sealed, options), 'INVALID_MESSAGE');
  });

  it('refuses a genuine certificate of A sealed by B (libsignal binds the seal to the certificate’s key)', async () => {
    const issuer = makeIssuer();
    const alice = await createTestDevice();
    const mallory = await createTestDevice();
    const bob = await createTestDevice();
    await mallory.cipher.processBundle(bob.address, bob.bundle());
    // Mallory seals with her own identity key but carries Alice's certificate (SessionCipher
    // refuses to do this, so it is built with libsignal directly).
    const call = new PortCall(mallory.stores);
    const to = ProtocolAddress.new(bob.address.aci, 1);
    const inner = await signalEncrypt(new Uint8Array(text('I am Alice')), to, ProtocolAddress.new(mallory.address.aci, 1), call.sessions, call.identity);
    const usmc = UnidentifiedSenderMessageContent.new(inner, SenderCertificate.deserialize(new Uint8Array(issuer.certify(alice))), 0, null);
    const forged = await sealedSenderEncrypt(usmc, to, call.identity);
    await rejectsWith(open(bob, forged, issuer), 'INVALID_MESSAGE');
  });

  it('refuses a certificate for A carrying B’s identity key when the recipient knows A (a rogue issuer)', async () => {
    const issuer = makeIssuer();
    const alice = await createTestDevice();
    const mallory = await createTestDevice();
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle());
    await open(bob, await alice.cipher.sealedEncrypt(bob.address, text('real'), issuer.certify(alice)), issuer);
    // Mallory's stores, acting under Alice's address, with a certificate the issuer signed for
    // Alice's address and Mallory's key.
    const impostor = new SessionCipher(mallory.stores, { localAddress: alice.address });
    await impostor.processBundle(bob.address, bob.bundle());
    const rogue = issuer.certify(alice, undefined, mallory.identity.identityKey);
    const sealed = await impostor.sealedEncrypt(bob.address, text('fake'), rogue);
    // A prekey message whose inner identity is Mallory's: the identity-change path (as for a
    // reinstall) — it opens, and the key change is recorded so sending to Alice stops until the
    // user accepts it. A ciphertext message under the rogue certificate is refused outright.
    const opened = await open(bob, sealed, issuer);
    assert.equal(opened.kind, 'prekey');
    assert.equal(await bob.stores.identity.isTrustedIdentity(alice.address.aci, mallory.identity.identityKey, 'sending'), false);

    const carol = await createTestDevice();
    await alice.cipher.processBundle(carol.address, carol.bundle());
    await open(carol, await alice.cipher.sealedEncrypt(carol.address, text('real'), issuer.certify(alice)), issuer);
    await open(alice, await carol.cipher.sealedEncrypt(alice.address, text('ack'), issuer.certify(carol)), issuer);
    // Alice's genuine session message under a certificate naming another key: refused.
    const genuineInner = await alice.cipher.encrypt(carol.address, text('x'));
    assert.equal(genuineInner.type, 'ciphertext');
    const aliceCall = new PortCall(alice.stores);
    const to = ProtocolAddress.new(carol.address.aci, 1);
    const inner = await signalEncrypt(new Uint8Array(text('y')), to, ProtocolAddress.new(alice.address.aci, 1), aliceCall.sessions, aliceCall.identity);
    await mallory.stores.identity.saveIdentity(carol.address.aci, carol.identity.identityKey);
    const malloryCall = new PortCall(mallory.stores);
    const usmc = UnidentifiedSenderMessageContent.new(inner, SenderCertificate.deserialize(new Uint8Array(rogue)), 0, null);
    const mixed = await sealedSenderEncrypt(usmc, to, malloryCall.identity);
    const err = await rejectsWith(open(carol, mixed, issuer), 'INVALID_CERTIFICATE');
    assert.equal(err.address, `${alice.address.aci}.1`);
  });

  it('refuses a prekey message whose inner identity key is not the certificate’s', async () => {
    const issuer = makeIssuer();
    const alice = await createTestDevice();
    const mallory = await createTestDevice();
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle());
    const to = ProtocolAddress.new(bob.address.aci, 1);
    const aliceCall = new PortCall(alice.stores);
    const inner = await signalEncrypt(new Uint8Array(text('y')), to, ProtocolAddress.new(alice.address.aci, 1), aliceCall.sessions, aliceCall.identity);
    const rogue = issuer.certify(alice, undefined, mallory.identity.identityKey);
    const usmc = UnidentifiedSenderMessageContent.new(inner, SenderCertificate.deserialize(new Uint8Array(rogue)), 0, null);
    await mallory.stores.identity.saveIdentity(bob.address.aci, bob.identity.identityKey);
    const sealed = await sealedSenderEncrypt(usmc, to, new PortCall(mallory.stores).identity);
    await rejectsWith(open(bob, sealed, issuer), 'INVALID_CERTIFICATE');
    assert.equal(await bob.stores.identity.getIdentity(alice.address.aci), undefined, 'no state changed');
    assert.equal(await bob.stores.sessions.getSession(`${alice.address.aci}.1`), undefined);
  });
});

/** Hands `from`'s sender key to each device over their 1:1 sessions (sealed), as a client would. */
async function distribute(from: TestDevice, to: TestDevice[], distributionId: string, issuer: Issuer): Promise<void> {
  const skdm = await from.cipher.createSenderKeyDistribution(from.address, distributionId);
  for (const d of to) {
    const sealed = await from.cipher.sealedEncrypt(d.address, skdm, issuer.certify(from));
    const opened = await open(d, sealed, issuer);
    const info = await d.cipher.processSenderKeyDistribution({ aci: opened.senderAci, deviceId: opened.senderDeviceId }, opened.plaintext);
    assert.equal(info.distributionId, distributionId);
  }
}

/** Splits a payload as the relay does and opens each device's part. */
async function deliver(payload: Uint8Array, to: TestDevice[], issuer: Issuer): Promise<Map<TestDevice, SealedDecryptResult>> {
  const parsed = parseMultiRecipientMessage(payload);
  const out = new Map<TestDevice, SealedDecryptResult>();
  for (const d of to) {
    const r = parsed.recipients.find((x) => x.aci === d.address.aci);
    assert.ok(r, 'the recipient is in the payload');
    const device = r.devices.find((x) => x.deviceId === d.address.deviceId);
    assert.deepEqual(device, { deviceId: d.address.deviceId, registrationId: d.identity.registrationId });
    out.set(d, await open(d, joinMultiRecipientPart(r.header, parsed.sharedBody), issuer));
  }
  return out;
}

interface Group {
  issuer: Issuer;
  sender: TestDevice;
  members: TestDevice[];
  groupId: Uint8Array;
}

/** A sender and 3 accounts with 1, 2 and 3 devices, all with sessions from the sender. */
async function group(): Promise<Group> {
  const issuer = makeIssuer();
  const sender = await createTestDevice();
  const members: TestDevice[] = [];
  for (const n of [1, 2, 3]) {
    const first = await createTestDevice();
    members.push(first);
    for (let d = 2; d <= n; d++) members.push(await linked(first, d));
  }
  for (const m of members) await sender.cipher.processBundle(m.address, m.bundle());
  return { issuer, sender, members, groupId: randomBytes(32) };
}

function send(g: Group, distributionId: string, message: string, recipients = g.members): Promise<Uint8Array> {
  return g.sender.cipher.groupEncryptMulti({
    self: g.sender.address,
    distributionId,
    plaintext: text(message),
    senderCertificate: g.issuer.certify(g.sender),
    recipients: recipients.map((m) => m.address),
    groupId: g.groupId,
    contentHint: 'resendable',
  });
}

describe('groups: sender keys over sealed sender v2', () => {
  it('delivers one upload to 3 accounts × 1..3 devices, each opening its part', async () => {
    const g = await group();
    const distributionId = randomUUID();
    await distribute(g.sender, g.members, distributionId, g.issuer);
    for (const message of ['first', 'second']) {
      const results = await deliver(await send(g, distributionId, message), g.members, g.issuer);
      assert.equal(results.size, 6);
      for (const r of results.values()) {
        assert.deepEqual([r.kind, str(r.plaintext), r.senderAci, r.senderDeviceId, r.contentHint], [
          'senderkey',
          message,
          g.sender.address.aci,
          1,
          'resendable',
        ]);
        assert.deepEqual(r.groupId, g.groupId);
        assert.deepEqual(r.senderIdentityKey, g.sender.identity.identityKey);
      }
    }
  });

  it('refuses a replayed group part with DUPLICATE_MESSAGE', async () => {
    const g = await group();
    const distributionId = randomUUID();
    await distribute(g.sender, g.members, distributionId, g.issuer);
    const payload = await send(g, distributionId, 'once');
    await deliver(payload, g.members, g.issuer);
    const parsed = parseMultiRecipientMessage(payload);
    const m = g.members[0]!;
    const part = joinMultiRecipientPart(parsed.recipients.find((r) => r.aci === m.address.aci)!.header, parsed.sharedBody);
    await rejectsWith(open(m, part, g.issuer), 'DUPLICATE_MESSAGE');
  });

  it('after rotation to a new distribution id given only to remaining members, a removed member cannot decrypt', async () => {
    const g = await group();
    const old = randomUUID();
    await distribute(g.sender, g.members, old, g.issuer);
    await deliver(await send(g, old, 'before'), g.members, g.issuer);

    const removed = g.members.filter((m) => m.address.aci === g.members[0]!.address.aci);
    const remaining = g.members.filter((m) => !removed.includes(m));
    const rotated = randomUUID();
    await distribute(g.sender, remaining, rotated, g.issuer);
    const payload = await send(g, rotated, 'after', remaining);
    const results = await deliver(payload, remaining, g.issuer);
    for (const r of results.values()) assert.equal(str(r.plaintext), 'after');

    // The removed member gets hold of the payload anyway (say, through a compromised relay):
    // its part can be cut out only if it is listed, so seal one for it with the new key too.
    const leaked = await send(g, rotated, 'secret', g.members);
    const parsed = parseMultiRecipientMessage(leaked);
    const r = parsed.recipients.find((x) => x.aci === removed[0]!.address.aci)!;
    const err = await rejectsWith(open(removed[0]!, joinMultiRecipientPart(r.header, parsed.sharedBody), g.issuer), 'NO_SENDER_KEY');
    assert.equal(err.address, `${g.sender.address.aci}.1`);
    // The remaining members open the same payload.
    const again = await deliver(leaked, remaining, g.issuer);
    for (const x of again.values()) assert.equal(str(x.plaintext), 'secret');
  });

  it('names every recipient device without a session, and encrypts nothing', async () => {
    const g = await group();
    const distributionId = randomUUID();
    await distribute(g.sender, g.members, distributionId, g.issuer);
    const senderKeyBefore = await g.sender.stores.senderKeys.getSenderKey(`${g.sender.address.aci}.1`, distributionId);
    const stranger = await createTestDevice();
    const strangerTwo = await linked(stranger, 2);
    const err = await rejectsWith(
      g.sender.cipher.groupEncryptMulti({
        self: g.sender.address,
        distributionId,
        plaintext: text('x'),
        senderCertificate: g.issuer.certify(g.sender),
        recipients: [...g.members, stranger, strangerTwo].map((m) => m.address),
        groupId: g.groupId,
      }),
      'NO_SESSION',
    );
    assert.deepEqual([...err.addresses].sort(), [`${stranger.address.aci}.1`, `${stranger.address.aci}.2`].sort());
    assert.deepEqual(await g.sender.stores.senderKeys.getSenderKey(`${g.sender.address.aci}.1`, distributionId), senderKeyBefore, 'the chain did not advance');
  });

  it('refuses to send before the sender key exists, and to recipients whose key changed unaccepted', async () => {
    const g = await group();
    await rejectsWith(send(g, randomUUID(), 'x'), 'NO_SENDER_KEY');
    const distributionId = randomUUID();
    await distribute(g.sender, g.members, distributionId, g.issuer);
    const changed = g.members[0]!;
    await g.sender.stores.identity.saveIdentity(changed.address.aci, randomBytes(33).fill(5, 0, 1));
    const err = await rejectsWith(send(g, distributionId, 'x'), 'UNTRUSTED_IDENTITY');
    assert.deepEqual(err.addresses, [`${changed.address.aci}.1`]);
  });

  it('refuses bad group inputs with INVALID_ARGUMENT', async () => {
    const g = await group();
    const distributionId = randomUUID();
    await distribute(g.sender, g.members, distributionId, g.issuer);
    const base: GroupEncryptInput = {
      self: g.sender.address,
      distributionId,
      plaintext: text('x'),
      senderCertificate: g.issuer.certify(g.sender),
      recipients: g.members.map((m) => m.address),
      groupId: g.groupId,
    };
    const bad: Array<Partial<GroupEncryptInput>> = [
      { self: g.members[0]!.address },
      { distributionId: distributionId.toUpperCase() },
      { recipients: [] },
      { recipients: [g.members[0]!.address, g.members[0]!.address] },
      { recipients: [g.sender.address] },
      { groupId: new Uint8Array(0) },
    ];
    for (const b of bad) await rejectsWith(g.sender.cipher.groupEncryptMulti({ ...base, ...b }), 'INVALID_ARGUMENT');
    await rejectsWith(g.sender.cipher.createSenderKeyDistribution(g.members[0]!.address, distributionId), 'INVALID_ARGUMENT');
    await rejectsWith(g.members[0]!.cipher.processSenderKeyDistribution(g.sender.address, randomBytes(40)), 'INVALID_MESSAGE');
  });

  it('lists excluded accounts in the payload for the relay', async () => {
    const g = await group();
    const distributionId = randomUUID();
    await distribute(g.sender, g.members, distributionId, g.issuer);
    const excluded = randomUUID();
    const payload = await g.sender.cipher.groupEncryptMulti({
      self: g.sender.address,
      distributionId,
      plaintext: text('x'),
      senderCertificate: g.issuer.certify(g.sender),
      recipients: g.members.map((m) => m.address),
      groupId: g.groupId,
      excludedAcis: [excluded],
    });
    assert.deepEqual(parseMultiRecipientMessage(payload).excludedAcis, [excluded]);
  });
});

