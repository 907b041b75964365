//! The persisted part of the sensor registry ([`crate::sensors`]): one row per MQTT client id,
//! so a periodic save rewrites only the sensors that changed, never the whole registry.

use std::net::SocketAddr;

use redb::{Durability, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::codec;
use super::tables::SENSORS;
use super::{Store, StoreError};

/// What is remembered about one MQTT client across restarts. Whether it is connected is not
/// stored: a restart drops every connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SensorRecord {
    /// MQTT user name of its last connection, if it sent one.
    pub user: Option<String>,
    /// Peer address of its last connection (or of its last refused attempt).
    pub addr: Option<SocketAddr>,
    /// Last completed CONNECT, µs since the epoch.
    pub last_connect_us: Option<i64>,
    /// Last end of a connection, µs since the epoch.
    pub last_disconnect_us: Option<i64>,
    /// Newest accepted message, µs since the epoch.
    pub last_message_us: Option<i64>,
    /// Messages accepted from it.
    pub accepted: u64,
    /// Refused connections and dropped messages attributed to it.
    pub rejected: u64,
    /// Short snake_case code of the last refusal (`bad_credentials`, `oversize`, ...).
    pub last_rejection: Option<String>,
    /// When the last refusal happened, µs since the epoch.
    pub last_rejection_us: Option<i64>,
    /// Field names seen in its accepted messages, sorted and deduplicated (bounded).
    pub fields: Vec<String>,
}

/// The rows of the sensors table as read at start-up.
#[derive(Debug, Default)]
pub struct SensorRows {
    /// Decodable rows, by client id (in key order).
    pub records: Vec<(String, SensorRecord)>,
    /// Client ids whose row could not be decoded; the registry drops them at its next save
    /// instead of refusing to start over a diagnostic record.
    pub undecodable: Vec<String>,
}

/// Decodes one row of the sensors table (also used to check snapshots before a restore).
pub fn decode_sensor(bytes: &[u8]) -> Result<SensorRecord, StoreError> {
    codec::decode("sensors", bytes)
}

impl Store {
    /// Every stored sensor record.
    pub fn sensors(&self) -> Result<SensorRows, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(SENSORS)?;
        let mut rows = SensorRows::default();
        for row in t.iter()? {
            let (k, v) = row?;
            let id = k.value().to_string();
            match decode_sensor(v.value()) {
                Ok(r) => rows.records.push((id, r)),
                Err(e) => {
                    tracing::warn!(client_id = %id, error = %e, "sensor record dropped");
                    rows.undecodable.push(id);
                }
            }
        }
        Ok(rows)
    }

    /// Writes changed sensor records and removes forgotten ones in one transaction. With
    /// `durable` false the commit is not synced: it reaches the disk with the writer's next
    /// (durable) commit of readings, so saving the registry adds no sync of its own to the SD
    /// card; the save at shutdown is durable.
    pub fn put_sensors(
        &self,
        changed: &[(String, SensorRecord)],
        removed: &[String],
        durable: bool,
    ) -> Result<(), StoreError> {
        let mut encoded = Vec::with_capacity(changed.len());
        for (id, r) in changed {
            encoded.push((id.as_str(), codec::encode("sensors", r)?));
        }
        let mut txn = self.db()?.begin_write()?;
        if !durable {
            txn.set_durability(Durability::None)
                .map_err(|e| StoreError::Db(e.into()))?;
        }
        {
            let mut t = txn.open_table(SENSORS)?;
            for id in removed {
                t.remove(id.as_str())?;
            }
            for (id, bytes) in &encoded {
                t.insert(*id, bytes.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}
