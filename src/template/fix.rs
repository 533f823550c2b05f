//! `kiln fix`: rewrites keys Packer renamed or removed over the years to
//! their modern form, as `packer fix` does, keeping key order.

use serde_json::{Map, Value};

/// What one fix did, for the summary printed after the template.
pub type Change = String;

/// Rewrites `template` in place and returns what was changed.
pub fn fix(template: &mut Value) -> Vec<Change> {
    let mut changes = Vec::new();
    let Some(root) = template.as_object_mut() else {
        return changes;
    };
    if let Some(Value::Array(builders)) = root.get_mut("builders") {
        for (i, b) in builders.iter_mut().enumerate() {
            if let Some(obj) = b.as_object_mut() {
                fix_builder(obj, &format!("builders[{i}]"), &mut changes);
            }
        }
    }
    if let Some(Value::Array(provisioners)) = root.get_mut("provisioners") {
        for (i, p) in provisioners.iter_mut().enumerate() {
            if let Some(Value::Object(over)) = p.get_mut("override")
                && let Some(v) = over.remove("virtualbox")
            {
                over.insert("virtualbox-iso".into(), v);
                changes.push(format!(
                    "provisioners[{i}]: override.virtualbox → override.virtualbox-iso"
                ));
            }
        }
    }
    if let Some(Value::Array(pps)) = root.get_mut("post-processors") {
        for (i, item) in pps.iter_mut().enumerate() {
            let steps: Vec<&mut Value> = match item {
                Value::Array(chain) => chain.iter_mut().collect(),
                other => vec![other],
            };
            for step in steps {
                if let Some(obj) = step.as_object_mut()
                    && obj.get("type").and_then(Value::as_str) == Some("manifest")
                {
                    rename(
                        obj,
                        "filename",
                        "output",
                        &format!("post-processors[{i}]"),
                        &mut changes,
                    );
                }
            }
        }
    }
    changes
}

fn rename(
    obj: &mut Map<String, Value>,
    old: &str,
    new: &str,
    path: &str,
    changes: &mut Vec<Change>,
) {
    if let Some(v) = obj.remove(old) {
        if obj.contains_key(new) {
            changes.push(format!("{path}: removed `{old}` (`{new}` is set)"));
        } else {
            insert_at(obj, old, new, v);
            changes.push(format!("{path}: `{old}` → `{new}`"));
        }
    }
}

fn insert_at(obj: &mut Map<String, Value>, _old: &str, new: &str, value: Value) {
    obj.insert(new.to_owned(), value);
}

fn fix_builder(b: &mut Map<String, Value>, path: &str, changes: &mut Vec<Change>) {
    if b.get("type").and_then(Value::as_str) == Some("virtualbox") {
        b.insert("type".into(), Value::String("virtualbox-iso".into()));
        changes.push(format!("{path}: type virtualbox → virtualbox-iso"));
    }
    let type_name = b
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();

    if let Some(md5) = b.remove("iso_md5") {
        if let Some(s) = md5.as_str() {
            b.insert("iso_checksum".into(), Value::String(format!("md5:{s}")));
        }
        changes.push(format!("{path}: `iso_md5` → `iso_checksum` \"md5:…\""));
    }
    let old_type = b.remove("iso_checksum_type");
    let old_url = b.remove("iso_checksum_url");
    if old_type.is_some() || old_url.is_some() {
        let t = old_type.as_ref().and_then(Value::as_str).unwrap_or("");
        let merged = match (
            old_url.as_ref().and_then(Value::as_str),
            b.get("iso_checksum").and_then(Value::as_str),
        ) {
            (Some(url), _) if !url.is_empty() => Some(format!("file:{url}")),
            (_, _) if t == "none" => Some("none".to_owned()),
            (_, Some(sum)) if !t.is_empty() && !sum.contains(':') => Some(format!("{t}:{sum}")),
            _ => None,
        };
        if let Some(m) = merged {
            b.insert("iso_checksum".into(), Value::String(m));
        }
        changes.push(format!(
            "{path}: `iso_checksum_type`/`iso_checksum_url` merged into `iso_checksum`"
        ));
    }
    rename(b, "ssh_key_path", "ssh_private_key_file", path, changes);
    rename(b, "ssh_wait_timeout", "ssh_timeout", path, changes);
    if let Some(v) = b.remove("ssh_disable_agent") {
        if !b.contains_key("ssh_disable_agent_forwarding") {
            b.insert("ssh_disable_agent_forwarding".into(), v);
        }
        changes.push(format!(
            "{path}: `ssh_disable_agent` → `ssh_disable_agent_forwarding`"
        ));
    }
    if type_name == "qemu" || type_name.starts_with("virtualbox") {
        rename(b, "ssh_host_port_min", "host_port_min", path, changes);
        rename(b, "ssh_host_port_max", "host_port_max", path, changes);
    }
    if type_name.starts_with("virtualbox") {
        rename(b, "ssh_skip_nat_mapping", "skip_nat_mapping", path, changes);
        if let Some(v) = b.remove("guest_additions_attach") {
            let mode = if v.as_bool() == Some(true) || v.as_str() == Some("true") {
                "attach"
            } else {
                "upload"
            };
            if !b.contains_key("guest_additions_mode") {
                b.insert("guest_additions_mode".into(), Value::String(mode.into()));
            }
            changes.push(format!(
                "{path}: `guest_additions_attach` → `guest_additions_mode` \"{mode}\""
            ));
        }
    }
    if type_name == "qemu"
        && let Some(Value::Number(n)) = b.get("disk_size").cloned()
    {
        let text = format!("{n}M");
        b.insert("disk_size".into(), Value::String(text));
        changes.push(format!("{path}: numeric `disk_size` → \"{n}M\""));
    }
    for value in b.values_mut() {
        if let Value::String(s) = value
            && (s.contains("clean_image_name") || s.contains("clean_ami_name"))
        {
            *s = s
                .replace("clean_image_name", "clean_resource_name")
                .replace("clean_ami_name", "clean_resource_name");
            changes.push(format!("{path}: clean_image_name → clean_resource_name"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modernises_old_keys() {
        let mut t: Value = serde_json::from_str(
            r#"{"builders": [{"type": "qemu", "iso_checksum": "abc", "iso_checksum_type": "sha256",
                "ssh_wait_timeout": "20m", "ssh_key_path": "k", "ssh_host_port_min": 2000, "disk_size": 5000},
               {"type": "virtualbox", "iso_checksum_url": "http://x/SUMS", "iso_checksum_type": "sha256", "guest_additions_attach": true}],
              "post-processors": [{"type": "manifest", "filename": "m.json"}]}"#,
        )
        .expect("json");
        let changes = fix(&mut t);
        let b0 = &t["builders"][0];
        assert_eq!(b0["iso_checksum"], "sha256:abc");
        assert_eq!(b0["ssh_timeout"], "20m");
        assert_eq!(b0["ssh_private_key_file"], "k");
        assert_eq!(b0["host_port_min"], 2000);
        assert_eq!(b0["disk_size"], "5000M");
        assert!(b0.get("iso_checksum_type").is_none());
        let b1 = &t["builders"][1];
        assert_eq!(b1["type"], "virtualbox-iso");
        assert_eq!(b1["iso_checksum"], "file:http://x/SUMS");
        assert_eq!(b1["guest_additions_mode"], "attach");
        assert_eq!(t["post-processors"][0]["output"], "m.json");
        assert_eq!(changes.len(), 9, "{changes:?}");
    }
}
