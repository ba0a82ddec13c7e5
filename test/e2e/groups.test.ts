// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A 50-member group through a real relay process: members with up to three devices (engines in
 * this process, each on its own SQLCipher profile and socket), changes by several admins at once,
 * additions and a removal, and messages from many members. Every device of every member must end
 * with the same group state and the same messages in the same order; the removed member must get
 * no sender key made after its removal (checked in its own database) and see nothing sent after
 * it; a message from someone who is not a member must be dropped everywhere.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientError, openClientStore, type GroupView, type MessageView, type ParleyClientApi } from '@parley/client';
import { aciToBytes, ContentSchema, create, fromHex, toBinary, type Aci } from '@parley/protocol';
import { fullHistory, linkNewDevice, openRecording, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { registerAccount } from '../support/test-device.js';

/** Members, and how many of them have two and three devices. */
const MEMBERS = 50;
const WITH_THREE = 4;
const WITH_TWO = 6;
/** Members in the group when it is created; the rest are added later. */
const FIRST = 45;

interface Person {
  readonly name: string;
  readonly devices: RecordingClient[];
}

/** What must be equal on every device. */
const shape = (g: GroupView) => ({ title: g.title, members: g.members.map((m) => `${m.address}${m.admin ? '*' : ''}`), revision: g.revision });

describe('a 50-member group with multi-device members', { timeout: 180_000 }, () => {
  let relay: RelayProcess;
  const people: Person[] = [];
  let group = '';
  const stops: AbortController[] = [];
  const listening: Promise<void>[] = [];
  /** Devices not listening (taken offline by a test). */
  const offline = new Set<ParleyClientApi>();

  const person = (name: string): Person => people.find((p) => p.name === name)!;
  const all = (): RecordingClient[] => people.flatMap((p) => p.devices);
  const clientsOf = (names: readonly string[]): ParleyClientApi[] => names.flatMap((n) => person(n).devices.map((d) => d.client));

  before(async () => {
    relay = await startRelay({
      args: [
        '--registrations-per-hour',
        '100000',
        '--rate-limit-sends-per-minute',
        '0',
        '--rate-limit-device-sends-per-minute',
        '0',
        '--rate-limits',
        'linkDevice=10000/1h,linkToken=10000/1h,provisioning=10000/1m,directory=100000/1m,claimPerRequester=100000/10m,claimPerTarget=100000/10m,senderCertificate=10000/10m',
      ],
    });
    const names = Array.from({ length: MEMBERS }, (_, i) => `member${String(i).padStart(2, '0')}`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(
        names.slice(i, i + 25).map(async (name) => {
          const d = await openRecording();
          await d.client.register(relay.url, name);
          people.push({ name, devices: [d] });
        }),
      );
    }
    people.sort((a, b) => a.name.localeCompare(b.name));
    // Extra devices, linked before the group exists (a device linked later would not know it).
    const linking = people.slice(1, 1 + WITH_THREE + WITH_TWO).map(async (p, i) => {
      for (let n = 0; n < (i < WITH_THREE ? 2 : 1); n++) p.devices.push((await linkNewDevice(p.devices[0]!, relay.url, { timeoutMs: 60_000 })).device);
    });
    await Promise.all(linking);
    for (const d of all()) {
      const stop = new AbortController();
      stops.push(stop);
      listening.push(d.client.listen(stop.signal));
    }
  });

  after(async () => {
    for (const s of stops) s.abort();
    await Promise.allSettled(listening);
    for (const d of all()) await d.client.close().catch(() => undefined);
    await relay?.stop();
  });

  /** Waits until every listed online device shows the same group state as `reference`. */
  const converged = async (what: string, clients: ParleyClientApi[], expect: (g: GroupView) => boolean, timeoutMs = 60_000): Promise<GroupView> => {
    let last: GroupView | undefined;
    await until(
      what,
      () => {
        const views: GroupView[] = [];
        for (const c of clients) {
          if (offline.has(c)) continue;
          try {
            views.push(c.group(group));
          } catch {
            return false;
          }
        }
        last = views[0];
        return views.every((v) => expect(v) && JSON.stringify(shape(v)) === JSON.stringify(shape(views[0]!)));
      },
      timeoutMs,
    );
    return last!;
  };

  it('creates the group; every member device, and the creator’s other devices, replay it', async () => {
    const creator = person('member00');
    const first = people.slice(1, FIRST).map((p) => p.name);
    const g = await creator.devices[0]!.client.createGroup('climbing', first);
    group = `#${g.id}`;
    assert.equal(g.members.length, FIRST);
    await converged('every device of the first 45 to have the group', clientsOf(people.slice(0, FIRST).map((p) => p.name)), (v) => v.members.length === FIRST);
  });

  it('lets admins change the title at the same time and converges on one title everywhere', async () => {
    const admin = person('member00').devices[0]!.client;
    await admin.changeGroupAdmins(group, { add: ['member01', 'member02'] });
    await converged('the admins to be known', clientsOf(['member01', 'member02']), (v) => v.members.filter((m) => m.admin).length === 3);
    await Promise.all([
      admin.setGroupTitle(group, 'title by 00'),
      person('member01').devices[0]!.client.setGroupTitle(group, 'title by 01'),
      person('member02').devices[1]!.client.setGroupTitle(group, 'title by 02'),
    ]);
    const v = await converged('one title everywhere', clientsOf(people.slice(0, FIRST).map((p) => p.name)), (x) => x.revision === 6);
    assert.match(v.title, /^title by 0[012]$/);
  });

  it('adds the last five members (by a second admin), who replay the whole log', async () => {
    const added = people.slice(FIRST).map((p) => p.name);
    await person('member01').devices[0]!.client.addGroupMembers(group, added);
    await converged('all 50 members on every device', clientsOf(people.map((p) => p.name)), (v) => v.members.length === MEMBERS);
  });

  it('refuses a plain member’s change without sending anything', async () => {
    await assert.rejects(person('member30').devices[0]!.client.setGroupTitle(group, 'mine'), (e) => e instanceof ClientError && e.code === 'NOT_GROUP_ADMIN');
  });

  /** The group's text messages on a device, oldest first. */
  const groupTexts = (c: ParleyClientApi): MessageView[] => fullHistory(c, group).filter((m) => m.kind === 'text');

  /** Waits until every listed online device has `count` text messages in the group. */
  const allHave = async (what: string, clients: ParleyClientApi[], count: number): Promise<void> => {
    await until(what, () => clients.every((c) => offline.has(c) || groupTexts(c).length >= count), 60_000);
  };

  const SENDERS = ['member00', 'member01', 'member10', 'member30', 'member47'];
  let beforeRemoval = 0;

  it('delivers messages from many members, sent at once, to every device in the same order', async () => {
    const sends = SENDERS.flatMap((name, i) => {
      const devices = person(name).devices;
      const d = devices[devices.length - 1]!.client; // the last linked device where there are several
      return [0, 1].map((n) => d.send(group, `hello ${n} from ${name}`).then((m) => ({ m, i })));
    });
    const sent = await Promise.all(sends);
    for (const { m } of sent) assert.equal(m.status, 'sent', `${m.text} was committed by the relay`);
    beforeRemoval = sent.length;
    const everyone = all().map((d) => d.client);
    await allHave('every device to have every message', everyone, beforeRemoval);
    const reference = groupTexts(everyone[0]!).map((m) => m.id);
    assert.equal(reference.length, beforeRemoval);
    for (const c of everyone) assert.deepEqual(groupTexts(c).map((m) => m.id), reference, 'the same messages in the same order on every device');
    // The senders' other devices have their own messages as sent ones.
    const own = groupTexts(person('member01').devices[0]!.client).filter((m) => m.sender === 'member01@localhost');
    assert.equal(own.length, 2);
    for (const m of own) {
      assert.equal(m.direction, 'out');
      assert.ok(['sent', 'delivered', 'read'].includes(m.status), `a transcript is sent (or further along with receipts): ${m.status}`);
    }
  });

  it('removes a member with three devices: the others rotate their sender keys, the removed one reads nothing new', async () => {
    const removed = person('member03');
    // One of its devices is offline while it is removed (it learns later).
    const late = removed.devices[2]!.client;
    offline.add(late);
    stops[all().findIndex((d) => d.client === late)]!.abort();
    await person('member02').devices[0]!.client.removeGroupMembers(group, ['member03']);
    const stayed = people.filter((p) => p !== removed).map((p) => p.name);
    await converged('49 members everywhere', clientsOf(stayed), (v) => v.members.length === MEMBERS - 1);
    await until('the removed member’s online devices to know', () => removed.devices.slice(0, 2).every((d) => !d.client.group(group).member), 30_000);
    await assert.rejects(removed.devices[0]!.client.send(group, 'can I still write?'), (e) => e instanceof ClientError && e.code === 'NOT_GROUP_MEMBER');

    const after = await Promise.all(['member00', 'member05', 'member48'].map((n) => person(n).devices[0]!.client.send(group, `after removal from ${n}`)));
    for (const m of after) assert.equal(m.status, 'sent');
    await allHave('the remaining members to have the new messages', clientsOf(stayed), beforeRemoval + after.length);
    for (const d of removed.devices.slice(0, 2)) {
      const seen = groupTexts(d.client).map((m) => m.text);
      assert.equal(seen.filter((t) => t.startsWith('after removal')).length, 0, 'nothing sent after the removal reached the removed member');
      assert.equal(seen.length, beforeRemoval);
    }
  });

  it('drops a group message from someone who is not a member, on every device', async () => {
    const outsider = await registerAccount(relay.url, 'outsider');
    const target = person('member07');
    const data = (text: string, inGroup: boolean) =>
      toBinary(
        ContentSchema,
        create(ContentSchema, {
          body: {
            case: 'data',
            value: {
              messageId: crypto.getRandomValues(new Uint8Array(16)),
              lamport: 999n,
              timestamp: BigInt(Date.now()),
              text,
              senderAddress: 'outsider@localhost',
              ...(inGroup ? { group: { groupId: fromHex(group.slice(1))!, revision: 99n } } : {}),
            },
          },
        }),
      );
    const aci = target.devices[0]!.client.account()!.aci as Aci;
    const socket = await outsider.connect();
    try {
      // The forged group message, then a plain one: a device's queue is delivered in order, so
      // once the plain one shows, the forged one has been handled.
      for (const content of [data('let me in', true), data('marker', false)]) {
        const requestId = socket.requestId();
        socket.send({ kind: { case: 'send', value: { requestId, destination: aciToBytes(aci), messageId: crypto.getRandomValues(new Uint8Array(16)), timestamp: BigInt(Date.now()), messages: await outsider.encryptFor(aci, content) } } });
        await socket.answer(requestId);
      }
    } finally {
      socket.close();
    }
    const before = groupTexts(target.devices[0]!.client).length;
    await until('every device of the member to show the plain message', () => target.devices.every((d) => d.messages.some((m) => m.text === 'marker')));
    for (const d of target.devices) {
      assert.equal(groupTexts(d.client).length, before, 'nothing new in the group');
      assert.ok(!d.messages.some((m) => m.text === 'let me in'), 'no message event either');
      assert.deepEqual(fullHistory(d.client, 'outsider@localhost').map((m) => m.text), ['marker'], 'and nothing of it in the direct conversation');
    }
  });

  it('never handed the removed member’s devices a sender key made after its removal (its own database)', async () => {
    for (const s of stops) s.abort();
    await Promise.allSettled(listening);
    const senders = ['member00', 'member05', 'member48'];
    const current = new Map<string, { aci: string; distributionId: string }>();
    for (const n of senders) {
      const d = person(n).devices[0]!;
      const aci = d.client.account()!.aci;
      await d.client.close();
      const store = openClientStore({ profileDir: d.profileDir });
      try {
        const dist = store.groups.group(group.slice(1))!.ownDistributionId!;
        assert.ok(dist, `${n} has a sender key`);
        current.set(n, { aci, distributionId: dist });
      } finally {
        store.close();
      }
    }
    for (const d of person('member03').devices) {
      await d.client.close();
      const store = openClientStore({ profileDir: d.profileDir });
      try {
        const held = store.database.all<{ address: string; distribution_id: string }>('SELECT address, distribution_id FROM sender_keys');
        assert.ok(held.length > 0, 'it did hold sender keys from before its removal');
        for (const [n, { aci, distributionId }] of current) {
          assert.ok(!held.some((k) => k.address.startsWith(`${aci}.`) && k.distribution_id === distributionId), `${n}'s post-removal key never reached member03`);
        }
      } finally {
        store.close();
      }
    }
  });
});
