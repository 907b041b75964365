//! Input and file hygiene on the real binary: client-supplied text cannot forge log lines,
//! text fields have limits answered with 400, files in the data folder are private whatever
//! the umask, and `restore` looks at a file's header and size before copying anything.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::accounts::{call, form, login, post};
use common::{Appliance, Options, run_bin, run_bin_with_umask};
use serde_json::{Value, json};

/// The messages of `field` in a form error, joined.
fn field_messages(body: &Value, field: &str) -> String {
    body[field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_text_cannot_forge_log_lines() {
    let app = Appliance::start(Options::default());
    let forged = "intruso\r\n2026-01-01 00:00:00.000 login ok: admin\u{1b}[2K\u{7}";
    let (status, body) = login(&app, forged, "Clave-Equivocada-1").await;
    assert_eq!(status, 401, "{body}");
    let log = app.log();
    let forged_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("2026-01-01 00:00:00"))
        .collect();
    eprintln!(
        "log after a login as {forged:?}: {} forged line(s), {} ESC byte(s), {} CR byte(s)",
        forged_lines.len(),
        log.matches('\u{1b}').count(),
        log.matches('\r').count()
    );
    assert!(forged_lines.is_empty(), "forged log line: {forged_lines:?}");
    assert!(!log.contains('\u{1b}') && !log.contains('\r') && !log.contains('\u{7}'));
    let line = log
        .lines()
        .find(|l| l.contains("login failed"))
        .unwrap_or_else(|| panic!("no login failure logged:\n{log}"));
    assert!(
        line.contains("intruso\\r\\n2026-01-01"),
        "escaped, still readable: {line}"
    );
}

/// An appliance with an active stage, for the report limits.
async fn with_stage() -> Appliance {
    let app = Appliance::start(Options::default());
    let (status, body) = call(
        &app,
        "POST",
        "/api/dashboard/fillings/",
        Some(&app.token),
        Some(json!({"material_type": "bovino", "material_amount_kg": 500,
                    "material_humidity_pct": 85, "temperature_c": 30})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_text_fields_are_refused_with_400() {
    let app = with_stage().await;
    let token = Some(app.token.clone());
    let report = |field: &str, len: usize| {
        let mut body = json!({ "report_type": "normal" });
        body[field] = json!("x".repeat(len));
        body
    };
    let (status, body) = call(
        &app,
        "POST",
        "/api/dashboard/report/create/",
        token.as_deref(),
        Some(report("observations", 32_768)),
    )
    .await;
    eprintln!("report with 32,768 characters of observations: {status}");
    assert_eq!(status, 400, "{body}");
    assert!(
        field_messages(&body, "observations").contains("caracteres"),
        "{body}"
    );
    let (status, body) = call(
        &app,
        "POST",
        "/api/dashboard/report/create/",
        token.as_deref(),
        Some(report("inferences", 20_000)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(!field_messages(&body, "inferences").is_empty(), "{body}");
    let (status, body) = call(
        &app,
        "POST",
        "/api/dashboard/report/create/",
        token.as_deref(),
        Some(report("observations", 5_000)),
    )
    .await;
    assert_eq!(status, 201, "5,000 characters are fine: {body}");

    // Login: a name or password no account can have is refused before any work.
    let (status, body) = login(&app, &"a".repeat(10_000), "Clave-Equivocada-1").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = login(&app, "admin", &"p".repeat(10_000)).await;
    assert_eq!(status, 400, "{body}");
    // Registration.
    for (field, len, fragment) in [
        ("username", 151, "150"),
        ("first_name", 151, "150"),
        ("last_name", 151, "150"),
        ("email", 300, "válido"),
        ("password", 1_000, "larga"),
        ("setup_code", 1_000, "no es válido"),
    ] {
        let mut f = form("largo");
        f[field] = json!("a".repeat(len));
        if field == "password" {
            f["password2"] = f["password"].clone();
        }
        let (status, body) = post(&app, "/api/crear-usuario/", f).await;
        assert_eq!(status, 400, "{field} of {len}: {body}");
        assert!(
            field_messages(&body, field).contains(fragment),
            "{field} of {len}: {body}"
        );
    }
    // Stage fields.
    let (status, body) = call(
        &app,
        "POST",
        "/api/dashboard/fillings/",
        token.as_deref(),
        Some(json!({"material_type": "bovino", "material_amount_kg": 500,
                    "material_humidity_pct": 85, "temperature_c": 30,
                    "people": "p".repeat(201)})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // Permission lists.
    let names: Vec<String> = (0..200).map(|i| format!("Permiso{i}")).collect();
    let (status, body) = call(
        &app,
        "POST",
        "/api/usuarios/1/cambiar-permisos/",
        token.as_deref(),
        Some(json!({ "permisos": names })),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

/// Every file and folder under `dir` with a mode other than 0600 / 0700.
fn loose_modes(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let meta = e.metadata().expect("metadata");
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                if mode != 0o700 {
                    out.push(format!("{} {mode:o}", e.path().display()));
                }
                stack.push(e.path());
            } else if mode != 0o600 {
                out.push(format!("{} {mode:o}", e.path().display()));
            }
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_folder_files_are_private_whatever_the_umask() {
    let mut app = Appliance::start(Options {
        umask: Some(0),
        create_admin: true,
        ..Options::default()
    });
    let (status, body) = call(
        &app,
        "POST",
        "/api/dashboard/fillings/",
        Some(&app.token),
        Some(json!({"material_type": "bovino", "material_amount_kg": 500,
                    "material_humidity_pct": 85, "temperature_c": 30})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &app,
        "POST",
        "/api/dashboard/report/create/",
        Some(&app.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let resp = common::accounts::http()
        .get(app.url("/api/admin/backup"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("backup");
    assert_eq!(resp.status().as_u16(), 200);
    let _ = resp.bytes().await.expect("snapshot");
    let data = app.data_dir();
    let loose = loose_modes(&data);
    eprintln!(
        "umask 000: data folder {:o}, loose entries: {loose:?}",
        mode(&data)
    );
    assert_eq!(mode(&data), 0o700, "the data folder it created");
    assert!(loose.is_empty(), "{loose:?}");

    // The CLI: a backup file and a restore, under umask 000 too.
    app.signal("TERM", Duration::from_secs(10));
    let out = app.dir.path().join("copia.redb");
    let config = app.config_path.to_str().expect("config").to_string();
    let (status, text) = run_bin_with_umask(
        Some(0),
        &[
            "backup",
            "--out",
            out.to_str().expect("path"),
            "--config",
            &config,
        ],
        &[],
        app.dir.path(),
    );
    assert!(status.success(), "{text}");
    assert_eq!(mode(&out), 0o600, "the backup file holds password hashes");
    let (status, text) = run_bin_with_umask(
        Some(0),
        &["restore", out.to_str().expect("path"), "--config", &config],
        &[],
        app.dir.path(),
    );
    assert!(status.success(), "{text}");
    let loose = loose_modes(&data);
    assert!(loose.is_empty(), "after restore: {loose:?}");
}

/// Free bytes on the file system of `dir` (from df).
fn free_bytes(dir: &Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}

/// A sparse file of `len` bytes starting with `head`.
fn sparse(path: &PathBuf, head: &[u8], len: u64) {
    let f = std::fs::File::create(path).expect("create");
    std::io::Write::write_all(&mut &f, head).expect("head");
    f.set_len(len).expect("set_len");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_reads_the_header_and_size_before_copying() {
    let mut app = Appliance::start(Options::default());
    app.signal("TERM", Duration::from_secs(10));
    let config = app.config_path.to_str().expect("config").to_string();
    let dir = app.dir.path().to_path_buf();
    let restore = |file: &Path| {
        let t = Instant::now();
        let (status, text) = run_bin(
            &["restore", file.to_str().expect("path"), "--config", &config],
            &[],
            &dir,
        );
        (status, text, t.elapsed().as_secs_f64())
    };
    let good = dir.join("buena.redb");
    let (status, text) = run_bin(
        &[
            "backup",
            "--out",
            good.to_str().expect("path"),
            "--config",
            &config,
        ],
        &[],
        &dir,
    );
    assert!(status.success(), "{text}");

    // 1 GiB of zeros: no redb header.
    let zeros = dir.join("ceros.redb");
    sparse(&zeros, b"", 1 << 30);
    let (status, text, secs) = restore(&zeros);
    eprintln!(
        "restore of 1 GiB without a redb header: {secs:.2} s: {}",
        text.trim()
    );
    assert!(!status.success());
    assert!(
        text.contains("not a redb file") && text.contains("Nothing was changed"),
        "{text}"
    );
    assert!(secs < 2.0, "refused without copying: {secs:.2} s");

    // Too short to be a store.
    let head = std::fs::read(&good).expect("read")[..4096].to_vec();
    let short = dir.join("corta.redb");
    std::fs::write(&short, &head[..100]).expect("write");
    let (status, text, _) = restore(&short);
    assert!(!status.success() && text.contains("too small"), "{text}");

    // A redb header on more bytes than the disk has free.
    let huge = dir.join("enorme.redb");
    sparse(&huge, &head, free_bytes(&dir) + (1 << 30));
    let (status, text, secs) = restore(&huge);
    eprintln!(
        "restore of a file larger than the free space: {secs:.2} s: {}",
        text.trim()
    );
    assert!(!status.success());
    assert!(
        text.contains("free") && text.contains("Nothing was changed"),
        "{text}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(app.data_dir())
        .expect("data")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".biogestor-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The good one still restores.
    let (status, text, _) = restore(&good);
    assert!(status.success(), "{text}");
}
