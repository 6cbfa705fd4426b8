//! On a host with snapd: `GET /v2/connections?snap=NAME&select=all` on snapd's socket. Only the snap's own
//! plugs in `established` count, each with its live `plug-attrs`, and only those its profile
//! (`vendor-profiles/snaps/<snap>.toml`) declares: the snapctl source can only ask about those, and both
//! sources must give the same answer. `select=all` lists every plug the installed snap declares, so a
//! profile plug the snap lacks is reported (it is not connected). The request is HTTP/1.0 so snapd answers
//! with one body and closes; the whole exchange is bounded by the configuration's `source_timeout`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use strict_policy::{AttrValue, Catalog, Plug, PolicyConfig, Source};

use super::connections::Connections;

/// snapd answers far less than this; more is not snapd.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// What went wrong asking snapd (the caller names the socket), or why a connected plug is ignored.
#[derive(Debug, thiserror::Error)]
pub enum SnapdError {
    #[error("cannot connect: {0}")]
    CannotConnect(#[source] std::io::Error),
    #[error("the connection closed without an answer")]
    Closed,
    #[error("sending GET {path}: {source}")]
    Send {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("GET {path}: no complete answer within {}", humantime::format_duration(*.timeout))]
    NoAnswerInTime { path: String, timeout: Duration },
    #[error(transparent)]
    Socket(std::io::Error),
    #[error("GET {path}: answer larger than {MAX_RESPONSE} bytes")]
    TooLarge { path: String },
    #[error("reading the answer to GET {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The answer is not a well-formed HTTP response (`source` says how).
    #[error("GET {path}: {source}")]
    Response {
        path: String,
        #[source]
        source: Box<SnapdError>,
    },
    #[error("the answer ended inside its headers")]
    EndedInHeaders,
    #[error("not an HTTP answer: {0}")]
    NotHttp(#[source] httparse::Error),
    #[error("bad Content-Length {0:?}")]
    BadContentLength(String),
    #[error("the answer ended after {got} of {length} bytes")]
    Truncated { got: usize, length: usize },
    #[error("a chunk ended early")]
    ChunkEndedEarly,
    #[error("bad chunk size {0:?}")]
    BadChunkSize(String),
    #[error("GET {path}: HTTP {status} with a body that is not snapd's JSON ({source})")]
    NotJson {
        path: String,
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    /// snapd's error reply: its message, and its kind when it gives one.
    #[error("GET {path}: HTTP {status}: {message}{}", kind_text(.kind))]
    Refused {
        path: String,
        status: u16,
        message: String,
        kind: String,
    },
    #[error("GET {path}: unexpected result: {source}")]
    UnexpectedResult {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// A connected plug ignored: no profile knows its interface.
    #[error("no profile for interface {0}")]
    NoProfile(String),
    /// A connected plug ignored: an attribute its profile uses has a value it cannot take.
    #[error("attribute {key}: {message}")]
    Attribute { key: String, message: String },
    /// A connected plug ignored: its profile grants nothing for it.
    #[error(transparent)]
    Grant(strict_policy::Error),
    /// The snap's profile does not load.
    #[error(transparent)]
    Profile(strict_policy::Error),
}

fn kind_text(kind: &str) -> String {
    if kind.is_empty() {
        String::new()
    } else {
        format!(" (kind {kind})")
    }
}

pub fn connected(config: &PolicyConfig, catalog: &Catalog) -> Result<Connections, SnapdError> {
    let declared = catalog
        .snap_plugs(&config.snap)
        .map_err(SnapdError::Profile)?;
    let path = format!("/v2/connections?snap={}&select=all", config.snap);
    let (status, body) = get(&config.snapd_socket, &path, config.source_timeout)?;
    let reply: Envelope = serde_json::from_slice(&body).map_err(|source| SnapdError::NotJson {
        path: path.clone(),
        status,
        source,
    })?;
    if reply.kind == "error" || status != 200 {
        let error: ErrorResult = serde_json::from_value(reply.result).unwrap_or_default();
        return Err(SnapdError::Refused {
            path,
            status,
            message: error.message,
            kind: error.kind,
        });
    }
    let result: ConnectionsResult =
        serde_json::from_value(reply.result).map_err(|source| SnapdError::UnexpectedResult {
            path: path.clone(),
            source,
        })?;
    let mut plugs = Vec::new();
    let mut ignored = Vec::new();
    for connection in &result.established {
        // One of the snap's slots connected to another snap's plug; or, with `select=all`, an
        // auto-connection the operator disconnected.
        if connection.plug.snap != config.snap || connection.undesired {
            continue;
        }
        let name = &connection.plug.plug;
        if !declared.contains_key(name) {
            tracing::warn!(plug = %name, "connected plug ignored: the {} profile does not declare it", config.snap);
            ignored.push(format!(
                "{name} (not a plug of the {} profile)",
                config.snap
            ));
            continue;
        }
        match to_plug(catalog, connection) {
            Ok(plug) => plugs.push(plug),
            Err(why) => {
                tracing::warn!(plug = %name, "connected plug ignored: {why}");
                ignored.push(format!("{name} ({why})"));
            }
        }
    }
    // The snap's plugs: every one with `select=all`, and any connected one in any case.
    let installed: std::collections::BTreeSet<&str> = result
        .plugs
        .iter()
        .chain(result.established.iter().map(|c| &c.plug))
        .filter(|plug| plug.snap == config.snap)
        .map(|plug| plug.plug.as_str())
        .collect();
    let undeclared: Vec<String> = declared
        .keys()
        .filter(|name| !installed.contains(name.as_str()))
        .cloned()
        .collect();
    if !undeclared.is_empty() {
        tracing::warn!(
            snap = %config.snap,
            plugs = %undeclared.join(", "),
            "the installed snap does not declare these plugs of its profile: not connected"
        );
    }
    Ok(Connections {
        source: Source::Snapd,
        plugs,
        description: format!(
            "snapd ({}, snap {})",
            config.snapd_socket.display(),
            config.snap
        ),
        ignored,
        undeclared,
    })
}

/// A connection as a plug. Interfaces the profiles do not know grant nothing, and attributes an
/// interface's profile does not use are dropped: both only ever narrow what the workload gets.
fn to_plug(catalog: &Catalog, connection: &Connection) -> Result<Plug, SnapdError> {
    let def = catalog
        .interfaces
        .get(&connection.interface)
        .ok_or_else(|| SnapdError::NoProfile(connection.interface.clone()))?;
    let mut plug = Plug::bare(&connection.interface);
    plug.name = connection.plug.plug.clone();
    for (key, value) in &connection.plug_attrs {
        if !def.attributes.contains_key(key) {
            continue;
        }
        let value = AttrValue::from_json(value).map_err(|message| SnapdError::Attribute {
            key: key.clone(),
            message,
        })?;
        plug.attributes.insert(key.clone(), value);
    }
    catalog.interface_grant(&plug).map_err(SnapdError::Grant)?;
    Ok(plug)
}

/// One HTTP/1.0 GET over a unix socket: the status code and the body.
pub fn get(socket: &Path, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>), SnapdError> {
    let deadline = Instant::now() + timeout;
    let mut stream = UnixStream::connect(socket).map_err(SnapdError::CannotConnect)?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nAccept: application/json\r\n\r\n");
    match stream
        .set_write_timeout(Some(timeout))
        .and_then(|_| stream.write_all(request.as_bytes()))
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Err(SnapdError::Closed),
        Err(source) => {
            return Err(SnapdError::Send {
                path: path.to_string(),
                source,
            })
        }
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let no_answer = || SnapdError::NoAnswerInTime {
            path: path.to_string(),
            timeout,
        };
        if left.is_zero() {
            return Err(no_answer());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(SnapdError::Socket)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if response.len() > MAX_RESPONSE {
                    return Err(SnapdError::TooLarge {
                        path: path.to_string(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A peer that closes with our request unread resets the connection.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && response.is_empty() => {
                break
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(no_answer())
            }
            Err(source) => {
                return Err(SnapdError::Read {
                    path: path.to_string(),
                    source,
                })
            }
        }
    }
    parse_response(&response).map_err(|source| SnapdError::Response {
        path: path.to_string(),
        source: Box::new(source),
    })
}

fn parse_response(response: &[u8]) -> Result<(u16, Vec<u8>), SnapdError> {
    if response.is_empty() {
        return Err(SnapdError::Closed);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(response) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(SnapdError::EndedInHeaders),
        Err(e) => return Err(SnapdError::NotHttp(e)),
    };
    let status = parsed.code.unwrap_or(0);
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let body = &response[head_len..];
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(body)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| SnapdError::BadContentLength(length.clone()))?;
        if body.len() < length {
            return Err(SnapdError::Truncated {
                got: body.len(),
                length,
            });
        }
        body[..length].to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, SnapdError> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(SnapdError::ChunkEndedEarly)?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| SnapdError::BadChunkSize(size_text.to_string()))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err(SnapdError::ChunkEndedEarly);
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// snapd's reply envelope: `{"type": "sync"|"error", "status-code": N, "result": ...}`.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    result: serde_json::Value,
}

#[derive(Default, Deserialize)]
struct ErrorResult {
    #[serde(default)]
    message: String,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize)]
struct ConnectionsResult {
    #[serde(default)]
    established: Vec<Connection>,
    /// With `select=all`: every plug of the snap, connected or not.
    #[serde(default)]
    plugs: Vec<PlugRef>,
}

#[derive(Deserialize)]
struct Connection {
    plug: PlugRef,
    interface: String,
    /// An auto-connection the operator disconnected (listed with `select=all`).
    #[serde(default)]
    undesired: bool,
    #[serde(rename = "plug-attrs", default)]
    plug_attrs: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct PlugRef {
    snap: String,
    plug: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_with_length_chunks_or_close() {
        let plain = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}";
        assert_eq!(parse_response(plain).unwrap(), (200, b"{\"a\":1}".to_vec()));
        let sized = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}trailing";
        assert_eq!(parse_response(sized).unwrap(), (404, b"{}".to_vec()));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).unwrap(),
            (200, b"{\"a\":1}".to_vec())
        );
        let error = |response: &[u8]| parse_response(response).unwrap_err().to_string();
        assert!(error(b"").contains("closed"));
        assert!(error(b"HTTP/1.1 200 OK\r\nContent-").contains("headers"));
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}";
        assert!(error(short).contains("2 of 10"));
    }
}
