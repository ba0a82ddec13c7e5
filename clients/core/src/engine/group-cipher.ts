// SPDX-License-Identifier: AGPL-3.0-only
/** The sender-key operations of groups over @parley/crypto's SessionCipher. */
import { parseMultiRecipientMessage, SessionCipher, type DeviceAddress, type ProtocolStores } from '@parley/crypto';
import type { GroupCipherPort } from './group-sender.js';

function cipherFor(stores: ProtocolStores, self: DeviceAddress): SessionCipher {
  return new SessionCipher(stores, { localAddress: { aci: self.aci, deviceId: self.deviceId } });
}

/** {@link GroupCipherPort} through a SessionCipher over the stores each call names. */
export function sessionGroupCipher(): GroupCipherPort {
  return {
    createDistribution: (stores, self, distributionId) => cipherFor(stores, self).createSenderKeyDistribution({ aci: self.aci, deviceId: self.deviceId }, distributionId),
    processDistribution: async (stores, self, sender, message) => (await cipherFor(stores, self).processSenderKeyDistribution(sender, message)).distributionId,
    encryptMulti: (stores, self, input) =>
      cipherFor(stores, self).groupEncryptMulti({
        self: { aci: self.aci, deviceId: self.deviceId },
        distributionId: input.distributionId,
        plaintext: input.plaintext,
        senderCertificate: input.senderCertificate,
        recipients: input.recipients,
        groupId: input.groupId,
      }),
    recipientsOf: (payload) => parseMultiRecipientMessage(payload).recipients.map((r) => r.aci),
  };
}
