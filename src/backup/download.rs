//! `biogestor backup --url`: a minimal HTTP/1.1 client for the snapshot download. The
//! appliance serves plain HTTP on the LAN, so std's `TcpStream` is all it takes (no TLS, no
//! client crate); both `Content-Length` and chunked bodies are handled.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use super::{BackupError, io};

/// `http://host:port[/prefix]` → (host:port, path prefix).
fn parse_url(url: &str) -> Result<(String, String), BackupError> {
    let bad = |why: &str| BackupError::BadUrl(url.to_string(), why.to_string());
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if url.starts_with("https://") {
        return Err(bad(
            "https is not supported: the appliance serves plain HTTP on the LAN; use http://",
        ));
    } else {
        return Err(bad("expected http://HOST:PORT, e.g. http://127.0.0.1:8080"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    let authority = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

/// Reads one CRLF-terminated line (at most 8 KiB).
fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    r.by_ref().take(8192).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed in the middle of the response headers",
        ));
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// A minimal HTTP/1.1 GET of `/api/admin/backup` (plain TCP: the appliance has no TLS),
/// streamed into `dest`.
pub(super) fn download(url: &str, token: &str, dest: &Path) -> Result<u64, BackupError> {
    let (authority, prefix) = parse_url(url)?;
    let fail = |detail: String| BackupError::Transfer {
        url: url.to_string(),
        detail,
    };
    let addrs: Vec<_> = authority
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve {authority}: {e}")))?
        .collect();
    let mut stream = None;
    let mut last_err = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = format!("cannot connect to {a}: {e}"),
        }
    }
    let mut stream = stream.ok_or_else(|| fail(last_err))?;
    // The service writes the whole snapshot before the first byte: allow for a big store on
    // an SD card.
    stream
        .set_read_timeout(Some(Duration::from_secs(30 * 60)))
        .map_err(|e| fail(e.to_string()))?;
    let request = format!(
        "GET {prefix}/api/admin/backup HTTP/1.1\r\nHost: {authority}\r\n\
         Authorization: Bearer {token}\r\nAccept-Encoding: identity\r\n\
         User-Agent: biogestor/{}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail(format!("sending the request: {e}")))?;
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    let status_line = read_line(&mut r).map_err(|e| fail(e.to_string()))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail(format!("not an HTTP answer: {status_line:?}")))?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    loop {
        let line = read_line(&mut r).map_err(|e| fail(e.to_string()))?;
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
    }
    if status != 200 {
        let mut body = Vec::new();
        let _ = r.take(64 * 1024).read_to_end(&mut body);
        let detail = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        let hint = match status {
            401 => {
                " (the token was refused: access tokens expire after auth.access_minutes; log in again)"
            }
            403 => " (the account is not an administrator: AprobarUsuarios is needed)",
            _ => "",
        };
        return Err(BackupError::Refused {
            status,
            detail: format!("{detail}{hint}"),
        });
    }
    let file = crate::fsmode::create_new(dest).map_err(io("cannot create", dest))?;
    let mut w = BufWriter::with_capacity(256 * 1024, file);
    let written = if chunked {
        copy_chunked(&mut r, &mut w).map_err(|e| fail(e.to_string()))?
    } else if let Some(n) = length {
        let got = std::io::copy(&mut r.by_ref().take(n), &mut w)
            .map_err(|e| fail(format!("receiving: {e}")))?;
        if got != n {
            return Err(fail(format!(
                "the transfer stopped after {got} of {n} bytes"
            )));
        }
        got
    } else {
        std::io::copy(&mut r, &mut w).map_err(|e| fail(format!("receiving: {e}")))?
    };
    let file = w
        .into_inner()
        .map_err(|e| io("cannot write", dest)(e.into_error()))?;
    file.sync_all().map_err(io("cannot flush", dest))?;
    Ok(written)
}

/// Decodes a chunked transfer-encoded body into `w`.
fn copy_chunked(r: &mut impl BufRead, w: &mut impl Write) -> std::io::Result<u64> {
    let mut total = 0;
    loop {
        let line = read_line(r)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad chunk size {size_text:?}"),
            )
        })?;
        if size == 0 {
            // Trailers, then the final empty line.
            while !read_line(r)?.is_empty() {}
            return Ok(total);
        }
        let got = std::io::copy(&mut r.by_ref().take(size), w)?;
        if got != size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the transfer stopped in the middle of a chunk",
            ));
        }
        total += got;
        read_line(r)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_authority_and_prefix() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080").expect("url"),
            ("127.0.0.1:8080".into(), String::new())
        );
        assert_eq!(
            parse_url("http://pi.local/biogestor/").expect("url"),
            ("pi.local:80".into(), "/biogestor".into())
        );
        assert!(parse_url("https://x:1").is_err());
        assert!(parse_url("127.0.0.1:8080").is_err());
    }

    #[test]
    fn chunked_bodies_decode() {
        let body = b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        let mut out = Vec::new();
        let n = copy_chunked(&mut &body[..], &mut out).expect("chunked");
        assert_eq!((n, out.as_slice()), (11, &b"hello world"[..]));
        let cut = b"5\r\nhel";
        assert!(copy_chunked(&mut &cut[..], &mut Vec::new()).is_err());
    }
}
