//! Sensor routes. None yet: the registry of MQTT clients is only reported through
//! `/api/dashboard/stats/` for now.

use super::routes::Route;

/// The sensor routes (none yet).
pub fn routes() -> Vec<Route> {
    Vec::new()
}
