// Why a session stopped, in the reader's words: OCPP's Reason values
// ("EVDisconnected") and the central system's own ("closed by operator",
// billing/closing.py) are "cms.stopReasons.*" of the message catalogue;
// anything else (a reason typed by an operator, a charger's own word) is
// shown as it came.

import { has, t } from '/shared/i18n.js';

/** "closed by operator" -> the words of "cms.stopReasons.closedByOperator". */
export function stopReasonText(reason) {
  const key = `cms.stopReasons.${String(reason).replace(/ (\w)/g, (_, c) => c.toUpperCase())}`;
  return has(key) ? t(key) : reason;
}
