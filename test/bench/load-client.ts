// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The load side of the relay benchmark, run as its own process so that clients and relay
 * compete for the cores as real ones would. Reads a job from stdin (credentials of C sender /
 * receiver pairs and what to measure), prints one JSON result line on stdout.
 *
 * Content is 256 random bytes standing in for ciphertext; its first 8 bytes carry the send
 * time (a float64 of performance.timeOrigin + now) so receivers can measure end-to-end latency.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { aciToBytes, decodeFrame, encodeFrame, formatBasicAuth, type Aci } from '@parley/protocol';

/** One device's credentials. */
export interface BenchDevice {
  aci: string;
  deviceId: number;
  secret: string; // hex
  registrationId: number;
}

/** What the parent asks for. */
export interface LoadJob {
  wsUrl: string;
  pairs: Array<{ sender: BenchDevice; receiver: BenchDevice }>;
  mode: 'saturate' | 'paced' | 'idle' | 'drain-fill' | 'drain-read';
  /** saturate/paced: how long to run, ms. */
  durationMs?: number;
  /** paced: total envelopes per second across all senders. */
  ratePerS?: number;
  /** saturate: unanswered sends allowed per sender. */
  outstanding?: number;
  /** drain-fill: how many envelopes to queue for the first receiver. */
  count?: number;
}

const PAYLOAD_BYTES = 256;

function connect(url: string, d: BenchDevice): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      headers: { authorization: formatBasicAuth(d.aci, d.deviceId, Buffer.from(d.secret, 'hex')) },
      perMessageDeflate: false,
    });
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function connectAll(url: string, devices: BenchDevice[]): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  // Connect in slices: a thousand simultaneous handshakes only measure the accept queue.
  for (let i = 0; i < devices.length; i += 200) {
    out.push(...(await Promise.all(devices.slice(i, i + 200).map((d) => connect(url, d)))));
  }
  return out;
}

// Random filler made once: generating 256 random bytes per envelope would cost the load side
// more than the relay spends on it.
const FILLER = randomBytes(PAYLOAD_BYTES);
function payload(): Uint8Array {
  const p = new Uint8Array(PAYLOAD_BYTES);
  p.set(FILLER);
  new DataView(p.buffer).setFloat64(0, performance.timeOrigin + performance.now());
  return p;
}

let messageCounter = 0;
function sendFrame(requestId: number, to: BenchDevice): Uint8Array {
  const id = new Uint8Array(16);
  const v = new DataView(id.buffer);
  v.setUint32(0, process.pid);
  v.setFloat64(4, ++messageCounter);
  v.setUint32(12, (Math.random() * 0xffffffff) >>> 0);
  return encodeFrame({
    kind: {
      case: 'send',
      value: {
        requestId,
        destination: aciToBytes(to.aci as Aci),
        messageId: id,
        timestamp: BigInt(Date.now()),
        messages: [{ deviceId: to.deviceId, registrationId: to.registrationId, type: 1, content: payload() }],
      },
    },
  });
}

/** A receiver that acks cumulatively every 64 envelopes or 5 ms, and records latency. */
/** Receives (latency ms, send time) per envelope. */
interface LatencySink {
  push(ms: number, sentAt: number): void;
}

function attachReceiver(ws: WebSocket, latencies: LatencySink | undefined, onEnvelope: () => void): void {
  let lastSeq = 0;
  let unacked = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    if (unacked === 0) return;
    unacked = 0;
    ws.send(encodeFrame({ kind: { case: 'ack', value: { upTo: BigInt(lastSeq), seqs: [] } } }));
  };
  ws.on('message', (data: Buffer) => {
    const f = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (f.kind.case !== 'deliver') return;
    const now = performance.timeOrigin + performance.now();
    for (const e of f.kind.value.envelopes) {
      lastSeq = Number(e.seq);
      unacked++;
      if (latencies) {
        const sentAt = new DataView(e.content.buffer, e.content.byteOffset, 8).getFloat64(0);
        latencies.push(now - sentAt, sentAt);
      }
      onEnvelope();
    }
    if (unacked >= 64) flush();
    else timer ??= setTimeout(flush, 5);
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function run(job: LoadJob): Promise<Record<string, number>> {
  const senders = job.pairs.map((p) => p.sender);
  const receivers = job.pairs.map((p) => p.receiver);

  if (job.mode === 'idle') {
    const sockets = await connectAll(job.wsUrl, [...senders, ...receivers]);
    process.stdout.write(JSON.stringify({ connected: sockets.length }) + '\n');
    // Hold the sockets until the parent has measured and closes stdin.
    await new Promise<void>((resolve) => process.stdin.once('end', resolve).resume());
    for (const s of sockets) s.terminate();
    return { connected: sockets.length };
  }

  if (job.mode === 'drain-fill') {
    const [ws] = await connectAll(job.wsUrl, [senders[0]!]);
    const count = job.count ?? 10_000;
    let answered = 0;
    let next = 1;
    const done = new Promise<void>((resolve) => {
      ws!.on('message', (data: Buffer) => {
        const f = decodeFrame(new Uint8Array(data));
        if (f.kind.case === 'sendResult') {
          answered++;
          if (next <= count) ws!.send(sendFrame(next++, receivers[0]!));
          if (answered === count) resolve();
        } else if (f.kind.case === 'error') {
          throw new Error(`send refused: ${f.kind.value.code}`);
        }
      });
    });
    for (let i = 0; i < 256 && next <= count; i++) ws!.send(sendFrame(next++, receivers[0]!));
    await done;
    ws!.terminate();
    return { queued: answered };
  }

  if (job.mode === 'drain-read') {
    const count = job.count ?? 10_000;
    const t0 = performance.now();
    const ws = await connect(job.wsUrl, receivers[0]!);
    let got = 0;
    await new Promise<void>((resolve) => attachReceiver(ws, undefined, () => ++got === count && resolve()));
    const ms = performance.now() - t0;
    ws.terminate();
    return { drained: got, drain_ms: ms };
  }

  // saturate / paced
  const sendSockets = await connectAll(job.wsUrl, senders);
  const recvSockets = await connectAll(job.wsUrl, receivers);
  const latencies: number[] = [];
  let delivered = 0;
  let measuring = false;
  // Latency samples count only for envelopes sent during the measurement: a backlog left in the
  // queues by an earlier phase is delivered first and would otherwise count as slow.
  let measureFrom = Infinity;
  const sink = { push: (ms: number, sentAt: number) => sentAt >= measureFrom && latencies.push(ms) } as unknown as LatencySink;
  recvSockets.forEach((ws) => attachReceiver(ws, job.mode === 'paced' ? sink : undefined, () => measuring && delivered++));
  const durationMs = job.durationMs ?? 5000;
  let stop = false;
  let refused = 0;

  if (job.mode === 'saturate') {
    const outstanding = job.outstanding ?? 16;
    sendSockets.forEach((ws, i) => {
      let rid = 1;
      const to = receivers[i]!;
      ws.on('message', (data: Buffer) => {
        const f = decodeFrame(new Uint8Array(data));
        if (f.kind.case === 'error') refused++;
        if (!stop && (f.kind.case === 'sendResult' || f.kind.case === 'error')) ws.send(sendFrame(rid++, to));
      });
      for (let k = 0; k < outstanding; k++) ws.send(sendFrame(rid++, to));
    });
    await new Promise((r) => setTimeout(r, 1000)); // warm-up
    measuring = true;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, durationMs));
    const elapsed = performance.now() - t0;
    measuring = false;
    stop = true;
    const rate = delivered / (elapsed / 1000);
    await new Promise((r) => setTimeout(r, 500));
    for (const s of [...sendSockets, ...recvSockets]) s.terminate();
    return { envelopes_per_s: rate, refused };
  }

  // paced: a tick every 10 ms sends rate/100 envelopes round-robin over the senders.
  const rate = job.ratePerS ?? 10_000;
  const perTick = rate / 100;
  let carry = 0;
  let cursor = 0;
  const rids = sendSockets.map(() => 1);
  sendSockets.forEach((ws) => ws.on('message', (data: Buffer) => {
    const f = decodeFrame(new Uint8Array(data));
    if (f.kind.case === 'error') refused++;
  }));
  // The first second warms up (JIT, buffers, the relay's statement caches) and is not measured,
  // as in the saturation run.
  const warmUpMs = 1000;
  setTimeout(() => {
    measuring = true;
    measureFrom = performance.timeOrigin + performance.now();
  }, warmUpMs);
  const t0 = performance.now();
  let ticks = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      if (performance.now() - t0 >= durationMs + warmUpMs) return resolve();
      carry += perTick;
      while (carry >= 1) {
        carry -= 1;
        const i = cursor++ % sendSockets.length;
        sendSockets[i]!.send(sendFrame(rids[i]!++, receivers[i]!));
      }
      ticks++;
      // Schedule against the start time so the rate does not drift with timer lateness.
      setTimeout(tick, Math.max(0, t0 + ticks * 10 - performance.now()));
    };
    tick();
  });
  await new Promise((r) => setTimeout(r, 1000));
  measuring = false;
  for (const s of [...sendSockets, ...recvSockets]) s.terminate();
  latencies.sort((a, b) => a - b);
  return {
    sent_per_s: (cursor / (durationMs + warmUpMs)) * 1000,
    delivered,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    refused,
  };
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  input += d;
  const nl = input.indexOf('\n');
  if (nl < 0) return;
  process.stdin.removeAllListeners('data');
  run(JSON.parse(input.slice(0, nl)) as LoadJob).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`load client failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
});
