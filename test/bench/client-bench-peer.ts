// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The receiving client of the client benchmark, in a process of its own (two people's clients
 * never share one). Driven by the benchmark over IPC:
 *
 *   → { do: 'register', relayUrl, username, profileDir }   ← { done: 'register' }
 *   → { do: 'listen' }                                      ← { got: [[text, epochMs], …] } as messages arrive
 *   → { do: 'stop' }                                        ← { done: 'stop' }
 *   → { do: 'drain' }                                       ← { done: 'drain', ms, count }
 *   → { do: 'cpu' }                                         ← { done: 'cpu', cpu: µs of CPU this process used so far }
 *   → { do: 'close' }                                       ← { done: 'close' } and exits
 *
 * A command that fails answers { done: <its name>, error }.
 *
 * Arrival times are wall-clock milliseconds with sub-millisecond precision
 * (`performance.timeOrigin + performance.now()`), comparable with the benchmark's own.
 */
import { performance } from 'node:perf_hooks';
import { openParleyClient, type ParleyClientApi } from '@parley/client';

type Command =
  | { readonly do: 'register'; readonly relayUrl: string; readonly username: string; readonly profileDir: string }
  | { readonly do: 'listen' | 'stop' | 'drain' | 'cpu' | 'close' };

const send = (message: unknown) => process.send!(message);
const epochNow = () => performance.timeOrigin + performance.now();

let client: ParleyClientApi | undefined;
let listening: { stop: AbortController; done: Promise<void> } | undefined;
/** Arrivals not yet reported; flushed every few ms, so IPC does not cost a message per message. */
let arrivals: Array<[string, number]> = [];
let counted = 0;
setInterval(() => {
  if (arrivals.length === 0) return;
  send({ got: arrivals });
  arrivals = [];
}, 10).unref();

async function handle(cmd: Command): Promise<void> {
  switch (cmd.do) {
    case 'register': {
      client = await openParleyClient({ profileDir: cmd.profileDir });
      await client.register(cmd.relayUrl, cmd.username);
      client.on('message', (m) => {
        counted++;
        arrivals.push([m.text, epochNow()]);
      });
      send({ done: 'register' });
      return;
    }
    case 'listen': {
      const stop = new AbortController();
      listening = { stop, done: client!.listen(stop.signal) };
      return;
    }
    case 'stop': {
      listening?.stop.abort();
      await listening?.done;
      listening = undefined;
      send({ done: 'stop' });
      return;
    }
    case 'drain': {
      const before = counted;
      const t0 = performance.now();
      await client!.receive();
      send({ done: 'drain', ms: performance.now() - t0, count: counted - before });
      return;
    }
    case 'cpu': {
      const u = process.cpuUsage();
      send({ done: 'cpu', cpu: u.user + u.system });
      return;
    }
    case 'close': {
      listening?.stop.abort();
      await listening?.done;
      await client?.close();
      send({ done: 'close' });
      process.disconnect();
      return;
    }
  }
}

let queue = Promise.resolve();
process.on('message', (cmd: Command) => {
  queue = queue.then(() =>
    handle(cmd).catch((err: unknown) => {
      send({ done: cmd.do, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    }),
  );
});
