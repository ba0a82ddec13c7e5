// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed sender through a real relay process (DESIGN §5): after the first exchange the relay
 * keeps no sender for what two people send each other, yet each shows the right sender; first
 * contact goes identified; a stale access key falls back to an identified send that arrives; a
 * block rotates the profile key so the blocked contact's sealed sends are refused; an expired
 * certificate is replaced; a certificate from a root nobody pinned is refused on receipt; a
 * linked device gets the profile key.
 *
 * Engines (alice, bob) run in this process on real profiles; mallory is a protocol-level test
 * device that seals by hand, so it can present certificates and access keys an engine never
 * would.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  createServerCertificate,
  deriveAccessKey,
  generateTrustRoot,
  issueSenderCertificate,
} from '@parley/crypto';
import { openClientStore, type MessageView } from '@parley/client';
import {
  aciToBytes,
  ContentSchema,
  create,
  EnvelopeSchema,
  EnvelopeType,
  fromBase64Url,
  fromBinary,
  toBinary,
  type Aci,
  type Envelope,
  type SenderCertificateResponse,
} from '@parley/protocol';
import { linkNewDevice, openRecording, type RecordingClient } from '../support/client-harness.js';
import { DeviceSocket } from '../support/device-socket.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { TamperingProxy } from '../support/tampering-proxy.js';
import { registerAccount, type TestDevice } from '../support/test-device.js';

/** What the relay holds queued for `aci`'s devices right now. */
interface QueuedEnvelope {
  readonly type: number;
  readonly sourceAci: string | null;
  readonly sourceDevice: number | null;
  readonly content: Buffer | null;
}

function queuedFor(relay: RelayProcess, aci: string): QueuedEnvelope[] {
  const db = new Database(join(relay.dataDir, 'relay.db'), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare(
        `SELECT e.type AS type, e.source_aci AS sourceAci, e.source_device AS sourceDevice, e.content AS content
         FROM envelope e JOIN device_queue q ON q.queue_id = e.queue_id WHERE q.aci = ? ORDER BY e.envelope_id`,
      )
      .all(aci) as QueuedEnvelope[];
  } finally {
    db.close();
  }
}

/**
 * Asserts that the relay holds at least one envelope for `aci` and that every one is `type`
 * from `source` (null: no sender). Delivery receipts travel like messages, so counts vary.
 */
function assertQueued(relay: RelayProcess, aci: string, type: number, source: string | null, what: string): void {
  const queued = queuedFor(relay, aci).map((e) => [e.type, e.sourceAci]);
  assert.ok(queued.length > 0, `${what}: something is queued`);
  assert.deepEqual(queued, queued.map(() => [type, source]), what);
}

/** The 16 bytes and the text of an ACI, as they would sit in a file. */
function aciForms(aci: string): Buffer[] {
  return [Buffer.from(aciToBytes(aci as Aci)), Buffer.from(aci, 'utf8')];
}

/**
 * Whether anything in the relay's envelope database holds `aci`, other than the row of its
 * own device queue (it receives messages too, so its queue is there by name). A vacuumed copy
 * without that row is searched byte by byte, so no table, index or free page is missed.
 */
function relayDatabaseNames(relay: RelayProcess, aci: string): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'parley-relay-copy-'));
  try {
    const copy = join(dir, 'copy.db');
    const live = new Database(join(relay.dataDir, 'relay.db'), { readonly: true, fileMustExist: true });
    try {
      live.exec(`VACUUM INTO '${copy}'`);
    } finally {
      live.close();
    }
    const db = new Database(copy);
    db.prepare('DELETE FROM device_queue WHERE aci = ?').run(aci);
    db.exec('VACUUM');
    db.close();
    const bytes = readFileSync(copy);
    return aciForms(aci).some((form) => bytes.includes(form));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Decodes the Content of an identified envelope to a protocol-level device. */
async function contentOf(device: TestDevice, envelope: Envelope) {
  const from = { aci: fromWireAci(envelope.source), deviceId: envelope.sourceDevice };
  const plaintext = await device.cipher.decrypt(from, envelope.type === EnvelopeType.PREKEY ? 'prekey' : 'ciphertext', envelope.content);
  return fromBinary(ContentSchema, plaintext);
}

function fromWireAci(bytes: Uint8Array): string {
  const h = Buffer.from(bytes).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A text Content as the engine encodes it (padding aside). */
function textContent(text: string): Uint8Array {
  return toBinary(
    ContentSchema,
    create(ContentSchema, {
      body: { case: 'data', value: { messageId: new Uint8Array(randomBytes(16)), lamport: 1n, timestamp: BigInt(Date.now()), text } },
    }),
  );
}

/** Seals `text` from a protocol-level device to every device of `to`, under `certificate`. */
async function sealFor(from: TestDevice, to: string, toDevices: readonly number[], text: string, certificate: Uint8Array) {
  const messages = [];
  for (const deviceId of toDevices) {
    const address = { aci: to, deviceId };
    const content = await from.cipher.sealedEncrypt(address, textContent(text), certificate);
    messages.push({ deviceId, registrationId: (await from.cipher.remoteRegistrationId(address))!, type: EnvelopeType.SEALED, content });
  }
  return messages;
}

/** One sealed Send over the unidentified socket; resolves with the relay's answer. */
async function sendUnidentified(relay: RelayProcess, to: string, accessKey: Uint8Array, messages: Awaited<ReturnType<typeof sealFor>>) {
  const socket = await DeviceSocket.connect(relay.url.replace(/^http/, 'ws') + '/v1/websocket/unidentified', {});
  try {
    const requestId = socket.requestId();
    socket.send({
      kind: {
        case: 'send',
        value: { requestId, destination: aciToBytes(to as Aci), messageId: new Uint8Array(randomBytes(16)), timestamp: BigInt(Date.now()), urgent: true, messages, accessKey },
      },
    });
    return await socket.answer(requestId);
  } finally {
    socket.ws.close();
  }
}

const texts = (ms: readonly MessageView[]) => ms.map((m) => m.text);

describe('client engine: sealed sender through a relay process', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let bob: RecordingClient;
  let aliceAci: string;
  let bobAci: string;
  let mallory: TestDevice;

  before(async () => {
    relay = await startRelay({ args: ['--log-level', 'trace'] });
    alice = await openRecording();
    bob = await openRecording();
    aliceAci = (await alice.client.register(relay.url, 'alice')).aci;
    bobAci = (await bob.client.register(relay.url, 'bob')).aci;
    mallory = await registerAccount(relay.url, 'mallory');
  });
  after(async () => {
    await alice?.client.close();
    await bob?.client.close();
    await relay?.stop();
  });

  it('pins the relay’s trust root and uploads the access key at registration (whoami shows sealed sender active)', () => {
    for (const c of [alice, bob]) {
      const s = c.client.account()!.sealedSender!;
      assert.equal(s.trustRootPinned, true);
      assert.equal(s.accessKeyUploaded, true);
      assert.equal(s.active, true);
    }
    assert.equal(alice.client.contacts().length, 0);
  });

  it('goes identified on first contact, sealed from then on; the relay keeps no sender for sealed envelopes and the recipient shows the right one', async () => {
    // First contact: alice knows nothing of bob's profile key.
    await alice.client.send('bob', 'hello bob, first contact');
    const first = queuedFor(relay, bobAci);
    assert.equal(first.length, 1);
    assert.equal(first[0]!.type, EnvelopeType.PREKEY, 'identified, starting the session');
    assert.equal(first[0]!.sourceAci, aliceAci, 'the relay knows who sent the first message');
    assert.deepEqual(texts(await bob.client.receive()), ['hello bob, first contact']);
    assert.equal(bob.client.contacts().find((c) => c.address === 'alice@localhost')?.sealedSender, true, 'the message carried alice’s profile key');

    // Bob answers sealed (he holds alice's key now); the answer carries his key.
    await bob.client.send('alice', 'hi alice, this one is sealed');
    assertQueued(relay, aliceAci, EnvelopeType.SEALED, null, 'bob’s answer (and his delivery receipt) go sealed');
    const got = await alice.client.receive();
    assert.deepEqual(texts(got), ['hi alice, this one is sealed']);
    assert.equal(got[0]!.sender, 'bob@localhost', 'the sender comes from the certificate');
    assert.equal(got[0]!.senderDevice, 1);
    assert.equal(alice.client.contacts().find((c) => c.address === 'bob@localhost')?.sealedSender, true);

    // From now on: both ways sealed while the recipient is offline, so the envelopes sit in
    // the relay's database to be looked at.
    const logFrom = relay.output().length;
    for (let i = 0; i < 3; i++) await alice.client.send('bob', `sealed note ${i} from alice`);
    const queued = queuedFor(relay, bobAci);
    assert.ok(queued.length >= 3, 'three notes (and maybe a delivery receipt)');
    for (const e of queued) {
      assert.equal(e.type, EnvelopeType.SEALED);
      assert.equal(e.sourceAci, null);
      assert.ok(!e.sourceDevice, 'no sender device either');
      for (const form of aciForms(aliceAci)) assert.equal(e.content?.includes(form), false, 'nor inside the stored bytes');
    }
    assert.equal(relayDatabaseNames(relay, aliceAci), false, 'nothing in relay.db names alice but her own queue');
    const logLines = relay
      .output()
      .slice(logFrom)
      .split('\n')
      .filter((l) => l.includes(aliceAci));
    // Alice's engine holds her authenticated socket open while it sends (it also receives on
    // it), so the relay may log that her device connected; nothing else may name her.
    assert.deepEqual(
      logLines.filter((l) => !/"msg":"device (dis)?connected"/.test(l) || l.includes(bobAci)),
      [],
      'no log line of the sends names alice, none ties her to bob',
    );
    const received = await bob.client.receive();
    assert.deepEqual(texts(received), ['sealed note 0 from alice', 'sealed note 1 from alice', 'sealed note 2 from alice']);
    assert.ok(received.every((m) => m.sender === 'alice@localhost' && m.direction === 'in' && m.conversation === 'alice@localhost'));
  });

  it('a stale access key: the relay refuses the sealed send, it goes identified and arrives, and the key is dropped until a new one comes', async () => {
    // Whatever is still queued for alice (a delivery receipt) went before the rotation.
    await alice.client.receive();
    // Alice blocks someone else, which replaces her profile key; bob still holds the old one.
    await registerAccount(relay.url, 'carol');
    await alice.client.block('carol');
    assert.equal(alice.client.account()!.sealedSender!.accessKeyUploaded, true, 'the new access key is on the relay');
    const m = await bob.client.send('alice', 'do you still get this?');
    assert.equal(m.status, 'sent');
    assertQueued(relay, aliceAci, EnvelopeType.CIPHERTEXT, bobAci, 'refused sealed, sent identified');
    assert.equal(bob.client.contacts().find((c) => c.address === 'alice@localhost')?.sealedSender, false, 'the stale key is dropped');
    assert.deepEqual(texts(await alice.client.receive()), ['do you still get this?']);

    // Nobody needs to ask for the new key: alice's delivery receipt for the fallback message (she
    // still holds bob's key, so it goes sealed) carries it, and bob is sealed again at once.
    await alice.client.receive(); // the receipt leaves on this connection if it did not on the last one
    await bob.client.receive();
    assert.equal(bob.client.contacts().find((c) => c.address === 'alice@localhost')?.sealedSender, true, 'the receipt brought the new key');
    await bob.client.send('alice', 'sealed after the receipt');
    assertQueued(relay, aliceAci, EnvelopeType.SEALED, null, 'sealed again without alice writing');
    assert.deepEqual(texts(await alice.client.receive()), ['sealed after the receipt']);

    // Alice's next message carries her new key too; bob stays sealed.
    await alice.client.send('bob', 'yes, and here is my new key');
    assert.deepEqual(texts(await bob.client.receive()), ['yes, and here is my new key']);
    assert.equal(bob.client.contacts().find((c) => c.address === 'alice@localhost')?.sealedSender, true);
    await bob.client.send('alice', 'sealed again');
    assertQueued(relay, aliceAci, EnvelopeType.SEALED, null, 'sealed again');
    assert.deepEqual(texts(await alice.client.receive()), ['sealed again']);
  });

  it('refuses on receipt a sealed message whose certificate chains to a root nobody pinned, and shows one with a valid certificate', async () => {
    // Mallory learns alice's profile key the ordinary way: alice writes to her.
    const socket = await mallory.connect();
    try {
      await socket.drained();
      await alice.client.send('mallory', 'hello mallory');
      const [env] = await socket.waitForEnvelopes(1);
      const content = await contentOf(mallory, env!);
      assert.equal(content.profileKey.length, 32, 'a contact who is not blocked gets the profile key');
      const accessKey = deriveAccessKey(content.profileKey);

      // A certificate for mallory's real device and identity key, from a root of her own.
      const rogueRoot = generateTrustRoot();
      const rogueServer = createServerCertificate(7, rogueRoot.privateKey);
      const forged = issueSenderCertificate({
        senderAci: mallory.aci,
        senderDeviceId: mallory.deviceId,
        senderIdentityKey: mallory.identity.identityKey,
        expiresAt: Date.now() + 3600_000,
        serverCertificate: rogueServer.certificate,
        serverPrivateKey: rogueServer.privateKey,
      });
      const before = alice.messages.length;
      const forgedAnswer = await sendUnidentified(relay, aliceAci, accessKey, await sealFor(mallory, aliceAci, [1], 'forged certificate', forged));
      assert.equal(forgedAnswer.error, undefined, 'the relay cannot judge certificates; it queues the envelope');

      // Then one with the relay's own certificate.
      const issued = await mallory.call<SenderCertificateResponse>('GET', '/v1/certificate/sender');
      assert.equal(issued.status, 200);
      const real = fromBase64Url(issued.body.certificate)!;
      const realAnswer = await sendUnidentified(relay, aliceAci, accessKey, await sealFor(mallory, aliceAci, [1], 'a real certificate', real));
      assert.equal(realAnswer.error, undefined);

      const got = await alice.client.receive();
      assert.deepEqual(texts(got), ['a real certificate'], 'the forged one is not shown, the valid one is');
      assert.equal(got[0]!.sender, 'mallory@localhost');
      assert.equal(alice.messages.slice(before).some((m) => m.text.includes('forged')), false);
      assert.deepEqual(queuedFor(relay, aliceAci), [], 'both were acked: the refused one does not block the queue');
      assert.equal(alice.client.account()!.sealedSender!.unreadable, 1, 'nobody can be asked to resend it, but it is counted');
    } finally {
      socket.ws.close();
    }
  });

  it('after a block the profile key rotates: the blocked contact’s sealed send is refused by the relay; others get the new key', async () => {
    const socket = await mallory.connect();
    try {
      await socket.drained();
      const seen = socket.envelopes.length;
      await alice.client.send('mallory', 'one more before I block you');
      await socket.waitForEnvelopes(seen + 1);
      const oldKey = (await contentOf(mallory, socket.envelopes[seen]!)).profileKey;
      assert.equal(oldKey.length, 32);
      const issued = await mallory.call<SenderCertificateResponse>('GET', '/v1/certificate/sender');
      const certificate = fromBase64Url(issued.body.certificate)!;
      const beforeBlock = await sendUnidentified(relay, aliceAci, deriveAccessKey(oldKey), await sealFor(mallory, aliceAci, [1], 'before the block', certificate));
      assert.equal(beforeBlock.error, undefined, 'the key works before the block');
      assert.deepEqual(texts(await alice.client.receive()), ['before the block']);

      await alice.client.block('mallory');

      const afterBlock = await sendUnidentified(relay, aliceAci, deriveAccessKey(oldKey), await sealFor(mallory, aliceAci, [1], 'after the block', certificate));
      assert.equal(afterBlock.error?.code, 'UNAUTHORIZED', 'the relay refuses the old access key');

      // Bob is not blocked: he gets the new key with alice's next message and stays sealed.
      await alice.client.send('bob', 'new key for you');
      assert.deepEqual(texts(await bob.client.receive()), ['new key for you']);
      await bob.client.send('alice', 'still sealed');
      assertQueued(relay, aliceAci, EnvelopeType.SEALED, null, 'bob is not blocked: still sealed');
      const got = await alice.client.receive();
      assert.deepEqual(texts(got), ['still sealed']);
    } finally {
      socket.ws.close();
    }
  });

  it('replaces an expired certificate before a sealed send', async () => {
    const profileDir = alice.profileDir;
    const expiresBefore = alice.client.account()!.sealedSender!.certificateExpiresAt!;
    assert.ok(expiresBefore > Date.now());
    await alice.client.close();
    const store = openClientStore({ profileDir });
    store.database.run('UPDATE sender_certificate SET expires_at = ?', [Date.now() - 1000]);
    store.close();
    alice = await openRecording(profileDir);
    assert.ok(alice.client.account()!.sealedSender!.certificateExpiresAt! < Date.now(), 'the cached one has expired');
    await alice.client.send('bob', 'with a fresh certificate');
    assert.ok(alice.client.account()!.sealedSender!.certificateExpiresAt! > Date.now(), 'a new one was fetched');
    assertQueued(relay, bobAci, EnvelopeType.SEALED, null, 'sealed');
    const got = await bob.client.receive();
    assert.deepEqual(texts(got), ['with a fresh certificate']);
    assert.equal(got[0]!.sender, 'alice@localhost');
  });

  it('gives a linked device the account’s profile key and its contacts’ keys; it sends sealed at once', async () => {
    const { device } = await linkNewDevice(alice, relay.url, { timeoutMs: 30_000 });
    try {
      const s = device.client.account()!.sealedSender!;
      assert.equal(s.trustRootPinned, true);
      assert.equal(s.accessKeyUploaded, true, 'the same access key: the relay had it already');
      // The history brought bob's profile key along: no need to wait for bob to write.
      assert.equal(device.client.contacts().find((c) => c.address === 'bob@localhost')?.sealedSender, true);
      await bob.client.receive();
      await device.client.send('bob', 'from alice’s second device');
      assertQueued(relay, bobAci, EnvelopeType.SEALED, null, 'sealed');
      const got = await bob.client.receive();
      assert.deepEqual(texts(got), ['from alice’s second device']);
      assert.equal(got[0]!.sender, 'alice@localhost');
      assert.equal(got[0]!.senderDevice, 2);
      await alice.client.receive();

      // A setting changed on one device, then a block there: the other device takes the new
      // profile key from the block's SettingsSync and keeps the setting.
      await alice.client.updateSettings({ typingIndicators: false });
      await device.client.receive();
      assert.equal(device.client.settings().typingIndicators, false);
      await registerAccount(relay.url, 'dave');
      await alice.client.block('dave');
      await device.client.receive();
      assert.equal(device.client.settings().typingIndicators, false, 'the rotation’s sync changed no setting');
      assert.equal(device.client.account()!.sealedSender!.accessKeyUploaded, true, 'the linked device uploaded the new access key too');
      await alice.client.updateSettings({ typingIndicators: true });
      await device.client.receive();
    } finally {
      const dir = device.profileDir;
      await device.client.close();
      await alice.client.close();
      const a = openClientStore({ profileDir: alice.profileDir });
      const d = openClientStore({ profileDir: dir });
      try {
        assert.deepEqual(d.getAccount()?.profileKey, a.getAccount()?.profileKey, 'both devices hold the same (rotated) profile key');
      } finally {
        a.close();
        d.close();
      }
      alice = await openRecording(alice.profileDir);
    }
  });

  it('refuses a relay that comes back with another trust root (TRUST_ROOT_CHANGED): messages go out identified and still arrive', async () => {
    await bob.client.receive();
    // The operator replaced the relay's sealed-sender keys: a new root on the same address.
    await relay.stop();
    rmSync(join(relay.dataDir, 'sealed-sender'), { recursive: true, force: true });
    relay = await startRelay({ dataDir: relay.dataDir, port: relay.port, args: ['--log-level', 'warn'] });
    // Alice's cached certificate runs out, so she must ask for a new one.
    const profileDir = alice.profileDir;
    await alice.client.close();
    const store = openClientStore({ profileDir });
    store.database.run('UPDATE sender_certificate SET expires_at = ?', [Date.now() - 1000]);
    store.close();
    alice = await openRecording(profileDir);

    const m = await alice.client.send('bob', 'after the relay changed its keys');
    assert.equal(m.status, 'sent');
    assertQueued(relay, bobAci, EnvelopeType.CIPHERTEXT, aliceAci, 'identified: no certificate under the new root is believed');
    const status = alice.client.account()!.sealedSender!;
    assert.equal(status.active, false);
    assert.equal(status.problem, 'TRUST_ROOT_CHANGED');
    assert.deepEqual(texts(await bob.client.receive()), ['after the relay changed its keys']);

    // The refusal outlives the process: a new one reports it before it asks anything.
    await alice.client.close();
    alice = await openRecording(profileDir);
    assert.equal(alice.client.account()!.sealedSender!.problem, 'TRUST_ROOT_CHANGED');
  });
});

describe('client engine: a relay that corrupts a sealed envelope', () => {
  it('cannot name the sender to the recipient: nothing is shown, it is counted, acked, and the queue moves on', async () => {
    const relay = await startRelay();
    const proxy = await TamperingProxy.start(relay.url);
    const alice = await openRecording();
    const bob = await openRecording();
    try {
      await alice.client.register(proxy.url, 'alice');
      const bobAci = (await bob.client.register(proxy.url, 'bob')).aci;
      await alice.client.send('bob', 'first contact');
      await bob.client.receive();
      await bob.client.send('alice', 'now we are both sealed');
      // Alice's delivery receipt goes out shortly after she stored the message; let it reach bob
      // first, so that the next sealed envelope to bob is her message.
      await alice.client.receive({ idleSeconds: 1 });
      await bob.client.receive();

      // The relay cannot tell whose envelope it is, so it flips a byte of the next one to bob.
      let corrupted = 0;
      proxy.relayFrameHook = (frame, ctx) => {
        if (corrupted > 0 || ctx.device?.aci !== bobAci || frame.kind.case !== 'deliver') return undefined;
        const envelopes = frame.kind.value.envelopes.map((e) => {
          if (corrupted > 0 || e.type !== EnvelopeType.SEALED) return e;
          corrupted++;
          const content = new Uint8Array(e.content);
          content[Math.floor(content.length / 2)]! ^= 0x01;
          return create(EnvelopeSchema, { ...e, content });
        });
        return [{ kind: { case: 'deliver', value: { envelopes } } }];
      };
      await alice.client.send('bob', 'the corrupted one');
      await alice.client.send('bob', 'the next one');
      const got = await bob.client.receive();
      assert.equal(corrupted, 1);
      assert.deepEqual(texts(got), ['the next one'], 'nothing of the corrupted one is shown, the later one is');
      assert.equal(bob.client.account()!.sealedSender!.unreadable, 1);
      assert.deepEqual(queuedFor(relay, bobAci), [], 'acked: it does not block the queue');
    } finally {
      await alice.client.close();
      await bob.client.close();
      await proxy.close();
      await relay.stop();
    }
  });
});
