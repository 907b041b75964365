// The live feed: one WebSocket to /ws/mqtt/ with the access token, reconnected with growing
// pauses (1 s doubling to 30 s, with jitter) when the appliance restarts or the network drops.
// The appliance closes a feed whose token expired with code 4401: it reconnects at once with
// the session's current (already refreshed) token.

import { accessToken, ensureFresh } from './api.js?v=__V__';

const MAX_WAIT_MS = 30_000;
/** Close code of a feed whose token expired or is no longer valid. */
const TOKEN_EXPIRED = 4401;

/**
 * `onMessage(msg)` gets each parsed message; `onState(state, info)` gets 'connecting', 'open',
 * or 'closed' with {retryAt} (ms timestamp of the next attempt).
 */
export function liveFeed({ onMessage, onState }) {
  let ws = null;
  let stopped = false;
  let attempt = 0;
  let timer = 0;

  async function connect() {
    if (stopped) return;
    onState('connecting', {});
    try {
      await ensureFresh();
    } catch {
      // Unreachable or session over: the socket attempt below fails and is retried.
    }
    const token = accessToken();
    if (stopped || !token) return;
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const sock = new WebSocket(`${proto}://${location.host}/ws/mqtt/?token=${encodeURIComponent(token)}`);
    ws = sock;
    sock.onopen = () => {
      attempt = 0;
      onState('open', {});
    };
    sock.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      onMessage(msg);
    };
    sock.onclose = (ev) => {
      if (ws !== sock || stopped) return;
      ws = null;
      const backoff = Math.min(MAX_WAIT_MS, 1000 * 2 ** attempt) * (0.8 + Math.random() * 0.4);
      const wait = ev.code === TOKEN_EXPIRED ? 0 : backoff;
      attempt = Math.min(attempt + 1, 6);
      onState('closed', { retryAt: Date.now() + wait });
      timer = setTimeout(connect, wait);
    };
  }

  function onVisible() {
    // Coming back to a sleeping tab: retry at once instead of waiting for the back-off.
    if (document.visibilityState === 'visible' && !ws && !stopped) {
      clearTimeout(timer);
      attempt = 0;
      connect();
    }
  }
  document.addEventListener('visibilitychange', onVisible);
  connect();

  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
      if (ws) {
        const s = ws;
        ws = null;
        s.onclose = null;
        s.onmessage = null;
        // Closing a socket that is still connecting makes browsers log an error: wait for it.
        if (s.readyState === WebSocket.CONNECTING) s.onopen = () => s.close(1000);
        else s.close(1000);
      }
    },
    reconnectNow() {
      if (stopped || ws) return;
      clearTimeout(timer);
      attempt = 0;
      connect();
    },
  };
}
