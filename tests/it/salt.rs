//! `salt-masterless` with real Salt: `salt-call` 3007.1 and the packages
//! it imports, from the project's `.venv` (scripts/python-requirements.txt),
//! put into the Python guest (Debian's Python 3.11; no pip, no network
//! beyond the host), with `skip_bootstrap` and `salt_bin_dir` as Packer
//! users do when their image already carries Salt. salt_chef.rs covers the
//! command lines and failure paths against a stand-in on the plain tiny
//! guest; this checks that what kiln uploads is what real Salt reads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::support::{fixtures, python_guest_builder, site_packages_bundle};
use crate::vm::{qemu_processes_with, text, vm_lock};

/// Salt and what `salt-call --local` imports, once per run.
fn salt_bundle() -> &'static PathBuf {
    static BUNDLE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUNDLE.get_or_init(|| {
        site_packages_bundle(
            "salt",
            &[
                "salt",
                "tornado",
                "msgpack",
                "distro",
                "psutil",
                "looseversion",
                "Cryptodome",
                "jinja2",
                "markupsafe",
                "yaml",
                "_yaml",
                "requests",
                "urllib3",
                "idna",
                "certifi",
                "charset_normalizer",
                "packaging",
                "jmespath",
            ],
            &["salt-"],
        )
    })
}

/// Unpacks the bundle where Debian's Python looks and writes the
/// `salt-call` entry point pip would, in `salt_bin_dir`.
const INSTALL_SALT_IN_GUEST: &[&str] = &[
    "mkdir -p /usr/local/lib/python3.11/dist-packages /opt/salt/bin",
    "tar -xzf /tmp/salt.tgz -C /usr/local/lib/python3.11/dist-packages && rm /tmp/salt.tgz",
    "printf '#!/usr/bin/python3\\nimport sys\\nfrom salt.scripts import salt_call\\nsys.exit(salt_call())\\n' > /opt/salt/bin/salt-call",
    "chmod 755 /opt/salt/bin/salt-call",
];

fn salt_masterless(states: &Path, extra: serde_json::Value) -> serde_json::Value {
    let mut p = serde_json::json!({
        "type": "salt-masterless",
        "local_state_tree": states,
        "skip_bootstrap": true,
        "salt_bin_dir": "/opt/salt/bin",
        // The guest logs in as root and has no sudo.
        "disable_sudo": true
    });
    if let (Some(p), serde_json::Value::Object(extra)) = (p.as_object_mut(), extra) {
        p.extend(extra);
    }
    p
}

/// One install of the Python guest: real salt-call applies a state tree
/// that reads the pillar and a grain from `grains_file`; the result is read
/// back; then a tree whose state fails ends the build with salt-call's
/// status and summary, and the VM and output are gone.
#[test]
fn vm_real_salt_applies_states_with_pillar_and_grains_and_a_failing_state_fails_the_build() {
    let bundle = salt_bundle();
    let _vm = vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = fixtures();
    let template = serde_json::json!({
        "builders": [python_guest_builder("salt-real")],
        "provisioners": [
            {"type": "file", "source": bundle, "destination": "/tmp/salt.tgz"},
            {"type": "shell", "inline": INSTALL_SALT_IN_GUEST},
            salt_masterless(&fx.join("salt-real/states"), serde_json::json!({
                "local_pillar_roots": fx.join("salt/pillar"),
                "grains_file": fx.join("salt/grains"),
                "log_level": "info"
            })),
            {"type": "shell", "inline": [
                "echo salt file: $(cat /var/lib/kiln-salt/hello)",
                "stat -c 'salt mode: %a' /var/lib/kiln-salt/hello",
                "test -f /var/lib/kiln-salt/ran && echo salt cmd.run: ran"
            ]},
            salt_masterless(&fx.join("salt/broken"), serde_json::json!({
                "remote_state_tree": "/srv/broken-states",
                "temp_config_dir": "/tmp/salt-broken"
            }))
        ]
    });
    let path = dir.path().join("salt.json");
    std::fs::write(&path, template.to_string()).expect("write template");

    let started = Instant::now();
    let out = crate::support::python_guest_build(dir.path(), &path)
        .env("NO_COLOR", "1")
        .output()
        .expect("kiln runs");
    eprintln!("real salt build: {:?}", started.elapsed());
    let t = text(&out);

    // The first tree: kiln's command line, Salt's own summary, the result.
    // Packer prints `salt-call` whatever `salt_bin_dir` says; the error
    // below shows the command that ran.
    assert!(
        t.contains("Running: salt-call --local state.highstate --file-root=/srv/salt --pillar-root=/srv/pillar --retcode-passthrough -l info"),
        "{t}"
    );
    assert!(t.contains("Succeeded: 2 (changed=2)"), "{t}");
    assert!(
        t.contains("salt file: hello from salt, role kiln-test, kernel Linux"),
        "{t}"
    );
    assert!(t.contains("salt mode: 640"), "{t}");
    assert!(t.contains("salt cmd.run: ran"), "{t}");

    // The second tree fails the build with salt-call's status.
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("salt is about to fail"), "{t}");
    assert!(t.contains("Failed:    1"), "{t}");
    assert!(
        t.contains("salt-call (`/opt/salt/bin/salt-call --local state.highstate --file-root=/srv/broken-states --pillar-root=/srv/pillar --retcode-passthrough -l info`) failed with exit status 2"),
        "{t}"
    );
    assert!(
        !dir.path().join("output-qemu").exists(),
        "output removed: {t}"
    );
    assert!(
        qemu_processes_with("salt-real").is_empty(),
        "the VM must be killed: {t}"
    );
}
