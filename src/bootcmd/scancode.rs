//! Boot-command actions as PC scancodes (set 1) for VirtualBox's
//! `VBoxManage controlvm NAME keyboardputscancode 1c 9c …`.
//!
//! A make code presses a key; its break code is the make code + 0x80. Keys
//! added with the 101-key keyboard are prefixed with 0xE0 in both.

use std::time::Duration;

use super::{Action, Key, KeyStroke};

/// How many codes kiln passes to one `keyboardputscancode` call: 25, as
/// Packer's virtualbox builders do. VirtualBox hands a call's codes to the
/// guest as fast as it reads them, and a PC BIOS keeps at most 15 keys for a
/// boot loader that has not read them yet; 25 codes are at most 12 keys, so
/// one call cannot overflow that buffer however slowly the guest runs, and
/// `boot_keygroup_interval` after each call lets it drain. (256 per call lost
/// keys when a guest under TCG on a loaded host fell behind.)
pub const MAX_CODES_PER_CALL: usize = 25;

const EXTENDED: u8 = 0xE0;
const BREAK: u8 = 0x80;

/// The set-1 make code of a key, and whether it is 0xE0-prefixed.
pub fn make_code(key: Key) -> (bool, u8) {
    let code = match key {
        Key::Escape => 0x01,
        Key::Digit1 => 0x02,
        Key::Digit2 => 0x03,
        Key::Digit3 => 0x04,
        Key::Digit4 => 0x05,
        Key::Digit5 => 0x06,
        Key::Digit6 => 0x07,
        Key::Digit7 => 0x08,
        Key::Digit8 => 0x09,
        Key::Digit9 => 0x0a,
        Key::Digit0 => 0x0b,
        Key::Minus => 0x0c,
        Key::Equal => 0x0d,
        Key::Backspace => 0x0e,
        Key::Tab => 0x0f,
        Key::Q => 0x10,
        Key::W => 0x11,
        Key::E => 0x12,
        Key::R => 0x13,
        Key::T => 0x14,
        Key::Y => 0x15,
        Key::U => 0x16,
        Key::I => 0x17,
        Key::O => 0x18,
        Key::P => 0x19,
        Key::BracketLeft => 0x1a,
        Key::BracketRight => 0x1b,
        Key::Enter => 0x1c,
        Key::LeftCtrl => 0x1d,
        Key::A => 0x1e,
        Key::S => 0x1f,
        Key::D => 0x20,
        Key::F => 0x21,
        Key::G => 0x22,
        Key::H => 0x23,
        Key::J => 0x24,
        Key::K => 0x25,
        Key::L => 0x26,
        Key::Semicolon => 0x27,
        Key::Apostrophe => 0x28,
        Key::Grave => 0x29,
        Key::LeftShift => 0x2a,
        Key::Backslash => 0x2b,
        Key::Z => 0x2c,
        Key::X => 0x2d,
        Key::C => 0x2e,
        Key::V => 0x2f,
        Key::B => 0x30,
        Key::N => 0x31,
        Key::M => 0x32,
        Key::Comma => 0x33,
        Key::Dot => 0x34,
        Key::Slash => 0x35,
        Key::RightShift => 0x36,
        Key::LeftAlt => 0x38,
        Key::Space => 0x39,
        Key::F1 => 0x3b,
        Key::F2 => 0x3c,
        Key::F3 => 0x3d,
        Key::F4 => 0x3e,
        Key::F5 => 0x3f,
        Key::F6 => 0x40,
        Key::F7 => 0x41,
        Key::F8 => 0x42,
        Key::F9 => 0x43,
        Key::F10 => 0x44,
        Key::F11 => 0x57,
        Key::F12 => 0x58,
        Key::RightCtrl => return (true, 0x1d),
        Key::RightAlt => return (true, 0x38),
        Key::Home => return (true, 0x47),
        Key::Up => return (true, 0x48),
        Key::PageUp => return (true, 0x49),
        Key::Left => return (true, 0x4b),
        Key::Right => return (true, 0x4d),
        Key::End => return (true, 0x4f),
        Key::Down => return (true, 0x50),
        Key::PageDown => return (true, 0x51),
        Key::Insert => return (true, 0x52),
        Key::Delete => return (true, 0x53),
        Key::LeftSuper => return (true, 0x5b),
        Key::RightSuper => return (true, 0x5c),
        Key::Menu => return (true, 0x5d),
    };
    (false, code)
}

/// The bytes that press `key`.
pub fn press_codes(key: Key) -> Vec<u8> {
    match make_code(key) {
        (true, code) => vec![EXTENDED, code],
        (false, code) => vec![code],
    }
}

/// The bytes that release `key`.
pub fn release_codes(key: Key) -> Vec<u8> {
    match make_code(key) {
        (true, code) => vec![EXTENDED, code | BREAK],
        (false, code) => vec![code | BREAK],
    }
}

fn down(stroke: KeyStroke, out: &mut Vec<u8>) {
    if stroke.shift {
        out.extend(press_codes(Key::LeftShift));
    }
    out.extend(press_codes(stroke.key));
}

fn up(stroke: KeyStroke, out: &mut Vec<u8>) {
    out.extend(release_codes(stroke.key));
    if stroke.shift {
        out.extend(release_codes(Key::LeftShift));
    }
}

/// The scancodes of one action; empty for a wait.
pub fn codes(action: &Action) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    match action {
        Action::Press(stroke) => {
            down(*stroke, &mut out);
            up(*stroke, &mut out);
        }
        Action::Down(stroke) => down(*stroke, &mut out),
        Action::Up(stroke) => up(*stroke, &mut out),
        Action::Wait(_) => {}
    }
    out
}

/// Scancodes as VBoxManage wants them: two lower-case hex digits each.
pub fn hex(codes: &[u8]) -> Vec<String> {
    codes.iter().map(|c| format!("{c:02x}")).collect()
}

/// One thing to do through VBoxManage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VboxStep {
    /// `keyboardputscancode` with these hex codes.
    PutScancodes(Vec<String>),
    Wait(Duration),
}

/// Groups actions into as few `keyboardputscancode` calls as possible, each
/// at most `max_codes` long (at least one action's worth), never splitting
/// one action's codes across calls, and flushing before every wait.
pub fn vbox_steps(actions: &[Action], max_codes: usize) -> Vec<VboxStep> {
    let mut steps = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for action in actions {
        if let Action::Wait(d) = action {
            if !pending.is_empty() {
                steps.push(VboxStep::PutScancodes(hex(&pending)));
                pending.clear();
            }
            steps.push(VboxStep::Wait(*d));
            continue;
        }
        let codes = codes(action);
        if !pending.is_empty() && pending.len() + codes.len() > max_codes {
            steps.push(VboxStep::PutScancodes(hex(&pending)));
            pending.clear();
        }
        pending.extend(codes);
    }
    if !pending.is_empty() {
        steps.push(VboxStep::PutScancodes(hex(&pending)));
    }
    steps
}
