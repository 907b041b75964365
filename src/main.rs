//! Entry point: parse the command line, set up logging, run the chosen verb.

use std::process::ExitCode;

use biogestor::cli::{Cli, Command, SensorCommand};
use biogestor::config::{Config, ValidConfig};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},rumqttd=off,rumqttd::segments=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    // A panic in any thread (a broker listener, a handler) reaches the log, not only stderr,
    // so a part that stopped working is visible in the journal with the rest.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            panic = %info,
            "a thread panicked"
        );
        default_hook(info);
    }));
}

fn load(path: &std::path::Path) -> Result<ValidConfig, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("biogestor: configuration error: {e}");
        ExitCode::from(2)
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("biogestor: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}

/// `biogestor backup`: through the service with `--url`, else directly from the store.
fn backup(
    out: &std::path::Path,
    url: Option<String>,
    token: Option<String>,
    config: &std::path::Path,
) -> Result<ExitCode, ExitCode> {
    let started = std::time::Instant::now();
    let result = match (url, token) {
        (Some(url), Some(token)) => {
            biogestor::backup::backup_remote(&url, &token, out, chrono_tz::UTC).map(|(bytes, v)| {
                format!(
                    "wrote {} ({bytes} bytes, {} readings, {} accounts) from {url} in {:.1} s",
                    out.display(),
                    v.readings,
                    v.users,
                    started.elapsed().as_secs_f64()
                )
            })
        }
        (Some(_), None) => {
            eprintln!(
                "biogestor backup: --url needs --token (or BIOGESTOR_TOKEN): an administrator's \
                 access token, from POST /api/iniciar-sesion/"
            );
            return Err(ExitCode::from(2));
        }
        (None, _) => {
            let c = load(config)?;
            biogestor::backup::backup_direct(&c, out).map(|info| {
                format!(
                    "wrote {} ({} bytes, {} readings, {} rows) in {:.1} s",
                    out.display(),
                    info.bytes,
                    info.readings,
                    info.rows,
                    info.elapsed.as_secs_f64()
                )
            })
        }
    };
    match result {
        Ok(summary) => {
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("biogestor backup: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn main() -> ExitCode {
    // Before any other thread exists (see biogestor::memory).
    let tuned = biogestor::memory::tune_allocator();
    match run(Cli::parse(), tuned) {
        Ok(code) | Err(code) => code,
    }
}

fn run(cli: Cli, allocator_tuned: bool) -> Result<ExitCode, ExitCode> {
    match cli.command {
        Command::CheckConfig { config } => {
            let c = load(&config)?;
            println!(
                "configuration OK: http {} · mqtt {} (topics {:?}, {} user(s), anonymous {}) · data {} · zone {}",
                c.http_bind,
                c.mqtt_bind,
                c.raw.mqtt.topics,
                c.raw.mqtt.users.len(),
                c.raw.mqtt.allow_anonymous,
                c.raw.storage.data_dir.display(),
                c.timezone
            );
            if let Some(line) = biogestor::tls::cert::describe(&c) {
                println!("{line}");
            }
            for w in c.warnings() {
                eprintln!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { config } => {
            let c = load(&config)?;
            init_logging(&c.raw.log.level);
            if !allocator_tuned {
                tracing::warn!(
                    "the C library refused the allocator settings; memory freed after large \
                     requests may stay resident"
                );
            }
            let rt = runtime()?;
            match rt.block_on(biogestor::serve::run(
                c,
                biogestor::serve::termination_signal(),
            )) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("biogestor: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Command::User { action } => {
            let c = load(action.config())?;
            let verb = action.verb();
            match biogestor::useradmin::execute(&c, action) {
                Ok(out) => {
                    println!("{out}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("biogestor user {verb}: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Command::Sensor {
            action:
                SensorCommand::Add {
                    name,
                    topic,
                    config,
                },
        } => match biogestor::broker::enroll::add(&config, &name, topic.as_deref()) {
            Ok(e) => {
                println!("sensor {name:?} added to {}", config.display());
                println!("  MQTT user:     {name}");
                println!("  MQTT password: {}", e.password);
                println!("The password is shown only this once; only its hash was written.");
                if let Some(w) = e.warning {
                    println!("warning: {w}");
                }
                println!("Restart the service to use it: systemctl restart biogestor");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("biogestor sensor add: {e}");
                Err(ExitCode::FAILURE)
            }
        },
        Command::Backup {
            out,
            url,
            token,
            config,
        } => backup(&out, url, token, &config),
        Command::Reindex { config } => {
            let c = load(&config)?;
            match biogestor::reindex::run(&c) {
                Ok(r) => {
                    println!(
                        "rebuilt {} daily rows and {} meter states from {} readings in {:.1} s",
                        r.days,
                        r.sources,
                        r.readings,
                        r.elapsed.as_secs_f64()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("biogestor reindex: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Command::ImportDjango {
            file,
            media,
            dry_run,
            config,
        } => {
            let c = load(&config)?;
            match biogestor::import::run(&c, &file, media.as_deref(), dry_run) {
                Ok(summary) => {
                    println!("{}", summary.describe());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("biogestor import-django: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Command::Compact { config } => {
            let c = load(&config)?;
            match biogestor::compact::run(&c) {
                Ok((before, after)) => {
                    println!(
                        "store compacted: {:.1} MB -> {:.1} MB",
                        before as f64 / 1e6,
                        after as f64 / 1e6
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("biogestor compact: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Command::Restore { file, config } => {
            let c = load(&config)?;
            match biogestor::backup::restore(&c, &file) {
                Ok(r) => {
                    println!(
                        "restored {} into {} (schema {}, {} readings, {} accounts)",
                        file.display(),
                        r.installed.display(),
                        r.found.schema,
                        r.found.readings,
                        r.found.users
                    );
                    if let Some(prev) = r.previous {
                        println!("the previous store was kept as {}", prev.display());
                    }
                    println!(
                        "sessions from before the restore no longer work: everyone logs in \
                         again (new accounts get ids from {})",
                        r.next_user_id
                    );
                    if let Some(w) = r.ownership_warning {
                        eprintln!("biogestor restore: warning: {w}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("biogestor restore: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Command::TlsCert {
            out_dir,
            hosts,
            force,
        } => match biogestor::tls::cert::create(&out_dir, &hosts, force) {
            Ok(summary) => {
                println!("{summary}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("biogestor tls-cert: {e}");
                Err(ExitCode::FAILURE)
            }
        },
        Command::TlsFingerprint { cert, config } => {
            let path = match cert {
                Some(p) => p,
                None => match load(&config)?.tls.files {
                    Some(f) => f.cert,
                    None => {
                        eprintln!(
                            "biogestor tls-fingerprint: {} sets no tls.cert (or pass --cert FILE)",
                            config.display()
                        );
                        return Err(ExitCode::from(2));
                    }
                },
            };
            match biogestor::tls::read_certificates(&path) {
                Ok(chain) => {
                    println!(
                        "sha256 Fingerprint={}",
                        biogestor::tls::fingerprint(&chain[0])
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("biogestor tls-fingerprint: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
        Command::Simulate(args) => {
            let rt = runtime()?;
            match rt.block_on(biogestor::simulate::run(args)) {
                Ok(n) => {
                    println!("published {n} messages");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("biogestor simulate: {e}");
                    Err(ExitCode::FAILURE)
                }
            }
        }
    }
}
