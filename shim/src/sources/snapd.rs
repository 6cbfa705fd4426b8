//! On a host with snapd: `GET /v2/connections?snap=NAME` on snapd's socket. Only the snap's own plugs in
//! `established` count, each with its `plug-attrs`. The request is HTTP/1.0 so snapd answers with one body
//! and closes; the whole exchange is bounded by the configuration's `source_timeout`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use serde::Deserialize;
use strict_policy::{AttrValue, Catalog, Plug, PolicyConfig, Source};

use super::{Connections, SourceError};

/// snapd answers far less than this; more is not snapd.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

pub fn connected(config: &PolicyConfig, catalog: &Catalog) -> Result<Connections, SourceError> {
    let fail = |message: String| SourceError::Snapd {
        socket: config.snapd_socket.clone(),
        message,
    };
    let path = format!("/v2/connections?snap={}", config.snap);
    let (status, body) = get(&config.snapd_socket, &path, config.source_timeout).map_err(&fail)?;
    let reply: Envelope = serde_json::from_slice(&body).map_err(|e| {
        fail(format!(
            "GET {path}: HTTP {status} with a body that is not snapd's JSON ({e})"
        ))
    })?;
    if reply.kind == "error" || status != 200 {
        let error: ErrorResult = serde_json::from_value(reply.result).unwrap_or_default();
        return Err(fail(format!(
            "GET {path}: HTTP {status}: {}{}",
            error.message,
            if error.kind.is_empty() {
                String::new()
            } else {
                format!(" (kind {})", error.kind)
            }
        )));
    }
    let result: ConnectionsResult = serde_json::from_value(reply.result)
        .map_err(|e| fail(format!("GET {path}: unexpected result: {e}")))?;
    let mut plugs = Vec::new();
    let mut ignored = Vec::new();
    for connection in result.established {
        if connection.plug.snap != config.snap {
            continue; // one of the snap's slots, connected to another snap's plug
        }
        match to_plug(catalog, &connection) {
            Ok(plug) => plugs.push(plug),
            Err(why) => {
                tracing::warn!(plug = %connection.plug.plug, "connected plug ignored: {why}");
                ignored.push(format!("{} ({why})", connection.plug.plug));
            }
        }
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
    })
}

/// A connection as a plug. Interfaces the profiles do not know grant nothing, and attributes an
/// interface's profile does not use are dropped: both only ever narrow what the workload gets.
fn to_plug(catalog: &Catalog, connection: &Connection) -> Result<Plug, String> {
    let def = catalog
        .interfaces
        .get(&connection.interface)
        .ok_or_else(|| format!("no profile for interface {}", connection.interface))?;
    let mut plug = Plug::bare(&connection.interface);
    plug.name = connection.plug.plug.clone();
    for (key, value) in &connection.plug_attrs {
        if !def.attributes.contains_key(key) {
            continue;
        }
        let value = AttrValue::from_json(value).map_err(|e| format!("attribute {key}: {e}"))?;
        plug.attributes.insert(key.clone(), value);
    }
    catalog.interface_grant(&plug).map_err(|e| e.to_string())?;
    Ok(plug)
}

/// One HTTP/1.0 GET over a unix socket: the status code and the body.
pub fn get(
    socket: &Path,
    path: &str,
    timeout: std::time::Duration,
) -> Result<(u16, Vec<u8>), String> {
    let deadline = Instant::now() + timeout;
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("cannot connect: {e}"))?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nAccept: application/json\r\n\r\n");
    match stream
        .set_write_timeout(Some(timeout))
        .and_then(|_| stream.write_all(request.as_bytes()))
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Err("the connection closed without an answer".into())
        }
        Err(e) => return Err(format!("sending GET {path}: {e}")),
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "GET {path}: no complete answer within {}",
                humantime::format_duration(timeout)
            ));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if response.len() > MAX_RESPONSE {
                    return Err(format!(
                        "GET {path}: answer larger than {MAX_RESPONSE} bytes"
                    ));
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
                return Err(format!(
                    "GET {path}: no complete answer within {}",
                    humantime::format_duration(timeout)
                ))
            }
            Err(e) => return Err(format!("reading the answer to GET {path}: {e}")),
        }
    }
    parse_response(&response).map_err(|e| format!("GET {path}: {e}"))
}

fn parse_response(response: &[u8]) -> Result<(u16, Vec<u8>), String> {
    if response.is_empty() {
        return Err("the connection closed without an answer".into());
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(response) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("the answer ended inside its headers".into()),
        Err(e) => return Err(format!("not an HTTP answer: {e}")),
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
            .map_err(|_| format!("bad Content-Length {length:?}"))?;
        if body.len() < length {
            return Err(format!(
                "the answer ended after {} of {length} bytes",
                body.len()
            ));
        }
        body[..length].to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk ended early")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("a chunk ended early".into());
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
}

#[derive(Deserialize)]
struct Connection {
    plug: PlugRef,
    interface: String,
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
        assert!(parse_response(b"").unwrap_err().contains("closed"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-")
            .unwrap_err()
            .contains("headers"));
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}";
        assert!(parse_response(short).unwrap_err().contains("2 of 10"));
    }
}
