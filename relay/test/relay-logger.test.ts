// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRelayLogger, REDACTED } from '../src/relay-logger.js';

function capture(): { text: () => string; lines: () => Array<Record<string, unknown>>; stream: { write(s: string): void } } {
  let text = '';
  return {
    stream: { write: (s: string) => void (text += s) },
    text: () => text,
    lines: () => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('the relay logger', () => {
  it('writes JSON lines with the service name and keeps ids', () => {
    const out = capture();
    const log = createRelayLogger('info', out.stream);
    log.info({ aci: 'b9c3…', deviceId: 2 }, 'device linked');
    const [line] = out.lines();
    assert.equal(line!.service, 'parley-relay');
    assert.equal(line!.deviceId, 2);
    assert.equal(line!.msg, 'device linked');
  });

  it('redacts secrets, tokens, bodies and authorization headers at the top level and one level down', () => {
    const out = capture();
    const log = createRelayLogger('trace', out.stream);
    const secret = 'c2VjcmV0LXNob3VsZC1uZXZlci1hcHBlYXI';
    log.info(
      {
        authorization: `Basic ${secret}`,
        token: secret,
        authSecret: secret,
        req: { headers: { authorization: `Basic ${secret}`, host: 'relay' } },
        request: { body: secret, content: secret, identityKeyPair: secret, secret },
        metricsToken: secret,
      },
      'careless',
    );
    log.child({ component: 'http' }).warn({ headers: { authorization: secret } }, 'child too');
    const text = out.lines().map((l) => JSON.stringify(l)).join('\n');
    assert.ok(!text.includes(secret), text);
    const [first, second] = out.lines();
    assert.equal(first!.token, REDACTED);
    assert.equal((first!.req as { headers: Record<string, string> }).headers.host, 'relay', 'other fields stay');
    assert.equal((second!.headers as Record<string, string>).authorization, REDACTED);
  });

  it('stays silent at level silent', () => {
    const out = capture();
    createRelayLogger('silent', out.stream).fatal('nothing');
    assert.equal(out.text(), '');
  });
});
