//! Loading `vendor-profiles/`: the base profile, one file per interface, and the snaps' plug lists.

pub mod render;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use include_dir::{include_dir, Dir};
use regex::Regex;
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::pattern::{normalize_lexically, PathPattern};
use schema::*;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../vendor-profiles");

/// A plug attribute's value as a plug carries it (from snapd, a snap file or `--connect`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    Str(String),
    Bool(bool),
    List(Vec<String>),
}

impl AttrValue {
    fn strings(&self) -> Vec<String> {
        match self {
            AttrValue::Str(s) => vec![s.clone()],
            AttrValue::Bool(b) => vec![b.to_string()],
            AttrValue::List(items) => items.clone(),
        }
    }

    /// An attribute as snapd reports it (`plug-attrs` in `/v2/connections`).
    pub fn from_json(value: &serde_json::Value) -> std::result::Result<Self, String> {
        match value {
            serde_json::Value::String(s) => Ok(AttrValue::Str(s.clone())),
            serde_json::Value::Bool(b) => Ok(AttrValue::Bool(*b)),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("list item {item} is not a string"))
                })
                .collect::<std::result::Result<_, _>>()
                .map(AttrValue::List),
            other => Err(format!("unsupported attribute value {other}")),
        }
    }

    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
        // One reading of attribute values, whichever format carried them.
        let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
        AttrValue::from_json(&json)
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::List(items) => f.write_str(&items.join(", ")),
        }
    }
}

/// A connected plug: an interface and its attributes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plug {
    /// The plug's name in its snap (equal to the interface for implicit plugs and `--connect`).
    pub name: String,
    pub interface: String,
    pub attributes: BTreeMap<String, AttrValue>,
}

impl Plug {
    pub fn bare(interface: &str) -> Plug {
        Plug {
            name: interface.to_string(),
            interface: interface.to_string(),
            attributes: BTreeMap::new(),
        }
    }

    pub fn with(interface: &str, attribute: &str, value: AttrValue) -> Plug {
        let mut plug = Plug::bare(interface);
        plug.attributes.insert(attribute.to_string(), value);
        plug
    }

    /// Parses `INTERFACE[:ATTR=VALUE[,ATTR=VALUE...]]`. An attribute given twice collects a list
    /// (`system-files:read=/etc,read=/srv`).
    pub fn parse(text: &str) -> Result<Plug> {
        let (interface, rest) = match text.split_once(':') {
            Some((interface, rest)) => (interface, Some(rest)),
            None => (text, None),
        };
        if interface.is_empty() {
            return Err(Error::plug(text, "expected INTERFACE[:ATTR=VALUE,...]"));
        }
        let mut plug = Plug::bare(interface);
        for pair in rest.into_iter().flat_map(|r| r.split(',')) {
            let (key, value) = pair
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    Error::plug(text, format!("attribute {pair:?} is not ATTR=VALUE"))
                })?;
            let value = value.to_string();
            match plug.attributes.remove(key) {
                None => plug
                    .attributes
                    .insert(key.to_string(), AttrValue::Str(value)),
                Some(previous) => {
                    let mut items = previous.strings();
                    items.push(value);
                    plug.attributes
                        .insert(key.to_string(), AttrValue::List(items))
                }
            };
        }
        Ok(plug)
    }

    /// The plug in `--connect` syntax.
    pub fn connect_syntax(&self) -> String {
        let mut out = self.interface.clone();
        let mut first = true;
        for (key, value) in &self.attributes {
            for item in value.strings() {
                out.push(if first { ':' } else { ',' });
                first = false;
                out.push_str(&format!("{key}={item}"));
            }
        }
        out
    }
}

impl fmt::Display for Plug {
    /// `system-files (read: /etc)`: how messages name a plug to connect.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.interface)?;
        if !self.attributes.is_empty() {
            let attrs: Vec<String> = self
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            write!(f, " ({})", attrs.join(", "))?;
        }
        Ok(())
    }
}

/// All of `vendor-profiles/`, validated.
#[derive(Debug)]
pub struct Catalog {
    pub base: BaseDef,
    pub interfaces: BTreeMap<String, InterfaceDef>,
    pub snaps: BTreeMap<String, SnapDef>,
    /// SHA-256 of the profile files (names and contents), so a decision can name the policy it used.
    pub digest: String,
    device_patterns: FxHashMap<(String, String), Regex>,
}

impl Catalog {
    /// The profiles compiled into the binary.
    pub fn embedded() -> Result<Catalog> {
        let mut files = Vec::new();
        collect_embedded(&EMBEDDED, &mut files);
        Catalog::from_files(files)
    }

    /// Profiles from a directory laid out like `vendor-profiles/`.
    pub fn from_dir(dir: &Path) -> Result<Catalog> {
        let mut files = Vec::new();
        for sub in ["", "interfaces", "snaps"] {
            let path = dir.join(sub);
            let entries = std::fs::read_dir(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                let file = entry.path();
                if file.extension().is_some_and(|e| e == "toml") {
                    let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
                        path: file.clone(),
                        source,
                    })?;
                    let relative = file.strip_prefix(dir).unwrap_or(&file);
                    files.push((relative.display().to_string(), text));
                }
            }
        }
        Catalog::from_files(files)
    }

    /// Builds a catalog from `(relative path, contents)` pairs.
    pub fn from_files(mut files: Vec<(String, String)>) -> Result<Catalog> {
        files.sort();
        let digest = digest_files(&files);
        let mut base = None;
        let mut interfaces = BTreeMap::new();
        let mut snaps = BTreeMap::new();
        for (name, text) in files {
            let parse_error =
                |e: toml::de::Error| Error::profile(&name, crate::error::toml_message(&text, &e));
            if name == "base.toml" {
                base = Some(toml::from_str::<BaseDef>(&text).map_err(parse_error)?);
            } else if let Some(stem) = strip_dir(&name, "interfaces") {
                let def: InterfaceDef = toml::from_str(&text).map_err(parse_error)?;
                if def.interface != stem {
                    return Err(Error::profile(
                        &name,
                        format!(
                            "key `interface`: {:?} does not match the file name",
                            def.interface
                        ),
                    ));
                }
                interfaces.insert(def.interface.clone(), def);
            } else if let Some(stem) = strip_dir(&name, "snaps") {
                let def: SnapDef = toml::from_str(&text).map_err(parse_error)?;
                if def.snap != stem {
                    return Err(Error::profile(
                        &name,
                        format!("key `snap`: {:?} does not match the file name", def.snap),
                    ));
                }
                snaps.insert(def.snap.clone(), def);
            } else {
                return Err(Error::profile(
                    &name,
                    "unexpected file in the profiles directory",
                ));
            }
        }
        let base = base.ok_or_else(|| Error::profile("base.toml", "missing"))?;
        let mut catalog = Catalog {
            base,
            interfaces,
            snaps,
            digest,
            device_patterns: FxHashMap::default(),
        };
        catalog.validate()?;
        Ok(catalog)
    }

    fn validate(&mut self) -> Result<()> {
        for (namespace, alternatives) in &self.base.host_namespaces {
            for name in alternatives.iter().flatten() {
                if !self.interfaces.contains_key(name) {
                    return Err(Error::profile(
                        "base.toml",
                        format!("key `host_namespaces.{namespace}`: unknown interface {name:?}"),
                    ));
                }
            }
        }
        for (name, def) in &self.interfaces {
            let file = format!("interfaces/{name}.toml");
            for (attr, attr_def) in &def.attributes {
                let key = format!("attributes.{attr}");
                let allowed_values: Vec<String> = match attr_def.kind {
                    AttributeType::Enum => attr_def.values.clone(),
                    AttributeType::Bool => vec!["true".into(), "false".into()],
                    _ => Vec::new(),
                };
                if attr_def.kind == AttributeType::Enum && attr_def.values.is_empty() {
                    return Err(Error::profile(
                        &file,
                        format!("key `{key}`: an enum needs `values`"),
                    ));
                }
                for value in attr_def.grants.keys() {
                    if !allowed_values.contains(value) {
                        return Err(Error::profile(
                            &file,
                            format!("key `{key}.grants.{value}`: not a value of this attribute"),
                        ));
                    }
                }
                let needs_access = matches!(
                    attr_def.kind,
                    AttributeType::Paths | AttributeType::HomePaths
                );
                if needs_access && attr_def.access.is_none() {
                    return Err(Error::profile(
                        &file,
                        format!("key `{key}`: needs `access`"),
                    ));
                }
                if attr_def.kind == AttributeType::DevicePath {
                    let pattern = attr_def.pattern.as_deref().ok_or_else(|| {
                        Error::profile(&file, format!("key `{key}`: needs `pattern`"))
                    })?;
                    if attr_def.device_type.is_none() {
                        return Err(Error::profile(
                            &file,
                            format!("key `{key}`: needs `device_type`"),
                        ));
                    }
                    let regex = Regex::new(pattern)
                        .map_err(|e| Error::profile(&file, format!("key `{key}.pattern`: {e}")))?;
                    self.device_patterns
                        .insert((name.clone(), attr.clone()), regex);
                }
            }
        }
        for (snap, def) in &self.snaps {
            let file = format!("snaps/{snap}.toml");
            for (plug_name, plug) in &def.plugs {
                let plug = self
                    .plug_from_def(plug_name, plug)
                    .map_err(|e| Error::profile(&file, format!("key `plugs.{plug_name}`: {e}")))?;
                self.interface_grant(&plug)
                    .map_err(|e| Error::profile(&file, format!("key `plugs.{plug_name}`: {e}")))?;
            }
            for connected in &def.default.connected {
                if !def.plugs.contains_key(connected) {
                    return Err(Error::profile(
                        &file,
                        format!(
                            "key `default.connected`: {connected:?} is not a plug of this snap"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn plug_from_def(&self, name: &str, def: &PlugDef) -> Result<Plug> {
        let mut attributes = BTreeMap::new();
        for (key, value) in &def.attributes {
            let value = AttrValue::from_toml(value).map_err(|m| Error::plug(name, m))?;
            attributes.insert(key.clone(), value);
        }
        Ok(Plug {
            name: name.to_string(),
            interface: def.interface.clone(),
            attributes,
        })
    }

    pub fn interface(&self, name: &str) -> Result<&InterfaceDef> {
        self.interfaces.get(name).ok_or_else(|| {
            Error::plug(
                name,
                format!(
                    "unknown interface {name:?} (known: {})",
                    self.interfaces
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    pub fn snap(&self, name: &str) -> Result<&SnapDef> {
        self.snaps.get(name).ok_or_else(|| {
            Error::profile(
                format!("snaps/{name}.toml"),
                format!("no plug list for snap {name:?}"),
            )
        })
    }

    /// The plugs a snap declares, by plug name.
    pub fn snap_plugs(&self, snap: &str) -> Result<BTreeMap<String, Plug>> {
        let def = self.snap(snap)?;
        def.plugs
            .iter()
            .map(|(name, plug)| Ok((name.clone(), self.plug_from_def(name, plug)?)))
            .collect()
    }

    /// The plugs connected on a standard install of `snap`: the embedded default.
    pub fn default_connections(&self, snap: &str) -> Result<Vec<Plug>> {
        let mut plugs = self.snap_plugs(snap)?;
        let def = self.snap(snap)?;
        Ok(def
            .default
            .connected
            .iter()
            .filter_map(|name| plugs.remove(name))
            .collect())
    }

    /// What one plug grants a workload: the interface's grant plus what its attributes add. Unknown
    /// interfaces, unknown attributes and bad values are errors.
    pub fn interface_grant(&self, plug: &Plug) -> Result<GrantDef> {
        let def = self.interface(&plug.interface)?;
        let mut grant = def.grant.clone();
        let bad = |m: String| Error::plug(plug.connect_syntax(), m);
        for (attr, value) in &plug.attributes {
            let attr_def = def.attributes.get(attr).ok_or_else(|| {
                let known: Vec<&str> = def.attributes.keys().map(String::as_str).collect();
                bad(format!(
                    "interface {} has no attribute {attr:?} (known: {})",
                    plug.interface,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
            match attr_def.kind {
                AttributeType::Enum | AttributeType::Bool => {
                    let text = match value {
                        AttrValue::Str(s) => s.clone(),
                        AttrValue::Bool(b) => b.to_string(),
                        AttrValue::List(_) => {
                            return Err(bad(format!("attribute {attr} takes one value")))
                        }
                    };
                    let allowed: Vec<String> = if attr_def.kind == AttributeType::Bool {
                        vec!["true".into(), "false".into()]
                    } else {
                        attr_def.values.clone()
                    };
                    if !allowed.contains(&text) {
                        return Err(bad(format!(
                            "attribute {attr}={text} is not one of {}",
                            allowed.join(", ")
                        )));
                    }
                    if let Some(extra) = attr_def.grants.get(&text) {
                        merge(&mut grant, extra);
                    }
                }
                AttributeType::String => {}
                AttributeType::Paths | AttributeType::HomePaths => {
                    let access = attr_def.access.unwrap_or(Access::Ro);
                    for item in value.strings() {
                        for path in expand_attribute_path(attr_def.kind, &item).map_err(bad)? {
                            grant.paths.push(PathGrantDef {
                                path,
                                access,
                                propagation: Propagation::Private,
                            });
                        }
                    }
                }
                AttributeType::DevicePath => {
                    let AttrValue::Str(path) = value else {
                        return Err(bad(format!("attribute {attr} takes one device path")));
                    };
                    let regex = &self.device_patterns[&(plug.interface.clone(), attr.clone())];
                    if !regex.is_match(path) {
                        return Err(bad(format!(
                            "attribute {attr}={path} does not match {}",
                            regex.as_str()
                        )));
                    }
                    let pattern = PathPattern::parse(path).map_err(bad)?;
                    if !pattern.is_literal() {
                        return Err(bad(format!("attribute {attr}={path} must not be a glob")));
                    }
                    grant.devices.push(DeviceGrantDef {
                        path: Some(pattern),
                        kind: attr_def.device_type.unwrap_or(DeviceType::Char),
                        major: None,
                        minor: None,
                        access: DeviceAccess::parse("rw").expect("valid"),
                        host_bind: true,
                    });
                }
            }
        }
        for (attr, attr_def) in &def.attributes {
            if attr_def.required && !plug.attributes.contains_key(attr) {
                return Err(bad(format!("attribute {attr} is required")));
            }
        }
        Ok(grant)
    }
}

/// `paths`: an absolute literal path; `home-paths`: `$HOME/...`, which means root's home. snapd's rule is
/// `owner @{HOME}/...`: the file must belong to the process's user, and the snap's daemons (containerd
/// among them) run as root, so another user's home is not theirs to grant.
fn expand_attribute_path(
    kind: AttributeType,
    text: &str,
) -> std::result::Result<Vec<PathPattern>, String> {
    if text.contains(['*', '?', '[', ']', '{', '}', '~', '@']) {
        return Err(format!("path {text:?} must not contain globs or ~"));
    }
    if text.len() > 1 && text.ends_with('/') {
        return Err(format!("path {text:?} must not end with '/'"));
    }
    let absolute: Vec<String> = match kind {
        AttributeType::HomePaths => {
            let rest = text
                .strip_prefix("$HOME/")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| format!("path {text:?} must start with $HOME/"))?;
            vec![format!("/root/{rest}")]
        }
        _ => vec![text.to_string()],
    };
    absolute
        .iter()
        .map(|p| {
            let literal = p.replace('*', "x");
            if normalize_lexically(Path::new(&literal)).is_none() {
                return Err(format!("path {text:?} must be absolute, without '..'"));
            }
            PathPattern::parse(p)
        })
        .collect()
}

fn merge(into: &mut GrantDef, extra: &GrantDef) {
    into.paths.extend(extra.paths.iter().cloned());
    into.devices.extend(extra.devices.iter().cloned());
    into.capabilities.extend(extra.capabilities.iter().cloned());
    into.syscalls.extend(extra.syscalls.iter().cloned());
    into.syscall_filters
        .extend(extra.syscall_filters.iter().cloned());
    into.sysctls.extend(extra.sysctls.iter().cloned());
    into.privileged |= extra.privileged;
}

fn strip_dir<'a>(name: &'a str, dir: &str) -> Option<&'a str> {
    name.strip_prefix(dir)?
        .strip_prefix('/')?
        .strip_suffix(".toml")
        .filter(|stem| !stem.contains('/'))
}

fn digest_files(files: &[(String, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (name, text) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    hex(&hasher.finalize())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn collect_embedded(dir: &Dir<'static>, out: &mut Vec<(String, String)>) {
    for file in dir.files() {
        let path = file.path().display().to_string();
        if path.ends_with(".toml") {
            if let Some(text) = file.contents_utf8() {
                out.push((path, text.to_string()));
            }
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plug_syntax_round_trips() {
        let plug = Plug::parse("system-files:read=/etc,read=/srv,write=/data").unwrap();
        assert_eq!(plug.interface, "system-files");
        assert_eq!(
            plug.attributes["read"],
            AttrValue::List(vec!["/etc".into(), "/srv".into()])
        );
        assert_eq!(
            plug.connect_syntax(),
            "system-files:read=/etc,read=/srv,write=/data"
        );
        assert_eq!(
            plug.to_string(),
            "system-files (read: /etc, /srv, write: /data)"
        );
        assert_eq!(Plug::parse("kvm").unwrap(), Plug::bare("kvm"));
    }

    #[test]
    fn plug_syntax_errors() {
        for bad in ["", ":read=all", "home:read", "home:=all"] {
            assert!(Plug::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn home_paths_expand_to_every_home() {
        let paths = expand_attribute_path(AttributeType::HomePaths, "$HOME/.kube").unwrap();
        let text: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        assert_eq!(text, ["/root/.kube"]);
        assert!(expand_attribute_path(AttributeType::HomePaths, "/etc").is_err());
        assert!(expand_attribute_path(AttributeType::Paths, "/etc/../root").is_err());
        assert!(expand_attribute_path(AttributeType::Paths, "/etc/*").is_err());
        assert!(expand_attribute_path(AttributeType::Paths, "etc").is_err());
    }
}
