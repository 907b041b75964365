//! The path of a message from the broker link to the writer queue and the live feed.
//!
//! One thread only moves messages off the broker link (the broker's in-memory log drops what a
//! reader leaves behind too long), a second parses, stamps and queues them for the writer. Bad payloads are counted
//! and logged at a bounded rate; they never stop or slow the messages around them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttd::Notification;
use rumqttd::local::{LinkError, LinkRx};

use crate::clock::{self, Stamp};
use crate::events::Bus;
use crate::logsafe::Clean;
use crate::metrics;
use crate::payload::{self, Limits};
use crate::store::Counters;
use crate::store::writer::{Incoming, WriterHandle};
use crate::watchdog::Heartbeat;

/// After a stop request, messages are still drained until the link is quiet this long...
const QUIET: Duration = Duration::from_millis(300);
/// ...or at most this long, so a publisher that never pauses cannot delay shutdown.
const DRAIN_MAX: Duration = Duration::from_secs(3);

/// What the ingest thread needs from the rest of the appliance.
pub struct IngestDeps {
    /// The configured topic filters, to tell which broker log a message came from.
    pub filters: Vec<String>,
    pub writer: WriterHandle,
    /// Where accepted readings are announced (live feed, alarms).
    pub bus: Bus,
    pub limits: Limits,
    pub store: crate::store::Store,
    pub counters: Arc<Counters>,
    /// Raised while the queue is over its high-water mark: the broker then stops reading
    /// from publishers (TCP back-pressure) instead of acknowledging what it cannot keep.
    pub intake_full: Arc<AtomicBool>,
}

/// Handle to the running ingest thread.
pub struct Ingest {
    stop: Arc<AtomicBool>,
    join: JoinHandle<()>,
    /// Beaten at every turn of the broker-link loop (at least every 100 ms), for the
    /// watchdog.
    pub heartbeat: Heartbeat,
}

impl Ingest {
    /// Starts reading `link`.
    pub fn spawn(link: LinkRx, deps: IngestDeps) -> std::io::Result<Ingest> {
        let stop = Arc::new(AtomicBool::new(false));
        let heartbeat = Heartbeat::new();
        let (s, h) = (stop.clone(), heartbeat.clone());
        let join = std::thread::Builder::new()
            .name("mqtt-ingest".into())
            .spawn(move || run(link, deps, s, h))?;
        Ok(Ingest {
            stop,
            join,
            heartbeat,
        })
    }

    /// Stops intake after draining what the broker already acknowledged; returns once the
    /// thread has handed everything to the writer.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.join.join();
    }
}

/// Logs rejected payloads at most once per interval, with the number suppressed.
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    fn rejected(&mut self, topic: &str, why: &payload::Rejection) {
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            tracing::warn!(
                topic,
                reason = %Clean(&why.to_string()),
                suppressed = self.suppressed,
                "payload rejected"
            );
            self.last = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
    }
}

/// A message taken off the broker link, waiting to be parsed.
struct Raw {
    received: Stamp,
    topic: bytes::Bytes,
    payload: bytes::Bytes,
}

/// Most bytes held between the link and the parser (payload, topic and bookkeeping). The link
/// thread only moves messages here, so a burst waits in this queue rather than in the
/// broker's in-memory log (which drops what a slow reader has not read); beyond this the link
/// waits and the broker's log takes over. Sized for a 512 MB Raspberry Pi.
const MAX_QUEUED_BYTES: usize = 16 << 20;

/// Above this many queued bytes the broker stops reading from publishers; below
/// [`RESUME_BYTES`] it reads again. The gap absorbs what clients already sent.
const PAUSE_BYTES: usize = MAX_QUEUED_BYTES / 2;
const RESUME_BYTES: usize = MAX_QUEUED_BYTES / 4;

/// Bookkeeping bytes counted per queued message besides its payload and topic.
const PER_MESSAGE_OVERHEAD: usize = 96;

fn run(link: LinkRx, deps: IngestDeps, stop: Arc<AtomicBool>, heartbeat: Heartbeat) {
    let filters = deps.filters.clone();
    let counters = deps.counters.clone();
    let intake_full = deps.intake_full.clone();
    let (tx, rx) = std::sync::mpsc::channel::<Raw>();
    let queued = Arc::new(AtomicUsize::new(0));
    let parser = {
        let queued = queued.clone();
        std::thread::Builder::new()
            .name("mqtt-parse".into())
            .spawn(move || parse_loop(rx, deps, queued))
    };
    let parser = match parser {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the parser thread");
            return;
        }
    };
    let gaps = GapTracker::new(filters, counters);
    link_loop(link, tx, &queued, &stop, &heartbeat, gaps, &intake_full);
    intake_full.store(false, Ordering::SeqCst);
    let _ = parser.join();
}

/// Moves every forwarded message off the broker link as fast as it arrives.
fn link_loop(
    mut link: LinkRx,
    tx: std::sync::mpsc::Sender<Raw>,
    queued: &AtomicUsize,
    stop: &AtomicBool,
    heartbeat: &Heartbeat,
    mut gaps: GapTracker,
    intake_full: &AtomicBool,
) {
    let mut stopping_since: Option<Instant> = None;
    let mut last_message = Instant::now();
    loop {
        heartbeat.beat();
        let depth = queued.load(Ordering::Relaxed);
        if depth > PAUSE_BYTES {
            intake_full.store(true, Ordering::Relaxed);
        } else if depth < RESUME_BYTES {
            intake_full.store(false, Ordering::Relaxed);
        }
        if let Some(since) = stopping_since {
            if last_message.elapsed() >= QUIET || since.elapsed() >= DRAIN_MAX {
                break;
            }
        } else if stop.load(Ordering::SeqCst) {
            stopping_since = Some(Instant::now());
        }
        let notification = match link.recv_deadline(Instant::now() + Duration::from_millis(100)) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(LinkError::RecvTimeout(flume::RecvTimeoutError::Timeout)) => continue,
            Err(e) => {
                tracing::error!(error = %e, "broker link closed; ingest stops");
                break;
            }
        };
        match notification {
            Notification::Forward(f) => {
                last_message = Instant::now();
                metrics::mqtt_received();
                gaps.observe(&f.publish.topic, f.cursor);
                let size = f.publish.payload.len() + f.publish.topic.len() + PER_MESSAGE_OVERHEAD;
                // Waiting for the parser (itself waiting for the writer) is deliberate
                // back-pressure, not a hang: keep beating.
                while queued.load(Ordering::Relaxed) > MAX_QUEUED_BYTES {
                    intake_full.store(true, Ordering::Relaxed);
                    heartbeat.beat();
                    std::thread::sleep(Duration::from_millis(1));
                }
                queued.fetch_add(size, Ordering::Relaxed);
                let raw = Raw {
                    received: clock::stamp(),
                    topic: f.publish.topic,
                    payload: f.publish.payload,
                };
                if tx.send(raw).is_err() {
                    tracing::error!("parser stopped; ingest stops");
                    break;
                }
            }
            // The router paused this link because its buffer filled; ask to be rescheduled.
            Notification::Unschedule => {
                if let Err(e) = link.ready() {
                    tracing::error!(error = %e, "broker link closed; ingest stops");
                    break;
                }
            }
            _ => {}
        }
    }
}

/// Parses, stamps, broadcasts and queues each message for the writer.
fn parse_loop(rx: std::sync::mpsc::Receiver<Raw>, deps: IngestDeps, queued: Arc<AtomicUsize>) {
    let mut log = RateLimitedLog {
        last: None,
        suppressed: 0,
    };
    for raw in rx {
        let size = raw.payload.len() + raw.topic.len() + PER_MESSAGE_OVERHEAD;
        let depth = queued.fetch_sub(size, Ordering::Relaxed) - size;
        // Resume the publishers as soon as the queue has room, not at the link's next turn.
        if depth < RESUME_BYTES && deps.intake_full.load(Ordering::Relaxed) {
            deps.intake_full.store(false, Ordering::Relaxed);
        }
        let topic = String::from_utf8_lossy(&raw.topic);
        match payload::parse(&raw.payload, &topic, deps.limits) {
            Ok(mut reading) => {
                // The key is always the appliance's own receive time: a sensor's `ts` may be
                // anything (a sensor clock stuck in 2099 once put its gas on a day nobody
                // looks at); it is kept in the reading and orders meter samples only. The
                // frame is held until the reading is queued, so a clock jump re-dates it or
                // finds it already in the new clock.
                let frame = clock::frame_guard();
                let (ts_us, mark) = frame.resolve(raw.received);
                reading.clock = mark;
                metrics::mqtt_accepted();
                let stage = deps.store.active_stage_id();
                deps.bus.reading(stage, ts_us, reading.clone());
                if deps
                    .writer
                    .submit(Incoming {
                        stage,
                        ts_us,
                        reading,
                    })
                    .is_err()
                {
                    tracing::error!("store writer gone; ingest stops");
                    break;
                }
                drop(frame);
            }
            Err(why) => {
                deps.counters.rejected.fetch_add(1, Ordering::Relaxed);
                metrics::mqtt_rejected();
                log.rejected(&topic, &why);
            }
        }
    }
}

/// Detects messages the broker dropped from its in-memory log before this link read them
/// (its offsets then jump), so such a loss is counted and logged instead of passing unseen.
struct GapTracker {
    filters: Vec<String>,
    last: Vec<Option<u64>>,
    counters: Arc<Counters>,
    logged: Option<Instant>,
}

impl GapTracker {
    fn new(filters: Vec<String>, counters: Arc<Counters>) -> Self {
        let last = vec![None; filters.len()];
        Self {
            filters,
            last,
            counters,
            logged: None,
        }
    }

    fn observe(&mut self, topic: &[u8], cursor: Option<(u64, u64)>) {
        let (Some((_, offset)), Ok(topic)) = (cursor, std::str::from_utf8(topic)) else {
            return;
        };
        let Some(i) = self
            .filters
            .iter()
            .position(|f| crate::topic::matches(f, topic))
        else {
            return;
        };
        if let Some(prev) = self.last[i]
            && offset > prev + 1
        {
            let lost = offset - prev - 1;
            self.counters.dropped.fetch_add(lost, Ordering::Relaxed);
            metrics::mqtt_dropped(lost);
            if self
                .logged
                .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
            {
                tracing::error!(
                    lost,
                    filter = %self.filters[i],
                    "the broker dropped messages because ingest fell behind (publishers faster than the store)"
                );
                self.logged = Some(Instant::now());
            }
        }
        self.last[i] = Some(self.last[i].map_or(offset, |p| p.max(offset)));
    }
}
