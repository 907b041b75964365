//! `biogestor sensor add NAME [--topic T]`: gives a sensor its own MQTT credential. A random
//! password is printed once; only its argon2 hash is appended to the configuration file as a
//! `[mqtt.users.NAME]` table, so the file never holds it.

use std::io::Write;
use std::path::Path;

use crate::config::{Config, ConfigError};

/// Why a sensor could not be added.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "sensor name {0:?}: use 1 to 64 letters, digits, '-', '_' or '.' (it becomes the MQTT user name)"
    )]
    BadName(String),
    #[error("mqtt.users.{0} exists already; choose another name or edit {1}")]
    Exists(String, String),
    #[error("--topic {0:?} is not a topic name (no wildcards, not empty)")]
    BadTopic(String),
    #[error(
        "the configuration would not parse with the new sensor ({0}); add [mqtt.users.NAME] by hand"
    )]
    WouldBreak(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What `add` created.
pub struct Enrolled {
    pub password: String,
    /// Set when the sensor's topic is not one of the stored reading topics.
    pub warning: Option<String>,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Appends a credential for `name` (publishing to `topic`, or to the reading topics) to the
/// configuration file at `path`, written atomically.
pub fn add(path: &Path, name: &str, topic: Option<&str>) -> Result<Enrolled, EnrollError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let cfg = Config::from_toml(&text, path, std::env::vars())?;
    if !valid_name(name) {
        return Err(EnrollError::BadName(name.to_string()));
    }
    if cfg.raw.mqtt.users.contains_key(name) {
        return Err(EnrollError::Exists(
            name.to_string(),
            path.display().to_string(),
        ));
    }
    if let Some(t) = topic
        && (t.is_empty() || t.contains(['+', '#', '\0', '"', '\\']))
    {
        return Err(EnrollError::BadTopic(t.to_string()));
    }
    let password = crate::auth::tokens::random_token(24);
    let hash = crate::auth::password::hash_blocking(&password)
        .map_err(|e| EnrollError::Hash(e.to_string()))?;
    let mut block = format!(
        "\n# Sensor `{name}`, added by `biogestor sensor add` on {}.\n[mqtt.users.\"{name}\"]\npassword_hash = \"{hash}\"\n",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    if let Some(t) = topic {
        block.push_str(&format!("publish = [\"{t}\"]\n"));
    }
    let mut new_text = text.clone();
    if !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    new_text.push_str(&block);
    let check = Config::from_toml(&new_text, path, std::env::vars())
        .map_err(|e| EnrollError::WouldBreak(e.to_string()))?;
    if !check.raw.mqtt.users.contains_key(name) {
        return Err(EnrollError::WouldBreak(
            "the entry was not read back".into(),
        ));
    }
    write_atomically(path, &new_text)?;
    let warning = topic
        .filter(|t| {
            !cfg.raw
                .mqtt
                .topics
                .iter()
                .any(|f| crate::topic::matches(f, t))
        })
        .map(|t| {
            format!(
                "topic {t:?} matches no mqtt.topics filter: its messages are accepted but not \
                 stored until it is added to mqtt.topics"
            )
        });
    Ok(Enrolled { password, warning })
}

/// Writes `text` next to `path` and renames it over `path`, keeping the file's permissions and
/// owner (the installer's `/etc/biogestor/config.toml` is readable by the service's group only).
fn write_atomically(path: &Path, text: &str) -> Result<(), EnrollError> {
    use std::os::unix::fs::MetadataExt;
    let err = |source| EnrollError::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let meta = std::fs::metadata(path).map_err(err)?;
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::set_permissions(&tmp, meta.permissions()))
        .and_then(|()| {
            // Only root can give the file away; anyone else keeps owning what they own.
            let (uid, gid) = (meta.uid(), meta.gid());
            match std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)) {
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
                other => other,
            }
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[mqtt]\ntopics = [\"Prueba\"]\n\n[mqtt.users]\nsensor = \"x\"\n";

    #[test]
    fn appends_a_hashed_credential_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, BASE).unwrap();
        let e = add(&path, "sonda-2", Some("granja/sonda2")).unwrap();
        assert_eq!(e.password.len(), 24);
        assert!(e.warning.is_some(), "granja/sonda2 is not a stored topic");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&e.password), "the password is never written");
        assert!(
            text.starts_with(BASE),
            "the existing file is kept as it was"
        );
        let cfg = Config::from_toml(&text, &path, []).unwrap();
        let a = cfg.raw.mqtt.users["sonda-2"].account();
        assert!(a.password_hash.unwrap().starts_with("$argon2id$"));
        assert_eq!(a.publish, Some(vec!["granja/sonda2".to_string()]));
        assert!(matches!(
            add(&path, "sonda-2", None),
            Err(EnrollError::Exists(..))
        ));
        assert!(matches!(
            add(&path, "mal nombre", None),
            Err(EnrollError::BadName(_))
        ));
        assert!(matches!(
            add(&path, "s3", Some("a/#")),
            Err(EnrollError::BadTopic(_))
        ));
    }
}
