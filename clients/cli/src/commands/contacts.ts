// SPDX-License-Identifier: AGPL-3.0-only
/** Identity commands: verify (and accept) a safety number, list contacts. */
import { formatContact, formatSafetyNumber } from '../format.js';
import { contactJson, safetyNumberJson } from '../json-views.js';
import { type Session, fullAddress, requireAccount } from '../session.js';

/**
 * `parley verify <address> [--accept]`: shows the safety number; with `--accept`, trusts the
 * peer's current identity key (after the user compared the numbers).
 */
export async function verifyCommand(s: Session, address: string, accept: boolean): Promise<void> {
  const account = requireAccount(s);
  const peer = fullAddress(address, account);
  s.context.address = peer;
  const view = accept ? await s.client.acceptIdentity(address) : await s.client.verify(address);
  s.out.data(safetyNumberJson(view), formatSafetyNumber(view));
  if (accept) {
    s.out.note(`accepted ${peer}'s identity key${view.verified ? ' and marked it verified' : ''}`);
  } else if (view.identityChanged) {
    s.out.note([
      `${peer}'s safety number changed: compare it with theirs in person or on a call;`,
      `if the numbers match, run: parley verify ${peer} --accept`,
    ]);
  } else if (!view.verified) {
    s.out.note(`compare it with ${peer}'s in person or on a call; if they match, run: parley verify ${peer} --accept`);
  }
}

/** `parley contacts`. */
export async function contactsCommand(s: Session): Promise<void> {
  requireAccount(s);
  const contacts = s.client.contacts();
  for (const c of contacts) s.out.data(contactJson(c), formatContact(c));
  if (contacts.length === 0) s.out.note('no contacts yet');
}
