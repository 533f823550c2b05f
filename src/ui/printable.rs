//! Text from outside (a guest's serial console) made safe to print: its
//! escape sequences could move the cursor, recolour or retitle the user's
//! terminal, or hide what follows.

/// `text` without terminal escape sequences (CSI `ESC [ … final`, OSC
/// `ESC ] … BEL|ESC \`, two-character `ESC x`, the 8-bit CSI) and without
/// other control characters; tabs are kept.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | '^' | '_' | 'X') => skip_string(&mut chars),
                // ESC plus one character (ESC c, ESC 7, ESC ( B …).
                Some('(' | ')' | '*' | '+' | '#' | '%') => {
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Parameters and intermediates up to the final byte `@`..`~`.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            break;
        }
    }
}

/// An OSC/DCS-style string, ended by BEL or ESC `\`.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        if c == '\u{7}' {
            break;
        }
        if c == '\u{1b}' {
            if chars.peek() == Some(&'\\') {
                chars.next();
            }
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_escape_sequences_and_controls() {
        assert_eq!(
            printable("\u{1b}[2J\u{1b}[1;31mPanic\u{1b}[0m: x\u{7}"),
            "Panic: x"
        );
        assert_eq!(printable("\u{1b}]0;owned title\u{7}login:"), "login:");
        assert_eq!(printable("\u{1b}]8;;http://x\u{1b}\\link"), "link");
        assert_eq!(printable("\u{1b}cReset\u{1b}(Bok"), "Resetok");
        assert_eq!(printable("a\tb\u{9b}31mc\u{8}d"), "a\tbcd");
        assert_eq!(printable("plain é text"), "plain é text");
    }
}
