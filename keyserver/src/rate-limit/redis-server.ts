// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A throwaway `redis-server` for tests: started on a free loopback port with persistence off,
 * ready once it answers PING, killed afterwards. Tests that need Redis skip, saying so, where
 * `redis-server` is not installed ({@link redisServerSkipReason}).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';

/** A running redis-server. */
export interface RedisServerProcess {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** What the server printed so far. */
  output(): string;
  /** Kills the server (SIGKILL: nothing to flush, persistence is off) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Undefined when `redis-server` can be run here; otherwise why Redis tests are skipped. */
export function redisServerSkipReason(): string | undefined {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'redis-server is not on PATH, so the Redis adapter was NOT tested (install redis-server to run it)';
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

async function startOnce(port: number): Promise<RedisServerProcess | undefined> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return undefined; // e.g. the port was taken meanwhile
    if (await ping(port)) {
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        child,
        output: () => out,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  await exited;
  throw new Error(`redis-server did not answer PING within 10 s:\n${out}`);
}

/**
 * Starts a redis-server on a free port and resolves once it answers PING.
 * @throws Error when it cannot be started (call {@link redisServerSkipReason} first).
 */
export async function startRedisServer(): Promise<RedisServerProcess> {
  // The free port may be taken between the probe and redis-server's bind: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const server = await startOnce(await freePort());
    if (server) return server;
  }
  throw new Error('redis-server exited at start five times (ports taken?)');
}
