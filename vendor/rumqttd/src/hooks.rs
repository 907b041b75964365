//! Decisions an embedding application takes for the broker: who may connect, what a connection
//! may publish and subscribe to, and when the broker must stop reading from its clients.
//!
//! Added for biogestor (see PATCHES.md): upstream 0.20 has only a yes/no authentication
//! callback, closes refused connections without a CONNACK, has no topic permissions and cannot
//! slow publishers down.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// Why a CONNECT is refused; each maps to its MQTT 3.1.1 CONNACK return code (§3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Code 1: the protocol name or level is not MQTT 3.1.1.
    ProtocolVersion,
    /// Code 2: the client identifier is not allowed.
    IdentifierRejected,
    /// Code 3: the server cannot take the connection now (full, throttled, stopping).
    ServerUnavailable,
    /// Code 4: unknown user name or wrong password.
    BadCredentials,
    /// Code 5: the client is not authorized to connect (e.g. no user name where one is needed).
    NotAuthorized,
}

/// What a client presented in its CONNECT packet.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub peer: SocketAddr,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub clean_session: bool,
    pub keep_alive: u16,
}

/// An admitted connection. The broker drops it when the connection ends, so an implementation
/// can release per-connection accounting in `Drop`.
pub trait Session: Send + Sync {
    /// Whether this client may publish `payload` to `topic`. A refused publish is still
    /// acknowledged (so the client does not resend it forever) but neither retained nor
    /// forwarded.
    fn check_publish(&self, topic: &[u8], payload: &[u8]) -> bool;
    /// Whether this client may subscribe to `filter`; a refused filter gets the SUBACK failure
    /// code 0x80 and the connection stays open.
    fn may_subscribe(&self, filter: &str) -> bool;
    /// A publish larger than the listener's packet limit arrived; it was acknowledged and
    /// discarded without being read into memory.
    fn oversize(&self, topic: &str, size: usize);
}

/// The future returned by [`Hooks::admit`].
pub type Admission = Pin<Box<dyn Future<Output = Result<Box<dyn Session>, Refusal>> + Send>>;

/// The embedding application's side of the broker.
pub trait Hooks: Send + Sync + 'static {
    /// Decides on a CONNECT that is well-formed MQTT 3.1.1. Runs on the listener's runtime:
    /// slow work (password hashing) belongs on a blocking thread.
    fn admit(&self, request: ConnectRequest) -> Admission;
    /// A CONNECT refused before `admit` could see it (protocol version, client identifier).
    fn refused(&self, peer: SocketAddr, client_id: Option<&str>, refusal: Refusal);
    /// True while the broker must not read more packets from its clients (the application's
    /// intake is full, or it is stopping). Acknowledgements already due are still written.
    fn pause_reads(&self) -> bool;
}

/// Topic given to a publish that must be acknowledged but dropped. A NUL character may not
/// appear in an MQTT topic name (§1.5.3), so no real publish can carry it.
pub(crate) const DISCARDED_TOPIC: &[u8] = b"\0";

/// Whether a publish was marked to be acknowledged and dropped.
pub(crate) fn is_discarded(topic: &[u8]) -> bool {
    topic.first() == Some(&0)
}

/// Marker prefix of a refused subscription filter (NUL is not allowed in filters either).
pub(crate) const REFUSED_FILTER_PREFIX: char = '\0';
