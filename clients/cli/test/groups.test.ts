// SPDX-License-Identifier: AGPL-3.0-only
// The group commands and group names in send/history, run through main with a FakeParleyClient.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientError } from '@parley/client';
import { FakeParleyClient, groupView, message } from './fake-parley-client.js';
import { run } from './harness.js';

process.env.TZ = 'UTC';

const G = groupView();

describe('group create', () => {
  it('creates with the title and members and prints the group', async () => {
    const client = new FakeParleyClient();
    const r = await run(['group', 'create', 'climbing', 'bob', 'carol@example.org'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(client.callsOf('createGroup')[0]?.args, ['climbing', ['bob', 'carol@example.org']]);
    assert.deepEqual(r.stdout.lines, [
      '#3f2a0d4e climbing',
      `id       ${G.id}`,
      'members  2 (you are an admin)',
      '  alice@localhost  admin',
      '  bob@localhost',
    ]);
    assert.match(r.stderr.text, /send to it with: parley send '#3f2a0d4e'/);
  });

  it('prints the group as one JSON line with --json', async () => {
    const r = await run(['group', 'create', 'climbing', '--json']);
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout.json, [
      { id: G.id, handle: `#${G.id}`, title: 'climbing', members: G.members.map((m) => ({ ...m })), revision: 2, member: true, admin: true },
    ]);
  });

  it('refuses an empty title without opening the engine’s group code', async () => {
    const r = await run(['group', 'create', '  ']);
    assert.equal(r.code, 2);
    assert.equal(r.client.callsOf('createGroup').length, 0);
  });
});

describe('group changes', () => {
  it('passes the group name (with a # added) and the addresses through', async () => {
    const client = new FakeParleyClient();
    assert.equal((await run(['group', 'add', 'climbing', 'dave', 'erin'], { client })).code, 0);
    assert.equal((await run(['group', 'remove', '#3f2a0d', 'dave'], { client })).code, 0);
    assert.equal((await run(['group', 'leave', 'climbing'], { client })).code, 0);
    assert.equal((await run(['group', 'title', 'climbing', 'climbing (Saturdays)'], { client })).code, 0);
    assert.equal((await run(['group', 'admins', 'climbing', '--add', 'bob', 'carol'], { client })).code, 0);
    assert.equal((await run(['group', 'admins', 'climbing', '--remove', 'bob'], { client })).code, 0);
    assert.deepEqual(
      client.calls.filter((c) => c.method !== 'account').map((c) => [c.method, ...c.args]),
      [
        ['addGroupMembers', '#climbing', ['dave', 'erin']],
        ['removeGroupMembers', '#3f2a0d', ['dave']],
        ['leaveGroup', '#climbing'],
        ['setGroupTitle', '#climbing', 'climbing (Saturdays)'],
        ['changeGroupAdmins', '#climbing', { add: ['bob', 'carol'] }],
        ['changeGroupAdmins', '#climbing', { remove: ['bob'] }],
      ],
    );
  });

  it('needs exactly one of --add and --remove for admins (exit 2)', async () => {
    for (const args of [['group', 'admins', 'climbing'], ['group', 'admins', 'climbing', '--add', 'a', '--remove', 'b']]) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.client.callsOf('changeGroupAdmins').length, 0);
    }
  });

  it('needs at least one address to add or remove (exit 2)', async () => {
    assert.equal((await run(['group', 'add', 'climbing'])).code, 2);
    assert.equal((await run(['group', 'remove', 'climbing'])).code, 2);
  });

  it('reports a change by a non-admin with its code, exit 2 and a hint', async () => {
    const client = new FakeParleyClient();
    client.failures.set('addGroupMembers', new ClientError('NOT_GROUP_ADMIN'));
    const r = await run(['group', 'add', 'climbing', 'dave'], { client });
    assert.equal(r.code, 2);
    assert.match(r.stderr.text, /\(NOT_GROUP_ADMIN\)/);
    assert.match(r.stderr.text, /hint: only admins change a group/);
  });

  it('reports an ambiguous name with exit 2 and an unknown one with exit 3, as JSON too', async () => {
    const client = new FakeParleyClient();
    client.failures.set('group', new ClientError('AMBIGUOUS_GROUP', '2 groups are called “climbing”: name one by its id'));
    const r = await run(['group', 'info', 'climbing', '--json'], { client });
    assert.equal(r.code, 2);
    const err = (r.stderr.json[0] as { error: { code: string } }).error;
    assert.equal(err.code, 'AMBIGUOUS_GROUP');
    client.failures.set('group', new ClientError('NOT_FOUND', 'no group is called “x”'));
    assert.equal((await run(['group', 'info', 'x'], { client })).code, 3);
  });
});

describe('group info and list', () => {
  it('lists groups one per line, with at most five members named', async () => {
    const client = new FakeParleyClient();
    const many = Array.from({ length: 7 }, (_, i) => ({ aci: `00000000-0000-4000-8000-00000000000${i}`, address: `m${i}@localhost`, admin: false }));
    client.groupList = [G, groupView({ id: 'ab'.repeat(32), title: 'big', members: many, member: false, admin: false })];
    const r = await run(['group', 'list'], { client });
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout.lines, [
      '#3f2a0d4e climbing  2 members: alice@localhost, bob@localhost  (admin)',
      '#abababab big  7 members: m0@localhost, m1@localhost, m2@localhost, m3@localhost, m4@localhost, +2  (not a member)',
    ]);
    const json = await run(['group', 'list', '--json'], { client });
    assert.equal(json.stdout.json.length, 2);
  });

  it('says so when there are no groups', async () => {
    const r = await run(['group', 'list']);
    assert.equal(r.stdout.text, '');
    assert.match(r.stderr.text, /no groups yet/);
  });

  it('keeps a title from moving the cursor', async () => {
    const client = new FakeParleyClient();
    client.groupResult = groupView({ title: 'evil\u001b[2Jtitle' });
    const r = await run(['group', 'info', 'climbing'], { client });
    assert.equal(r.stdout.lines[0], '#3f2a0d4e evil[2Jtitle');
  });
});

describe('send and history with a group', () => {
  it('sends to #title and #id-prefix, and shows a group’s history', async () => {
    const client = new FakeParleyClient();
    client.sent = (address, text) => message({ conversation: `#${G.id}`, direction: 'out', sender: 'alice@localhost', text, status: 'sent' });
    const r = await run(['send', '#climbing', 'hello all'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(client.callsOf('send')[0]?.args, ['#climbing', 'hello all']);
    await run(['send', '#3f2a0d', 'again'], { client });
    assert.deepEqual(client.callsOf('send')[1]?.args, ['#3f2a0d', 'again']);
    client.historyList = [message({ conversation: `#${G.id}`, text: 'hi' })];
    const h = await run(['history', '#climbing'], { client });
    assert.equal(h.code, 0);
    assert.deepEqual(client.callsOf('history')[0]?.args.slice(0, 1), ['#climbing']);
  });

  it('refuses an empty group name (exit 2), and sends a file to a group through sendFile', async () => {
    assert.equal((await run(['send', '#', 'x'])).code, 2);
    const client = new FakeParleyClient();
    const r = await run(['send', '#climbing', '--file', './x.pdf', '--caption', 'topo'], { client });
    assert.equal(r.code, 0);
    const call = client.callsOf('sendFile')[0];
    assert.equal(call?.args[0], '#climbing');
    assert.match(String(call?.args[1]), /x\.pdf$/);
  });

  it('takes a group for edit, delete, react, reply, expire and typing', async () => {
    const id = 'ab'.repeat(16);
    const cases: Array<[string[], string]> = [
      [['edit', '#climbing', id, 'new text'], 'editMessage'],
      [['delete', '#climbing', id], 'deleteMessage'],
      [['react', '#climbing', id, '👍'], 'react'],
      [['reply', '#climbing', id, 'me too'], 'reply'],
      [['expire', '#climbing', '1h'], 'setExpireTimer'],
      [['typing', '#climbing'], 'typing'],
    ];
    for (const [argv, method] of cases) {
      const client = new FakeParleyClient();
      const r = await run(argv, { client });
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr.text}`);
      assert.equal(client.callsOf(method as never)[0]?.args[0], '#climbing', argv.join(' '));
    }
  });

  it('shows group conversations by short id and title', async () => {
    const client = new FakeParleyClient();
    client.conversationList = [{ address: `#${G.id}`, unread: 2, identityChanged: false, group: { id: G.id, title: 'climbing' } }];
    const r = await run(['conversations'], { client });
    assert.equal(r.stdout.lines[0], '#3f2a0d4e climbing  2 unread');
    const j = await run(['conversations', '--json'], { client });
    assert.deepEqual((j.stdout.json[0] as { group: unknown }).group, { id: G.id, title: 'climbing' });
  });
});
