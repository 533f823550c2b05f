//! Ctrl-C and SIGTERM: the first asks every build to stop and clean up;
//! a second one while cleaning up exits at once (VMs still die with kiln,
//! through PR_SET_PDEATHSIG).

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGINT/SIGTERM; exits with status 130 on
/// the second. Call from inside a tokio runtime.
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
                _ = int.recv() => "interrupt",
                _ = term.recv() => "terminate",
            };
            seen += 1;
            if seen == 1 {
                on_first(name);
                token.cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
}
