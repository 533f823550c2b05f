//! The answer files kiln ships in `http/` for its examples: the examples
//! that use them validate and inspect, the files pass the real checkers
//! that exist off-network (pykickstart's ksvalidator for the kickstart,
//! cloud-init's schema for the autoinstall user-data),
//! their password hashes are of the templates' sensitive passwords, and
//! kiln's HTTP server hands them out as the installers fetch them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use kiln::http::{HttpServer, HttpServerConfig};
use kiln::ui::{RecordingReporter, Reporter};

use crate::support::{run_in, transcript};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ubuntu_example() -> PathBuf {
    repo().join("examples/ubuntu-24.04")
}

fn rocky_example() -> PathBuf {
    repo().join("examples/rocky-9")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run_in(dir, args);
    let text = transcript(&out, dir);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {text}");
    text
}

#[test]
fn the_ubuntu_and_rocky_examples_validate_and_inspect() {
    let text = ok(
        &ubuntu_example(),
        &["validate", "-var-file=ubuntu.pkrvars.hcl", "."],
    );
    assert!(text.contains("validated successfully (1 build)"), "{text}");
    let text = ok(
        &ubuntu_example(),
        &["inspect", "-var-file=ubuntu.pkrvars.hcl", "."],
    );
    assert!(
        text.contains("var.ssh_password: <sensitive>")
            && text.contains("source.qemu.ubuntu")
            && text.contains("local.iso_dir: https://releases.ubuntu.com/24.04"),
        "{text}"
    );

    let text = ok(&rocky_example(), &["validate", "rocky-9.json"]);
    assert!(text.contains("validated successfully (1 build)"), "{text}");
    let text = ok(&rocky_example(), &["inspect", "rocky-9.json"]);
    assert!(text.contains("qemu") && text.contains("shell"), "{text}");
    assert!(!text.contains("ssh_password = vagrant"), "{text}");
}

#[test]
fn the_examples_boot_the_installers_with_their_answer_files() {
    let sources = std::fs::read_to_string(ubuntu_example().join("sources.pkr.hcl")).expect("reads");
    assert!(
        sources.contains("autoinstall ds='nocloud;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/'")
            && sources.contains("${path.root}/../../http/ubuntu-24.04"),
        "{sources}"
    );
    let rocky = std::fs::read_to_string(rocky_example().join("rocky-9.json")).expect("reads");
    assert!(
        rocky.contains("inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg")
            && rocky.contains("\"http_directory\": \"../../http/rocky-9\""),
        "{rocky}"
    );
    assert!(rocky_example().join("../../http/rocky-9/ks.cfg").is_file());
}

/// pykickstart's ksvalidator from the project's `.venv` (scripts/bootstrap
/// installs it from scripts/python-requirements.txt).
fn ksvalidator(file: &Path) -> std::process::Output {
    let tool = repo().join(".venv/bin/ksvalidator");
    assert!(
        tool.is_file(),
        "{} is missing: run scripts/bootstrap",
        tool.display()
    );
    Command::new(tool)
        .args(["-v", "RHEL9"])
        .arg(file)
        .output()
        .expect("ksvalidator runs")
}

#[test]
fn the_kickstart_passes_ksvalidator_and_a_broken_one_does_not() {
    let ks = repo().join("http/rocky-9/ks.cfg");
    let out = ksvalidator(&ks);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The checker can fail: a misspelt command in a copy is refused.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(&ks).expect("reads");
    let broken = text.replace("\nskipx\n", "\nskipxx\n");
    assert_ne!(broken, text);
    let copy = dir.path().join("ks.cfg");
    std::fs::write(&copy, broken).expect("writes");
    let out = ksvalidator(&copy);
    assert!(!out.status.success(), "a broken kickstart passed");
}

fn yaml(text: &str) -> yaml_rust2::Yaml {
    let mut docs = yaml_rust2::YamlLoader::load_from_str(text).expect("user-data is YAML");
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

/// Validates a user-data file against cloud-init's cloud-config schema
/// (vendor/cloud-init-schema, from Debian's cloud-init package) with the
/// `jsonschema` package from the project's `.venv`, as `cloud-init schema`
/// does; the errors, one a line.
fn cloud_init_schema_errors(user_data: &Path) -> (bool, String) {
    const CHECK: &str = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
doc = yaml.safe_load(open(sys.argv[2]))
errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(doc), key=str)
for e in errors:
    print("/".join(map(str, e.path)) or "(top)", ":", e.message)
sys.exit(1 if errors else 0)
"#;
    let python = repo().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/bootstrap",
        python.display()
    );
    let out = Command::new(python)
        .args(["-c", CHECK])
        .arg(repo().join("vendor/cloud-init-schema/schema-cloud-config-v1.json"))
        .arg(user_data)
        .output()
        .expect("python runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn the_user_data_passes_cloud_inits_schema_and_a_broken_one_does_not() {
    let user_data = repo().join("http/ubuntu-24.04/user-data");
    let (ok, said) = cloud_init_schema_errors(&user_data);
    assert!(ok, "{said}");

    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(&user_data).expect("reads");
    let broken = text.replace("  version: 1\n", "  version: one\n");
    assert_ne!(broken, text);
    let copy = dir.path().join("user-data");
    std::fs::write(&copy, broken).expect("writes");
    let (ok, said) = cloud_init_schema_errors(&copy);
    assert!(
        !ok && said.contains("autoinstall/version : 'one' is not of type 'integer'"),
        "{said}"
    );
}

/// What the autoinstall reference requires and what the example relies
/// on, beyond cloud-init's schema (which checks only
/// `autoinstall.version`: the rest is read by the installer, subiquity,
/// whose own schema ships only inside the installer ISO).
#[test]
fn the_autoinstall_user_data_has_what_the_installer_requires() {
    let dir = repo().join("http/ubuntu-24.04");
    let text = std::fs::read_to_string(dir.join("user-data")).expect("reads");
    // cloud-init reads user-data as cloud-config only with this header.
    assert!(text.starts_with("#cloud-config\n"), "{text}");
    let doc = yaml(&text);
    let ai = &doc["autoinstall"];
    assert_eq!(ai["version"].as_i64(), Some(1));
    assert_eq!(ai["identity"]["username"].as_str(), Some("vagrant"));
    assert!(ai["identity"]["hostname"].as_str().is_some());
    assert_eq!(ai["ssh"]["install-server"].as_bool(), Some(true));
    assert_eq!(ai["ssh"]["allow-pw"].as_bool(), Some(true));
    let late: Vec<&str> = ai["late-commands"]
        .as_vec()
        .expect("late-commands")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(
        late.iter()
            .any(|c| c.contains("NOPASSWD:ALL") && c.contains("/target/etc/sudoers.d/")),
        "{late:?}"
    );
    assert!(dir.join("meta-data").is_file(), "nocloud needs meta-data");

    // The hash is of the password the template gives kiln, and the plain
    // password is not in the file.
    let hash = ai["identity"]["password"].as_str().expect("a password");
    let vars = std::fs::read_to_string(ubuntu_example().join("ubuntu.pkrvars.hcl")).expect("reads");
    let password = vars
        .lines()
        .find_map(|l| l.strip_prefix("ssh_password"))
        .and_then(|l| l.split('"').nth(1))
        .expect("ssh_password in ubuntu.pkrvars.hcl");
    assert_hash_of(hash, password);
    assert!(!text.contains(&format!("password: {password}")), "{text}");
}

#[test]
fn the_kickstart_password_hash_is_of_the_templates_password() {
    let ks = std::fs::read_to_string(repo().join("http/rocky-9/ks.cfg")).expect("reads");
    let hash = ks
        .lines()
        .find(|l| l.starts_with("user --name=vagrant"))
        .and_then(|l| l.split("--password=").nth(1))
        .expect("a user line with a password");
    assert!(ks.contains("--iscrypted"), "{ks}");
    let template: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(rocky_example().join("rocky-9.json")).expect("reads"),
    )
    .expect("JSON");
    let password = template["variables"]["ssh_password"]
        .as_str()
        .expect("ssh_password");
    assert_hash_of(hash.trim(), password);
    let sensitive = template["sensitive-variables"].to_string();
    assert!(sensitive.contains("ssh_password"), "{sensitive}");
}

/// Recomputes a SHA-512 crypt hash with openssl and its salt.
fn assert_hash_of(hash: &str, password: &str) {
    let salt = hash
        .strip_prefix("$6$")
        .and_then(|h| h.split('$').next())
        .unwrap_or_else(|| panic!("not a SHA-512 crypt hash: {hash}"));
    let out = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, password])
        .output()
        .expect("openssl runs");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), hash);
}

/// GET `path` as an installer does: the status and body.
async fn get(address: std::net::SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let reply = crate::http::request(address, "GET", path).await;
    (reply.status, reply.body)
}

async fn serve(dir: &Path) -> HttpServer {
    let reporter: Arc<dyn Reporter> = Arc::new(RecordingReporter::new());
    let config = HttpServerConfig {
        directory: Some(dir.to_path_buf()),
        port_min: 0,
        port_max: 0,
        ..HttpServerConfig::default()
    };
    HttpServer::start(config, reporter, "qemu".to_owned())
        .await
        .expect("server starts")
}

#[tokio::test]
async fn kilns_http_server_hands_out_the_answer_files_as_installers_fetch_them() {
    // Ubuntu's nocloud source appends the file names to the seed URL.
    let ubuntu = repo().join("http/ubuntu-24.04");
    let server = serve(&ubuntu).await;
    for name in ["user-data", "meta-data"] {
        let (status, body) = get(server.address(), &format!("/{name}")).await;
        assert_eq!(status, 200, "/{name}");
        assert_eq!(body, std::fs::read(ubuntu.join(name)).expect("reads"));
    }
    // Anaconda fetches inst.ks's URL.
    let rocky = repo().join("http/rocky-9");
    let server = serve(&rocky).await;
    let (status, body) = get(server.address(), "/ks.cfg").await;
    assert_eq!(status, 200);
    assert_eq!(body, std::fs::read(rocky.join("ks.cfg")).expect("reads"));
    let (status, _) = get(server.address(), "/vendor-data").await;
    assert_eq!(status, 404);
}
