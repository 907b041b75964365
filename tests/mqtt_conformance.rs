//! MQTT 3.1.1 conformance of the embedded broker, after the Eclipse Paho interoperability
//! scenarios: publish/subscribe at every QoS, retained messages, wills, clean and persistent
//! sessions, redelivery, takeover, client id rules, `$` topics, keep-alive 0, the CONNACK
//! return code of every refusal, and the sequences that used to stop the broker for good.
//!
//! Each test starts its own appliance with the target MQTT configuration (an observer that
//! may publish and subscribe everywhere, a sensor with an argon2id password hash, five
//! filler sensors) and runs one scenario of `common::mqtt`; `mqtt_compare` runs the same
//! scenarios against Mosquitto 2.

mod common;

use std::time::Duration;

use common::Appliance;
use common::mqtt::{self, Limits};

/// The last `n` lines of the service log, for failure messages.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

async fn check(name: &str) {
    let s = mqtt::scenario(name);
    let limits = Limits::default();
    let app = Appliance::start(mqtt::appliance_options(limits));
    let target = mqtt::appliance_target(&app, limits);
    let o = mqtt::bounded(Duration::from_secs(50), (s.run)(target)).await;
    assert!(
        o.pass,
        "{name}: expected {:?}, got {:?}\n--- service log (last lines) ---\n{}",
        s.target,
        o.text,
        tail(&app.log(), 30)
    );
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                check(stringify!($name)).await;
            }
        )*
    };
}

conformance! {
    basic_pubsub,
    delivery_qos_minimum,
    retained_messages,
    will_on_abrupt_close,
    no_will_after_disconnect,
    persistent_session_queue,
    clean_session_discards,
    redelivery_on_reconnect,
    takeover_same_id,
    unsubscribe_stops_delivery,
    dollar_topics_not_matched,
    keepalive_zero,
    special_client_ids,
    zero_length_id_clean,
    zero_length_id_persistent,
    refuse_mqtt5,
    refuse_mqtt31,
    refuse_wrong_password,
    refuse_unknown_user,
    refuse_no_username,
    hashed_password_login,
    crash_double_connect,
    crash_full_then_retry,
    crash_reset_after_connect,
}
