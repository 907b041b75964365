//! systemd integration: `READY=1` once the appliance serves, `STOPPING=1` at shutdown, and
//! `WATCHDOG=1` pings that prove more than "the process exists".
//!
//! A ping is sent every half watchdog period, and only while
//! - the ingest thread that reads the broker link is turning (its [`Heartbeat`] is fresh),
//! - the store writer is turning: waiting for readings, committing, or retrying a failed
//!   commit with back-off (a writer that keeps a batch in memory through a disk error must not
//!   be killed, or that batch is lost), but not stuck inside one commit,
//! - the HTTP server answers a real `GET /healthz` over loopback (any status: a 503 while the
//!   disk is failing still proves the server works; the health body says what is wrong).
//!
//! When a check fails the ping is withheld and the reason logged; systemd then kills and
//! restarts the service once `WatchdogSec` passes without a ping. A heartbeat counts as stale
//! after half the watchdog period, so a single commit that blocks for longer than about the
//! period lets the watchdog fire, while shorter stalls (a slow SD card) do not.
//!
//! Outside systemd (no `NOTIFY_SOCKET`, no `WATCHDOG_USEC`) every call here is a no-op.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The process-wide origin of heartbeat times (monotonic).
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// The last time a long-running thread showed it was turning (cheap to clone and to beat).
#[derive(Clone, Debug)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    /// A heartbeat that has just beaten.
    pub fn new() -> Self {
        Self(Arc::new(AtomicU64::new(now_ms())))
    }

    /// Records that the owner is alive now (one relaxed atomic store).
    pub fn beat(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.0.load(Ordering::Relaxed)))
    }
}

/// What must be alive for the watchdog to be fed.
#[derive(Clone, Debug)]
pub struct Liveness {
    /// Beaten by the broker-link thread at least every 100 ms.
    pub ingest: Heartbeat,
    /// Beaten by the store writer at each loop turn and each retry of a failing commit.
    pub writer: Heartbeat,
    /// The address the HTTP server is bound to.
    pub http: SocketAddr,
    /// When the broker last completed a loopback MQTT CONNECT.
    pub mqtt: crate::broker::probe::MqttHealth,
}

/// Why a ping was withheld.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stalled {
    /// The broker-link thread has not turned for this long.
    #[error("the MQTT ingest thread has not run for {0:?}")]
    Ingest(Duration),
    /// The writer has not turned for this long (blocked inside a commit).
    #[error("the store writer has been blocked for {0:?} (stuck in a commit)")]
    Writer(Duration),
    /// The broker has not completed a CONNECT for this long.
    #[error("the MQTT broker has not accepted a connection for {0:?}")]
    Mqtt(Duration),
    /// The HTTP server did not answer.
    #[error("the HTTP server did not answer GET /healthz: {0}")]
    Http(String),
}

/// Checks the two heartbeats against `max_age` and the broker's last answered probe; `Ok`
/// when all are fresh.
pub fn check_heartbeats(live: &Liveness, max_age: Duration) -> Result<(), Stalled> {
    let ingest = live.ingest.age();
    if ingest > max_age {
        return Err(Stalled::Ingest(ingest));
    }
    let writer = live.writer.age();
    if writer > max_age {
        return Err(Stalled::Writer(writer));
    }
    if !live.mqtt.healthy() {
        return Err(Stalled::Mqtt(live.mqtt.silence()));
    }
    Ok(())
}

/// The loopback address that reaches a server bound to `bound` (an unspecified address such
/// as `0.0.0.0` is reached through `127.0.0.1`, `::` through `::1`).
pub fn loopback_for(bound: SocketAddr) -> SocketAddr {
    let mut addr = bound;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// Sends `GET /healthz` to the server bound at `bound` and returns the HTTP status it answered
/// with, or why it did not answer within `timeout`.
pub async fn probe_http(bound: SocketAddr, timeout: Duration) -> Result<u16, String> {
    let addr = loopback_for(bound);
    let exchange = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("send: {e}"))?;
        // The status line is all that is needed; the body is small anyway.
        let mut head = [0u8; 64];
        let mut len = 0;
        while len < 12 {
            let n = s
                .read(&mut head[len..])
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            len += n;
        }
        parse_status(&head[..len]).ok_or_else(|| "no HTTP status line in the answer".to_string())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// The status code of an `HTTP/1.x NNN` status line.
fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head).ok()?;
    let mut parts = text.split_ascii_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Set once a notification failed, so a broken socket is logged once, not at every ping.
static NOTIFY_FAILED: AtomicBool = AtomicBool::new(false);

/// Sends one notification; failures are logged (the first one only), never fatal: systemd
/// notices a missing ping by itself.
fn notify(state: NotifyState<'_>) {
    match sd_notify::notify(&[state]) {
        Ok(()) => NOTIFY_FAILED.store(false, Ordering::Relaxed),
        Err(e) => {
            if !NOTIFY_FAILED.swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %e, "cannot notify systemd (further failures not logged)");
            }
        }
    }
}

/// Tells systemd the service is up (`READY=1`). Call once the store is open, the broker
/// listens and the HTTP server answers.
pub fn notify_ready() {
    notify(NotifyState::Ready);
}

/// Asks systemd for `by` more time to start (`EXTEND_TIMEOUT_USEC`): long one-time work
/// before the service is ready (moving an older store's readings) reports its progress so the
/// start timeout does not kill it half-way.
pub fn extend_start(by: Duration) {
    let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
    notify(NotifyState::ExtendTimeoutUsec(usec));
}

/// Tells systemd the service is shutting down (`STOPPING=1`).
pub fn notify_stopping() {
    notify(NotifyState::Stopping);
}

/// Waits until the HTTP server bound at `bound` answers `/healthz` (or `cancel` fires);
/// returns whether it answered.
pub async fn wait_http(bound: SocketAddr, cancel: &CancellationToken) -> bool {
    let started = Instant::now();
    let mut warned = false;
    loop {
        match probe_http(bound, Duration::from_secs(2)).await {
            Ok(_) => return true,
            Err(why) => {
                if !warned && started.elapsed() > Duration::from_secs(5) {
                    tracing::warn!(reason = %why, "the HTTP server does not answer yet");
                    warned = true;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// Starts the ping task if systemd asked for a watchdog (`WATCHDOG_USEC`, and `WATCHDOG_PID`
/// unset or this process); it ends when `stop` is cancelled. Returns the period.
pub fn spawn(live: Liveness, stop: CancellationToken) -> Option<Duration> {
    let period = sd_notify::watchdog_enabled()?;
    if period.is_zero() {
        return None;
    }
    let every = period / 2;
    // Stale after half the period; the HTTP probe must answer well within one ping interval.
    let max_age = every;
    let http_timeout = (every / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    tracing::info!(
        period_ms = period.as_millis() as u64,
        "systemd watchdog enabled; pinging while ingest, writer and HTTP are alive"
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut withheld = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let verdict = match check_heartbeats(&live, max_age) {
                Ok(()) => match probe_http(live.http, http_timeout).await {
                    Ok(_) => Ok(()),
                    Err(why) => Err(Stalled::Http(why)),
                },
                Err(stalled) => Err(stalled),
            };
            if stop.is_cancelled() {
                break;
            }
            match verdict {
                Ok(()) => {
                    if withheld {
                        tracing::info!("watchdog pings resumed: every part is alive again");
                        withheld = false;
                    }
                    notify(NotifyState::Watchdog);
                }
                Err(why) => {
                    tracing::error!(
                        reason = %why,
                        "watchdog ping withheld; systemd restarts the service if this persists"
                    );
                    withheld = true;
                }
            }
        }
    });
    Some(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(ingest_ago: u64, writer_ago: u64) -> Liveness {
        let at = |ago: u64| Heartbeat(Arc::new(AtomicU64::new(now_ms().saturating_sub(ago))));
        Liveness {
            ingest: at(ingest_ago),
            writer: at(writer_ago),
            http: "127.0.0.1:1".parse().expect("addr"),
            mqtt: crate::broker::probe::MqttHealth::new(),
        }
    }

    #[test]
    fn fresh_heartbeats_pass_and_stale_ones_name_the_culprit() {
        // Start the epoch early enough that "250 ms ago" exists.
        let _ = now_ms();
        std::thread::sleep(Duration::from_millis(300));
        let max = Duration::from_millis(200);
        assert_eq!(check_heartbeats(&live(0, 0), max), Ok(()));
        assert!(matches!(
            check_heartbeats(&live(250, 0), max),
            Err(Stalled::Ingest(_))
        ));
        assert!(matches!(
            check_heartbeats(&live(0, 250), max),
            Err(Stalled::Writer(_))
        ));
        let mut silent_broker = live(0, 0);
        silent_broker.mqtt =
            crate::broker::probe::MqttHealth::answered_ago(Duration::from_secs(60));
        assert!(matches!(
            check_heartbeats(&silent_broker, max),
            Err(Stalled::Mqtt(_))
        ));
    }

    #[test]
    fn beating_makes_a_heartbeat_fresh() {
        let h = Heartbeat::new();
        std::thread::sleep(Duration::from_millis(30));
        assert!(h.age() >= Duration::from_millis(30));
        h.beat();
        assert!(h.age() < Duration::from_millis(30));
    }

    #[test]
    fn unspecified_binds_are_probed_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().expect("v4");
        assert_eq!(loopback_for(v4), "127.0.0.1:8080".parse().expect("lo4"));
        let v6: SocketAddr = "[::]:8080".parse().expect("v6");
        assert_eq!(loopback_for(v6), "[::1]:8080".parse().expect("lo6"));
        let lan: SocketAddr = "192.168.1.5:8080".parse().expect("lan");
        assert_eq!(loopback_for(lan), lan);
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-x"), None);
        assert_eq!(parse_status(b""), None);
    }

    #[tokio::test]
    async fn a_port_nobody_answers_on_fails_the_probe() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        assert!(probe_http(addr, Duration::from_millis(500)).await.is_err());
    }
}
