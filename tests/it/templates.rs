//! Every case in tests/fixtures/templates: a `.args` file holds one kiln
//! command line (run in that directory); its transcript is the snapshot.

use crate::support::{fixtures, run_in, transcript};

#[test]
fn template_fixtures() {
    let dir = fixtures().join("templates");
    insta::glob!("../fixtures/templates", "*.args", |path| {
        let text = std::fs::read_to_string(path).expect("args file");
        let args: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let output = run_in(&dir, &args);
        // Never a panic, whatever the input.
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "exit status {:?}",
            output.status
        );
        insta::with_settings!({filters => vec![
            (r"(?m)^\d{10},", "[TIMESTAMP],"),
            (r"\b\d{10}\b", "[UNIX-TIME]"),
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[UUID]"),
            // How long a (failed) run took depends on the machine's load.
            (r"build\(s\) succeeded in [0-9.]+m?s", "build(s) succeeded in [DURATION]"),
        ]}, {
            insta::assert_snapshot!(transcript(&output, &dir));
        });
    });
}
