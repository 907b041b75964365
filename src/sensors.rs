//! TEMP stub
use crate::store::{Store, StoreError};
use std::net::SocketAddr;
#[derive(Clone, Default)]
pub struct SensorRegistry;
pub struct SensorStatus;
pub struct Persister;
impl Persister {
    pub fn spawn(_r: SensorRegistry, _s: Store) -> Result<Persister, StoreError> {
        Ok(Persister)
    }
    pub fn stop(self) {}
}
impl SensorRegistry {
    pub fn load(_store: &Store) -> Result<SensorRegistry, StoreError> {
        Ok(SensorRegistry)
    }
    pub fn connected(
        &self,
        _client_id: &str,
        _user: Option<&str>,
        _addr: SocketAddr,
        _now_us: i64,
    ) {
    }
    pub fn disconnected(&self, _client_id: &str, _now_us: i64) {}
    pub fn accepted(&self, _client_id: &str, _count: u64, _fields: &[String], _now_us: i64) {}
    pub fn rejected(
        &self,
        _client_id: &str,
        _user: Option<&str>,
        _addr: Option<SocketAddr>,
        _reason: &str,
        _now_us: i64,
    ) {
    }
}
