//! Everything the CLI writes to stderr goes through here, masked with the
//! sensitive values known so far: a secret that reaches any error of any
//! command (a URL with a password in `cache fetch`, a diagnostic) is
//! printed as `<sensitive>`. Commands add secrets as soon as they resolve
//! the template's variables.

use std::io::Write;
use std::sync::{Mutex, PoisonError};

use crate::template::diagnostic::{Diagnostics, Redact};
use crate::ui::console::SecretMask;

#[derive(Debug, Default)]
pub struct ErrorOutput {
    mask: Mutex<SecretMask>,
}

impl ErrorOutput {
    /// Masks `secrets` from now on, in this output and in reporters made
    /// from [`ErrorOutput::mask`] afterwards.
    pub fn add_secrets(&self, secrets: &[String]) {
        let (before, after) = {
            let mut mask = self.lock();
            let before = mask.too_short();
            mask.extend(secrets.iter().cloned());
            (before, mask.too_short())
        };
        if after > before {
            self.write(&format!(
                "warning: {} sensitive value(s) shorter than {} characters are not masked \
                 in kiln's output (masking them would hide ordinary text); use longer secrets\n",
                after - before,
                crate::ui::console::MIN_MASKED_CHARS
            ));
        }
    }

    /// The mask as it is now, for a reporter.
    pub fn mask(&self) -> SecretMask {
        self.lock().clone()
    }

    /// Writes `text` (which ends its own lines), masked.
    pub fn write(&self, text: &str) {
        let text = self.lock().mask(text);
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    /// `error: …` then each cause on its own line, masked.
    pub fn error(&self, e: &(dyn std::error::Error + 'static)) {
        self.write(&format!(
            "error: {}\n",
            crate::error_chain::error_chain(e, "\n  caused by: ")
        ));
    }

    /// The diagnostics, masked, with carets placed on the masked lines.
    pub fn diagnostics(&self, diags: &Diagnostics) {
        let text = diags.render_redacted(&*self.lock());
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SecretMask> {
        self.mask.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Redact for SecretMask {
    fn redact(&self, text: &str, positions: &mut [usize]) -> String {
        self.mask_tracking(text, positions)
    }
    fn longest(&self) -> usize {
        self.longest_secret()
    }
}
