//! A central MQTT broker for the bridge tests: a Mosquitto on a free loopback port (with
//! persistence, an optional password and a TLS listener signed by a test CA) and a
//! persistent-session subscriber collecting what the appliance forwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

pub const SITE: &str = "finca-1";
pub const TOPIC: &str = "biogestor/finca-1/lecturas";

pub fn mosquitto_bin() -> PathBuf {
    let sbin = Path::new("/usr/sbin/mosquitto");
    if sbin.exists() {
        sbin.to_path_buf()
    } else {
        PathBuf::from("mosquitto")
    }
}

/// A Mosquitto on a free loopback port, with persistence (a restart keeps the subscriber's
/// session) and an optional password and TLS listener.
pub struct Central {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Central {
    pub fn start(password: Option<(&str, &str)>, tls: bool) -> Central {
        let dir = tempfile::tempdir().expect("tmp");
        let port = super::free_port();
        // Started as root, Mosquitto would switch to its own user and could not read the
        // test's files: it stays the user running the test.
        let me = Command::new("id").arg("-un").output().expect("id");
        let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
        let mut conf = format!(
            "user {me}\nlistener {port} 127.0.0.1\npersistence true\n\
             persistence_location {}/\nlog_dest file {}/mosquitto.log\nlog_type all\n",
            dir.path().display(),
            dir.path().display()
        );
        match password {
            Some((user, pass)) => {
                let file = dir.path().join("passwd");
                let ok = Command::new("mosquitto_passwd")
                    .args(["-c", "-b"])
                    .arg(&file)
                    .args([user, pass])
                    .status()
                    .expect("mosquitto_passwd");
                assert!(ok.success());
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
            None => conf.push_str("allow_anonymous true\n"),
        }
        if tls {
            make_ca(dir.path());
            let d = dir.path().display();
            conf.push_str(&format!(
                "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n"
            ));
        }
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("conf");
        let mut c = Central {
            dir,
            port,
            child: None,
        };
        c.resume();
        c
    }

    pub fn resume(&mut self) {
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it cleanly (SIGTERM, so the persistent sessions are saved).
    pub fn pause(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A test CA and a server certificate for 127.0.0.1 signed by it.
pub fn make_ca(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// What a subscriber on the central broker received: every reading object, with arrival time.
#[derive(Clone, Default)]
pub struct Received(
    pub Arc<Mutex<Vec<(Instant, Value)>>>,
    Arc<Mutex<Vec<(String, Value)>>>,
);

impl Received {
    pub fn readings(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    /// The last message received on `.../<sub>` (other than readings).
    pub fn last(&self, sub: &str) -> Option<Value> {
        let topic = format!("biogestor/{SITE}/{sub}");
        let g = self.1.lock().unwrap();
        g.iter()
            .rev()
            .find(|(t, _)| *t == topic)
            .map(|(_, v)| v.clone())
    }
}

/// A persistent-session subscriber on `TOPIC` that reconnects by itself.
pub async fn subscribe(port: u16, creds: Option<(&str, &str)>, ca: Option<PathBuf>) -> Received {
    let mut opts = MqttOptions::new("central-consumer", "127.0.0.1", port);
    opts.set_clean_session(false)
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(4 << 20, 4 << 20);
    if let Some((u, p)) = creds {
        opts.set_credentials(u, p);
    }
    if let Some(ca) = ca {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let ca = std::fs::read(ca).expect("ca");
        opts.set_transport(rumqttc::Transport::tls(ca, None, None));
    }
    let (client, mut el) = AsyncClient::new(opts, 100);
    client
        .subscribe(format!("biogestor/{SITE}/#"), QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let got = Received::default();
    let sink = got.clone();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut ready = Some(ready_tx);
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(t) = ready.take() {
                        let _ = t.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v: Value = serde_json::from_slice(&p.payload).expect("JSON batch");
                    assert_eq!(v["v"], 1);
                    assert_eq!(v["site"], SITE);
                    if p.topic != TOPIC {
                        sink.1.lock().unwrap().push((p.topic.clone(), v));
                        continue;
                    }
                    let now = Instant::now();
                    let mut g = sink.0.lock().unwrap();
                    for r in v["readings"].as_array().expect("readings array") {
                        g.push((now, r.clone()));
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("subscribed")
        .expect("subscribed");
    got
}
