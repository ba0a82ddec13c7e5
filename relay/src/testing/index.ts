// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @parley/relay/testing — the push port's contract suite and the test doubles of the push
 * providers (an APNs stand-in over HTTP/2 + TLS, an FCM stand-in with its OAuth token endpoint),
 * a self-signed certificate for loopback TLS, and timers that move only when a test moves them.
 * Imports node:test; for tests only.
 */
export { createApnsTestKey, FAKE_APNS_ANSWERS, startFakeApns, type ApnsTestKey, type FakeApns, type FakeApnsAnswer, type FakeApnsOptions, type FakeApnsRequest } from './fake-apns.js';
export {
  createFcmTestAccount,
  FAKE_FCM_ANSWERS,
  startFakeFcm,
  type FakeFcm,
  type FakeFcmAnswer,
  type FakeFcmMessage,
  type FakeFcmOptions,
  type FakeFcmTokenGrant,
  type FcmTestAccount,
} from './fake-fcm.js';
export {
  describePushSenderContract,
  randomApnsToken,
  type ContractFailure,
  type PushContractCapabilities,
  type PushContractSubject,
  type PushSenderFactory,
  type ReceivedWakeUp,
} from './push-sender-contract.js';
export { createTestCertificate, type TestCertificate } from './test-certificate.js';
export { ManualTimers } from './manual-timers.js';
export { APNS_TEST_PAYLOADS } from './payloads.js';
