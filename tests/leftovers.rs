//! What an interrupted backup leaves behind: staging folders of a `biogestor backup` killed
//! mid-way, and download snapshots of a service that died while writing one, are removed by
//! the next backup and at the service's start, never while their process still runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Appliance, Options, Publisher, bin_command, run_bin};
use serde_json::json;

/// A pid above the kernel's maximum (2^22): never a running process.
const DEAD_PID: u32 = 4_194_305;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A staging-like folder holding one file, as an interrupted run leaves it.
fn leftover(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).expect("mkdir");
    std::fs::write(path.join("biogestor.redb"), vec![0u8; 4096]).expect("write");
    path
}

/// Starts `biogestor backup --out out` (service stopped) and SIGKILLs it once its staging file
/// exists, as a power cut would. Returns the staging folder it left, or None when the backup
/// finished before it could be killed.
fn kill_backup_midway(cfg: &Path, out: &Path) -> Option<PathBuf> {
    let mut child = bin_command(None)
        .args(["backup", "--out"])
        .arg(out)
        .arg("--config")
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn backup");
    let staging = out
        .parent()
        .expect("parent")
        .join(format!(".biogestor-backup-{}", child.id()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !staging.join("biogestor.redb").exists() && Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    if status.success() || out.exists() {
        return None;
    }
    Some(staging)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_interrupted_backups_go_at_the_next_backup_and_at_start() {
    let mut app = Appliance::start(Options::default());
    // Enough readings that a backup takes a moment to write.
    let n = 20_000;
    let mut p = Publisher::sensor(app.mqtt_port, "leftovers").await;
    for i in 0..n {
        p.publish(
            "Prueba",
            json!({"presion": 1000.0 + (i % 7) as f64, "temperatura": 35.5, "humedad": 60.1,
                   "calidad": 61.0, "gas_total_m3": i as f64 * 0.01})
            .to_string(),
        )
        .await;
    }
    assert_eq!(p.wait_acked(n, Duration::from_secs(60)).await, n);
    assert_eq!(app.wait_readings(n, Duration::from_secs(60)).await, n);
    drop(p);
    app.signal("TERM", Duration::from_secs(20));

    let out_dir = app.dir.path().join("copias");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let out = out_dir.join("copia.redb");
    let cfg = app.config_path.clone();

    // A backup killed mid-way leaves its staging folder behind (the reported failure).
    let killed = (0..5)
        .find_map(|_| kill_backup_midway(&cfg, &out))
        .expect("no backup could be killed mid-way");
    assert!(
        killed.is_dir(),
        "{killed:?} not left: {:?}",
        names(&out_dir)
    );
    // And some that other runs left: a check folder of a dead process, one whose pid now
    // belongs to a process that is not biogestor (pid 1).
    let dead_check = leftover(&out_dir, &format!(".biogestor-check-{DEAD_PID}"));
    let not_ours = leftover(&out_dir, ".biogestor-backup-1");
    let unrelated = out_dir.join("notas.txt");
    std::fs::write(&unrelated, "no tocar").expect("write");

    // The service runs again: a folder named after its (live, biogestor) pid is kept.
    app.restart();
    let live = leftover(&out_dir, &format!(".biogestor-backup-{}", app.pid()));

    let url = format!("http://127.0.0.1:{}", app.http_port);
    let (out_s, token, cwd) = (
        out.to_str().expect("path").to_string(),
        app.token.clone(),
        app.dir.path().to_path_buf(),
    );
    let (status, text) = tokio::task::spawn_blocking(move || {
        run_bin(
            &["backup", "--url", &url, "--out", &out_s],
            &[("BIOGESTOR_TOKEN", &token)],
            &cwd,
        )
    })
    .await
    .expect("backup task");
    assert!(status.success(), "{text}");
    assert!(text.contains(&format!("{n} readings")), "{text}");
    for gone in [&killed, &dead_check, &not_ours] {
        assert!(
            !gone.exists(),
            "{gone:?} still there: {:?}",
            names(&out_dir)
        );
        assert!(
            text.contains(&gone.display().to_string()),
            "removal not reported: {text}"
        );
    }
    assert!(live.is_dir(), "a live process's staging was removed");
    assert!(unrelated.exists() && out.exists());
    assert_eq!(
        names(&out_dir),
        vec![
            "copia.redb".to_string(),
            format!(".biogestor-backup-{}", app.pid()),
            "notas.txt".to_string()
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );

    // A service that died while writing a download snapshot, and a restore killed mid-way,
    // leave files in the data folder: the next start removes them.
    let service_pid = app.pid();
    app.signal("KILL", Duration::from_secs(10));
    let data = app.data_dir();
    let backups = data.join("backups");
    std::fs::create_dir_all(&backups).expect("mkdir");
    let snapshot = backups.join(format!(".snapshot-{service_pid}-1764500000000.redb"));
    std::fs::write(&snapshot, vec![0u8; 4096]).expect("write");
    let dead_snapshot = backups.join(format!(".snapshot-{DEAD_PID}-1764500000001.redb"));
    std::fs::write(&dead_snapshot, vec![0u8; 4096]).expect("write");
    let restore = leftover(&data, &format!(".biogestor-restore-{DEAD_PID}"));
    let kept = backups.join("biogestor-sitio-20261130-120000.redb");
    std::fs::write(&kept, b"descarga guardada").expect("write");
    app.restart();
    assert!(!snapshot.exists() && !dead_snapshot.exists() && !restore.exists());
    assert!(kept.exists(), "a file that is no leftover was removed");
    assert_eq!(app.stats().await["lecturas_total"], json!(n));
}
