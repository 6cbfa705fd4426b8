//! containerd's runtime options for runtimes other than runc: `runtimeoptions.v1.Options`, which CRI
//! fills from the runtime's `options` table (`ConfigPath`, else the whole table as TOML in `config_body`)
//! and `ctr run --runtime-config-path` from its flag. containerd hands them to the `start` action on
//! stdin; `start` passes them to the long-running shim in its environment (`ConfigRequest::to_env`), and
//! the shim to its gate processes.

use std::path::PathBuf;

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::CodedInputStream;

use strict_protocol::ConfigRequest;

use crate::error::{Error, Result};

/// The message's type URL, without a host prefix.
const TYPE_NAME: &str = "runtimeoptions.v1.Options";

/// `config_path` and `config_body` of a `runtimeoptions.v1.Options` (fields 2 and 3; field 1 is an
/// unused type URL). None when `any` is another message (e.g. runc's options).
pub fn decode(any: &Any) -> Result<Option<(String, Vec<u8>)>> {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    if name != TYPE_NAME {
        return Ok(None);
    }
    let mut input = CodedInputStream::from_bytes(&any.value);
    let (mut path, mut body) = (String::new(), Vec::new());
    let bad = |e: containerd_shim::protos::protobuf::Error| {
        Error::InvalidArgument(format!("{TYPE_NAME}: {e}"))
    };
    while !input.eof().map_err(bad)? {
        let tag = input.read_raw_varint32().map_err(bad)?;
        match (tag >> 3, tag & 7) {
            (2, 2) => path = input.read_string().map_err(bad)?,
            (3, 2) => body = input.read_bytes().map_err(bad)?,
            (_, wire_type) => {
                let wire_type = containerd_shim::protos::protobuf::rt::WireType::new(wire_type)
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!("{TYPE_NAME}: bad wire type {wire_type}"))
                    })?;
                input.skip_field(wire_type).map_err(bad)?;
            }
        }
    }
    Ok(Some((path, body)))
}

/// The configuration the options ask for (empty when they name none).
pub fn request_of(any: &Any) -> Result<ConfigRequest> {
    let mut request = ConfigRequest::default();
    if let Some((path, body)) = decode(any)? {
        if !path.is_empty() {
            request.runtime_path = Some(PathBuf::from(path));
        } else if !body.is_empty() {
            request.runtime_body = Some(String::from_utf8(body).map_err(|_| {
                Error::InvalidArgument(format!("{TYPE_NAME}: config_body is not UTF-8 text"))
            })?);
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `ctr run --runtime-config-path /tmp/exp-shim/c.toml` sends (captured from containerd 2.1.9).
    const CTR_OPTIONS: &[u8] = b"\x12\x14/tmp/exp-shim/c.toml";

    #[test]
    fn decodes_what_containerd_sends() {
        let any = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: CTR_OPTIONS.to_vec(),
            ..Any::default()
        };
        let request = request_of(&any).unwrap();
        assert_eq!(
            request.runtime_path,
            Some(PathBuf::from("/tmp/exp-shim/c.toml"))
        );
        assert_eq!(
            request.to_env(),
            vec![(
                strict_protocol::config_request::PATH_ENV,
                "/tmp/exp-shim/c.toml".to_string()
            )]
        );

        // CRI with no ConfigPath: the options table as TOML, after an unused type_url field.
        let mut value = b"\x0a\x03abc\x1a".to_vec();
        let body = b"mode = \"complain\"\n";
        value.push(body.len() as u8);
        value.extend_from_slice(body);
        let any = Any {
            type_url: "type.googleapis.com/runtimeoptions.v1.Options".into(),
            value,
            ..Any::default()
        };
        let request = request_of(&any).unwrap();
        assert_eq!(
            request.runtime_body.as_deref(),
            Some("mode = \"complain\"\n")
        );

        let runc = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: b"\x12\x04runc".to_vec(),
            ..Any::default()
        };
        assert_eq!(request_of(&runc).unwrap(), ConfigRequest::default());

        let truncated = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: b"\x12\x40/tmp".to_vec(),
            ..Any::default()
        };
        assert!(request_of(&truncated).is_err());
    }
}
