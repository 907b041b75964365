//! Publish → WebSocket latency probe for `scripts/bench.sh`: publishes readings carrying their
//! send time over real MQTT and measures when each arrives on the live WebSocket feed.
//!
//! Usage: `bench_latency <http_port> <mqtt_port> <messages> <per_second>`; prints
//! `latency_ms p50=.. p99=.. max=.. received=N/M`.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rumqttc::{AsyncClient, MqttOptions, QoS};

fn now_us() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as f64)
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        return Err("usage: bench_latency <http_port> <mqtt_port> <messages> <per_second>".into());
    }
    let http: u16 = args[1].parse()?;
    let mqtt: u16 = args[2].parse()?;
    let n: usize = args[3].parse()?;
    let rate: f64 = args[4].parse()?;

    let token = std::env::var("BENCH_TOKEN").unwrap_or_default();
    let url = format!("ws://127.0.0.1:{http}/ws/mqtt/?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async(url).await?;
    let (_, mut read) = ws.split();
    let collector = tokio::spawn(async move {
        let mut lat = Vec::new();
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_secs(5), read.next()).await
        {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                if let Some(sent) = v["t_send_us"].as_f64() {
                    lat.push((now_us() - sent) / 1000.0);
                    if lat.len() == n {
                        break;
                    }
                }
            }
        }
        lat
    });

    let mut opts = MqttOptions::new("bench-latency", "127.0.0.1", mqtt);
    opts.set_keep_alive(Duration::from_secs(30));
    if let (Ok(u), Ok(p)) = (std::env::var("MQTT_USER"), std::env::var("MQTT_PASS")) {
        opts.set_credentials(u, p);
    }
    let (client, mut el) = AsyncClient::new(opts, 1000);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    for i in 0..n {
        let payload = format!(
            "{{\"presion\":1006.0,\"temperatura\":35.0,\"t_send_us\":{}}}",
            now_us()
        );
        client
            .publish("Prueba", QoS::AtLeastOnce, false, payload)
            .await?;
        let due = start + Duration::from_secs_f64((i + 1) as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
    }
    let mut lat = collector.await?;
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "latency_ms p50={:.2} p99={:.2} max={:.2} received={}/{}",
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.len(),
        n
    );
    Ok(())
}
