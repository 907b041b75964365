//! Reports end to end against the real binary, checked with real readers: pdftotext/pdfinfo
//! (poppler), Python's openpyxl for the workbook, the csv crate for the CSV.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Appliance, Options, Publisher};
use serde_json::{Value, json};

async fn post(app: &Appliance, path: &str, body: Value) -> (u16, Value) {
    let resp = app
        .client()
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// An appliance with a stage loaded `days_ago` days ago and a few readings today.
async fn with_stage(days_ago: u64) -> (Appliance, u64) {
    let app = Appliance::start(Options::default());
    let tz: chrono_tz::Tz = "America/Bogota".parse().unwrap();
    let date = chrono::Utc::now().with_timezone(&tz).date_naive() - chrono::Days::new(days_ago);
    let (status, stage) = post(
        &app,
        "/api/dashboard/fillings/",
        json!({"date": date.to_string(), "people": "Ana Pérez, José Núñez", "material_type": "bovino",
               "material_amount_kg": 1000, "material_humidity_pct": 87, "added_water_m3": 1,
               "temperature_c": 35}),
    )
    .await;
    assert_eq!(status, 201, "{stage}");
    let mut p = Publisher::sensor(app.mqtt_port, "report-seed").await;
    // A meter read every 10 minutes (the sensor's own `ts`), so each step is gas it can
    // register in that time.
    let now = chrono::Utc::now().timestamp();
    for (i, total) in [10.0, 10.4, 11.1, 11.5].iter().enumerate() {
        let ts = now - (3 - i as i64) * 600;
        let payload = json!({"gas_total_m3": total, "temperatura": 33.0 + i as f64, "presion": 1005.0, "calidad": 61.0, "ts": ts});
        p.publish("Prueba", payload.to_string()).await;
    }
    assert_eq!(p.wait_acked(4, Duration::from_secs(5)).await, 4);
    assert_eq!(app.wait_readings(4, Duration::from_secs(5)).await, 4);
    (app, stage["id"].as_u64().unwrap())
}

fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed (scripts/test.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn download(app: &Appliance, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = app.client().get(app.url(path)).send().await.expect("GET");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (
        status,
        headers,
        resp.bytes().await.unwrap_or_default().to_vec(),
    )
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// "12.345" → the PDF's Spanish notation "12,345".
fn es(x: f64) -> String {
    format!("{x:.3}").replace('.', ",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_files_match_the_api_and_open_in_real_readers() {
    let (app, stage_id) = with_stage(9).await;
    let (status, created) = post(
        &app,
        "/api/dashboard/report/create/",
        json!({"report_type": "normal", "observations": "Biol ácido; ¿revisar válvula? ¡Sí! Año 2026."}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().unwrap();
    assert_eq!(created["stage_active"], json!(true));
    for k in ["pdf", "excel", "csv"] {
        let url = created[format!("{k}_url")].as_str().unwrap();
        assert_eq!(url, format!("/api/dashboard/report/download/{id}/{k}/"));
    }
    for (dir, ext) in [("pdf", "pdf"), ("excel", "xlsx"), ("csv", "csv")] {
        assert!(
            app.data_dir()
                .join(format!("reports/{dir}/reporte_{id}.{ext}"))
                .is_file()
        );
    }

    let (_, history) = app.get("/api/dashboard/report/history/").await;
    let entry = &history["history"][0];
    assert_eq!(entry["id"], json!(id));
    assert_eq!(entry["stage"], json!(stage_id));
    assert_eq!(entry["report_type"], json!("normal"));
    let real = entry["production_real"].as_f64().unwrap();
    let estimated = entry["production_estimated"].as_f64().unwrap();
    // The meter counted 10.0 → 11.5 = 1.5 m³ at 1005 hPa (absolute), each step at the
    // temperature sent with it, saturated:
    //   0.4 m³ at 34 °C: (100.5 − 5.31370)/101.325 · 273.15/307.15 = 0.835427 → 0.334171
    //   0.7 m³ at 35 °C: (100.5 − 5.61757)/101.325 · 273.15/308.15 = 0.830058 → 0.581040
    //   0.4 m³ at 36 °C: (100.5 − 5.93645)/101.325 · 273.15/309.15 = 0.824592 → 0.329837
    // = 1.245048 Nm³, shown rounded to 1.245 (reports compare in Nm³).
    assert!(
        (real - 1.245).abs() < 1e-9,
        "1.5 m³ counted = 1.245 Nm³: {real}"
    );
    let (_, prod) = app.get("/api/dashboard/production/current/").await;
    let measured = prod["summary"]["actual_total_m3_medido"].as_f64().unwrap();
    assert!((measured - 1.5).abs() < 1e-9, "{measured}");
    let api_expected = prod["summary"]["expected_to_date_m3"].as_f64().unwrap();
    // Both are "expected up to now", a few milliseconds apart.
    assert!(
        (estimated - api_expected).abs() < 0.002,
        "{estimated} vs {api_expected}"
    );

    // PDF: headers, then the text as a reader extracts it.
    let (status, headers, pdf) =
        download(&app, &format!("/api/dashboard/report/download/{id}/pdf/")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"reporte_{id}.pdf\"")
    );
    assert!(pdf.starts_with(b"%PDF"));
    let tmp = tempfile::tempdir().unwrap();
    let pdf_path = save(tmp.path(), "r.pdf", &pdf);
    let text = tool(
        "pdftotext",
        &["-enc", "UTF-8", "-layout", pdf_path.to_str().unwrap(), "-"],
    );
    for needle in [
        "Biodigestor",
        "Producción",
        "Ana Pérez, José Núñez",
        "¿revisar válvula? ¡Sí!",
        "m³",
        "Nm³",
        "Real (Nm³)",
        "Medido (m³)",
        "Metano por kg SV (comparable con B0)",
        "°C",
    ] {
        assert!(text.contains(needle), "PDF text lacks {needle:?}:\n{text}");
    }
    assert!(
        text.contains(&es(real)),
        "actual total {} in the PDF:\n{text}",
        es(real)
    );
    assert!(
        text.contains(&es(estimated)),
        "expected total {} in the PDF:\n{text}",
        es(estimated)
    );
    let info = tool("pdfinfo", &[pdf_path.to_str().unwrap()]);
    assert!(info.contains("Pages:"), "{info}");

    let (_, headers, _) = download(
        &app,
        &format!("/api/dashboard/report/download/{id}/pdf/?inline=1"),
    )
    .await;
    assert_eq!(
        headers["content-disposition"],
        format!("inline; filename=\"reporte_{id}.pdf\"")
    );

    // CSV: one row per day of the stage (10 days: loading day + 9).
    let (status, headers, csv_bytes) =
        download(&app, &format!("/api/dashboard/report/download/{id}/csv/")).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = String::from_utf8(csv_bytes).unwrap();
    let mut rdr = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "Día",
            "Fecha",
            "Producción Esperada (Nm3/día)",
            "Producción Real (Nm3/día)",
            "Acumulado Esperado (Nm3)",
            "Acumulado Real (Nm3)",
            "Sin datos",
            "Producción Medida (m3/día)"
        ]
    );
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 10);
    assert_eq!(&rows[0][1], prod["actual"]["dates"][0].as_str().unwrap());
    let last_cum: f64 = rows[9][5].parse().unwrap();
    assert!((last_cum - real).abs() < 1e-9);
    let measured_today: f64 = rows[9][7].parse().unwrap();
    assert!((measured_today - 1.5).abs() < 1e-9, "{measured_today}");
    let expected_day1: f64 = rows[0][2].parse().unwrap();
    let api_day1 = prod["expected"]["daily_biogas_m3"][0].as_f64().unwrap();
    assert!((expected_day1 - (api_day1 * 1000.0).round() / 1000.0).abs() < 1e-9);

    // Excel, read by openpyxl.
    let (status, headers, xlsx) =
        download(&app, &format!("/api/dashboard/report/download/{id}/excel/")).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let xlsx_path = save(tmp.path(), "r.xlsx", &xlsx);
    let script = format!(
        "import openpyxl, zipfile, datetime\n\
         wb = openpyxl.load_workbook({p:?})\n\
         print(','.join(wb.sheetnames))\n\
         ws = wb['Datos']\n\
         rows = list(ws.iter_rows(min_row=2, values_only=True))\n\
         print(len([r for r in rows if r[0] is not None]))\n\
         print(isinstance(rows[0][1], datetime.datetime))\n\
         print(any(n.startswith('xl/charts/chart') for n in zipfile.ZipFile({p:?}).namelist()))\n",
        p = xlsx_path.to_str().unwrap()
    );
    let out = tool("python3", &["-c", &script]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("Resumen") && lines[0].contains("Datos"),
        "{out}"
    );
    assert_eq!(lines[1], "10", "one data row per day: {out}");
    assert_eq!(lines[2], "True", "real dates: {out}");
    assert_eq!(lines[3], "True", "a native chart part: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_refuse_anything_but_a_known_report() {
    let (app, _) = with_stage(1).await;
    let (status, created) = post(
        &app,
        "/api/dashboard/report/create/",
        json!({"report_type": "normal"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().unwrap();
    for path in [
        format!("/api/dashboard/report/download/{}/pdf/", id + 100),
        format!("/api/dashboard/report/download/{id}/docx/"),
        format!("/api/dashboard/report/download/{id}/PDF/"),
        "/api/dashboard/report/download/../pdf/".to_string(),
        "/api/dashboard/report/download/..%2F..%2Fbiogestor.redb/pdf/".to_string(),
        format!("/api/dashboard/report/download/{id}/..%2F..%2F..%2Fconfig.toml/"),
        "/api/dashboard/report/download/%2Fetc%2Fpasswd/pdf/".to_string(),
        "/api/dashboard/report/download/-1/pdf/".to_string(),
        format!("/api/dashboard/report/download/{id}%00/pdf/"),
    ] {
        let (status, _, body) = download(&app, &path).await;
        assert!(status == 404 || status == 400, "{path} → {status}");
        assert!(
            !body.starts_with(b"%PDF") && !body.starts_with(b"PK"),
            "{path} served a file"
        );
    }
    // Query tokens work for downloads (links opened by the browser), not for the rest.
    let plain = reqwest::Client::new();
    let url = app.url(&format!(
        "/api/dashboard/report/download/{id}/csv/?token={}",
        app.token
    ));
    assert_eq!(plain.get(url).send().await.unwrap().status(), 200);
    let url = app.url(&format!(
        "/api/dashboard/report/history/?token={}",
        app.token
    ));
    assert_eq!(plain.get(url).send().await.unwrap().status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_closes_the_stage_and_regenerate_keeps_the_id() {
    let (app, stage_id) = with_stage(2).await;
    let (status, first) = post(&app, "/api/dashboard/report/create/", json!({})).await;
    assert_eq!(status, 201, "{first}");
    let (status, fin) = post(
        &app,
        "/api/dashboard/report/create/",
        json!({"report_type": "final", "inferences": "Todo en orden."}),
    )
    .await;
    assert_eq!(status, 201, "{fin}");
    assert_eq!(fin["stage_active"], json!(false));
    assert_eq!(app.stats().await["etapas_activas"], json!(0));
    let (status, again) = post(
        &app,
        "/api/dashboard/report/create/",
        json!({"report_type": "final", "stage_id": stage_id}),
    )
    .await;
    assert_eq!(status, 409, "{again}");
    let (status, none) = post(
        &app,
        "/api/dashboard/report/create/",
        json!({"report_type": "normal"}),
    )
    .await;
    assert_eq!(status, 400, "no active stage and no stage_id: {none}");
    assert!(none["detail"].as_str().unwrap().contains("etapa activa"));
    let (status, _) = post(
        &app,
        "/api/dashboard/report/create/",
        json!({"report_type": "mensual"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, closed_report) = post(
        &app,
        "/api/dashboard/report/create/",
        json!({"report_type": "normal", "stage_id": stage_id}),
    )
    .await;
    assert_eq!(
        status, 201,
        "a normal report of a closed stage: {closed_report}"
    );

    let fid = fin["id"].as_u64().unwrap();
    let (status, regen) = post(
        &app,
        &format!("/api/dashboard/report/regenerate/{fid}/"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{regen}");
    assert_eq!(regen["id"], json!(fid));
    assert_eq!(
        regen["inferences"],
        json!("Todo en orden."),
        "the author's text is kept"
    );
    assert!(regen["regenerated_at"].is_string());
    let (status, _) = post(&app, "/api/dashboard/report/regenerate/999/", json!({})).await;
    assert_eq!(status, 404);
    let (_, history) = app.get("/api/dashboard/report/history/").await;
    let ids: Vec<u64> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_u64().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    assert_eq!(ids.len(), 3);
    assert_eq!(app.stats().await["reportes_generados"], json!(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reports_and_a_failed_write() {
    let (app, _) = with_stage(3).await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let client = app.client();
        let url = app.url("/api/dashboard/report/create/");
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"observations": format!("informe {i}")}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_u64().unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "distinct ids");
    for id in &ids {
        let (status, _, bytes) =
            download(&app, &format!("/api/dashboard/report/download/{id}/pdf/")).await;
        assert_eq!(status, 200);
        assert!(bytes.starts_with(b"%PDF") && bytes.windows(5).any(|w| w == b"%%EOF"));
    }

    // The CSV folder replaced by a file: writing fails, the request says so, and no partial
    // file of that report remains in any folder.
    let csv_dir = app.data_dir().join("reports/csv");
    std::fs::remove_dir_all(&csv_dir).unwrap();
    std::fs::write(&csv_dir, "not a folder").unwrap();
    let (status, body) = post(&app, "/api/dashboard/report/create/", json!({})).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("No se pudo generar el reporte"),
        "{body}"
    );
    let next = ids.last().unwrap() + 1;
    for (dir, ext) in [("pdf", "pdf"), ("excel", "xlsx")] {
        let folder = app.data_dir().join(format!("reports/{dir}"));
        assert!(
            !folder.join(format!("reporte_{next}.{ext}")).exists(),
            "partial {dir} file left"
        );
        let tmp_left = std::fs::read_dir(&folder)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"));
        assert!(!tmp_left);
    }
    let (_, history) = app.get("/api/dashboard/report/history/").await;
    assert_eq!(
        history["history"].as_array().unwrap().len(),
        4,
        "no record for the failed report"
    );
    std::fs::remove_file(&csv_dir).unwrap();
    let (status, _) = post(&app, "/api/dashboard/report/create/", json!({})).await;
    assert_eq!(status, 201, "works again once the disk is writable");
}
