//! The physical keys of a US keyboard that a boot command can reach, and the
//! two ways text names them: special names (`<enter>`) and plain characters.

/// A physical key. Characters that need Shift are a key plus
/// [`KeyStroke::shift`], never a key of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    A,
    B,
    C,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
    N,
    O,
    P,
    Q,
    R,
    S,
    T,
    U,
    V,
    W,
    X,
    Y,
    Z,
    Digit0,
    Digit1,
    Digit2,
    Digit3,
    Digit4,
    Digit5,
    Digit6,
    Digit7,
    Digit8,
    Digit9,
    Minus,
    Equal,
    BracketLeft,
    BracketRight,
    Backslash,
    Semicolon,
    Apostrophe,
    Grave,
    Comma,
    Dot,
    Slash,
    Space,
    Enter,
    Escape,
    Backspace,
    Tab,
    Insert,
    Delete,
    Home,
    End,
    PageUp,
    PageDown,
    Up,
    Down,
    Left,
    Right,
    F1,
    F2,
    F3,
    F4,
    F5,
    F6,
    F7,
    F8,
    F9,
    F10,
    F11,
    F12,
    LeftShift,
    RightShift,
    LeftCtrl,
    RightCtrl,
    LeftAlt,
    RightAlt,
    LeftSuper,
    RightSuper,
    Menu,
}

/// A key together with whether Shift must be held around it (`A`, `!`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyStroke {
    pub key: Key,
    pub shift: bool,
}

impl Key {
    /// This key alone, without Shift.
    pub const fn stroke(self) -> KeyStroke {
        KeyStroke {
            key: self,
            shift: false,
        }
    }

    /// The same key with Shift held.
    pub const fn shifted(self) -> KeyStroke {
        KeyStroke {
            key: self,
            shift: true,
        }
    }
}

/// Special key names, lower-case, in the order Packer's grammar tries them.
/// Order matters: the first name that is a prefix of the text wins, so a
/// longer name must come before any name that is its prefix (`f10` before
/// `f1`, `leftAlt` before `left`). `leftMeta`/`rightMeta` are Packer's
/// older spellings of the Super keys.
pub const SPECIAL_KEYS: &[(&str, Key)] = &[
    ("bs", Key::Backspace),
    ("del", Key::Delete),
    ("enter", Key::Enter),
    ("esc", Key::Escape),
    ("f10", Key::F10),
    ("f11", Key::F11),
    ("f12", Key::F12),
    ("f1", Key::F1),
    ("f2", Key::F2),
    ("f3", Key::F3),
    ("f4", Key::F4),
    ("f5", Key::F5),
    ("f6", Key::F6),
    ("f7", Key::F7),
    ("f8", Key::F8),
    ("f9", Key::F9),
    ("return", Key::Enter),
    ("tab", Key::Tab),
    ("up", Key::Up),
    ("down", Key::Down),
    ("spacebar", Key::Space),
    ("insert", Key::Insert),
    ("home", Key::Home),
    ("end", Key::End),
    ("pageup", Key::PageUp),
    ("pagedown", Key::PageDown),
    ("leftalt", Key::LeftAlt),
    ("leftctrl", Key::LeftCtrl),
    ("leftmeta", Key::LeftSuper),
    ("leftshift", Key::LeftShift),
    ("rightalt", Key::RightAlt),
    ("rightctrl", Key::RightCtrl),
    ("rightmeta", Key::RightSuper),
    ("rightshift", Key::RightShift),
    ("leftsuper", Key::LeftSuper),
    ("rightsuper", Key::RightSuper),
    ("left", Key::Left),
    ("right", Key::Right),
    ("menu", Key::Menu),
];

/// The spellings Packer documents, for did-you-mean hints.
pub(crate) const DOCUMENTED_NAMES: &[&str] = &[
    "bs",
    "del",
    "enter",
    "return",
    "esc",
    "tab",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "f6",
    "f7",
    "f8",
    "f9",
    "f10",
    "f11",
    "f12",
    "up",
    "down",
    "left",
    "right",
    "spacebar",
    "insert",
    "home",
    "end",
    "pageUp",
    "pageDown",
    "menu",
    "leftAlt",
    "rightAlt",
    "leftCtrl",
    "rightCtrl",
    "leftShift",
    "rightShift",
    "leftSuper",
    "rightSuper",
    "wait",
];

/// Rows of the US layout: unshifted characters, their shifted twins, keys.
const ROWS: &[(&str, &str, &[Key])] = &[
    (
        "1234567890-=",
        "!@#$%^&*()_+",
        &[
            Key::Digit1,
            Key::Digit2,
            Key::Digit3,
            Key::Digit4,
            Key::Digit5,
            Key::Digit6,
            Key::Digit7,
            Key::Digit8,
            Key::Digit9,
            Key::Digit0,
            Key::Minus,
            Key::Equal,
        ],
    ),
    (
        "qwertyuiop[]",
        "QWERTYUIOP{}",
        &[
            Key::Q,
            Key::W,
            Key::E,
            Key::R,
            Key::T,
            Key::Y,
            Key::U,
            Key::I,
            Key::O,
            Key::P,
            Key::BracketLeft,
            Key::BracketRight,
        ],
    ),
    (
        "asdfghjkl;'`",
        "ASDFGHJKL:\"~",
        &[
            Key::A,
            Key::S,
            Key::D,
            Key::F,
            Key::G,
            Key::H,
            Key::J,
            Key::K,
            Key::L,
            Key::Semicolon,
            Key::Apostrophe,
            Key::Grave,
        ],
    ),
    (
        "\\zxcvbnm,./",
        "|ZXCVBNM<>?",
        &[
            Key::Backslash,
            Key::Z,
            Key::X,
            Key::C,
            Key::V,
            Key::B,
            Key::N,
            Key::M,
            Key::Comma,
            Key::Dot,
            Key::Slash,
        ],
    ),
    (" ", " ", &[Key::Space]),
];

/// The key (and Shift) that types `c` on a US keyboard, or None when no key
/// does (non-ASCII text, control characters).
pub fn stroke_for_char(c: char) -> Option<KeyStroke> {
    for (plain, shifted, keys) in ROWS {
        if let Some(i) = plain.chars().position(|p| p == c) {
            return keys.get(i).map(|k| k.stroke());
        }
        if let Some(i) = shifted.chars().position(|s| s == c) {
            return keys.get(i).map(|k| k.shifted());
        }
    }
    None
}

/// Every character [`stroke_for_char`] can type, for tests and hints.
pub fn typable_chars() -> impl Iterator<Item = char> {
    (' '..='~').filter(|c| stroke_for_char(*c).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned() {
        for (plain, shifted, keys) in ROWS {
            assert_eq!(plain.chars().count(), keys.len(), "{plain}");
            assert_eq!(shifted.chars().count(), keys.len(), "{shifted}");
        }
    }

    #[test]
    fn all_printable_ascii_is_typable() {
        for c in ' '..='~' {
            assert!(stroke_for_char(c).is_some(), "{c:?}");
        }
        assert_eq!(typable_chars().filter(|c| *c != ' ').count(), 94);
    }

    #[test]
    fn shifted_symbols_need_shift() {
        for c in "!@#$%^&*()_+{}|:\"<>?~ABCXYZ".chars() {
            assert!(stroke_for_char(c).is_some_and(|s| s.shift), "{c}");
        }
        for c in "1234567890-=[]\\;',./`abcxyz ".chars() {
            assert!(stroke_for_char(c).is_some_and(|s| !s.shift), "{c}");
        }
        assert_eq!(stroke_for_char('@'), Some(Key::Digit2.shifted()));
        assert_eq!(stroke_for_char('|'), Some(Key::Backslash.shifted()));
        assert_eq!(stroke_for_char('"'), Some(Key::Apostrophe.shifted()));
    }

    #[test]
    fn untypable_characters() {
        for c in ['\n', '\t', '\u{7f}', 'é', '€'] {
            assert_eq!(stroke_for_char(c), None, "{c:?}");
        }
    }

    #[test]
    fn no_special_name_is_shadowed_by_an_earlier_prefix() {
        for (i, (name, _)) in SPECIAL_KEYS.iter().enumerate() {
            for (earlier, _) in &SPECIAL_KEYS[..i] {
                assert!(!name.starts_with(earlier), "{earlier} shadows {name}");
            }
        }
    }
}
