// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A client engine in a process of its own that SIGKILLs itself at a chosen moment, for crash
 * tests (no shutdown code, no pending write, no ack runs after the kill). Run as
 * `node client-crash-child.js <mode> <profileDir> [...]`; it reports on stdout, one line each:
 *
 * - `die-on-message <profileDir>`: runs `receive()` and kills itself inside the handler of the
 *   first 'message' event, that is after the message was committed and before its batch is
 *   acked. Prints `message <id>` first.
 * - `die-after-queue <profileDir> <address> <text>...`: starts `send(address, text)` for each
 *   text and kills itself as soon as all of them are in the local history (queued in the same
 *   transaction as their outbox entries), whatever the relay did with them. Prints `queued <id>`
 *   for each.
 * - `send <profileDir> <address> <text>...`: sends each text in order and waits; the parent
 *   kills this process when it likes. Prints `sent <id> <status>` for each.
 */
import { writeSync } from 'node:fs';
import { openParleyClient } from '@parley/client';

function say(line: string): void {
  // Synchronous: the line must be out before the process dies.
  writeSync(1, `${line}\n`);
}

function die(): never {
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is not delivered synchronously; nothing else may run meanwhile.
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
}

async function main(): Promise<void> {
  const [mode, profileDir, address, ...texts] = process.argv.slice(2);
  if (!mode || !profileDir) throw new Error('usage: client-crash-child <mode> <profileDir> [address text...]');
  const client = await openParleyClient({ profileDir });
  switch (mode) {
    case 'die-on-message': {
      client.on('message', (m) => {
        say(`message ${m.id}`);
        die();
      });
      await client.receive({ idleSeconds: 10 });
      say('no message');
      break;
    }
    case 'die-after-queue': {
      if (!address || texts.length === 0) throw new Error('die-after-queue needs an address and texts');
      for (const text of texts) void client.send(address, text).catch(() => undefined);
      for (;;) {
        const queued = client.history(address, { limit: 1000 }).filter((m) => m.direction === 'out' && texts.includes(m.text));
        if (queued.length === texts.length) {
          for (const m of queued.reverse()) say(`queued ${m.id} ${m.status}`);
          die();
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    case 'send': {
      if (!address) throw new Error('send needs an address');
      for (const text of texts) {
        const m = await client.send(address, text);
        say(`sent ${m.id} ${m.status}`);
      }
      // Wait to be killed (the timer keeps the process alive).
      setInterval(() => undefined, 60_000);
      await new Promise(() => undefined);
      break;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
  await client.close();
}

main().catch((err: unknown) => {
  say(`error ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
  process.exit(1);
});
