//! `biogestor import-django` on the real binary: a fixture written in the old system's
//! `dumpdata` format (approved, pending and superuser accounts with real pbkdf2_sha256 hashes,
//! two stages, over 10 000 readings, two reports with their media files) is checked by a dry
//! run, refused whole when one record is malformed, imported, imported again (nothing
//! added), and then used: the accounts log in with their old passwords, the stages, readings,
//! daily production and report files are served.

mod common;

use std::path::Path;
use std::time::Duration;

use biogestor::auth::django;
use common::accounts::{call, login};
use common::{Appliance, Options, run_bin};
use serde_json::{Value, json};

const READINGS: usize = 10_080;
const BOSS_PASS: &str = "Jefe-Granja-2020";
const ANA_PASS: &str = "Ana-Ordena-Vacas-7";

/// The spacing between readings.
const STEP_S: i64 = 300;

/// The first reading's time: 40 days ago on a whole hour (inside the raw-readings retention,
/// so the raw readings can be listed after the import).
fn start_s() -> i64 {
    let now = common::accounts::now_s();
    now - now % 3600 - 40 * 86_400
}

fn day_of(s: i64) -> String {
    chrono::DateTime::from_timestamp(s, 0)
        .expect("time")
        .with_timezone(&chrono_tz::America::Bogota)
        .format("%Y-%m-%d")
        .to_string()
}

fn iso(s: i64) -> String {
    chrono::DateTime::from_timestamp(s, 0)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The fixture, as Django's dumpdata writes it.
fn fixture() -> Vec<Value> {
    let mut out = Vec::new();
    let user = |pk: u64, name: &str, pass: &str, iterations: u32, superuser: bool| {
        json!({"model": "auth.user", "pk": pk, "fields": {
            "password": django::encode(pass, &format!("salt{pk}Xy9"), iterations),
            "last_login": null, "is_superuser": superuser, "username": name,
            "first_name": "", "last_name": "", "email": format!("{name}@granja.co"),
            "is_staff": superuser, "is_active": true, "date_joined": "2024-12-01T08:00:00Z",
            "groups": [], "user_permissions": [],
        }})
    };
    out.push(user(1, "jefe", BOSS_PASS, 600_000, true));
    out.push(user(2, "ana", ANA_PASS, 20_000, false));
    out.push(user(3, "pedro", "Pedro-Espera-1", 20_000, false));
    // An account Django marked as having no usable password.
    let mut locked = user(4, "sinclave", "x", 1, false);
    locked["fields"]["password"] = json!("!Xq3nbQ1wUNUSABLE");
    out.push(locked);
    for (pk, approve, ver, gen_r, dash, inv) in [
        (1, true, true, true, true, true),
        (2, false, true, false, true, true),
        (3, false, false, false, false, false),
    ] {
        out.push(json!({"model": "usuarios.permisos", "pk": pk, "fields": {
            "AprobarUsuarios": approve, "VerReportes": ver, "GenerarReportes": gen_r,
            "VerDashboard": dash, "VerInventario": inv, "ModificarInventario": false,
        }}));
        out.push(json!({"model": "usuarios.perfil", "pk": pk, "fields": {
            "user": pk, "aprobado": pk != 3, "permisos": pk,
        }}));
    }
    let second = start_s() + (READINGS as i64 / 2) * STEP_S - 60;
    for (pk, number, date, active, created) in [
        (10, 1, day_of(start_s() - 60), false, start_s() - 60),
        (11, 2, day_of(second), true, second),
    ] {
        out.push(json!({"model": "dashboard.fillingstage", "pk": pk, "fields": {
            "date": date, "number": number, "people": "Ana y Pedro", "material_type": "bovino",
            "material_amount_kg": "1200.00", "material_humidity_pct": "87.00",
            "added_water_m3": "1.500", "temperature_c": if number == 1 { json!("28.50") } else { Value::Null },
            "active": active, "created_at": iso(created),
        }}));
    }
    // A reading the payload rules refuse (pressure far beyond any digester's), both ways.
    out.push(
        json!({"model": "dashboard.sensorreading", "pk": READINGS + 1, "fields": {
            "stage": 11, "timestamp": iso(start_s() + 7), "pressure_hpa": 50_000.0,
            "biol_flow": null, "gas_flow": null, "raw_payload": "{\"presion\": 50000}",
        }}),
    );
    for i in 0..READINGS {
        let ts = start_s() + i as i64 * STEP_S;
        let stage = if i < READINGS / 2 { 10 } else { 11 };
        let presion = 1000.0 + (i % 50) as f64;
        // Every tenth reading has no raw payload (the typed columns are used).
        let raw = if i % 10 == 9 {
            Value::Null
        } else {
            json!(format!(
                r#"{{"presion": {presion}, "temperatura": 30.5, "caudal_gas": 0.01, "Calidad": 60}}"#
            ))
        };
        out.push(
            json!({"model": "dashboard.sensorreading", "pk": i + 1, "fields": {
                "stage": stage, "timestamp": iso(ts), "pressure_hpa": presion,
                "biol_flow": 0.002, "gas_flow": 0.01, "raw_payload": raw,
            }}),
        );
    }
    for (pk, stage, kind) in [(1, 10, "final"), (2, 11, "normal")] {
        out.push(json!({"model": "dashboard.report", "pk": pk, "fields": {
            "user": 1, "stage": stage, "report_type": kind,
            "created_at": iso(start_s() + pk * 86_400), "observations": format!("Observación {pk}"),
            "inferences": "Producción estable", "production_estimated": "12.50",
            "production_real": 11.75,
            "file_pdf": format!("reports/pdf/reporte_{pk}.pdf"),
            "file_excel": format!("reports/excel/reporte_{pk}.xlsx"),
            "file_csv": format!("reports/csv/reporte_{pk}.csv"),
        }}));
    }
    out
}

fn write_media(dir: &Path) {
    for pk in [1, 2] {
        for (folder, ext) in [("pdf", "pdf"), ("excel", "xlsx"), ("csv", "csv")] {
            let d = dir.join("reports").join(folder);
            std::fs::create_dir_all(&d).expect("media dir");
            std::fs::write(d.join(format!("reporte_{pk}.{ext}")), media_bytes(pk, ext))
                .expect("media");
        }
    }
}

fn media_bytes(pk: u64, ext: &str) -> Vec<u8> {
    format!("contenido del reporte {pk} en {ext}\n")
        .repeat(50)
        .into_bytes()
}

fn import(app: &Appliance, args: &[&str]) -> (bool, String) {
    let config = app.config_path.to_str().expect("config").to_string();
    let mut all = vec!["import-django"];
    all.extend_from_slice(args);
    all.extend(["--config", &config]);
    let (status, out) = run_bin(&all, &[], app.dir.path());
    (status.success(), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_of_the_old_system_comes_along() {
    let mut app = Appliance::start(Options::default());
    app.signal("TERM", Duration::from_secs(10));
    let dir = app.dir.path().to_path_buf();
    let file = dir.join("dump.json");
    let records = fixture();
    std::fs::write(&file, serde_json::to_vec(&records).expect("json")).expect("write");
    let media = dir.join("media");
    write_media(&media);
    let (file_s, media_s) = (file.to_str().expect("path"), media.to_str().expect("path"));

    // A malformed record: the whole file is refused, naming it, and nothing is written.
    let mut broken = records.clone();
    let victim = broken
        .iter_mut()
        .find(|r| r["model"] == "dashboard.sensorreading" && r["pk"] == 7000)
        .expect("reading 7000");
    victim["fields"]["timestamp"] = json!("ayer por la tarde");
    let bad = dir.join("broken.json");
    std::fs::write(&bad, serde_json::to_vec(&broken).expect("json")).expect("write");
    let (ok, out) = import(&app, &[bad.to_str().expect("path"), "--media", media_s]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("dashboard.sensorreading pk=7000") && out.contains("timestamp"),
        "the error names the record and the field: {out}"
    );
    // A report whose file is missing from the media folder is refused too.
    let (ok, out) = import(
        &app,
        &[file_s, "--media", dir.join("data").to_str().expect("p")],
    );
    assert!(!ok && out.contains("dashboard.report pk=1"), "{out}");

    // The dry run says what would come and writes nothing.
    let (ok, out) = import(&app, &[file_s, "--media", media_s, "--dry-run"]);
    assert!(ok, "{out}");
    eprintln!("dry run:\n{out}");
    let expected =
        format!("would add: 4 accounts, 2 stages, {READINGS} readings, 2 reports (6 report files)");
    assert!(out.contains(&expected), "{out}");

    let (ok, out) = import(&app, &[file_s, "--media", media_s]);
    assert!(ok, "{out}");
    eprintln!("import:\n{out}");
    assert!(
        out.contains("refused by the payload rules (as the live system would): 1"),
        "{out}"
    );
    assert!(
        out.contains(&format!("dashboard.sensorreading pk={}: ", READINGS + 1)),
        "{out}"
    );
    assert!(
        out.contains("without a usable password") && out.contains("sinclave"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "added: 4 accounts, 2 stages, {READINGS} readings, 2 reports (6 report files)"
        )),
        "the dry run changed nothing and the import adds everything: {out}"
    );
    let (ok, out) = import(&app, &[file_s, "--media", media_s]);
    assert!(ok, "{out}");
    eprintln!("again:\n{out}");
    assert!(
        out.contains("added: 0 accounts, 0 stages, 0 readings, 0 reports (0 report files)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "already present: 4 accounts, 2 stages, {READINGS} readings, 2 reports"
        )),
        "{out}"
    );

    app.restart();
    // The superuser logs in with the old password, becomes an administrator, and the hash is
    // replaced (the second login checks the new one).
    let (status, body) = login(&app, "jefe", BOSS_PASS).await;
    assert_eq!(status, 200, "{body}");
    let every: Vec<Value> = [
        "AprobarUsuarios",
        "VerDashboard",
        "VerReportes",
        "GenerarReportes",
        "GestionarLlenados",
        "GestionarAlarmas",
    ]
    .iter()
    .map(|f| json!(f))
    .collect();
    let held = body["user"]["permisos"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(held.len(), every.len(), "every permission: {body}");
    assert!(every.iter().all(|f| held.contains(f)), "{body}");
    let (status, _) = login(&app, "jefe", "jefe-granja-2020").await;
    assert_eq!(status, 401, "a wrong password stays wrong");
    let (status, body) = login(&app, "jefe", BOSS_PASS).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access"].as_str().expect("token").to_string();
    let (status, body) = login(&app, "ana", ANA_PASS).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["user"]["permisos"],
        json!(["VerDashboard", "VerReportes", "GestionarLlenados"]),
        "flags carry over (the inventory ones are dropped); approved accounts manage stages"
    );
    let (status, body) = login(&app, "pedro", "Pedro-Espera-1").await;
    assert_eq!(status, 403, "the pending account is still pending: {body}");
    let (status, _) = login(&app, "sinclave", "x").await;
    assert_eq!(status, 401, "an unusable hash matches nothing");

    let t = Some(token.as_str());
    let (_, stages) = call(&app, "GET", "/api/dashboard/fillings/", t, None).await;
    let list = stages["fillings"].as_array().expect("fillings");
    assert_eq!(list.len(), 2, "{stages}");
    let by_number = |n: u64| {
        list.iter()
            .find(|s| s["number"] == json!(n))
            .expect("stage")
            .clone()
    };
    let (first, second) = (by_number(1), by_number(2));
    assert_eq!(first["active"], json!(false));
    assert_eq!(second["active"], json!(true));
    assert_eq!(first["material_amount_kg"], json!(1200.0));
    assert_eq!(first["temperature_c"], json!(28.5));
    assert_eq!(
        second["temperature_c"],
        json!(35.0),
        "no temperature: the stage default"
    );

    let (_, stats) = call(&app, "GET", "/api/dashboard/stats/", t, None).await;
    assert_eq!(stats["lecturas_total"], json!(READINGS), "{stats}");
    let readings = app_readings(&app, &token).await;
    assert_eq!(readings.len(), READINGS);
    // Listed oldest first, one every STEP_S: the i-th is the fixture's i-th.
    let at = |i: usize| {
        let r = readings[i].clone();
        let local = chrono::DateTime::from_timestamp(start_s() + i as i64 * STEP_S, 0)
            .expect("time")
            .with_timezone(&chrono_tz::America::Bogota)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        assert!(
            r["ts"].as_str().is_some_and(|t| t.starts_with(&local)),
            "{local}: {r}"
        );
        r
    };
    let r = at(3);
    assert_eq!(r["presion"], json!(1003.0), "from the raw payload: {r}");
    assert_eq!(r["calidad"], json!(60.0), "{r}");
    let r = at(9);
    assert_eq!(r["presion"], json!(1009.0), "from the typed columns: {r}");
    assert!(r["temperatura"].is_null(), "{r}");

    for stage in [&first, &second] {
        let (status, prod) = call(
            &app,
            "GET",
            &format!("/api/dashboard/production/{}/", stage["id"]),
            t,
            None,
        )
        .await;
        assert_eq!(status, 200, "{prod}");
        let produced: f64 = prod["actual"]["daily_biogas_m3"]
            .as_array()
            .expect("daily")
            .iter()
            .filter_map(Value::as_f64)
            .sum();
        assert!(produced > 0.0, "daily aggregates were built: {prod}");
    }

    let (_, hist) = call(&app, "GET", "/api/dashboard/report/history/", t, None).await;
    let items = hist["history"].as_array().expect("history");
    assert_eq!(items.len(), 2, "{hist}");
    for item in items {
        let pk = if item["report_type"] == "final" { 1 } else { 2 };
        assert_eq!(item["observations"], json!(format!("Observación {pk}")));
        assert_eq!(item["production_estimated"], json!(12.5));
        for (key, ext) in [
            ("file_pdf", "pdf"),
            ("file_excel", "xlsx"),
            ("file_csv", "csv"),
        ] {
            let url = item[key].as_str().expect("url");
            let resp = common::accounts::http()
                .get(app.url(url))
                .bearer_auth(&token)
                .send()
                .await
                .expect("get");
            assert_eq!(resp.status().as_u16(), 200, "{url}");
            assert_eq!(
                resp.bytes().await.expect("bytes").to_vec(),
                media_bytes(pk, ext),
                "{url}"
            );
        }
    }
}

/// Every reading the API serves, across stages, read page by page as the administrator.
async fn app_readings(app: &Appliance, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = "/api/dashboard/readings/?limit=5000".to_string();
    loop {
        let (status, page) = call(app, "GET", &path, Some(token), None).await;
        assert_eq!(status, 200, "{page}");
        out.extend(page["readings"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(c) => path = format!("/api/dashboard/readings/?limit=5000&cursor={c}"),
            None => return out,
        }
    }
}
