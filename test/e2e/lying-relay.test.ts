// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The client engine against a relay that lies: real relay process, real profiles, and between
 * them a proxy standing in for a malicious relay (support/tampering-proxy.ts). The relay may
 * hand out forged prekey bundles, swap a peer's identity key, replay envelopes or corrupt them;
 * the engine must notice or survive each, never encrypt to a key the user did not accept, and
 * never lose or double a message.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  createMemoryStores,
  CryptoError,
  generateIdentity,
  generateKyberPreKey,
  generatePreKeys,
  generateSignedPreKey,
  SessionCipher,
  type ProtocolStores,
} from '@parley/crypto';
import { ClientError, openClientStore, openParleyClient, type MessageView, type ParleyClientApi } from '@parley/client';
import {
  aciFromBytes,
  ContentSchema,
  create,
  EnvelopeSchema,
  EnvelopeType,
  fromBase64Url,
  fromBinary,
  toBase64Url,
  toHex,
  type BundleResponse,
  type Frame,
} from '@parley/protocol';
import { REPO_ROOT, startRelay, type RelayProcess } from '../support/relay-process.js';
import { TamperingProxy } from '../support/tampering-proxy.js';

const profile = () => mkdtempSync(join(tmpdir(), 'parley-profile-'));

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A copy of base64url `text` with one byte flipped. */
function flipByte(text: string, at = 10): string {
  const bytes = fromBase64Url(text)!;
  bytes[at % bytes.length]! ^= 0x01;
  return toBase64Url(bytes);
}

interface World {
  relay: RelayProcess;
  proxy: TamperingProxy;
  alice: ParleyClientApi;
  bob: ParleyClientApi;
  aliceDir: string;
  bobDir: string;
  aliceAci: string;
  bobAci: string;
}

/** A relay, the lying proxy in front of it, and alice and bob registered through the proxy. */
async function world(): Promise<World> {
  const relay = await startRelay();
  const proxy = await TamperingProxy.start(relay.url);
  // These lies need the relay to see who sends (it picks alice's envelopes by their source);
  // what a relay can do to sealed envelopes is in client-sealed-sender.test.ts.
  proxy.hideSealedSender = true;
  const aliceDir = profile();
  const bobDir = profile();
  const alice = await openParleyClient({ profileDir: aliceDir });
  const bob = await openParleyClient({ profileDir: bobDir });
  const aliceAci = (await alice.register(proxy.url, 'alice')).aci;
  const bobAci = (await bob.register(proxy.url, 'bob')).aci;
  return { relay, proxy, alice, bob, aliceDir, bobDir, aliceAci, bobAci };
}

async function teardown(w: World | undefined, closed: ReadonlySet<ParleyClientApi> = new Set()): Promise<void> {
  if (!w) return;
  for (const c of [w.alice, w.bob]) if (!closed.has(c)) await c.close().catch(() => undefined);
  await w.proxy.close();
  await w.relay.stop();
}

/** Sends from `aci` (client → relay) addressed to `destination`. */
function sendsTo(proxy: TamperingProxy, from: string, destination: string) {
  return proxy.sentFrames(from).filter((s) => aciFromBytes(s.destination) === destination);
}

const texts = (ms: readonly MessageView[]) => ms.map((m) => m.text);

/**
 * What `client` shows from `peer`, oldest first. Read from the history rather than from
 * `receive()`'s result: a client that sent something stays connected and may already have
 * received an answer before `receive()` is called.
 */
async function inbox(client: ParleyClientApi, peer: string): Promise<MessageView[]> {
  await client.receive();
  return client.history(peer, { limit: 100 }).filter((m) => m.direction === 'in').reverse();
}

/**
 * A send to a peer whose key changed either fails with IDENTITY_CHANGED or resolves with the
 * message still pending (when the flush that met the change was not the one send() waited for);
 * never 'sent'.
 */
async function heldForIdentity(sending: Promise<MessageView>): Promise<void> {
  const outcome = await sending.then(
    (m) => m.status,
    (err: unknown) => err,
  );
  if (typeof outcome === 'string') assert.equal(outcome, 'pending', 'the message waits for the user');
  else assert.ok(ClientError.is(outcome, 'IDENTITY_CHANGED'), `a typed refusal, got ${String(outcome)}`);
}

/** An identity the lying relay made up, with validly signed prekeys and their private records. */
async function forgedIdentity(): Promise<{ stores: ProtocolStores; identityKey: Uint8Array; bundleFor(real: BundleResponse): BundleResponse }> {
  const identity = generateIdentity();
  const stores = createMemoryStores(identity);
  const now = Date.now();
  const spk = generateSignedPreKey(identity.identityKeyPair, 7, now);
  const kyber = generateKyberPreKey(identity.identityKeyPair, 7, now);
  const [pre] = generatePreKeys(7, 1);
  await stores.signedPreKeys.saveSignedPreKey(spk.keyId, spk.record);
  await stores.kyberPreKeys.saveKyberPreKey(kyber.keyId, kyber.record, true);
  await stores.preKeys.savePreKey(pre!.keyId, pre!.record);
  const signed = (k: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }) => ({
    keyId: k.keyId,
    publicKey: toBase64Url(k.publicKey),
    signature: toBase64Url(k.signature),
  });
  return {
    stores,
    identityKey: identity.identityKey,
    // Registration and device ids stay the real ones, so the relay accepts what is encrypted to it.
    bundleFor: (real) => ({
      aci: real.aci,
      identityKey: toBase64Url(identity.identityKey),
      devices: real.devices.map((d) => ({
        deviceId: d.deviceId,
        registrationId: d.registrationId,
        signedPreKey: signed(spk.upload),
        kyberPreKey: signed(kyber.upload),
        preKey: { keyId: pre!.keyId, publicKey: toBase64Url(pre!.upload.publicKey) },
      })),
    }),
  };
}

/** What `dir`'s profile knows about `peer` (read after its client closed). */
async function protocolStateOf(dir: string, peer: string): Promise<{ sessionDevices: number[]; identityKey: Uint8Array | undefined }> {
  const store = openClientStore({ profileDir: dir });
  try {
    return {
      sessionDevices: await store.protocol.sessions.getSessionDeviceIds(peer),
      identityKey: await store.protocol.identity.getIdentity(peer),
    };
  } finally {
    store.close();
  }
}

describe('the client engine behind a lying relay', () => {
  it('refuses a prekey bundle with a forged signed-prekey signature and starts no session', async () => {
    let w: World | undefined;
    const closed = new Set<ParleyClientApi>();
    try {
      w = await world();
      const { proxy, alice, bobAci, aliceAci } = w;
      let forged = 0;
      proxy.restHook = (req, res) => {
        if (req.method !== 'GET' || !req.path.startsWith(`/v1/keys/${bobAci}/`) || res.status !== 200) return undefined;
        const bundle = structuredClone(res.json as BundleResponse);
        for (const d of bundle.devices) d.signedPreKey.signature = flipByte(d.signedPreKey.signature);
        forged++;
        return { body: bundle };
      };
      const outcome = await alice.send('bob', 'for bob only').then(
        (m) => ({ m, err: undefined }),
        (err: unknown) => ({ m: undefined, err }),
      );
      assert.ok(forged >= 1, 'the forged bundle was served');
      if (outcome.err !== undefined) {
        assert.ok(CryptoError.is(outcome.err, 'INVALID_SIGNATURE'), `a typed refusal, got ${String(outcome.err)}`);
      } else {
        assert.equal(outcome.m!.status, 'pending');
      }
      const [shown] = alice.history('bob');
      assert.equal(shown?.text, 'for bob only');
      assert.equal(shown?.status, 'pending', 'the message waits; it was not sent');
      assert.equal(sendsTo(proxy, aliceAci, bobAci).length, 0, 'nothing was encrypted to the forged bundle');
      // Bob's queue stays empty.
      assert.deepEqual(await w.bob.receive(), []);
      // One bad peer does not block the outbox: a send to someone else goes out, and receiving works.
      const carol = await openParleyClient({ profileDir: profile() });
      try {
        await carol.register(proxy.url, 'carol');
        const toCarol = await alice.send('carol', 'for carol');
        assert.equal(toCarol.status, 'sent');
        assert.deepEqual(texts(await carol.receive()), ['for carol']);
        await alice.receive();
      } finally {
        await carol.close();
      }

      await alice.close();
      closed.add(alice);
      const state = await protocolStateOf(w.aliceDir, bobAci);
      assert.deepEqual(state.sessionDevices, [], 'no session with bob');
      assert.equal(state.identityKey, undefined, 'no identity key learned from a bundle that does not verify');
    } finally {
      await teardown(w, closed);
    }
  });

  it('holds messages to a swapped identity key until the user accepts it', async () => {
    let w: World | undefined;
    try {
      w = await world();
      const { proxy, alice, bob, aliceAci, bobAci } = w;
      assert.equal((await alice.send('bob', 'hello bob')).status, 'sent');
      assert.deepEqual(texts(await bob.receive()), ['hello bob']);
      const before = await alice.verify('bob');
      assert.equal(before.identityChanged, false);

      // The relay claims bob's device changed (STALE_DEVICES) and hands out a bundle under an
      // identity it made up, validly self-signed.
      const forged = await forgedIdentity();
      proxy.restHook = (req, res) =>
        req.method === 'GET' && req.path.startsWith(`/v1/keys/${bobAci}/`) && res.status === 200 ? { body: forged.bundleFor(res.json as BundleResponse) } : undefined;
      let lied = false;
      proxy.clientFrameHook = (frame, ctx) => {
        if (lied || frame.kind.case !== 'send' || aciFromBytes(frame.kind.value.destination) !== bobAci) return undefined;
        lied = true;
        ctx.toClient({ kind: { case: 'error', value: { requestId: frame.kind.value.requestId, code: 'STALE_DEVICES', message: 'stale', staleDevices: [1] } } });
        return []; // the relay never sees it
      };
      const sendsBefore = sendsTo(proxy, aliceAci, bobAci).length;
      await heldForIdentity(alice.send('bob', 'are you still you?'));
      assert.ok(lied);

      const changed = await alice.verify('bob');
      assert.equal(changed.identityChanged, true, 'verify shows the change');
      assert.notEqual(changed.safetyNumber, before.safetyNumber, 'the safety number is the new key’s');
      assert.equal(alice.conversations().find((c) => c.address.startsWith('bob@'))?.identityChanged, true, 'the conversation is flagged');
      assert.equal(alice.contacts().find((c) => c.aci === bobAci)?.identityChanged, true);
      assert.equal(alice.history('bob')[0]?.status, 'pending');

      // Connecting again does not release it either.
      await alice.receive();
      assert.equal(alice.history('bob')[0]?.status, 'pending');
      await heldForIdentity(alice.send('bob', 'still waiting'));
      // Only the send the proxy swallowed left alice (encrypted on the old, trusted session).
      assert.equal(sendsTo(proxy, aliceAci, bobAci).length, sendsBefore + 1, 'nothing was encrypted to the unaccepted key');

      const accepted = await alice.acceptIdentity('bob');
      assert.equal(accepted.identityChanged, false);
      assert.equal(accepted.safetyNumber, changed.safetyNumber);
      assert.equal(alice.conversations().find((c) => c.address.startsWith('bob@'))?.identityChanged, false);
      await alice.receive();
      const held = alice.history('bob').filter((m) => m.text === 'are you still you?' || m.text === 'still waiting');
      assert.deepEqual(
        held.map((m) => m.status),
        ['sent', 'sent'],
        'the outbox is released once the user accepted',
      );

      // From now on the engine encrypts to the accepted key. Here it belongs to the relay, which
      // can read the next message: that is why accepting is the user's decision alone.
      const n = sendsTo(proxy, aliceAci, bobAci).length;
      assert.equal((await alice.send('bob', 'readable by whoever holds the new key')).status, 'sent');
      const latest = sendsTo(proxy, aliceAci, bobAci).slice(n);
      assert.equal(latest.length, 1);
      const part = latest[0]!.messages[0]!;
      assert.equal(part.type, EnvelopeType.PREKEY);
      const attacker = new SessionCipher(forged.stores, { localAddress: { aci: bobAci, deviceId: 1 } });
      const plain = await attacker.decrypt({ aci: aliceAci, deviceId: 1 }, 'prekey', part.content);
      const content = fromBinary(ContentSchema, plain);
      assert.equal(content.body.case === 'data' ? content.body.value.text : undefined, 'readable by whoever holds the new key');
    } finally {
      await teardown(w);
    }
  });

  it('drops a replayed envelope and shows the message once', async () => {
    let w: World | undefined;
    try {
      w = await world();
      const { proxy, alice, bob, bobAci, aliceAci } = w;
      const replays: string[] = [];
      const recorded: Frame[] = [];
      // Every Deliver to bob arrives twice, back to back (same seqs: acking one twice is valid).
      proxy.relayFrameHook = (frame, ctx) => {
        if (ctx.device?.aci !== bobAci || frame.kind.case !== 'deliver') return undefined;
        recorded.push(frame);
        replays.push(...frame.kind.value.envelopes.map((e) => toHex(e.messageId)));
        return [frame, frame];
      };
      await alice.send('bob', 'one');
      const first = await bob.receive();
      assert.deepEqual(texts(first), ['one']);
      assert.ok(replays.length >= 1, 'the proxy replayed the envelope');

      // Bob answers, so alice's next messages travel on the ratchet (not as prekey messages).
      await bob.send('alice', 'got it');
      assert.deepEqual(texts(await inbox(alice, 'bob')), ['got it']);

      // Later: the recorded first Deliver comes back once more, renumbered to the seq of a new one.
      const old = recorded[0]!;
      proxy.relayFrameHook = (frame, ctx) => {
        if (ctx.device?.aci !== bobAci || frame.kind.case !== 'deliver' || old.kind.case !== 'deliver') return undefined;
        const last = frame.kind.value.envelopes.at(-1)!;
        const stale = old.kind.value.envelopes.map((e) => create(EnvelopeSchema, { ...e, seq: last.seq }));
        return [frame, { kind: { case: 'deliver', value: { envelopes: stale } } }, frame];
      };
      await alice.send('bob', 'two');
      await alice.send('bob', 'three');
      await bob.receive();

      const history = bob.history('alice', { limit: 50 });
      const mine = history.filter((m) => m.direction === 'in');
      assert.deepEqual(texts(mine).sort(), ['one', 'three', 'two'], 'each message exactly once');
      assert.equal(history.filter((m) => m.kind === 'decryption-error').length, 0, 'a replay is not a decryption failure');
      // Nothing was sent back but delivery receipts (not urgent): a replay does not start a
      // resend round trip.
      assert.equal(sendsTo(proxy, bobAci, aliceAci).filter((send) => send.urgent).length, 1);
    } finally {
      await teardown(w);
    }
  });

  it('shows an envelope it cannot decrypt, moves on, and gets the message again through a resend', async () => {
    let w: World | undefined;
    try {
      w = await world();
      const { proxy, alice, bob, bobAci, aliceAci } = w;
      // A conversation in both directions first, so that the sessions are established.
      await alice.send('bob', 'hi bob');
      assert.deepEqual(texts(await bob.receive()), ['hi bob']);
      await bob.send('alice', 'hi alice');
      assert.deepEqual(texts(await inbox(alice, 'bob')), ['hi alice']);

      // The relay flips one byte of the next envelope from alice to bob.
      let corrupted: string | undefined;
      proxy.relayFrameHook = (frame, ctx) => {
        if (corrupted || ctx.device?.aci !== bobAci || frame.kind.case !== 'deliver') return undefined;
        const envelopes = frame.kind.value.envelopes.map((e) => {
          if (corrupted || aciFromBytes(e.source) !== aliceAci) return e;
          corrupted = toHex(e.messageId);
          const content = new Uint8Array(e.content);
          content[Math.floor(content.length / 2)]! ^= 0x01;
          return create(EnvelopeSchema, { ...e, content });
        });
        return [{ kind: { case: 'deliver', value: { envelopes } } }];
      };
      await alice.send('bob', 'the secret plan');
      await alice.send('bob', 'and a later message');
      const got = await inbox(bob, 'alice');
      assert.ok(corrupted, 'the proxy corrupted an envelope');
      const errors = got.filter((m) => m.kind === 'decryption-error');
      assert.equal(errors.length, 1, `one visible decryption error: ${JSON.stringify(got.map((m) => [m.kind, m.text]))}`);
      assert.equal(errors[0]!.conversation, bob.history('alice')[0]!.conversation);
      assert.ok(texts(got).includes('and a later message'), `the queue moved on: the later message arrived: ${JSON.stringify(texts(got))}`);
      // The broken copy is never shown; the resend (below) may already have come meanwhile.
      assert.ok(texts(got).filter((t) => t === 'the secret plan').length <= 1);
      proxy.clearHooks();

      // The envelope was acked: connecting again does not bring the broken copy back.
      assert.equal((await bob.receive()).filter((m) => m.kind === 'decryption-error').length, 0);
      // Bob asked alice to resend; alice answers with the original message.
      // 'hi alice' and the resend request (delivery receipts are not urgent).
      const resendRequests = sendsTo(proxy, bobAci, aliceAci).filter((send) => send.urgent).length;
      assert.ok(resendRequests >= 2, 'bob sent alice a resend request');
      await alice.receive();
      await until('bob to get the message again', async () => texts(await inbox(bob, 'alice')).includes('the secret plan'));

      const history = bob.history('alice', { limit: 50 });
      assert.equal(history.filter((m) => m.text === 'the secret plan').length, 1, 'shown once');
      assert.equal(history.filter((m) => m.text === 'and a later message').length, 1);
      assert.equal(history.filter((m) => m.kind === 'decryption-error').length, 1);
      const original = alice.history('bob').find((m) => m.text === 'the secret plan')!;
      assert.equal(history.find((m) => m.text === 'the secret plan')!.id, original.id, 'the same message, not a copy');
    } finally {
      await teardown(w);
    }
  });
  it('gets an edit and a reaction again through a resend when their envelopes could not be decrypted, applied once', async () => {
    let w: World | undefined;
    try {
      w = await world();
      const { proxy, alice, bob, bobAci, aliceAci } = w;
      await alice.send('bob', 'hi bob');
      assert.deepEqual(texts(await bob.receive()), ['hi bob']);
      await bob.send('alice', 'hi alice');
      await inbox(alice, 'bob');
      const plan = await alice.send('bob', 'plan A');
      await bob.receive();

      // The relay flips one byte of the next two envelopes from alice to bob: the edit and the reaction.
      const corrupted = new Set<string>();
      proxy.relayFrameHook = (frame, ctx) => {
        if (ctx.device?.aci !== bobAci || frame.kind.case !== 'deliver') return undefined;
        const envelopes = frame.kind.value.envelopes.map((e) => {
          if (corrupted.size >= 2 || aciFromBytes(e.source) !== aliceAci || corrupted.has(toHex(e.messageId))) return e;
          corrupted.add(toHex(e.messageId));
          const content = new Uint8Array(e.content);
          content[Math.floor(content.length / 2)]! ^= 0x01;
          return create(EnvelopeSchema, { ...e, content });
        });
        return [{ kind: { case: 'deliver', value: { envelopes } } }];
      };
      await alice.editMessage('bob', plan.id, 'plan B');
      await alice.react('bob', plan.id, '👍');
      const got = await inbox(bob, 'alice');
      assert.equal(corrupted.size, 2, 'the proxy corrupted both actions');
      assert.equal(got.filter((m) => m.kind === 'decryption-error').length, 2, 'two visible decryption errors');
      proxy.clearHooks();

      // Alice answers bob's resend requests with the same actions; bob applies each once.
      const shown = () => bob.history('alice', { limit: 50 }).find((m) => m.id === plan.id);
      await until('bob to get the edit and the reaction again', async () => {
        await alice.receive();
        await bob.receive();
        const m = shown();
        return m?.text === 'plan B' && (m.reactions?.length ?? 0) === 1;
      });
      const m = shown()!;
      assert.deepEqual(m.edits?.map((v) => v.text), ['plan A', 'plan B'], 'one edit, applied once');
      assert.deepEqual(m.reactions?.map((r) => r.emoji), ['👍']);
      // A second copy of the resent actions (the requests could be answered twice) changes nothing.
      await alice.receive();
      await bob.receive();
      assert.deepEqual(shown()!.edits?.map((v) => v.text), ['plan A', 'plan B']);
    } finally {
      await teardown(w);
    }
  });

  it('survives a corrupted first message from a stranger: shown, acked, and the queue moves on', async () => {
    let w: World | undefined;
    try {
      w = await world();
      const { proxy, alice, bob, bobAci, aliceAci } = w;
      let corrupted = 0;
      proxy.relayFrameHook = (frame, ctx) => {
        if (corrupted > 0 || ctx.device?.aci !== bobAci || frame.kind.case !== 'deliver') return undefined;
        const envelopes = frame.kind.value.envelopes.map((e) => {
          if (corrupted > 0 || aciFromBytes(e.source) !== aliceAci) return e;
          corrupted++;
          const content = new Uint8Array(e.content);
          content[content.length - 20]! ^= 0x01;
          return create(EnvelopeSchema, { ...e, content });
        });
        return [{ kind: { case: 'deliver', value: { envelopes } } }];
      };
      await alice.send('bob', 'first words');
      await alice.send('bob', 'second words');
      const states: string[] = [];
      bob.on('connection', (s) => states.push(s));
      await bob.receive();
      assert.equal(corrupted, 1);
      const shown = bob.conversations().flatMap((c) => bob.history(c.address, { limit: 50 }));
      assert.equal(shown.filter((m) => m.kind === 'decryption-error').length, 1, JSON.stringify(shown.map((m) => [m.kind, m.text])));
      assert.ok(texts(shown).includes('second words'), `the later message arrived: ${JSON.stringify(texts(shown))}`);
      assert.equal(states.filter((s) => s === 'connected').length, 1, `one connection, no redelivery loop: ${states.join(',')}`);
      // Nothing is left in the queue.
      const again: string[] = [];
      bob.on('message', (m) => again.push(m.kind));
      await bob.receive();
      assert.ok(!again.includes('decryption-error'));
    } finally {
      await teardown(w);
    }
  });
});

describe('what the relay learns from a client', () => {
  it('does not claim (and burn) its own device’s prekeys for each sent message', async () => {
    let w: World | undefined;
    try {
      w = await world();
      const { proxy, alice, bob, aliceAci, bobAci } = w;
      const stop = new AbortController();
      const listening = alice.listen(stop.signal);
      for (let i = 0; i < 20; i++) assert.equal((await alice.send('bob', `message ${i}`)).status, 'sent');
      stop.abort();
      await listening;
      assert.equal((await inbox(bob, 'alice')).length, 20);
      const claims = (aci: string) => proxy.requests.filter((r) => r.method === 'GET' && r.path.startsWith(`/v1/keys/${aci}/`)).length;
      assert.equal(claims(bobAci), 1, 'one claim for the peer');
      // Before: every send claimed '*' of alice's own account to look for sibling devices,
      // taking one of her one-time prekeys each time and hitting the claim rate limit (500 per
      // 10 minutes) after 500 messages.
      assert.equal(claims(aliceAci), 0, 'no claim of one’s own bundle when one has no other device');
    } finally {
      await teardown(w);
    }
  });
});

describe('a client process', () => {
  it('exits as soon as it has received and closed (no timer outlives the connection)', async () => {
    const relay = await startRelay();
    const dir = profile();
    try {
      const setup = await openParleyClient({ profileDir: dir });
      await setup.register(relay.url, 'dave');
      await setup.close();
      // What `parley receive` does, in a process of its own: the time from close() to the
      // process's exit is what a script running the CLI waits for nothing.
      const script = `
        const { openParleyClient } = await import('@parley/client');
        const c = await openParleyClient({ profileDir: process.argv[1] });
        await c.receive();
        await c.close();
        process.stdout.write('closed\\n');
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let closedAt: number | undefined;
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        if (d.includes('closed')) closedAt ??= performance.now();
      });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      const exitedAt = performance.now();
      assert.equal(code, 0);
      assert.ok(closedAt !== undefined, 'the script ran to its end');
      // Before: a 1 s timer of the WebSocket close handshake kept the process alive after it.
      assert.ok(exitedAt - closedAt < 500, `exited ${Math.round(exitedAt - closedAt)} ms after close()`);
    } finally {
      await relay.stop();
    }
  });
});
