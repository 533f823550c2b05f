//! The Python guest and the ansible / ansible-local provisioners, with real
//! QEMU guests (TCG) and real ansible-core from the project's `.venv`.

use std::path::Path;
use std::time::Instant;

use crate::support::python_guest_builder;
use crate::vm::{build_in, text, vm_lock};

/// Writes `dir/t.json` with the Python guest's builder and `provisioners`.
fn python_template(
    dir: &Path,
    vm_name: &str,
    provisioners: &serde_json::Value,
) -> std::path::PathBuf {
    let template = serde_json::json!({
        "builders": [python_guest_builder(vm_name)],
        "provisioners": provisioners,
    });
    let path = dir.join("t.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&template).expect("json"),
    )
    .expect("write template");
    path
}

#[test]
fn the_python_guest_has_python3_and_no_sftp_server() {
    let _vm = vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    // The modules ansible's module wrapper (AnsiballZ) and its common module
    // utilities import, the controller's ctypes, and the locale it insists on.
    let check = "import sys, json, tempfile, shlex, hashlib, zipfile, zlib, base64, \
        subprocess, select, pwd, grp, locale, ctypes, platform, shutil, datetime, \
        syslog, multiprocessing.queues, ssl; \
        print('python ok', sys.version.split()[0], hashlib.sha256(b'kiln').hexdigest()[:8])";
    let template = python_template(
        dir.path(),
        "pyguest",
        &serde_json::json!([{
            "type": "shell",
            "inline": [
                "ls -l /usr/bin/python3",
                format!("/usr/bin/python3 -c \"{check}\""),
                "for d in /usr/lib/openssh /usr/libexec /usr/lib /usr/libexec/openssh /usr/sbin /usr/bin; do \
                 if [ -e $d/sftp-server ]; then echo sftp-server found in $d; exit 1; fi; done; \
                 echo no sftp-server"
            ]
        }]),
    );
    let started = Instant::now();
    let out = build_in(dir.path(), &[], &template)
        .output()
        .expect("kiln runs");
    eprintln!("python guest build: {:?}", started.elapsed());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("-> python3.11"), "{t}");
    // sha256("kiln") starts with cdfe9ad5: hashlib works.
    assert!(t.contains("python ok 3.11.2 cdfe9ad5"), "{t}");
    assert!(t.contains("no sftp-server"), "{t}");
}
