//! The rule evaluation on hand-made traces.

use super::*;

const S: i64 = 1_000_000;

fn engine() -> Engine {
    Engine::new(RuleSet::default(), Vec::new(), 1, 0, Some(1.0))
}

#[test]
fn one_noisy_reading_neither_raises_nor_clears() {
    let mut e = engine();
    assert!(e.observe(RuleId::TemperaturaBaja, "", 5.0, 0).is_empty());
    assert!(
        e.observe(RuleId::TemperaturaBaja, "", 20.0, 700 * S)
            .is_empty()
    );
    assert!(
        e.observe(RuleId::TemperaturaBaja, "", 5.0, 800 * S)
            .is_empty()
    );
    // Out for ten minutes: raised once.
    let raised = e.observe(RuleId::TemperaturaBaja, "", 5.0, 1400 * S);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].0, Change::Raised);
    assert!(
        e.observe(RuleId::TemperaturaBaja, "", 5.0, 1500 * S)
            .is_empty()
    );
    // Inside but within the hysteresis: stays.
    assert!(
        e.observe(RuleId::TemperaturaBaja, "", 15.5, 1600 * S)
            .is_empty()
    );
    assert!(
        e.observe(RuleId::TemperaturaBaja, "", 15.5, 2400 * S)
            .is_empty()
    );
    assert!(
        e.observe(RuleId::TemperaturaBaja, "", 17.0, 2500 * S)
            .is_empty()
    );
    let cleared = e.observe(RuleId::TemperaturaBaja, "", 17.0, 3100 * S);
    assert_eq!(cleared[0].0, Change::Cleared);
    assert!(e.open.is_empty());
}

#[test]
fn five_degrees_out_raises_within_fifteen_minutes() {
    let mut e = engine();
    let mut raised_at = None;
    for minute in 0..=15 {
        if !e
            .observe(RuleId::TemperaturaBaja, "", 10.0, minute * 60 * S)
            .is_empty()
        {
            raised_at = Some(minute);
            break;
        }
    }
    assert!(raised_at.is_some_and(|m| m <= 15), "{raised_at:?}");
}

#[test]
fn a_daily_swing_over_three_degrees_raises_once_and_clears_when_it_leaves_the_window() {
    let mut e = engine();
    let hour = 3600 * S;
    assert!(
        e.observe(RuleId::OscilacionTemperatura, "", 0.0, 0)
            .is_empty()
    );
    let mut raised = 0;
    let mut cleared = 0;
    // A day that swings 25–29.5 °C, then days steady at 27 °C.
    for h in 0..72 {
        let t = if h < 24 {
            25.0 + 4.5 * ((h % 12) as f64 / 11.0)
        } else {
            27.0
        };
        for (c, _) in e.reading(&reading_with_temperature(t), h * hour) {
            match c {
                Change::Raised => raised += 1,
                Change::Cleared => cleared += 1,
                Change::Acknowledged => {}
            }
        }
    }
    assert_eq!((raised, cleared), (1, 1));
}

fn reading_with_temperature(t: f64) -> crate::reading::Reading {
    let mut values = [None; crate::reading::CHANNELS];
    values[crate::reading::Channel::Temperatura as usize] = Some(t);
    crate::reading::Reading {
        values,
        extra: Vec::new(),
        sensor_ts_ms: None,
        source: "t/d".into(),
        clock: crate::reading::TimeMark::Synced,
    }
}

#[test]
fn a_silent_topic_raises_and_a_reading_clears() {
    let mut e = engine();
    let r = crate::reading::Reading {
        values: [None; crate::reading::CHANNELS],
        extra: Vec::new(),
        sensor_ts_ms: None,
        source: "t/a".into(),
        clock: crate::reading::TimeMark::Synced,
    };
    assert!(e.reading(&r, 0).is_empty());
    assert!(
        e.tick(29 * 60 * S)
            .iter()
            .all(|(_, a)| a.rule != "sensor_silencioso")
    );
    let raised = e.tick(31 * 60 * S);
    assert!(
        raised
            .iter()
            .any(|(c, a)| *c == Change::Raised && a.subject == "t/a")
    );
    let cleared = e.reading(&r, 32 * 60 * S);
    assert!(
        cleared
            .iter()
            .any(|(c, a)| *c == Change::Cleared && a.subject == "t/a")
    );
}
