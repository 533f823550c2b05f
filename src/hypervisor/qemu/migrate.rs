//! A VM's device and RAM state to and from a file, through QMP migration:
//! `migrate` to a writer process on a paused VM, and `migrate-incoming`
//! from a reader into a QEMU started with `-S -incoming defer` and the
//! same devices. QEMU 7.2 has no `file:` transport, so the stream goes
//! through `exec:` (QEMU runs the command with `/bin/sh -c`).

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::qmp::{Qmp, QmpError};

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the state file's path {0} is not UTF-8")]
    Path(String),
    #[error("QEMU could not {action} the VM state")]
    Qmp {
        action: &'static str,
        #[source]
        source: QmpError,
    },
    #[error("QEMU's migration {status}: {desc}")]
    Failed { status: String, desc: String },
    #[error("the migration did not complete within {0:?}")]
    Timeout(Duration),
}

/// `'…'` for `/bin/sh`, a quote inside written as `'\''`.
fn shell_quoted(path: &Path) -> Result<String, MigrateError> {
    let text = path
        .to_str()
        .ok_or_else(|| MigrateError::Path(path.display().to_string()))?;
    Ok(format!("'{}'", text.replace('\'', r"'\''")))
}

/// The `migrate` URI that writes the stream to `path`.
pub fn save_uri(path: &Path) -> Result<String, MigrateError> {
    Ok(format!("exec:cat > {}", shell_quoted(path)?))
}

/// The `migrate-incoming` URI that reads the stream from `path`.
pub fn load_uri(path: &Path) -> Result<String, MigrateError> {
    Ok(format!("exec:cat {}", shell_quoted(path)?))
}

fn qmp(action: &'static str) -> impl FnOnce(QmpError) -> MigrateError {
    move |source| MigrateError::Qmp { action, source }
}

/// `MIGRATION` events tell each status change; without this capability
/// QEMU sends none.
async fn enable_events(q: &mut Qmp, action: &'static str) -> Result<(), MigrateError> {
    q.execute(
        "migrate-set-capabilities",
        Some(json!({ "capabilities": [{ "capability": "events", "state": true }] })),
    )
    .await
    .map(drop)
    .map_err(qmp(action))
}

/// Writes the paused VM's state to `path`. The VM stays paused
/// (`postmigrate`); `cont` resumes it.
pub async fn save_state(q: &mut Qmp, path: &Path, timeout: Duration) -> Result<(), MigrateError> {
    const ACTION: &str = "save";
    enable_events(q, ACTION).await?;
    // QEMU's default bandwidth cap (32 MiB/s in 7.2) is for live
    // migration over a network; a paused VM to a local file wants none.
    q.execute(
        "migrate-set-parameters",
        Some(json!({ "max-bandwidth": i64::MAX / 2 })),
    )
    .await
    .map_err(qmp(ACTION))?;
    q.execute("migrate", Some(json!({ "uri": save_uri(path)? })))
        .await
        .map_err(qmp(ACTION))?;
    wait_completed(q, ACTION, timeout).await
}

/// Loads the state at `path` into a QEMU started with
/// [`QemuCommand::incoming_deferred`](super::QemuCommand); the VM is
/// paused afterwards (`cont` runs it). A stream QEMU cannot load makes
/// QEMU exit: that is reported as an error here.
pub async fn load_state(q: &mut Qmp, path: &Path, timeout: Duration) -> Result<(), MigrateError> {
    const ACTION: &str = "load";
    enable_events(q, ACTION).await?;
    q.execute("migrate-incoming", Some(json!({ "uri": load_uri(path)? })))
        .await
        .map_err(qmp(ACTION))?;
    wait_completed(q, ACTION, timeout).await
}

/// Waits for `MIGRATION` with status `completed` (or a failure).
async fn wait_completed(
    q: &mut Qmp,
    action: &'static str,
    timeout: Duration,
) -> Result<(), MigrateError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(event) = q.wait_event("MIGRATION", left).await.map_err(qmp(action))? else {
            return Err(MigrateError::Timeout(timeout));
        };
        let status = event.data["status"].as_str().unwrap_or_default().to_owned();
        match status.as_str() {
            "completed" => return Ok(()),
            "failed" | "cancelled" => {
                // query-migrate keeps the reason of the last failure.
                let desc = q
                    .execute("query-migrate", None)
                    .await
                    .ok()
                    .and_then(|v| v["error-desc"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "QEMU gave no reason".into());
                return Err(MigrateError::Failed { status, desc });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_paths_are_quoted_for_the_shell() {
        let p = Path::new("/cache/it's here/memory.bin");
        assert_eq!(
            save_uri(p).expect("uri"),
            r"exec:cat > '/cache/it'\''s here/memory.bin'"
        );
        assert_eq!(
            load_uri(Path::new("/c/m.bin")).expect("uri"),
            "exec:cat '/c/m.bin'"
        );
    }
}
