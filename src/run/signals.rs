//! Ctrl-C and SIGTERM: the first asks every build to stop and clean up;
//! a second one while cleaning up exits at once with status 130 (VMs still
//! die with kiln, through PR_SET_PDEATHSIG).

use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

/// The exit status when a second signal makes kiln exit without cleaning
/// up (128 + SIGINT, what shells report for an interrupted program).
pub const EXIT_AT_ONCE: i32 = 130;

/// The first signal received, for messages about what it interrupted.
static RECEIVED: OnceLock<&'static str> = OnceLock::new();

/// `SIGINT` or `SIGTERM` once one has been received.
pub fn received() -> Option<&'static str> {
    RECEIVED.get().copied()
}

/// Cancels `token` on the first SIGINT/SIGTERM; exits with
/// [`EXIT_AT_ONCE`] on the second. Call from inside a tokio runtime.
pub fn cancel_on_signals(token: CancellationToken, on_first: impl Fn(&str) + Send + 'static) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        let Ok(mut int) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        else {
            return;
        };
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            seen += 1;
            if seen == 1 {
                let _ = RECEIVED.set(name);
                on_first(name);
                token.cancel();
            } else {
                eprintln!(
                    "{name} received again: exiting at once without cleaning up (exit status {EXIT_AT_ONCE})"
                );
                std::process::exit(EXIT_AT_ONCE);
            }
        }
    });
}
