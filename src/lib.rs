//! Biogestor: the software of a biogas digester appliance. One binary embeds the MQTT broker
//! the sensors publish to, stores readings durably in redb, and serves the live feed, the API
//! and the web interface to browsers on the farm's network.

// `deny` rather than `forbid`: `memory` (the allocator call) and `clock::sys` (the kernel's
// clock calls) alone allow the calls they wrap.
#![deny(unsafe_code)]

pub mod alarms;
pub mod auth;
pub mod backup;
pub mod bridge;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod compact;
pub mod config;
pub mod events;
pub mod fsmode;
pub mod http;
pub mod import;
pub mod ingest;
pub mod live;
pub mod logsafe;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod normal_volume;
pub mod payload;
pub mod production;
pub mod reading;
pub mod reindex;
pub mod reports;
pub mod rules;
pub mod sensors;
pub mod serve;
pub mod simulate;
pub mod sitetime;
pub mod store;
pub mod tls;
pub mod topic;
pub mod useradmin;
pub mod watchdog;
