//! Default-deny over the whole spec: every field oci-spec reads is classified by `strict_policy::fields`
//! (judged, harmless or refused), every entry there names a real field, and every `Refused` field is
//! refused when a spec sets it. A field a new oci-spec brings fails here, before it reaches a node.

mod common;
mod probe;

use oci_spec::runtime::{LinuxResources, Process, Spec};
use serde_json::{json, Map, Value};
use strict_policy::fields::{class_of, spec_class, Class, Field, PROCESS, RESOURCES, SPEC};

use probe::{fields_of, Fields, Leaf};

fn unclassified(fields: &Fields, classify: impl Fn(&str) -> Option<&'static Field>) -> Vec<String> {
    fields
        .keys()
        .filter(|path| classify(path).is_none())
        .cloned()
        .collect()
}

#[test]
fn every_field_of_the_spec_an_exec_and_an_update_is_classified() {
    let spec = fields_of::<Spec>().unwrap();
    assert!(spec.len() > 300, "the probe found {} fields", spec.len());
    assert_eq!(unclassified(&spec, spec_class), Vec::<String>::new());
    let exec = fields_of::<Process>().unwrap();
    assert_eq!(
        unclassified(&exec, |p| class_of(PROCESS, p)),
        Vec::<String>::new()
    );
    let update = fields_of::<LinuxResources>().unwrap();
    assert_eq!(
        unclassified(&update, |p| class_of(RESOURCES, p)),
        Vec::<String>::new()
    );
}

#[test]
fn every_entry_names_a_field() {
    let spec = fields_of::<Spec>().unwrap();
    let tables: [(&str, &[Field]); 3] = [
        ("", SPEC),
        ("process.", PROCESS),
        ("linux.resources.", RESOURCES),
    ];
    let stale: Vec<String> = tables
        .iter()
        .flat_map(|(prefix, table)| table.iter().map(move |f| format!("{prefix}{}", f.path)))
        .filter(|path| !spec.contains_key(path))
        .collect();
    assert_eq!(stale, Vec::<String>::new());
}

/// A JSON value for the field at `path`, with every field below it set.
fn sample(fields: &Fields, path: &str) -> Value {
    match fields.get(path) {
        Some(Some(Leaf::String)) => json!("CAP_CHOWN"),
        Some(Some(Leaf::Integer)) => json!(1),
        Some(Some(Leaf::Bool)) => json!(true),
        Some(Some(Leaf::Variant(name))) => json!(name),
        Some(Some(Leaf::Empty)) => json!({}),
        _ => {
            if fields.contains_key(&format!("{path}[]")) {
                return json!([sample(fields, &format!("{path}[]"))]);
            }
            if fields.contains_key(&format!("{path}.*")) {
                return json!({"key": sample(fields, &format!("{path}.*"))});
            }
            let prefix = format!("{path}.");
            let mut object = Map::new();
            for child in fields.keys().filter(|k| k.starts_with(&prefix)) {
                let name = &child[prefix.len()..];
                if !name.contains('.') && !name.contains('[') && !name.contains('*') {
                    object.insert(name.to_string(), sample(fields, child));
                }
            }
            Value::Object(object)
        }
    }
}

/// `spec` with the field at `path` (dotted, no arrays) set to its sample; missing parents are sampled too.
fn with_field(mut spec: Value, fields: &Fields, path: &str) -> Value {
    let parts: Vec<&str> = path.split('.').collect();
    let mut node = &mut spec;
    for (i, part) in parts.iter().enumerate() {
        let here = parts[..=i].join(".");
        if i == parts.len() - 1 {
            node[*part] = sample(fields, &here);
        } else {
            if node.get(*part).is_none() {
                node[*part] = sample(fields, &here);
            }
            node = node.get_mut(*part).unwrap();
        }
    }
    spec
}

#[test]
fn every_refused_field_is_refused_when_set() {
    let fields = fields_of::<Spec>().unwrap();
    let perms = common::perms(&[]);
    let refused: Vec<(String, &str)> = [("", SPEC), ("process.", PROCESS)]
        .iter()
        .flat_map(|(prefix, table)| {
            table.iter().filter_map(move |f| match f.class {
                Class::Refused(rule) => Some((format!("{prefix}{}", f.path), rule)),
                _ => None,
            })
        })
        .collect();
    assert!(refused.len() >= 10, "{refused:?}");
    for (path, rule) in refused {
        let spec = with_field(common::spec(), &fields, &path);
        let (verdict, _) = common::run(&spec, &perms);
        assert!(
            verdict
                .violations
                .iter()
                .any(|v| v.rule == rule && v.field.starts_with(&path)),
            "{path} set ({}) is not refused by {rule}: {:?}",
            spec.pointer(&format!("/{}", path.replace('.', "/")))
                .unwrap_or(&Value::Null),
            verdict.violations
        );
    }
}

#[test]
fn docs_security_md_prints_the_tables() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/security.md"))
        .unwrap();
    let begin = "<!-- fields: generated from policy/src/fields.rs -->\n";
    let end = "<!-- end of fields -->";
    let start = page.find(begin).expect("the begin marker") + begin.len();
    let stop = page.find(end).expect("the end marker");
    if std::env::var_os("STRICT_BLESS").is_some() {
        let page = format!(
            "{}{}{}",
            &page[..start],
            strict_policy::fields::markdown(),
            &page[stop..]
        );
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/security.md"),
            page,
        )
        .unwrap();
        return;
    }
    assert_eq!(
        &page[start..stop],
        strict_policy::fields::markdown(),
        "docs/security.md is out of date: run this test with STRICT_BLESS=1"
    );
}

/// Every rule a table names is one the policy has (`x.*`: some rule of that area).
#[test]
fn every_rule_named_exists() {
    fn sources(dir: &std::path::Path, text: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, text);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("fields.rs") {
                text.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut code = String::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut code,
    );
    let ids = regex::Regex::new(r"\b[a-z]+\.(?:\*|[a-z-]+\b)|\bhook\b|\bsysctl\b|\bcapability\b")
        .unwrap();
    let sample: Vec<&str> = ids
        .find_iter("mount.* (x), exec: exec.user; sysctl")
        .map(|m| m.as_str())
        .collect();
    assert_eq!(sample, ["mount.*", "exec.user", "sysctl"]);
    let mut missing = Vec::new();
    for field in SPEC.iter().chain(PROCESS).chain(RESOURCES) {
        let text = match field.class {
            Class::Judged(rules) | Class::Refused(rules) => rules,
            Class::Harmless(_) => continue,
        };
        for id in ids.find_iter(text).map(|m| m.as_str()) {
            let found = match id.strip_suffix(".*") {
                Some(area) => code.contains(&format!("\"{area}.")),
                None => code.contains(&format!("\"{id}\"")),
            };
            if !found {
                missing.push(format!("{}: {id}", field.path));
            }
        }
    }
    assert_eq!(missing, Vec::<String>::new());
}
