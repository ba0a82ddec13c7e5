// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A stand-in for a MALICIOUS RELAY: a real HTTP + WebSocket proxy on loopback in front of a real
 * relay process, which clients use as their server. By default it forwards everything unchanged
 * in both directions; tests install hooks to lie: rewrite REST answers (e.g. prekey bundles from
 * `/v1/keys/…`), and drop, duplicate, alter or inject WebSocket frames either way.
 *
 * Everything a relay could do to a client's traffic it can do here, and nothing more: it sees
 * ciphertext and metadata only. End-to-end tests use it to show that the client engine notices
 * (or survives) each lie instead of trusting its relay.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { decodeFrame, encodeFrame, parseBasicAuth, type Frame, type FrameInit, type Send } from '@parley/protocol';
import WebSocket, { WebSocketServer } from 'ws';

/** The device a connection or request authenticated as, when its Authorization header parses. */
export interface ProxiedDevice {
  readonly aci: string;
  readonly deviceId: number;
}

/** A REST request as the proxy forwarded it. */
export interface ProxiedRequest {
  readonly method: string;
  /** Path and query, e.g. `/v1/keys/<aci>/*`. */
  readonly path: string;
  readonly device: ProxiedDevice | undefined;
}

/** The relay's answer to a REST request, as the proxy received it. */
export interface ProxiedResponse {
  readonly status: number;
  readonly body: Buffer;
  /** The relay's body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
}

/** What a REST hook may answer instead: a status (default the relay's) and a body (objects are sent as JSON). */
export interface RestRewrite {
  readonly status?: number;
  readonly body: unknown;
}

/**
 * Sees every REST answer before the client does. Returns undefined to pass it on unchanged, or
 * a rewrite. May be async (e.g. to generate keys).
 */
export type RestHook = (req: ProxiedRequest, res: ProxiedResponse) => RestRewrite | undefined | Promise<RestRewrite | undefined>;

/** Where a frame was going. */
export type FrameDirection = 'to-client' | 'to-relay';

/** The connection a frame travels on. */
export interface FrameContext {
  /** Numbered from 1 in the order clients connected. */
  readonly connection: number;
  readonly device: ProxiedDevice | undefined;
  readonly direction: FrameDirection;
  /** Sends an extra frame to the client on this connection (after the hook's own frames). */
  toClient(frame: Frame | FrameInit): void;
  /** Sends an extra frame to the relay on this connection (after the hook's own frames). */
  toRelay(frame: Frame | FrameInit): void;
}

/**
 * Sees every decodable WebSocket frame. Returns undefined to forward the original bytes, or the
 * frames to forward instead: `[]` drops it, `[frame, frame]` duplicates it, a changed frame
 * alters it. Synchronous, so the order of frames on a connection is kept.
 */
export type FrameHook = (frame: Frame, ctx: FrameContext) => ReadonlyArray<Frame | FrameInit> | undefined;

/** One frame the proxy saw (before any hook), for assertions. */
export interface SeenFrame {
  readonly connection: number;
  readonly device: ProxiedDevice | undefined;
  readonly direction: FrameDirection;
  readonly frame: Frame;
}

function deviceOf(authorization: string | undefined): ProxiedDevice | undefined {
  if (!authorization) return undefined;
  try {
    const c = parseBasicAuth(authorization);
    return { aci: c.aci, deviceId: c.deviceId };
  } catch {
    return undefined;
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** A close code that may be sent on the wire (1005, 1006 and 1015 are reserved for reporting). */
function sendableClose(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 || code < 1000 || code >= 5000 ? 1000 : code;
}

/** See the module comment. Start with {@link TamperingProxy.start}. */
export class TamperingProxy {
  /** The base URL clients use as their relay, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Rewrites REST answers; unset passes them through. */
  restHook: RestHook | undefined;
  /** Sees frames relay → client; unset passes them through. */
  relayFrameHook: FrameHook | undefined;
  /** Sees frames client → relay; unset passes them through. */
  clientFrameHook: FrameHook | undefined;
  /** Every decodable frame seen, in both directions, before hooks ran. */
  readonly frames: SeenFrame[] = [];
  /** Every REST request forwarded. */
  readonly requests: ProxiedRequest[] = [];
  /**
   * When set, the proxy plays a relay without sealed sender: `/v1/info` announces no trust root
   * (whatever the hooks do), so clients behind it never send sealed and never hand out a
   * profile key. For tests whose lies need the relay to see who sends.
   */
  hideSealedSender = false;

  private readonly server: Server;
  private readonly target: URL;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  private readonly links = new Set<{ client: WebSocket; upstream: WebSocket }>();
  private readonly pendingUpstreams = new Set<WebSocket>();
  private nextConnection = 1;

  private constructor(server: Server, url: string, target: URL) {
    this.server = server;
    this.url = url;
    this.target = target;
  }

  /** Starts a proxy on a free loopback port in front of the relay at `targetUrl` (its http base URL). */
  static async start(targetUrl: string): Promise<TamperingProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
    const proxy = new TamperingProxy(server, `http://127.0.0.1:${address.port}`, new URL(targetUrl));
    server.on('request', (req, res) => void proxy.onRequest(req, res));
    server.on('upgrade', (req, socket, head) => proxy.onUpgrade(req, socket, head));
    return proxy;
  }

  /** Removes every hook: the proxy forwards faithfully again. */
  clearHooks(): void {
    this.restHook = undefined;
    this.relayFrameHook = undefined;
    this.clientFrameHook = undefined;
  }

  /** Send frames the clients sent (client → relay), optionally only those of the device `aci`. */
  sentFrames(aci?: string): Send[] {
    const out: Send[] = [];
    for (const f of this.frames) {
      if (f.direction === 'to-relay' && f.frame.kind.case === 'send' && (aci === undefined || f.device?.aci === aci)) out.push(f.frame.kind.value);
    }
    return out;
  }

  /** Cuts every proxied WebSocket abruptly (clients see a dropped connection and reconnect). */
  dropConnections(): void {
    for (const { client, upstream } of this.links) {
      client.terminate();
      upstream.terminate();
    }
    this.links.clear();
  }

  /** Closes every connection and the listening socket. */
  async close(): Promise<void> {
    this.dropConnections();
    for (const u of this.pendingUpstreams) u.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- REST -----------------------------------------------------------------------------------

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      const headers = { ...req.headers, host: this.target.host };
      delete headers['content-length'];
      if (body.length > 0) headers['content-length'] = String(body.length);
      const upstream = await new Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }>((resolve, reject) => {
        const r = httpRequest(
          { host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers },
          (answer) => {
            const parts: Buffer[] = [];
            answer.on('data', (d: Buffer) => parts.push(d));
            answer.on('end', () => resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: Buffer.concat(parts) }));
            answer.on('error', reject);
          },
        );
        r.on('error', reject);
        r.end(body);
      });
      const proxied: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', device: deviceOf(req.headers.authorization) };
      this.requests.push(proxied);
      let json: unknown;
      try {
        json = upstream.body.length > 0 ? JSON.parse(upstream.body.toString('utf8')) : undefined;
      } catch {
        json = undefined;
      }
      if (this.hideSealedSender && proxied.path === '/v1/info' && typeof json === 'object' && json !== null) {
        const { senderCertificateTrustRoot: _hidden, ...rest } = json as Record<string, unknown>;
        json = rest;
        upstream.body = Buffer.from(JSON.stringify(rest), 'utf8');
      }
      const rewrite = this.restHook ? await this.restHook(proxied, { status: upstream.status, body: upstream.body, json }) : undefined;
      const outHeaders = { ...upstream.headers };
      delete outHeaders['content-length'];
      delete outHeaders['transfer-encoding'];
      let outBody = upstream.body;
      let status = upstream.status;
      if (rewrite) {
        status = rewrite.status ?? status;
        if (Buffer.isBuffer(rewrite.body)) {
          outBody = rewrite.body;
        } else if (typeof rewrite.body === 'string') {
          outBody = Buffer.from(rewrite.body, 'utf8');
        } else {
          outBody = Buffer.from(JSON.stringify(rewrite.body), 'utf8');
          outHeaders['content-type'] = 'application/json; charset=utf-8';
        }
      }
      outHeaders['content-length'] = String(outBody.length);
      res.writeHead(status, outHeaders);
      res.end(outBody);
    } catch {
      // The relay is unreachable (a test stopped it): answer as a broken gateway would.
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway');
    }
  }

  // --- WebSocket ------------------------------------------------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const wsTarget = `ws://${this.target.host}${req.url ?? '/'}`;
    const headers: Record<string, string> = {};
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    const upstream = new WebSocket(wsTarget, { headers, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    this.pendingUpstreams.add(upstream);
    const connection = this.nextConnection++;
    const device = deviceOf(req.headers.authorization);
    // Frames the relay sends before the client side is upgraded wait here, in order.
    const early: Buffer[] = [];
    let client: WebSocket | undefined;
    upstream.on('message', (data) => {
      const bytes = toBuffer(data);
      if (client) this.forward(bytes, 'to-client', connection, device, client, upstream);
      else early.push(bytes);
    });
    upstream.once('unexpected-response', (_r, answer) => {
      // Refused upgrade (bad credentials, removed device): hand the client the relay's answer as is.
      const parts: Buffer[] = [];
      answer.on('data', (d: Buffer) => parts.push(d));
      answer.on('end', () => {
        const body = Buffer.concat(parts);
        const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
        for (const [k, v] of Object.entries(answer.headers)) {
          if (k === 'content-length' || k === 'transfer-encoding' || k === 'connection' || v === undefined) continue;
          lines.push(`${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
        }
        lines.push(`content-length: ${body.length}`, 'connection: close', '', '');
        socket.end(Buffer.concat([Buffer.from(lines.join('\r\n'), 'utf8'), body]));
        this.pendingUpstreams.delete(upstream);
        upstream.terminate();
      });
    });
    upstream.once('error', () => {
      if (!client) socket.destroy();
    });
    upstream.once('open', () => {
      this.pendingUpstreams.delete(upstream);
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        client = ws;
        const link = { client: ws, upstream };
        this.links.add(link);
        for (const bytes of early.splice(0)) this.forward(bytes, 'to-client', connection, device, ws, upstream);
        ws.on('message', (data) => this.forward(toBuffer(data), 'to-relay', connection, device, ws, upstream));
        ws.once('close', (code, reason) => {
          this.links.delete(link);
          if (upstream.readyState === WebSocket.OPEN) upstream.close(sendableClose(code), reason);
          else upstream.terminate();
        });
        ws.on('error', () => upstream.terminate());
        upstream.once('close', (code, reason) => {
          this.links.delete(link);
          // Keep the relay's close code: the client acts on CONNECTED_ELSEWHERE and DEVICE_REMOVED.
          if (ws.readyState === WebSocket.OPEN) ws.close(sendableClose(code), reason);
          else ws.terminate();
        });
      });
    });
    socket.once('error', () => upstream.terminate());
  }

  private forward(bytes: Buffer, direction: FrameDirection, connection: number, device: ProxiedDevice | undefined, client: WebSocket, upstream: WebSocket): void {
    const out = direction === 'to-client' ? client : upstream;
    const send = (socket: WebSocket, data: Uint8Array) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(data);
    };
    let frame: Frame;
    try {
      frame = decodeFrame(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), Number.MAX_SAFE_INTEGER);
    } catch {
      send(out, bytes); // not a frame this proxy understands: pass it on untouched
      return;
    }
    this.frames.push({ connection, device, direction, frame });
    const hook = direction === 'to-client' ? this.relayFrameHook : this.clientFrameHook;
    if (!hook) {
      send(out, bytes);
      return;
    }
    const extraToClient: Uint8Array[] = [];
    const extraToRelay: Uint8Array[] = [];
    const ctx: FrameContext = {
      connection,
      device,
      direction,
      toClient: (f) => extraToClient.push(encodeFrame(f)),
      toRelay: (f) => extraToRelay.push(encodeFrame(f)),
    };
    const replacement = hook(frame, ctx);
    if (replacement === undefined) send(out, bytes);
    else for (const f of replacement) send(out, encodeFrame(f));
    for (const b of extraToClient) send(client, b);
    for (const b of extraToRelay) send(upstream, b);
  }
}
