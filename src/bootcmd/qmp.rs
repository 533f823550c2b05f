//! Boot-command actions as QMP commands for QEMU: `send-key` presses and
//! releases a chord; `input-send-event` holds or releases keys one way.

use serde_json::{Value, json};

use super::{Action, Key, KeyStroke};

/// QEMU's `QKeyCode` name for a key (qapi/ui.json).
pub fn qcode(key: Key) -> &'static str {
    match key {
        Key::A => "a",
        Key::B => "b",
        Key::C => "c",
        Key::D => "d",
        Key::E => "e",
        Key::F => "f",
        Key::G => "g",
        Key::H => "h",
        Key::I => "i",
        Key::J => "j",
        Key::K => "k",
        Key::L => "l",
        Key::M => "m",
        Key::N => "n",
        Key::O => "o",
        Key::P => "p",
        Key::Q => "q",
        Key::R => "r",
        Key::S => "s",
        Key::T => "t",
        Key::U => "u",
        Key::V => "v",
        Key::W => "w",
        Key::X => "x",
        Key::Y => "y",
        Key::Z => "z",
        Key::Digit0 => "0",
        Key::Digit1 => "1",
        Key::Digit2 => "2",
        Key::Digit3 => "3",
        Key::Digit4 => "4",
        Key::Digit5 => "5",
        Key::Digit6 => "6",
        Key::Digit7 => "7",
        Key::Digit8 => "8",
        Key::Digit9 => "9",
        Key::Minus => "minus",
        Key::Equal => "equal",
        Key::BracketLeft => "bracket_left",
        Key::BracketRight => "bracket_right",
        Key::Backslash => "backslash",
        Key::Semicolon => "semicolon",
        Key::Apostrophe => "apostrophe",
        Key::Grave => "grave_accent",
        Key::Comma => "comma",
        Key::Dot => "dot",
        Key::Slash => "slash",
        Key::Space => "spc",
        Key::Enter => "ret",
        Key::Escape => "esc",
        Key::Backspace => "backspace",
        Key::Tab => "tab",
        Key::Insert => "insert",
        Key::Delete => "delete",
        Key::Home => "home",
        Key::End => "end",
        Key::PageUp => "pgup",
        Key::PageDown => "pgdn",
        Key::Up => "up",
        Key::Down => "down",
        Key::Left => "left",
        Key::Right => "right",
        Key::F1 => "f1",
        Key::F2 => "f2",
        Key::F3 => "f3",
        Key::F4 => "f4",
        Key::F5 => "f5",
        Key::F6 => "f6",
        Key::F7 => "f7",
        Key::F8 => "f8",
        Key::F9 => "f9",
        Key::F10 => "f10",
        Key::F11 => "f11",
        Key::F12 => "f12",
        Key::LeftShift => "shift",
        Key::RightShift => "shift_r",
        Key::LeftCtrl => "ctrl",
        Key::RightCtrl => "ctrl_r",
        Key::LeftAlt => "alt",
        Key::RightAlt => "alt_r",
        Key::LeftSuper => "meta_l",
        Key::RightSuper => "meta_r",
        Key::Menu => "menu",
    }
}

/// The qcodes of a stroke, modifiers first.
pub fn qcodes(stroke: KeyStroke) -> Vec<&'static str> {
    let mut codes = Vec::with_capacity(2);
    if stroke.shift {
        codes.push(qcode(Key::LeftShift));
    }
    codes.push(qcode(stroke.key));
    codes
}

/// The QMP command for an action, or None for a wait (the caller sleeps).
pub fn command(action: &Action) -> Option<Value> {
    match action {
        Action::Press(stroke) => Some(send_key(&qcodes(*stroke))),
        Action::Down(stroke) => Some(input_send_event(&qcodes(*stroke), true)),
        Action::Up(stroke) => {
            // Release in the reverse order of pressing: the key, then Shift.
            let mut codes = qcodes(*stroke);
            codes.reverse();
            Some(input_send_event(&codes, false))
        }
        Action::Wait(_) => None,
    }
}

/// `send-key`: QEMU presses the keys in order, then releases them.
pub fn send_key(codes: &[&str]) -> Value {
    let keys: Vec<Value> = codes
        .iter()
        .map(|c| json!({"type": "qcode", "data": c}))
        .collect();
    json!({"execute": "send-key", "arguments": {"keys": keys}})
}

/// `input-send-event` with one key event per code, all `down` or all up.
pub fn input_send_event(codes: &[&str], down: bool) -> Value {
    let events: Vec<Value> = codes
        .iter()
        .map(|c| {
            json!({
                "type": "key",
                "data": {"down": down, "key": {"type": "qcode", "data": c}}
            })
        })
        .collect();
    json!({"execute": "input-send-event", "arguments": {"events": events}})
}
