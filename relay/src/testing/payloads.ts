// SPDX-License-Identifier: AGPL-3.0-only
/** The exact wake-up bodies the APNs adapter sends, for tests outside the relay package. */
import { APNS_WAKE_UP } from '../push/apns-push-sender.js';

/** The APNs body of an urgent and of a non-urgent wake-up. */
export const APNS_TEST_PAYLOADS = Object.freeze({ urgent: APNS_WAKE_UP.urgent.body, normal: APNS_WAKE_UP.normal.body });
