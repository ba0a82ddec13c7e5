// SPDX-License-Identifier: AGPL-3.0-only
// The groups module on a real SQLCipher store: changes made here and what they queue, and what
// it takes in from whom (received contents fed in as the receive pipeline would).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ContentSchema, create, fromHex, toHex, type Content } from '@parley/protocol';
import { ClientError } from '../src/errors.js';
import { decodeContent } from '../src/engine/content-codec.js';
import { changeToWire } from '../src/engine/group-codec.js';
import type { GroupChange, GroupChangeKind } from '../src/engine/group-state.js';
import { Groups } from '../src/engine/groups.js';
import { adaptClientStore } from '../src/engine/store-adapter.js';
import type { EngineMessage } from '../src/engine/engine-store.js';
import { ManualClock, newAci, openStore, testAccount } from './store-fixtures.js';

const isCode = (code: string) => (e: unknown) => e instanceof ClientError && e.code === code;

function setup() {
  const clock = new ManualClock(Date.now());
  const store = openStore({ clock });
  const account = testAccount();
  store.saveAccount(account);
  const ports = adaptClientStore(store, () => clock.now());
  const self = { aci: account.aci as string, deviceId: 1, address: 'alice@example.org', domain: 'example.org' };
  const people = new Map<string, string>([
    ['bob@example.org', newAci()],
    ['carol@example.org', newAci()],
    ['dave@example.org', newAci()],
  ]);
  const deleted: Array<[string, string]> = [];
  const groups = new Groups({
    store: ports,
    groups: store.groups,
    deleteSenderKey: (address, distributionId) => void deleted.push([address, distributionId]),
    self,
    now: () => clock.now(),
    resolve: async (address) => ({ aci: people.get(address)!, conversation: address }),
    serial: async (fn) => fn(),
    processDistribution: async (_stores, _sender, message) => toHex(message).replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5'),
  });
  const aci = (name: string): string => people.get(`${name}@example.org`)!;

  /** Feeds a content from `source` through the module as the pipeline does. */
  const receive = async (source: string, content: Content): Promise<{ taken: boolean; stored: EngineMessage[]; seen: number }> => {
    const effects: Array<() => void> = [];
    const stored: EngineMessage[] = [];
    let seen = 0;
    const taken = await groups.receive({
      source,
      sourceDevice: 1,
      content,
      stores: store.protocol,
      now: clock.now(),
      addEffect: (e) => effects.push(e),
      announce: (m) => stored.push(m),
      markSeen: () => void seen++,
    });
    store.transaction(() => {
      for (const e of effects) e();
    });
    return { taken, stored, seen };
  };
  let lamport = 100;
  const change = (author: string, kind: GroupChangeKind, at = ++lamport): GroupChange => ({
    changeId: randomBytes(16).toString('hex'),
    lamport: at,
    author: author === 'alice' ? self.aci : aci(author),
    authorAddress: `${author}@example.org`,
    timestamp: clock.now(),
    kind,
  });
  const update = (groupId: string, changes: readonly GroupChange[]): Content =>
    create(ContentSchema, { body: { case: 'groupUpdate', value: { groupId: fromHex(groupId)!, changes: changes.map(changeToWire) } } }) as Content;
  const member = (name: string) => ({ aci: name === 'alice' ? self.aci : aci(name), address: `${name}@example.org` });
  /** The GroupUpdates queued in the outbox, by destination, as change counts. */
  const queued = (): Array<[string, number]> =>
    ports.outboxDue(clock.now() + 1, 1000).flatMap((e) => {
      const c = decodeContent(e.content);
      return c?.body.case === 'groupUpdate' ? [[e.destinationAci, c.body.value.changes.length] as [string, number]] : [];
    });
  const clearOutbox = () => {
    for (const e of ports.outboxDue(clock.now() + 1, 1000)) ports.outboxDone(e.id);
  };
  return { clock, store, ports, groups, self, aci, receive, change, update, member, queued, clearOutbox, deleted };
}

describe('groups: changes made here', () => {
  it('creates a group and queues the whole log for each member and the change for this account’s other devices', async () => {
    const { groups, self, aci, queued, ports } = setup();
    const g = await groups.create('climbing', ['bob@example.org', 'carol@example.org', 'bob@example.org']);
    assert.deepEqual(
      g.members.map((m) => [m.address, m.admin]),
      [
        ['alice@example.org', true],
        ['bob@example.org', false],
        ['carol@example.org', false],
      ],
    );
    assert.deepEqual(queued().sort(), [[self.aci, 1], [self.aci, 1], [aci('bob'), 2], [aci('carol'), 2]].sort());
    const notices = ports.history(`#${g.id}`, { limit: 10 }).reverse();
    assert.deepEqual(
      notices.map((m) => [m.kind, m.text]),
      [
        ['system', 'alice@example.org created the group “climbing”'],
        ['system', 'alice@example.org added bob@example.org, carol@example.org'],
      ],
    );
  });

  it('refuses bad changes with typed errors and queues nothing', async () => {
    const { groups, queued, clearOutbox, receive, update, change, member } = setup();
    await assert.rejects(groups.create(' ', []), isCode('INVALID_ARGUMENT'));
    await assert.rejects(groups.create('x'.repeat(129), []), isCode('INVALID_ARGUMENT'));
    const g = await groups.create('climbing', ['bob@example.org']);
    clearOutbox();
    await assert.rejects(groups.addMembers(`#${g.id}`, ['bob@example.org']), isCode('INVALID_ARGUMENT'));
    await assert.rejects(groups.removeMembers(`#${g.id}`, ['dave@example.org']), isCode('NOT_GROUP_MEMBER'));
    await assert.rejects(groups.removeMembers(`#${g.id}`, ['alice@example.org']), isCode('INVALID_ARGUMENT'));
    await assert.rejects(groups.changeAdmins(`#${g.id}`, { remove: ['alice@example.org'] }), isCode('INVALID_ARGUMENT'));
    await assert.rejects(groups.changeAdmins(`#${g.id}`, {}), isCode('INVALID_ARGUMENT'));
    assert.deepEqual(queued(), []);
    // Once bob made himself the only admin (his change, relayed by him), alice may not change it.
    const own = await receive(groups.view(g.id).members[1]!.aci, update(g.id, [change('bob', { type: 'set-title', title: 'nope' })]));
    assert.equal(own.taken, true);
    assert.equal(groups.view(g.id).title, 'climbing', 'a non-admin’s own change is held but skipped');
    await groups.changeAdmins(`#${g.id}`, { add: ['bob@example.org'] });
    await receive(member('bob').aci, update(g.id, [change('bob', { type: 'remove-admins', members: [member('alice')] }, 1000)]));
    await assert.rejects(groups.setTitle(`#${g.id}`, 'mine'), isCode('NOT_GROUP_ADMIN'));
  });

  it('names groups by id prefix or title, and says when a name is ambiguous or unknown', async () => {
    const { groups } = setup();
    const a = await groups.create('climbing', []);
    await groups.create('Climbing', []);
    assert.equal(groups.resolveRef(`#${a.id.slice(0, 6)}`), a.id);
    assert.equal(groups.resolveRef(a.id), a.id);
    assert.throws(() => groups.resolveRef('#climbing'), isCode('AMBIGUOUS_GROUP'));
    assert.throws(() => groups.resolveRef('#nothing'), isCode('NOT_FOUND'));
    assert.throws(() => groups.resolveRef('#'), isCode('INVALID_ARGUMENT'));
  });
});

describe('groups: what is taken in from whom', () => {
  it('joins a group from an admin’s log that makes this account a member', async () => {
    const { groups, receive, update, change, member, aci } = setup();
    const id = randomBytes(32).toString('hex');
    const log = [change('bob', { type: 'create', title: 'book club' }), change('bob', { type: 'add-members', members: [member('alice'), member('carol')] })];
    const r = await receive(aci('bob'), update(id, log));
    assert.equal(r.stored.length, 2, 'a notice per change');
    const v = groups.view(id);
    assert.equal(v.title, 'book club');
    assert.equal(v.member, true);
  });

  it('does not make a group from an update that does not make this account a member, or from a non-admin', async () => {
    const { groups, receive, update, change, member, aci } = setup();
    const id = randomBytes(32).toString('hex');
    await receive(aci('bob'), update(id, [change('bob', { type: 'create', title: 'not yours' }), change('bob', { type: 'add-members', members: [member('carol')] })]));
    assert.throws(() => groups.view(id), isCode('NOT_FOUND'));
    // carol relays bob's log that adds alice, but carol is no admin in it.
    const id2 = randomBytes(32).toString('hex');
    await receive(aci('carol'), update(id2, [change('bob', { type: 'create', title: 'x' }), change('bob', { type: 'add-members', members: [member('alice'), member('carol')] })]));
    assert.throws(() => groups.view(id2), isCode('NOT_FOUND'));
  });

  it('takes a non-admin’s own changes but not changes it relays in an admin’s name, and never a second create', async () => {
    const { groups, receive, update, change, member, aci } = setup();
    const g = await groups.create('climbing', ['bob@example.org', 'carol@example.org']);
    const forged = change('alice', { type: 'add-admins', members: [member('carol')] });
    await receive(aci('carol'), update(g.id, [forged]));
    assert.equal(groups.view(g.id).revision, 2, 'carol cannot slip in a change in alice’s name');
    await receive(aci('carol'), update(g.id, [change('carol', { type: 'create', title: 'mine' }, 0)]));
    assert.equal(groups.view(g.id).title, 'climbing');
    assert.equal(groups.view(g.id).revision, 2, 'a second create is refused on arrival');
    await receive(aci('carol'), update(g.id, [change('carol', { type: 'leave' })]));
    assert.deepEqual(
      groups.view(g.id).members.map((m) => m.address),
      ['alice@example.org', 'bob@example.org'],
    );
  });

  it('on a removal drops the removed member’s sender keys and starts a new key of its own', async () => {
    const { store, groups, receive, update, change, member, aci, deleted } = setup();
    const g = await groups.create('climbing', ['bob@example.org', 'carol@example.org']);
    await groups.changeAdmins(`#${g.id}`, { add: ['bob@example.org'] });
    const dist = '11111111-2222-4333-8444-555555555555';
    const skdm = create(ContentSchema, { body: { case: 'senderKeyDistribution', value: { groupId: fromHex(g.id)!, message: fromHex(dist.replaceAll('-', ''))! } } }) as Content;
    const got = await receive(aci('carol'), skdm);
    assert.equal(got.seen, 1);
    assert.ok(store.groups.hasSenderKey(g.id, { aci: aci('carol'), deviceId: 1 }, dist));
    const mine = store.groups.rotateOwnDistribution(g.id);
    await receive(aci('bob'), update(g.id, [change('bob', { type: 'remove-members', members: [member('carol')] })]));
    assert.deepEqual(deleted, [[`${aci('carol')}.1`, dist]]);
    assert.notEqual(store.groups.group(g.id)!.ownDistributionId, mine, 'a new sender key for what is sent from now on');
    assert.ok(!store.groups.hasSenderKey(g.id, { aci: aci('carol'), deviceId: 1 }, dist));
  });

  it('sends members it learns of from someone else’s change the changes it authored itself', async () => {
    const { groups, receive, update, change, member, aci, queued, clearOutbox } = setup();
    const g = await groups.create('climbing', ['bob@example.org']);
    await groups.changeAdmins(`#${g.id}`, { add: ['bob@example.org'] });
    clearOutbox();
    await receive(aci('bob'), update(g.id, [change('bob', { type: 'add-members', members: [member('dave')] })]));
    assert.deepEqual(queued(), [[aci('dave'), 3]], 'alice’s create, add and admin change go to dave');
  });

  it('answers a member’s request for the log when it is an admin, and nobody else’s', async () => {
    const { groups, receive, update, aci, queued, clearOutbox } = setup();
    const g = await groups.create('climbing', ['bob@example.org']);
    clearOutbox();
    await receive(aci('dave'), update(g.id, []));
    assert.deepEqual(queued(), [], 'a non-member asks in vain');
    await receive(aci('bob'), update(g.id, []));
    assert.deepEqual(queued(), [[aci('bob'), 2]]);
  });

  it('stores a member’s group message, drops a non-member’s, and asks an admin for the log when behind', async () => {
    const { receive, update, change, member, aci, queued, clearOutbox, clock } = setup();
    const id = randomBytes(32).toString('hex');
    await receive(aci('bob'), update(id, [change('bob', { type: 'create', title: 'x' }), change('bob', { type: 'add-members', members: [member('alice'), member('carol')] })]));
    clearOutbox();
    const data = (text: string, revision: bigint) =>
      create(ContentSchema, {
        body: { case: 'data', value: { messageId: randomBytes(16), lamport: 500n, timestamp: 1n, text, group: { groupId: fromHex(id)!, revision } } },
      }) as Content;
    const fromCarol = await receive(aci('carol'), data('hi all', 2n));
    assert.deepEqual(fromCarol.stored.map((m) => [m.conversation, m.body, m.direction]), [[`#${id}`, 'hi all', 'in']]);
    const fromDave = await receive(aci('dave'), data('let me in', 2n));
    assert.equal(fromDave.taken, true);
    assert.deepEqual(fromDave.stored, []);
    assert.equal(fromDave.seen, 1);
    assert.deepEqual(queued(), [], 'nobody is asked while the revisions match');
    await receive(aci('carol'), data('you are behind', 5n));
    assert.deepEqual(queued(), [[aci('bob'), 0]], 'an empty update to the admin asks for the log');
    await receive(aci('carol'), data('still behind', 6n));
    assert.equal(queued().length, 1, 'at most one request per interval');
    clock.advance(11 * 60_000);
    await receive(aci('carol'), data('again', 7n));
    assert.equal(queued().length, 2);
  });

  it('keeps a transcript from this account’s devices only', async () => {
    const { groups, receive, aci, self } = setup();
    const g = await groups.create('climbing', ['bob@example.org']);
    const transcript = (text: string) =>
      create(ContentSchema, {
        body: {
          case: 'sync',
          value: { kind: { case: 'sent', value: { destinationAddress: '', message: { messageId: randomBytes(16), lamport: 3n, timestamp: 1n, text, group: { groupId: fromHex(g.id)!, revision: 2n } } } } },
        },
      }) as Content;
    const own = await receive(self.aci, transcript('from my laptop'));
    assert.deepEqual(own.stored.map((m) => [m.direction, m.status]), [['out', 'sent']]);
    const other = await receive(aci('bob'), transcript('forged'));
    assert.deepEqual(other.stored, []);
  });
});
