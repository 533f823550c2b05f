//! The Python guest and the ansible / ansible-local provisioners, with real
//! QEMU guests (TCG) and real ansible-core from the project's `.venv`.

use std::path::Path;
use std::time::Instant;

use crate::support::{python_guest_build, python_guest_builder};
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
fn vm_the_python_guest_has_python3_and_no_sftp_server() {
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
    let out = python_guest_build(dir.path(), &template)
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

/// The same provisioner keys decode from HCL2 blocks as from JSON: a valid
/// block passes, and a mistake is reported with its place in the .pkr.hcl.
#[test]
fn ansible_blocks_decode_from_hcl2_like_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let playbook = crate::support::fixtures().join("ansible/remote.yml");
    let local = crate::support::fixtures().join("ansible/local.yml");
    let template = format!(
        r#"source "qemu" "a" {{
  iso_url      = "a.iso"
  iso_checksum = "none"
  ssh_username = "root"
}}

build {{
  sources = ["source.qemu.a"]
  provisioner "ansible" {{
    playbook_file    = "{playbook}"
    groups           = ["web"]
    extra_arguments  = ["-e", "greeting=hi"]
    ansible_env_vars = ["ANSIBLE_NOCOLOR=True"]
  }}
  provisioner "ansible-local" {{
    playbook_file    = "{local}"
    inventory_groups = ["guests"]
  }}
}}
"#,
        playbook = playbook.display(),
        local = local.display()
    );
    std::fs::write(dir.path().join("t.pkr.hcl"), &template).expect("write");
    let out = crate::support::run_in(dir.path(), &["validate", "t.pkr.hcl"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");

    let bad = template.replace(
        "groups           = [\"web\"]",
        "use_proxy = true\n    grups = [\"web\"]",
    );
    std::fs::write(dir.path().join("t.pkr.hcl"), bad).expect("write");
    let out = crate::support::run_in(dir.path(), &["validate", "t.pkr.hcl"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("use_proxy: kiln does not run Packer's SSH proxy adapter"),
        "{t}"
    );
    assert!(t.contains("t.pkr.hcl:11:"), "{t}");
    assert!(t.contains("grups"), "{t}");
}

/// ansible-core from the project's `.venv` (made by scripts/bootstrap),
/// first on PATH, as the README tells users to run the tests.
fn venv_path() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin");
    assert!(
        Path::new(venv).join("ansible-playbook").is_file(),
        "no {venv}/ansible-playbook: run scripts/bootstrap"
    );
    format!("{venv}:{}", std::env::var("PATH").unwrap_or_default())
}

/// ansible-core and the packages it imports (with their dist-info:
/// ansible-core checks its dependencies' versions through
/// importlib.metadata), as a .tar.gz for the guest. Made once per run.
fn ansible_core_bundle() -> &'static std::path::PathBuf {
    static BUNDLE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUNDLE.get_or_init(|| {
        crate::support::site_packages_bundle(
            "ansible-core",
            &[
                "ansible",
                "jinja2",
                "markupsafe",
                "yaml",
                "_yaml",
                "packaging",
                "resolvelib",
            ],
            &[
                "ansible_core-",
                "jinja2-",
                "markupsafe-",
                "pyyaml-",
                "packaging-",
                "resolvelib-",
            ],
        )
    })
}

/// Shell lines that unpack the bundle where Debian's Python looks and add
/// an `ansible-playbook` entry point, as pip would write it.
const INSTALL_ANSIBLE_IN_GUEST: &[&str] = &[
    "mkdir -p /usr/local/lib/python3.11/dist-packages",
    "tar -xzf /tmp/ansible-core.tgz -C /usr/local/lib/python3.11/dist-packages && rm /tmp/ansible-core.tgz",
    // ansible-core refuses a non-UTF-8 locale, and the guest sets none:
    // glibc's built-in C.UTF-8 serves.
    "printf '#!/usr/bin/python3\\nimport os, sys\\nos.environ.setdefault(\"LC_ALL\", \"C.UTF-8\")\\nfrom ansible.cli.playbook import main\\nsys.exit(main())\\n' > /usr/bin/ansible-playbook",
    "chmod 755 /usr/bin/ansible-playbook",
];

/// Runs `build` (a `kiln build` command) with the venv's ansible on PATH
/// and returns its output and its pid (for its scratch directories).
fn build_with_venv(mut build: std::process::Command) -> (std::process::Output, u32) {
    let child = build
        .env("PATH", venv_path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kiln runs");
    let pid = child.id();
    (child.wait_with_output().expect("kiln runs"), pid)
}

fn scratch_dirs_of(pid: u32) -> Vec<String> {
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("kiln-{pid}-ansible")))
        .collect()
}

/// One build runs both provisioners: `ansible` from the host writes a file
/// (through SCP: the guest has no sftp-server) with the build's extra vars;
/// a second `ansible` installs a role from a `galaxy_file` (a local role
/// tarball: no network here) into `roles_path` and keeps its inventory in
/// `inventory_directory`; then ansible-core is put in the guest and
/// `ansible-local` runs a role with group vars; a shell provisioner shows
/// the three files.
#[test]
fn vm_ansible_and_ansible_local_provision_the_python_guest() {
    let _vm = vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = crate::support::fixtures().join("ansible");
    let bundle = ansible_core_bundle();
    let role_tarball = dir.path().join("galaxy-role.tar.gz");
    let packed = std::process::Command::new("tar")
        .arg("-C")
        .arg(&fx)
        .arg("-czf")
        .arg(&role_tarball)
        .arg("galaxy-role")
        .status()
        .expect("tar runs");
    assert!(packed.success());
    let requirements = dir.path().join("requirements.yml");
    std::fs::write(
        &requirements,
        format!("- src: {}\n  name: from_galaxy\n", role_tarball.display()),
    )
    .expect("write requirements");
    let roles = dir.path().join("roles");
    let inventory_dir = dir.path().join("inventory");
    std::fs::create_dir(&inventory_dir).expect("mkdir");
    let template = python_template(
        dir.path(),
        "ansible-ok",
        &serde_json::json!([
            {
                "type": "ansible",
                "playbook_file": fx.join("remote.yml"),
                "groups": ["web"],
                // Rendered when the provisioner runs, as in Packer.
                "extra_arguments": ["-e", "greeting=hello-from-{{ build `Host` }}"]
            },
            {
                "type": "ansible",
                "playbook_file": fx.join("galaxy.yml"),
                "galaxy_file": requirements,
                "roles_path": roles,
                "ansible_env_vars": [format!("ANSIBLE_ROLES_PATH={}", roles.display())],
                "keep_inventory_file": true,
                "inventory_directory": inventory_dir
            },
            {"type": "file", "source": bundle, "destination": "/tmp/ansible-core.tgz"},
            {"type": "shell", "inline": INSTALL_ANSIBLE_IN_GUEST},
            {
                "type": "ansible-local",
                "playbook_file": fx.join("local.yml"),
                "role_paths": [fx.join("roles/greeter")],
                "group_vars": fx.join("group_vars"),
                "inventory_groups": ["guests"],
                "clean_staging_directory": true
            },
            {"type": "shell", "inline": [
                "cat /root/from-ansible /root/from-galaxy /root/from-ansible-local",
                "echo staging entries: $(ls -A /tmp/packer-provisioner-ansible-local | wc -l)"
            ]}
        ]),
    );
    let started = Instant::now();
    let (out, pid) = build_with_venv(python_guest_build(dir.path(), &template));
    eprintln!("ansible build: {:?}", started.elapsed());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    // ansible's own output, streamed line by line.
    assert!(t.contains("TASK [write a file on the guest]"), "{t}");
    assert!(t.contains("hello-from-127.0.0.1 in qemu (qemu)"), "{t}");
    assert!(
        t.contains("hello from group_vars via ansible-local in qemu"),
        "{t}"
    );
    assert!(t.contains("staging entries: 0"), "{t}");
    assert!(!t.contains("PRIVATE KEY"), "{t}");
    // galaxy_file: the role went into roles_path, and the playbook used it.
    assert!(roles.join("from_galaxy/tasks/main.yml").is_file(), "{t}");
    assert!(t.contains("installed by ansible-galaxy for qemu"), "{t}");
    // keep_inventory_file: the inventory outlives the build, where asked.
    let kept: Vec<_> = std::fs::read_dir(&inventory_dir)
        .expect("read inventory_directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}\n{t}");
    assert!(
        t.contains(&format!("Keeping the inventory file {}", kept[0].display())),
        "{t}"
    );
    let inventory = std::fs::read_to_string(&kept[0]).expect("read the inventory");
    assert!(
        inventory.starts_with("default ansible_host=127.0.0.1 ansible_user=root ansible_port="),
        "{inventory}"
    );
    // The key file kiln gave ansible went with its scratch directory.
    assert_eq!(scratch_dirs_of(pid), Vec::<String>::new());
}

/// The tiny guest has no Python and takes the build's password: ansible
/// logs in through sshpass (a `raw` task), the password never on a command
/// line or in the output. First without sshpass on PATH: the build fails at
/// the provisioner with the hint and stops its VM; then the rerun, with
/// sshpass, resumes from the install checkpoint the first one left.
#[test]
fn vm_ansible_logs_in_with_the_builds_password_through_sshpass() {
    let _vm = vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = crate::support::fixtures().join("ansible");
    let (iso, sum) = crate::vm::tiny_iso();
    let password = "kiln-tiny";
    let template = serde_json::json!({
        "variables": {"password": password},
        "sensitive-variables": ["password"],
        "builders": [{
            "type": "qemu", "vm_name": "sshpass", "accelerator": "tcg",
            "iso_url": iso, "iso_checksum": format!("sha256:{sum}"),
            "memory": 256, "disk_size": "1024M", "format": "qcow2", "headless": true,
            "http_content": {
                "/install.cfg": "disk=auto\nusername=root\npassword={{user `password`}}\nfinish=reboot\n"
            },
            "boot_wait": "5s",
            "boot_command": ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.cfg<enter>"],
            "ssh_username": "root", "ssh_password": "{{user `password`}}",
            "ssh_timeout": "5m", "shutdown_command": "poweroff"
        }],
        "provisioners": [
            {"type": "ansible", "playbook_file": fx.join("raw.yml")},
            {"type": "shell", "inline": ["cat /root/from-sshpass"]}
        ]
    });
    let path = dir.path().join("t.json");
    std::fs::write(&path, template.to_string()).expect("write template");

    // PATH: the venv and every program of /usr/bin but sshpass.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    for entry in std::fs::read_dir("/usr/bin")
        .expect("read /usr/bin")
        .flatten()
    {
        if entry.file_name() != "sshpass" {
            std::os::unix::fs::symlink(entry.path(), bin.join(entry.file_name())).expect("symlink");
        }
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin");
    let out = build_in(dir.path(), &[], &path)
        .env("PATH", format!("{venv}:{}", bin.display()))
        .env("NO_COLOR", "1")
        .output()
        .expect("kiln runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("ansible needs `sshpass` on the host"), "{t}");
    assert!(t.contains("apt-get install sshpass"), "{t}");
    assert!(
        crate::vm::qemu_processes_in(dir.path()).is_empty(),
        "the VM is stopped"
    );

    let (out, pid) = build_with_venv(build_in(dir.path(), &[], &path));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("from the install checkpoint"), "{t}");
    assert!(t.contains("TASK [write a file without Python]"), "{t}");
    assert!(t.contains("written over a password login"), "{t}");
    assert!(!t.contains(password), "the password is printed:\n{t}");
    // The 0600 vars file holding the password went with the scratch directory.
    assert_eq!(scratch_dirs_of(pid), Vec::<String>::new());
}

/// A failing playbook fails the build with ansible's exit status and its
/// output shown, and leaves no VM behind; then the same for ansible-local.
#[test]
fn vm_a_failing_playbook_fails_the_build_and_stops_the_vm() {
    let _vm = vm_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = crate::support::fixtures().join("ansible");
    let template = python_template(
        dir.path(),
        "ansible-fails",
        &serde_json::json!([
            {"type": "ansible", "playbook_file": fx.join("failing.yml")}
        ]),
    );
    let (out, pid) = build_with_venv(python_guest_build(dir.path(), &template));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("kiln-test: the playbook failed on purpose"),
        "{t}"
    );
    assert!(t.contains("exited with status 2"), "{t}");
    assert!(t.contains("failing.yml"), "{t}");
    assert_eq!(scratch_dirs_of(pid), Vec::<String>::new());
    assert!(crate::vm::qemu_processes_with("ansible-fails").is_empty());

    // ansible-local: ansible-core in the guest, the same failing playbook.
    let dir = tempfile::tempdir().expect("tempdir");
    let template = python_template(
        dir.path(),
        "ansible-local-fails",
        &serde_json::json!([
            {"type": "file", "source": ansible_core_bundle(), "destination": "/tmp/ansible-core.tgz"},
            {"type": "shell", "inline": INSTALL_ANSIBLE_IN_GUEST},
            {"type": "ansible-local", "playbook_file": fx.join("failing.yml")}
        ]),
    );
    let (out, _) = build_with_venv(python_guest_build(dir.path(), &template));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("kiln-test: the playbook failed on purpose"),
        "{t}"
    );
    assert!(t.contains("exited with status 2"), "{t}");
    assert!(crate::vm::qemu_processes_with("ansible-local-fails").is_empty());
    assert!(!dir.path().join("output-qemu").exists(), "{t}");
}
