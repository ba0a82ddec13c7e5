// SPDX-License-Identifier: AGPL-3.0-only
/** Account and device commands: register, whoami, link, link approve, devices, devices remove. */
import QRCode from 'qrcode';
import { accountJson, deviceJson } from '../json-views.js';
import { formatAccount, formatDevice } from '../format.js';
import { type Session, requireAccount, requireNoAccount } from '../session.js';

/** `parley register <username> --server URL`. */
export async function registerCommand(s: Session, username: string, server: string): Promise<void> {
  requireNoAccount(s);
  s.context.server = server;
  const a = await s.client.register(server, username);
  s.out.data(accountJson(a), `registered ${a.address} (device ${a.deviceId}) on ${a.server}`);
}

/** `parley whoami`. */
export async function whoamiCommand(s: Session): Promise<void> {
  const a = requireAccount(s);
  s.out.data(accountJson(a), formatAccount(a));
}

/** Options of `parley link`. */
export interface LinkCommandOptions {
  /** The relay's base URL. */
  readonly server: string;
  /** How long to wait for the approval, seconds; default: the engine's. */
  readonly timeoutSeconds?: number;
}

/**
 * `parley link --server URL`: shows the link code as text and as a terminal QR code, then waits
 * until another device approves it and the history has arrived.
 */
export async function linkCommand(s: Session, options: LinkCommandOptions): Promise<void> {
  requireNoAccount(s);
  s.context.server = options.server;
  const pending: Promise<void>[] = [];
  const onLinkCode = (code: string): void => {
    s.out.data({ link_code: code }, code);
    if (!s.out.json) {
      pending.push(
        QRCode.toString(code, { type: 'terminal', small: true }).then(
          (qr) => s.out.humanText(qr),
          () => s.out.note('(the QR code could not be drawn; type the code instead)'),
        ),
      );
    }
    s.out.note([
      'On a device of this account, run:',
      `  parley link approve ${code}`,
      'Waiting for the approval…',
    ]);
  };
  const off = s.client.on('progress', (p) => s.out.progress(p));
  try {
    const a = await s.client.link(
      options.server,
      onLinkCode,
      options.timeoutSeconds === undefined ? undefined : { timeoutMs: Math.round(options.timeoutSeconds * 1000) },
    );
    await Promise.all(pending);
    s.out.data(accountJson(a), `linked as ${a.address} (device ${a.deviceId})`);
  } finally {
    off();
    await Promise.allSettled(pending);
  }
}

/** `parley link approve <code>`: approves a new device and sends it the history. */
export async function linkApproveCommand(s: Session, code: string): Promise<void> {
  requireAccount(s);
  const off = s.client.on('progress', (p) => s.out.progress(p));
  try {
    const r = await s.client.approveLink(code.trim());
    s.out.data({ deviceId: r.deviceId }, `approved device ${r.deviceId} and sent it the history`);
  } finally {
    off();
  }
}

/** `parley devices`. */
export async function devicesCommand(s: Session): Promise<void> {
  requireAccount(s);
  const devices = await s.client.devices();
  for (const d of devices) s.out.data(deviceJson(d), formatDevice(d));
}

/** `parley devices remove <id>`. */
export async function devicesRemoveCommand(s: Session, deviceId: number): Promise<void> {
  requireAccount(s);
  await s.client.removeDevice(deviceId);
  s.out.data({ deviceId, removed: true }, `removed device ${deviceId}`);
}
