//! The inventory kiln writes for the `ansible` provisioner, as Packer's:
//! one host line (`<host_alias> ansible_host=… ansible_user=… ansible_port=…`,
//! or `inventory_file_template`), then each group with the host in it and
//! each empty group.

/// Where ansible finds the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host_alias: String,
    pub host: String,
    pub user: String,
    pub port: String,
}

/// Packer's default host line for an SSH connection.
pub fn default_host_line(t: &Target) -> String {
    format!(
        "{} ansible_host={} ansible_user={} ansible_port={}\n",
        t.host_alias, t.host, t.user, t.port
    )
}

/// The whole inventory: the host line (rendered by the caller, so a
/// template's output is used as is), then the groups.
pub fn inventory_text(
    host_line: &str,
    host_alias: &str,
    groups: &[String],
    empty: &[String],
) -> String {
    let mut out = host_line.to_owned();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for g in groups {
        out.push_str(&format!("[{g}]\n{host_alias}\n"));
    }
    for g in empty {
        out.push_str(&format!("[{g}]\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_line_and_groups_as_packer_writes_them() {
        let t = Target {
            host_alias: "default".into(),
            host: "127.0.0.1".into(),
            user: "root".into(),
            port: "2222".into(),
        };
        let text = inventory_text(
            &default_host_line(&t),
            "default",
            &["web".into(), "db".into()],
            &["later".into()],
        );
        assert_eq!(
            text,
            "default ansible_host=127.0.0.1 ansible_user=root ansible_port=2222\n\
             [web]\ndefault\n[db]\ndefault\n[later]\n"
        );
    }

    #[test]
    fn a_template_line_without_newline_gets_one() {
        assert_eq!(inventory_text("h x=1", "h", &[], &[]), "h x=1\n");
    }
}
