// SPDX-License-Identifier: AGPL-3.0-only
// Every command's human and --json output, run through main with a FakeParleyClient.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALICE, FakeParleyClient, T0, message } from './fake-parley-client.js';
import { run } from './harness.js';

// Human output shows local time; pin the zone so the expected lines hold on any machine.
process.env.TZ = 'UTC';

const BOB_ID = 'fedcba9876543210fedcba9876543210';

describe('register', () => {
  it('registers with the canonical username and prints the account', async () => {
    const client = new FakeParleyClient();
    client.accountInfo = undefined;
    const r = await run(['register', 'Alice', '--server', 'http://localhost:8080/'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(client.callsOf('register')[0]?.args, ['http://localhost:8080', 'alice']);
    assert.equal(r.stdout.text, 'registered alice@localhost (device 1) on http://localhost:8080\n');
    assert.equal(client.closed, 1);
  });

  it('prints the AccountInfo fields as one JSON line', async () => {
    const client = new FakeParleyClient();
    client.accountInfo = undefined;
    const r = await run(['register', 'alice', '--server', 'http://localhost:8080', '--json'], { client });
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout.json, [{ ...ALICE }]);
    assert.equal(r.stderr.text, '');
  });

  it('refuses a profile that already has an account (exit 2) without calling the engine', async () => {
    const r = await run(['register', 'alice', '--server', 'http://localhost:8080']);
    assert.equal(r.code, 2);
    assert.equal(r.client.callsOf('register').length, 0);
    assert.match(r.stderr.text, /already belongs to alice@localhost \(device 1\) \(ACCOUNT_EXISTS\)/);
    assert.match(r.stderr.text, /hint: .*use another --profile/);
  });
});

describe('whoami', () => {
  it('prints address, device, server and ACI', async () => {
    const r = await run(['whoami']);
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout.lines, [
      'address  alice@localhost',
      'device   1',
      'server   http://localhost:8080',
      `aci      ${ALICE.aci}`,
    ]);
  });

  it('--json prints the account', async () => {
    const r = await run(['--json', 'whoami']);
    assert.deepEqual(r.stdout.json, [{ ...ALICE }]);
  });

  it('shows whether sealed sender is active, and why not', async () => {
    const client = new FakeParleyClient();
    const sealed = { active: true, trustRootPinned: true, accessKeyUploaded: true, certificateExpiresAt: T0 + 86_400_000 };
    client.accountInfo = { ...ALICE, sealedSender: sealed };
    const r = await run(['whoami'], { client });
    assert.equal(r.stdout.lines.at(-1), 'sealed   active');
    const j = await run(['whoami', '--json'], { client });
    assert.deepEqual(j.stdout.json, [{ ...ALICE, sealedSender: sealed }]);
    client.accountInfo = { ...ALICE, sealedSender: { active: false, trustRootPinned: true, accessKeyUploaded: true, problem: 'TRUST_ROOT_CHANGED' } };
    assert.equal((await run(['whoami'], { client })).stdout.lines.at(-1), 'sealed   off (TRUST_ROOT_CHANGED)');
    client.accountInfo = { ...ALICE, sealedSender: { active: false, trustRootPinned: true, accessKeyUploaded: false } };
    assert.equal((await run(['whoami'], { client })).stdout.lines.at(-1), 'sealed   off (access key not uploaded yet)');
    client.accountInfo = { ...ALICE, sealedSender: { ...sealed, unreadable: 2 } };
    assert.equal((await run(['whoami'], { client })).stdout.lines.at(-1), 'sealed   active; 2 sealed messages could not be opened (sender unknown)');
    assert.equal(((await run(['whoami', '--json'], { client })).stdout.json[0] as { sealedSender: { unreadable: number } }).sealedSender.unreadable, 2);
  });

  it('exits 3 with the register/link hint when the profile has no account', async () => {
    const client = new FakeParleyClient();
    client.accountInfo = undefined;
    const r = await run(['whoami'], { client });
    assert.equal(r.code, 3);
    assert.equal(r.stdout.text, '');
    assert.match(
      r.stderr.text,
      /hint: this profile has no account: run parley register <username> --server URL or parley link --server URL/,
    );
    assert.equal(client.closed, 1, 'the client is closed after a failure too');
  });
});

describe('link', () => {
  const newDevice = (): FakeParleyClient => {
    const client = new FakeParleyClient();
    client.accountInfo = undefined;
    client.linkProgress = [
      { task: 'link', done: 3, total: 3, unit: 'steps' },
      { task: 'history-receive', done: 12, total: 40, unit: 'chunks' },
    ];
    return client;
  };

  it('prints the code and a terminal QR code, instructions and progress on stderr', async () => {
    const client = newDevice();
    const r = await run(['link', '--server', 'http://localhost:8080', '--timeout', '90'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(client.callsOf('link')[0]?.args, ['http://localhost:8080', { timeoutMs: 90_000 }]);
    const out = r.stdout.lines;
    assert.equal(out[0], 'parley-link:eyJ2IjoxfQ');
    assert.ok(out.slice(1, -1).length >= 10, 'a QR code of many rows follows the code');
    // eslint-disable-next-line no-control-regex -- qrcode colours its terminal output with ANSI escapes
    const ansi = /\u001b\[[0-9;]*m/g;
    assert.ok(out.slice(1, -1).every((l) => /^[ █▀▄]*$/u.test(l.replace(ansi, ''))), 'the QR rows are block characters');
    assert.equal(out.at(-1), 'linked as alice@localhost (device 2)');
    assert.match(r.stderr.text, /parley link approve parley-link:eyJ2IjoxfQ/);
    assert.match(r.stderr.text, /^link 3\/3 steps$/m);
    assert.match(r.stderr.text, /^history 12\/40 chunks$/m);
  });

  it('--json: the first line is the link code, the last the account; progress as JSON on stderr', async () => {
    const client = newDevice();
    const r = await run(['link', '--server', 'http://localhost:8080', '--json'], { client });
    assert.equal(r.code, 0);
    assert.deepEqual(client.callsOf('link')[0]?.args, ['http://localhost:8080', undefined]);
    assert.deepEqual(r.stdout.json, [{ link_code: 'parley-link:eyJ2IjoxfQ' }, { ...ALICE, deviceId: 2 }]);
    assert.deepEqual(r.stderr.json, [
      { progress: { task: 'link', done: 3, total: 3, unit: 'steps' } },
      { progress: { task: 'history-receive', done: 12, total: 40, unit: 'chunks' } },
    ]);
    assert.equal(client.listenerCount(), 0);
  });

  it('needs --server (exit 2) and does not open the profile', async () => {
    const r = await run(['link']);
    assert.equal(r.code, 2);
    assert.equal(r.opened.length, 0);
    assert.match(r.stderr.text, /link needs --server URL/);
  });

  it('approve sends the code and reports the new device, with history progress', async () => {
    const client = new FakeParleyClient();
    client.approveProgress = [{ task: 'history-send', done: 1, total: 3, unit: 'chunks' }];
    const r = await run(['link', 'approve', ' parley-link:abc '], { client });
    assert.equal(r.code, 0);
    assert.deepEqual(client.callsOf('approveLink')[0]?.args, ['parley-link:abc']);
    assert.equal(r.stdout.text, 'approved device 2 and sent it the history\n');
    assert.equal(r.stderr.text, 'sending history 1/3 chunks\n');
  });

  it('approve --json', async () => {
    const r = await run(['link', 'approve', 'parley-link:abc', '--json']);
    assert.deepEqual(r.stdout.json, [{ deviceId: 2 }]);
  });

  it('approve on a profile without an account exits 3', async () => {
    const client = new FakeParleyClient();
    client.accountInfo = undefined;
    const r = await run(['link', 'approve', 'parley-link:abc'], { client });
    assert.equal(r.code, 3);
    assert.equal(client.callsOf('approveLink').length, 0);
  });
});

describe('devices', () => {
  const client = (): FakeParleyClient => {
    const c = new FakeParleyClient();
    c.deviceList = [
      { deviceId: 1, registrationId: 4321, createdAt: T0, current: true },
      { deviceId: 2, registrationId: 77, createdAt: T0 + 3_600_000, current: false },
    ];
    return c;
  };

  it('lists devices', async () => {
    const r = await run(['devices'], { client: client() });
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout.lines, [
      'device 1  registration 4321  added 2026-11-22 10:31  (this device)',
      'device 2  registration 77  added 2026-11-22 11:31',
    ]);
  });

  it('--json: one DeviceView per line', async () => {
    const r = await run(['devices', '--json'], { client: client() });
    assert.deepEqual(r.stdout.json, [
      { deviceId: 1, registrationId: 4321, createdAt: T0, current: true },
      { deviceId: 2, registrationId: 77, createdAt: T0 + 3_600_000, current: false },
    ]);
  });

  it('remove <id> removes that device', async () => {
    const c = client();
    const r = await run(['devices', 'remove', '2'], { client: c });
    assert.equal(r.code, 0);
    assert.deepEqual(c.callsOf('removeDevice')[0]?.args, [2]);
    assert.equal(r.stdout.text, 'removed device 2\n');
    const j = await run(['devices', 'remove', '2', '--json']);
    assert.deepEqual(j.stdout.json, [{ deviceId: 2, removed: true }]);
  });

  for (const bad of ['abc', '0', '128', '1.5', '-1']) {
    it(`remove ${bad} is a usage error`, async () => {
      const r = await run(['devices', 'remove', bad]);
      assert.equal(r.code, 2);
      assert.equal(r.opened.length, 0);
    });
  }
});

describe('send', () => {
  it('sends the text and prints the message line', async () => {
    const r = await run(['send', 'Bob@LocalHost', 'see you at 8']);
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.client.callsOf('send')[0]?.args, ['bob@localhost', 'see you at 8']);
    assert.equal(r.stdout.text, '[2026-11-22 10:31] alice@localhost: see you at 8\n');
    assert.equal(r.stderr.text, '');
  });

  it('passes a bare username for one’s own relay', async () => {
    const r = await run(['send', 'bob', 'hi']);
    assert.deepEqual(r.client.callsOf('send')[0]?.args, ['bob', 'hi']);
  });

  it('--json prints the MessageView', async () => {
    const r = await run(['send', 'bob@localhost', 'hi', '--json']);
    assert.deepEqual(r.stdout.json, [
      {
        id: '0123456789abcdef0123456789abcdef',
        conversation: 'bob@localhost',
        direction: 'out',
        sender: 'alice@localhost',
        senderDevice: 1,
        text: 'hi',
        kind: 'text',
        sentAt: T0,
        receivedAt: T0 + 1000,
        lamport: 1,
        status: 'sent',
      },
    ]);
  });

  it('- reads the text from stdin, without the trailing newline', async () => {
    const r = await run(['send', 'bob@localhost', '-'], { stdin: 'first line\nsecond line\n' });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.client.callsOf('send')[0]?.args, ['bob@localhost', 'first line\nsecond line']);
    assert.equal(r.stdout.text, '[2026-11-22 10:31] alice@localhost: first line\n  second line\n');
  });

  it('refuses empty text from stdin (exit 2)', async () => {
    const r = await run(['send', 'bob@localhost', '-'], { stdin: '\n' });
    assert.equal(r.code, 2);
    assert.equal(r.client.callsOf('send').length, 0);
    assert.match(r.stderr.text, /the text is empty/);
  });

  it('says so when the message stays in the outbox', async () => {
    const client = new FakeParleyClient();
    client.sent = (address, text) => message({ conversation: address, direction: 'out', sender: 'alice@localhost', text, status: 'pending' });
    const r = await run(['send', 'bob@localhost', 'hi'], { client });
    assert.equal(r.code, 0);
    assert.equal(r.stdout.text, '[2026-11-22 10:31] alice@localhost: hi (pending)\n');
    assert.match(r.stderr.text, /not delivered yet/);
  });

  for (const bad of ['bob@', '@localhost', 'b', 'bob@@x', 'bob@exa mple.org', '1bob']) {
    it(`rejects the address ${JSON.stringify(bad)} before opening the profile`, async () => {
      const r = await run(['send', bad, 'hi']);
      assert.equal(r.code, 2);
      assert.equal(r.opened.length, 0);
      assert.match(r.stderr.text, /\(USAGE\)/);
    });
  }
});

describe('send --file and download', () => {
  const progress = (task: 'upload' | 'download', total: number) =>
    Array.from({ length: 101 }, (_, i) => ({ task, done: Math.round((total * i) / 100), total, unit: 'bytes' as const }));

  it('send --file uploads the file (path from the working directory) with its caption and prints the message', async () => {
    const client = new FakeParleyClient();
    client.transferProgress = progress('upload', 1_651_520);
    const r = await run(['send', 'bob', '--file', 'docs/report.pdf', '--caption', 'Q3 numbers'], { client, cwd: '/home/alice' });
    assert.equal(r.code, 0, r.stderr.text);
    const call = client.callsOf('sendFile')[0]!;
    assert.equal(call.args[0], 'bob');
    assert.equal(call.args[1], '/home/alice/docs/report.pdf');
    assert.equal((call.args[2] as { caption?: string }).caption, 'Q3 numbers');
    assert.equal(client.callsOf('send').length, 0);
    assert.equal(r.stdout.text, '[2026-11-22 10:31] alice@localhost: Q3 numbers [file 0: report.pdf, 1.5 MiB]\n');
    // 101 progress events become one line per 5% (and none repeated).
    const lines = r.stderr.lines.filter((l) => l.startsWith('upload '));
    assert.equal(lines.length, 21);
    assert.equal(lines[0], 'upload 0 B of 1.6 MiB (0%)');
    assert.equal(lines.at(-1), 'upload 1.6 MiB of 1.6 MiB (100%)');
    assert.equal(client.listenerCount(), 0);
  });

  it('send --file --json prints the MessageView with its attachments, progress as JSON on stderr', async () => {
    const client = new FakeParleyClient();
    client.transferProgress = progress('upload', 1000);
    const r = await run(['send', 'bob@localhost', '--file', '/tmp/report.pdf', '--json'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    const m = r.stdout.json[0] as { text: string; attachments: unknown[] };
    assert.equal(m.text, '');
    assert.deepEqual(m.attachments, [{ index: 0, fileName: 'report.pdf', contentType: 'application/pdf', size: 1_572_864, path: '/tmp/report.pdf' }]);
    const first = r.stderr.json[0] as { progress: Record<string, unknown> };
    assert.deepEqual(first, { progress: { task: 'upload', done: 0, total: 1000, unit: 'bytes' } });
  });

  it('download saves into the working directory by default and prints where', async () => {
    const client = new FakeParleyClient();
    client.transferProgress = progress('download', 1_651_520);
    const r = await run(['download', '0123456789ABCDEF0123456789ABCDEF'], { client, cwd: '/home/alice' });
    assert.equal(r.code, 0, r.stderr.text);
    const call = client.callsOf('downloadAttachment')[0]!;
    assert.equal(call.args[0], '0123456789abcdef0123456789abcdef');
    assert.equal((call.args[1] as { out: string }).out, '/home/alice');
    assert.equal((call.args[1] as { index?: number }).index, undefined);
    assert.equal(r.stdout.text, 'saved report.pdf (1.5 MiB, application/pdf) to /home/alice/report.pdf\n');
    assert.equal(r.stderr.lines.filter((l) => l.startsWith('download ')).length, 21);
  });

  it('download --out and --index, and --json', async () => {
    const r = await run(['download', '0123456789abcdef0123456789abcdef', '--out', 'in/box.pdf', '--index', '2', '--json'], { cwd: '/home/alice' });
    assert.equal(r.code, 0, r.stderr.text);
    const opts = r.client.callsOf('downloadAttachment')[0]!.args[1] as { out: string; index: number };
    assert.equal(opts.out, '/home/alice/in/box.pdf');
    assert.equal(opts.index, 2);
    assert.deepEqual(r.stdout.json, [{ path: '/home/alice/report.pdf', size: 1_572_864, fileName: 'report.pdf', contentType: 'application/pdf' }]);
  });

  it('a file that does not match its pointer exits with the crypto code and says nothing was kept', async () => {
    const client = new FakeParleyClient();
    // The engine's CryptoError, as the CLI tells it apart: by name and code.
    client.failures.set('downloadAttachment', Object.assign(new Error('the attachment does not match its pointer'), { name: 'CryptoError', code: 'INVALID_ATTACHMENT' }));
    const r = await run(['download', '0123456789abcdef0123456789abcdef'], { client });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr.text, /\(INVALID_ATTACHMENT\)/);
    assert.match(r.stderr.text, /nothing was kept/);
  });

  it('messages with files show them in history', async () => {
    const client = new FakeParleyClient();
    client.historyList = [
      message({ text: 'photos', attachments: [{ index: 0, fileName: 'a.jpg', contentType: 'image/jpeg', size: 2048 }, { index: 1, fileName: '\u001b[2Jevil.png', contentType: 'image/png', size: 10 }] }),
    ];
    const r = await run(['history', 'bob'], { client });
    assert.equal(r.stdout.text, '[2026-11-22 10:31] bob@localhost: photos [file 0: a.jpg, 2.0 KiB] [file 1: [2Jevil.png, 10 B]\n');
  });
});

describe('receive', () => {
  it('prints each message once, from events and from the result', async () => {
    const client = new FakeParleyClient();
    const a = message({ id: 'a'.repeat(32), text: 'one' });
    const b = message({ id: 'b'.repeat(32), text: 'two', sentAt: T0 + 60_000 });
    client.receivedEvents = [a];
    client.receivedResult = [a, b];
    const r = await run(['receive'], { client });
    assert.equal(r.code, 0);
    assert.deepEqual(client.callsOf('receive')[0]?.args, [{ idleSeconds: 0 }]);
    assert.deepEqual(r.stdout.lines, ['[2026-11-22 10:31] bob@localhost: one', '[2026-11-22 10:32] bob@localhost: two']);
    assert.equal(r.stderr.text, '2 new messages\n');
    assert.equal(client.listenerCount(), 0);
  });

  it('names the group of a group message (the title when this device knows the group)', async () => {
    const client = new FakeParleyClient();
    const id = '3f2a0d4e'.padEnd(64, '0');
    client.groupResult = { ...client.groupResult, id, title: 'climbing' };
    client.receivedResult = [message({ text: 'rope?', conversation: `#${id}` }), message({ id: 'c'.repeat(32), text: 'just us' })];
    const r = await run(['receive'], { client });
    assert.deepEqual(r.stdout.lines, ['#3f2a0d4e climbing [2026-11-22 10:31] bob@localhost: rope?', '[2026-11-22 10:31] bob@localhost: just us']);
  });

  it('--wait passes the idle time; --json prints one MessageView per line', async () => {
    const client = new FakeParleyClient();
    client.receivedResult = [message()];
    const r = await run(['receive', '--wait', '2.5', '--json'], { client });
    assert.deepEqual(client.callsOf('receive')[0]?.args, [{ idleSeconds: 2.5 }]);
    assert.equal(r.stdout.json.length, 1);
    assert.equal(r.stdout.json[0]?.text, 'hello');
    assert.equal(r.stderr.text, '', 'no human notes in JSON mode');
  });

  it('says when nothing came', async () => {
    const r = await run(['receive']);
    assert.equal(r.stdout.text, '');
    assert.equal(r.stderr.text, 'no new messages\n');
  });

  for (const bad of ['-1', 'soon', '1e3', '100000']) {
    it(`--wait ${bad} is a usage error`, async () => {
      const r = await run(['receive', '--wait', bad]);
      assert.equal(r.code, 2);
      assert.equal(r.opened.length, 0);
    });
  }
});

describe('listen', () => {
  it('streams messages and connection state until the stop signal aborts', async () => {
    const client = new FakeParleyClient();
    client.listenEvents = [
      { event: 'connection', state: 'connected' },
      { event: 'message', m: message({ text: 'live' }) },
      { event: 'connection', state: 'disconnected', detail: 'socket closed' },
    ];
    const stop = new AbortController();
    const running = run(['listen'], { client, stopSignal: stop.signal });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(client.callsOf('listen').length, 1, 'listen is running');
    const signal = client.callsOf('listen')[0]?.args[0] as AbortSignal;
    assert.equal(signal.aborted, false);
    stop.abort();
    client.emit('connection', 'disconnected', 'client stopping');
    const r = await running;
    assert.equal(r.code, 0);
    assert.equal(signal.aborted, true, 'the engine saw the abort');
    assert.equal(r.stdout.text, '[2026-11-22 10:31] bob@localhost: live\n');
    assert.deepEqual(r.stderr.lines, [
      'connected; waiting for messages (Ctrl-C stops)',
      'disconnected (socket closed); reconnecting…',
      'disconnected (client stopping)',
      'stopped',
    ]);
    assert.equal(client.closed, 1);
    assert.equal(client.listenerCount(), 0);
  });

  it('--json: messages on stdout, connection state as JSON on stderr', async () => {
    const client = new FakeParleyClient();
    client.listenEvents = [{ event: 'connection', state: 'connected' }, { event: 'message', m: message() }];
    const stop = new AbortController();
    const running = run(['listen', '--json'], { client, stopSignal: stop.signal });
    setTimeout(() => stop.abort(), 10);
    const r = await running;
    assert.equal(r.code, 0);
    assert.equal(r.stdout.json[0]?.id, '0123456789abcdef0123456789abcdef');
    assert.deepEqual(r.stderr.json, [{ connection: { state: 'connected' } }, { connection: { state: 'stopped' } }]);
  });

  it('ends with the relay’s code when the device is removed', async () => {
    const client = new FakeParleyClient();
    client.listenEvents = [{ event: 'fatal', code: 'DEVICE_REMOVED', message: 'this device was removed from its account' }];
    const r = await run(['listen'], { client, stopSignal: new AbortController().signal });
    assert.equal(r.code, 4);
    assert.match(r.stderr.text, /\(DEVICE_REMOVED\)\nhint: this device was removed from its account: link it again/);
  });
});

describe('conversations, history, search', () => {
  it('conversations: human and JSON', async () => {
    const client = new FakeParleyClient();
    client.conversationList = [
      { address: 'bob@localhost', lastMessage: message(), unread: 2, identityChanged: true },
      { address: 'carol@example.org', unread: 0, identityChanged: false },
    ];
    const r = await run(['conversations'], { client });
    assert.deepEqual(r.stdout.lines, [
      'bob@localhost  2 unread  SAFETY NUMBER CHANGED  [2026-11-22 10:31] bob@localhost: hello',
      'carol@example.org',
    ]);
    const j = await run(['conversations', '--json'], { client });
    assert.deepEqual(j.stdout.json.map((o) => Object.keys(o)), [
      ['address', 'lastMessage', 'unread', 'identityChanged'],
      ['address', 'unread', 'identityChanged'],
    ]);
    assert.equal((j.stdout.json[0]?.lastMessage as { text: string }).text, 'hello');
  });

  it('history: prints oldest first and passes --limit and --before', async () => {
    const client = new FakeParleyClient();
    client.historyList = [
      message({ id: BOB_ID, text: 'newest', sentAt: T0 + 120_000 }),
      message({ id: 'a'.repeat(32), direction: 'out', sender: 'alice@localhost', text: 'older', sentAt: T0 }),
    ];
    const r = await run(['history', 'bob', '--limit', '2', '--before', 'ABCDEF0123456789ABCDEF0123456789'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(client.callsOf('history')[0]?.args, ['bob', { limit: 2, before: 'abcdef0123456789abcdef0123456789' }]);
    assert.deepEqual(r.stdout.lines, ['[2026-11-22 10:31] alice@localhost: older', '[2026-11-22 10:33] bob@localhost: newest']);
    const j = await run(['history', 'bob@localhost', '--json'], { client });
    assert.deepEqual(j.stdout.json.map((o) => o.text), ['older', 'newest']);
    assert.deepEqual(client.callsOf('history')[1]?.args, ['bob@localhost', {}]);
  });

  for (const argv of [
    ['history', 'bob', '--limit', '0'],
    ['history', 'bob', '--limit', 'ten'],
    ['history', 'bob', '--before', 'xyz'],
    ['history'],
  ]) {
    it(`${argv.join(' ')} is a usage error`, async () => {
      const r = await run(argv);
      assert.equal(r.code, 2);
      assert.equal(r.opened.length, 0);
    });
  }

  it('search: human and JSON, with --limit', async () => {
    const client = new FakeParleyClient();
    client.hits = [
      { message: message({ text: 'dinner at 8' }), snippet: '[dinner] at 8' },
      { message: message({ direction: 'out', sender: 'alice@localhost', text: 'dinner?' }), snippet: '[dinner]?' },
    ];
    const r = await run(['search', 'dinner*', '--limit', '5'], { client });
    assert.deepEqual(client.callsOf('search')[0]?.args, ['dinner*', { limit: 5 }]);
    assert.deepEqual(r.stdout.lines, [
      '[2026-11-22 10:31] bob@localhost: [dinner] at 8',
      '[2026-11-22 10:31] alice@localhost: [dinner]?  (to bob@localhost)',
    ]);
    const j = await run(['search', 'dinner', '--json'], { client });
    assert.deepEqual(Object.keys(j.stdout.json[0] ?? {}), ['message', 'snippet']);
    assert.deepEqual(client.callsOf('search')[1]?.args, ['dinner', undefined]);
  });

  it('empty lists: nothing on stdout, a note on stderr (none in JSON mode)', async () => {
    for (const [argv, note] of [
      [['conversations'], 'no conversations yet'],
      [['history', 'zed'], 'no messages with zed@localhost'],
      [['history', 'zed', '--before', 'a'.repeat(32)], 'no messages with zed@localhost before that message'],
      [['search', 'nothing'], 'no matches'],
      [['contacts'], 'no contacts yet'],
    ] as const) {
      const r = await run([...argv]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout.text, '');
      assert.equal(r.stderr.text, `${note}\n`);
      const j = await run([...argv, '--json']);
      assert.equal(j.stdout.text + j.stderr.text, '');
    }
  });

  it('search refuses an empty query', async () => {
    const r = await run(['search', '  ']);
    assert.equal(r.code, 2);
    assert.equal(r.client.callsOf('search').length, 0);
  });
});

describe('verify and contacts', () => {
  it('verify shows the safety number in three rows and how to accept it', async () => {
    const r = await run(['verify', 'bob@localhost']);
    assert.equal(r.code, 0);
    assert.deepEqual(r.client.callsOf('verify')[0]?.args, ['bob@localhost']);
    assert.deepEqual(r.stdout.lines, [
      'safety number with bob@localhost (not verified):',
      '  12345 12345 12345 12345',
      '  12345 12345 12345 12345',
      '  12345 12345 12345 12345',
    ]);
    assert.match(r.stderr.text, /if they match, run: parley verify bob@localhost --accept/);
  });

  it('verify warns when the key changed', async () => {
    const client = new FakeParleyClient();
    client.safety = { ...client.safety, identityChanged: true };
    const r = await run(['verify', 'bob'], { client });
    assert.match(r.stdout.lines[0] ?? '', /\(CHANGED, not accepted\)/);
    assert.match(r.stderr.text, /bob@localhost's safety number changed/);
  });

  it('verify --accept accepts the identity', async () => {
    const r = await run(['verify', 'bob@localhost', '--accept']);
    assert.equal(r.code, 0);
    assert.equal(r.client.callsOf('verify').length, 0);
    assert.deepEqual(r.client.callsOf('acceptIdentity')[0]?.args, ['bob@localhost']);
    assert.match(r.stdout.lines[0] ?? '', /\(verified\)/);
    assert.equal(r.stderr.text, "accepted bob@localhost's identity key and marked it verified\n");
    const client = new FakeParleyClient();
    client.acceptIdentity = async () => client.safety; // an engine that trusts the key without marking it verified
    const plain = await run(['verify', 'bob@localhost', '--accept'], { client });
    assert.equal(plain.stderr.text, "accepted bob@localhost's identity key\n");
  });

  it('verify --json prints the SafetyNumberView', async () => {
    const r = await run(['verify', 'bob@localhost', '--json']);
    assert.deepEqual(r.stdout.json, [
      { address: 'bob@localhost', safetyNumber: '123451234512345123451234512345123451234512345123451234512345', identityChanged: false, verified: false },
    ]);
    assert.equal(r.stderr.text, '');
  });

  it('contacts: human and JSON', async () => {
    const client = new FakeParleyClient();
    client.contactList = [
      { address: 'bob@localhost', aci: 'b-aci', identityChanged: false, verified: true, sealedSender: true },
      { address: 'carol@example.org', aci: 'c-aci', identityChanged: true, verified: false, sealedSender: false },
      { address: 'dave@example.org', aci: 'd-aci', identityChanged: false, verified: false },
    ];
    const r = await run(['contacts'], { client });
    assert.deepEqual(r.stdout.lines, ['bob@localhost  verified  sealed', 'carol@example.org  SAFETY NUMBER CHANGED', 'dave@example.org  not verified']);
    const j = await run(['contacts', '--json'], { client });
    assert.deepEqual(j.stdout.json[0], { address: 'bob@localhost', aci: 'b-aci', identityChanged: false, verified: true, sealedSender: true });
    assert.deepEqual(j.stdout.json[2], { address: 'dave@example.org', aci: 'd-aci', identityChanged: false, verified: false });
  });
});

describe('export', () => {
  it('defaults to jsonl into ./parley-export-<date>, lists the files, reports progress', async () => {
    const client = new FakeParleyClient();
    client.exportProgress = [{ task: 'export', done: 3, total: 3, unit: 'messages' }];
    const r = await run(['export'], { client });
    assert.equal(r.code, 0);
    assert.deepEqual(client.callsOf('exportArchive')[0]?.args, [{ format: 'jsonl', outDir: '/work/dir/parley-export-2026-11-22' }]);
    assert.equal(r.stdout.text, 'bob@localhost.jsonl\n');
    assert.deepEqual(r.stderr.lines, ['export 3/3 messages', 'exported 3 messages into /work/dir/parley-export-2026-11-22']);
  });

  it('--format md --out DIR, and --json', async () => {
    const r = await run(['export', '--format', 'md', '--out', 'archive', '--json']);
    assert.deepEqual(r.client.callsOf('exportArchive')[0]?.args, [{ format: 'md', outDir: '/work/dir/archive' }]);
    assert.deepEqual(r.stdout.json, [{ outDir: '/work/dir/archive', format: 'md', files: ['bob@localhost.jsonl'], messages: 3 }]);
  });

  it('--format pdf is a usage error', async () => {
    const r = await run(['export', '--format', 'pdf']);
    assert.equal(r.code, 2);
    assert.match(r.stderr.text, /jsonl or md/);
  });
});

describe('output hygiene', () => {
  it('strips terminal control sequences from peers’ text in human output, keeps them escaped in JSON', async () => {
    const client = new FakeParleyClient();
    client.receivedResult = [message({ text: 'hi\u001b[2J\u001b]0;pwned\u0007\rthere\u202e' })];
    const r = await run(['receive'], { client });
    assert.equal(r.stdout.text, '[2026-11-22 10:31] bob@localhost: hi[2J]0;pwned\n  there\n');
    assert.ok(!r.stdout.text.includes('\u001b'));
    const j = await run(['receive', '--json'], { client });
    assert.equal(j.stdout.json[0]?.text, 'hi\u001b[2J\u001b]0;pwned\u0007\rthere\u202e');
  });

  it('JSON output holds only the view fields, even if the engine adds more', async () => {
    const client = new FakeParleyClient();
    client.receivedResult = [{ ...message(), secretKey: 'do-not-print' } as ReturnType<typeof message>];
    const r = await run(['receive', '--json'], { client });
    assert.ok(!r.stdout.text.includes('do-not-print'));
  });
});
