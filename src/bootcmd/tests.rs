use std::time::Duration;

use serde_json::json;

use super::scancode::{self, VboxStep};
use super::*;

/// Every special name of the language: its QEMU qcode and its set-1 make
/// code (the break code is derived and checked separately).
const SPECIALS: &[(&str, &str, &[u8])] = &[
    ("bs", "backspace", &[0x0e]),
    ("del", "delete", &[0xe0, 0x53]),
    ("enter", "ret", &[0x1c]),
    ("return", "ret", &[0x1c]),
    ("esc", "esc", &[0x01]),
    ("tab", "tab", &[0x0f]),
    ("spacebar", "spc", &[0x39]),
    ("insert", "insert", &[0xe0, 0x52]),
    ("home", "home", &[0xe0, 0x47]),
    ("end", "end", &[0xe0, 0x4f]),
    ("pageUp", "pgup", &[0xe0, 0x49]),
    ("pageDown", "pgdn", &[0xe0, 0x51]),
    ("up", "up", &[0xe0, 0x48]),
    ("down", "down", &[0xe0, 0x50]),
    ("left", "left", &[0xe0, 0x4b]),
    ("right", "right", &[0xe0, 0x4d]),
    ("f1", "f1", &[0x3b]),
    ("f2", "f2", &[0x3c]),
    ("f3", "f3", &[0x3d]),
    ("f4", "f4", &[0x3e]),
    ("f5", "f5", &[0x3f]),
    ("f6", "f6", &[0x40]),
    ("f7", "f7", &[0x41]),
    ("f8", "f8", &[0x42]),
    ("f9", "f9", &[0x43]),
    ("f10", "f10", &[0x44]),
    ("f11", "f11", &[0x57]),
    ("f12", "f12", &[0x58]),
    ("leftAlt", "alt", &[0x38]),
    ("rightAlt", "alt_r", &[0xe0, 0x38]),
    ("leftCtrl", "ctrl", &[0x1d]),
    ("rightCtrl", "ctrl_r", &[0xe0, 0x1d]),
    ("leftShift", "shift", &[0x2a]),
    ("rightShift", "shift_r", &[0x36]),
    ("leftSuper", "meta_l", &[0xe0, 0x5b]),
    ("rightSuper", "meta_r", &[0xe0, 0x5c]),
    ("leftMeta", "meta_l", &[0xe0, 0x5b]),
    ("rightMeta", "meta_r", &[0xe0, 0x5c]),
    ("menu", "menu", &[0xe0, 0x5d]),
];

/// Every character a US keyboard types: qcode, make code, Shift.
const CHARS: &[(char, &str, u8, bool)] = &[
    ('a', "a", 0x1e, false),
    ('b', "b", 0x30, false),
    ('c', "c", 0x2e, false),
    ('d', "d", 0x20, false),
    ('e', "e", 0x12, false),
    ('f', "f", 0x21, false),
    ('g', "g", 0x22, false),
    ('h', "h", 0x23, false),
    ('i', "i", 0x17, false),
    ('j', "j", 0x24, false),
    ('k', "k", 0x25, false),
    ('l', "l", 0x26, false),
    ('m', "m", 0x32, false),
    ('n', "n", 0x31, false),
    ('o', "o", 0x18, false),
    ('p', "p", 0x19, false),
    ('q', "q", 0x10, false),
    ('r', "r", 0x13, false),
    ('s', "s", 0x1f, false),
    ('t', "t", 0x14, false),
    ('u', "u", 0x16, false),
    ('v', "v", 0x2f, false),
    ('w', "w", 0x11, false),
    ('x', "x", 0x2d, false),
    ('y', "y", 0x15, false),
    ('z', "z", 0x2c, false),
    ('A', "a", 0x1e, true),
    ('B', "b", 0x30, true),
    ('C', "c", 0x2e, true),
    ('D', "d", 0x20, true),
    ('E', "e", 0x12, true),
    ('F', "f", 0x21, true),
    ('G', "g", 0x22, true),
    ('H', "h", 0x23, true),
    ('I', "i", 0x17, true),
    ('J', "j", 0x24, true),
    ('K', "k", 0x25, true),
    ('L', "l", 0x26, true),
    ('M', "m", 0x32, true),
    ('N', "n", 0x31, true),
    ('O', "o", 0x18, true),
    ('P', "p", 0x19, true),
    ('Q', "q", 0x10, true),
    ('R', "r", 0x13, true),
    ('S', "s", 0x1f, true),
    ('T', "t", 0x14, true),
    ('U', "u", 0x16, true),
    ('V', "v", 0x2f, true),
    ('W', "w", 0x11, true),
    ('X', "x", 0x2d, true),
    ('Y', "y", 0x15, true),
    ('Z', "z", 0x2c, true),
    ('1', "1", 0x02, false),
    ('2', "2", 0x03, false),
    ('3', "3", 0x04, false),
    ('4', "4", 0x05, false),
    ('5', "5", 0x06, false),
    ('6', "6", 0x07, false),
    ('7', "7", 0x08, false),
    ('8', "8", 0x09, false),
    ('9', "9", 0x0a, false),
    ('0', "0", 0x0b, false),
    ('!', "1", 0x02, true),
    ('@', "2", 0x03, true),
    ('#', "3", 0x04, true),
    ('$', "4", 0x05, true),
    ('%', "5", 0x06, true),
    ('^', "6", 0x07, true),
    ('&', "7", 0x08, true),
    ('*', "8", 0x09, true),
    ('(', "9", 0x0a, true),
    (')', "0", 0x0b, true),
    ('-', "minus", 0x0c, false),
    ('_', "minus", 0x0c, true),
    ('=', "equal", 0x0d, false),
    ('+', "equal", 0x0d, true),
    ('[', "bracket_left", 0x1a, false),
    ('{', "bracket_left", 0x1a, true),
    (']', "bracket_right", 0x1b, false),
    ('}', "bracket_right", 0x1b, true),
    ('\\', "backslash", 0x2b, false),
    ('|', "backslash", 0x2b, true),
    (';', "semicolon", 0x27, false),
    (':', "semicolon", 0x27, true),
    ('\'', "apostrophe", 0x28, false),
    ('"', "apostrophe", 0x28, true),
    ('`', "grave_accent", 0x29, false),
    ('~', "grave_accent", 0x29, true),
    (',', "comma", 0x33, false),
    ('<', "comma", 0x33, true),
    ('.', "dot", 0x34, false),
    ('>', "dot", 0x34, true),
    ('/', "slash", 0x35, false),
    ('?', "slash", 0x35, true),
    (' ', "spc", 0x39, false),
];

fn release(make: &[u8]) -> Vec<u8> {
    match make {
        [0xe0, code] => vec![0xe0, code | 0x80],
        [code] => vec![code | 0x80],
        other => panic!("unexpected make code {other:?}"),
    }
}

fn only(text: &str) -> Action {
    match parse(text).as_deref() {
        Ok([action]) => *action,
        other => panic!("{text}: expected one action, got {other:?}"),
    }
}

fn send_key(codes: &[&str]) -> serde_json::Value {
    let keys: Vec<_> = codes
        .iter()
        .map(|c| json!({"type": "qcode", "data": c}))
        .collect();
    json!({"execute": "send-key", "arguments": {"keys": keys}})
}

fn events(codes: &[&str], down: bool) -> serde_json::Value {
    let events: Vec<_> = codes
        .iter()
        .map(
            |c| json!({"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": c}}}),
        )
        .collect();
    json!({"execute": "input-send-event", "arguments": {"events": events}})
}

#[test]
fn every_special_key_press_in_both_encoders() {
    for (name, qcode, make) in SPECIALS {
        for written in [
            format!("<{name}>"),
            format!("<{}>", name.to_uppercase()),
            format!("<{}>", name.to_lowercase()),
        ] {
            let action = only(&written);
            assert!(matches!(action, Action::Press(s) if !s.shift), "{written}");
            assert_eq!(qmp::command(&action), Some(send_key(&[qcode])), "{written}");
            let mut both = make.to_vec();
            both.extend(release(make));
            assert_eq!(scancode::codes(&action), both, "{written}");
        }
    }
}

#[test]
fn every_special_key_held_and_released_in_both_encoders() {
    for (name, qcode, make) in SPECIALS {
        for (on, off) in [("On", "Off"), ("on", "off"), ("ON", "OFF")] {
            let down = only(&format!("<{name}{on}>"));
            let up = only(&format!("<{name}{off}>"));
            assert!(matches!(down, Action::Down(_)), "{name}{on}");
            assert!(matches!(up, Action::Up(_)), "{name}{off}");
            assert_eq!(qmp::command(&down), Some(events(&[qcode], true)));
            assert_eq!(qmp::command(&up), Some(events(&[qcode], false)));
            assert_eq!(scancode::codes(&down), make.to_vec(), "{name}");
            assert_eq!(scancode::codes(&up), release(make), "{name}");
        }
    }
}

#[test]
fn the_special_table_covers_every_name() {
    for (name, _) in SPECIAL_KEYS {
        assert!(
            SPECIALS.iter().any(|(n, ..)| n.eq_ignore_ascii_case(name)),
            "{name} has no encoder test"
        );
    }
}

#[test]
fn every_character_in_both_encoders() {
    for &(c, qcode, make, shift) in CHARS {
        let action = only(&c.to_string());
        let Action::Press(stroke) = action else {
            panic!("{c:?}: {action:?}");
        };
        assert_eq!(stroke.shift, shift, "{c:?}");
        let (want_qmp, want_codes) = if shift {
            (
                send_key(&["shift", qcode]),
                vec![0x2a, make, make | 0x80, 0xaa],
            )
        } else {
            (send_key(&[qcode]), vec![make, make | 0x80])
        };
        assert_eq!(qmp::command(&action), Some(want_qmp), "{c:?}");
        assert_eq!(scancode::codes(&action), want_codes, "{c:?}");
    }
    assert_eq!(CHARS.len(), typable_chars().count());
}

#[test]
fn shifted_symbols() {
    let actions = parse("A!~").expect("parses");
    let codes: Vec<u8> = actions.iter().flat_map(scancode::codes).collect();
    assert_eq!(
        scancode::hex(&codes).join(" "),
        "2a 1e 9e aa 2a 02 82 aa 2a 29 a9 aa"
    );
    assert_eq!(
        qmp::command(&actions[1]),
        Some(json!({"execute": "send-key", "arguments": {"keys": [
            {"type": "qcode", "data": "shift"}, {"type": "qcode", "data": "1"}
        ]}}))
    );
}

#[test]
fn held_shift_around_a_character() {
    let actions = parse("<leftShiftOn>a<leftShiftOff>").expect("parses");
    assert_eq!(
        actions,
        vec![
            Action::Down(Key::LeftShift.stroke()),
            Action::Press(Key::A.stroke()),
            Action::Up(Key::LeftShift.stroke()),
        ]
    );
    let codes: Vec<u8> = actions.iter().flat_map(scancode::codes).collect();
    assert_eq!(codes, vec![0x2a, 0x1e, 0x9e, 0xaa]);
    let qmp: Vec<_> = actions.iter().filter_map(qmp::command).collect();
    assert_eq!(
        qmp,
        vec![
            events(&["shift"], true),
            send_key(&["a"]),
            events(&["shift"], false)
        ]
    );
}

#[test]
fn ctrl_alt_del_chord() {
    let actions = parse("<leftCtrlOn><leftAltOn><del><leftAltOff><leftCtrlOff>").expect("ok");
    let codes: Vec<u8> = actions.iter().flat_map(scancode::codes).collect();
    assert_eq!(
        scancode::hex(&codes).join(""),
        "1d38e053e0d3b89d",
        "as Packer's PC-XT driver sends it"
    );
}

#[test]
fn character_toggles() {
    assert_eq!(only("<aOn>"), Action::Down(Key::A.stroke()));
    assert_eq!(only("<aoff>"), Action::Up(Key::A.stroke()));
    assert_eq!(only("<AOn>"), Action::Down(Key::A.shifted()));
    assert_eq!(only("<<On>"), Action::Down(Key::Comma.shifted()));
    assert_eq!(only("<>Off>"), Action::Up(Key::Dot.shifted()));
    // Shift goes down before the key and up after it.
    assert_eq!(scancode::codes(&only("<AOn>")), vec![0x2a, 0x1e]);
    assert_eq!(scancode::codes(&only("<AOff>")), vec![0x9e, 0xaa]);
    assert_eq!(
        qmp::command(&only("<AOff>")),
        Some(events(&["a", "shift"], false))
    );
}

#[test]
fn waits() {
    let s = Duration::from_secs;
    let cases: &[(&str, Duration)] = &[
        ("<wait>", s(1)),
        ("<wait5>", s(5)),
        ("<wait10>", s(10)),
        ("<wait1m30s>", s(90)),
        ("<wait500ms>", Duration::from_millis(500)),
        ("<wait1.5s>", Duration::from_millis(1500)),
        ("<wait2h>", s(7200)),
    ];
    for (text, want) in cases {
        assert_eq!(only(text), Action::Wait(*want), "{text}");
        assert_eq!(qmp::command(&only(text)), None);
        assert!(scancode::codes(&only(text)).is_empty());
    }
}

#[test]
fn not_specials_are_typed_as_text_like_packer() {
    // Packer's grammar falls back to a literal `<` for anything else.
    for text in [
        "<foo>",
        "<WAIT>",
        "<wait5sec>",
        "<wait05>",
        "<f13>",
        "<enterx>",
        "<",
        "<>",
        "<<",
        "a < b",
        "<wait",
    ] {
        let actions = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let typed: Vec<_> = text.chars().filter_map(stroke_for_char).collect();
        let want: Vec<_> = typed.into_iter().map(Action::Press).collect();
        assert_eq!(actions, want, "{text}");
    }
}

#[test]
fn a_typical_installer_command() {
    let typed = "install preseed/url=http://10.0.2.2:8123/preseed.cfg";
    let text = format!("<esc><wait>{typed}<enter>");
    let actions = parse(&text).expect("parses");
    assert_eq!(actions.len(), 2 + typed.len() + 1);
    assert_eq!(actions[0], Action::Press(Key::Escape.stroke()));
    assert_eq!(actions[1], Action::Wait(Duration::from_secs(1)));
    assert_eq!(actions[2], Action::Press(Key::I.stroke()));
    let colon = 2 + typed.find(':').expect("present");
    assert_eq!(actions[colon], Action::Press(Key::Semicolon.shifted()));
    assert_eq!(actions.last(), Some(&Action::Press(Key::Enter.stroke())));
}

#[test]
fn errors_point_at_the_offending_text() {
    let cases: &[(&str, usize, &str)] = &[
        ("abc<wait0>", 3, "`<wait0>` must wait a positive time"),
        ("<enter><wait0s>", 7, "`<wait0s>` must wait a positive time"),
        ("x<wait-5s>", 1, "`<wait-5s>` must wait a positive time"),
        (
            "<wait1m-30s>",
            0,
            "the duration in `<wait1m-30s>` has a sign inside it",
        ),
        (
            "<wait99999999999h>",
            0,
            "the duration in `<wait99999999999h>` is too long",
        ),
        ("ab\ncd", 2, "'\\n' cannot be typed"),
        ("caf\u{e9}", 3, "'é' cannot be typed"),
        ("<\u{e9}On>", 1, "'é' cannot be typed"),
    ];
    for (text, offset, message) in cases {
        let err = parse(text).expect_err(text);
        assert_eq!(err.offset, *offset, "{text}: {err}");
        assert!(err.message.starts_with(message), "{text}: {}", err.message);
    }
    let newline = parse("a\n").expect_err("newline");
    assert_eq!(
        newline.hint.as_deref(),
        Some("write `<enter>` to press Enter")
    );
}

#[test]
fn validate_skips_template_actions_and_collects_everything() {
    let raw =
        "<esc><wait0> ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg{{ user `x}}` }}<wait0><enetr>";
    let found = validate(raw);
    let offsets: Vec<usize> = found.errors.iter().map(|e| e.offset).collect();
    let second = raw.rfind("<wait0>").expect("present");
    assert_eq!(offsets, vec![5, second]);
    assert_eq!(found.warnings.len(), 1);
    let warning = &found.warnings[0];
    assert_eq!(warning.offset, raw.rfind("<enetr>").expect("present"));
    assert_eq!(warning.hint.as_deref(), Some("did you mean `<enter>`?"));
}

#[test]
fn validate_accepts_what_packer_accepts() {
    let raw = "<esc><wait>linux ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg<enter><wait10>";
    assert_eq!(validate(raw), Validation::default());
    // An action inside a special is left to run time.
    assert_eq!(validate("<wait{{ user `w` }}>"), Validation::default());
    // Unterminated actions are the template checker's business.
    assert!(validate("abc {{ .HTTPIP").errors.is_empty());
}

#[test]
fn near_misses_are_warned_with_a_suggestion() {
    let cases: &[(&str, Option<&str>)] = &[
        ("<enetr>", Some("did you mean `<enter>`?")),
        ("<leftctlOn>", Some("did you mean `<leftCtrlOn>`?")),
        ("<pgup>", Some("did you mean `<pageUp>`?")),
        ("<escape>", Some("did you mean `<esc>`?")),
        (
            "<wait5sec>",
            Some(
                "a wait is `<wait>`, `<wait5>` or a Go duration such as `<wait1m30s>`, `<wait500ms>`",
            ),
        ),
    ];
    for (text, hint) in cases {
        let found = validate(text);
        assert!(found.errors.is_empty(), "{text}");
        assert_eq!(found.warnings.len(), 1, "{text}");
        assert_eq!(found.warnings[0].hint.as_deref(), *hint, "{text}");
        assert_eq!(found.warnings[0].offset, 0);
    }
    // Ordinary text with angle brackets is not a near miss.
    assert!(validate("echo a > b; cat < c").warnings.is_empty());
}

#[test]
fn vbox_steps_group_codes_and_flush_at_waits() {
    let actions = parse("ab<wait5>c").expect("parses");
    assert_eq!(
        scancode::vbox_steps(&actions, scancode::MAX_CODES_PER_CALL),
        vec![
            VboxStep::PutScancodes(scancode::hex(&[0x1e, 0x9e, 0x30, 0xb0])),
            VboxStep::Wait(Duration::from_secs(5)),
            VboxStep::PutScancodes(scancode::hex(&[0x2e, 0xae])),
        ]
    );
}

#[test]
fn vbox_steps_never_split_an_action_and_respect_the_limit() {
    let actions = parse(&"A".repeat(100)).expect("parses");
    let steps = scancode::vbox_steps(&actions, 10);
    // Each `A` is four codes: two fit in ten, never half of one.
    assert_eq!(steps.len(), 50);
    for step in &steps {
        let VboxStep::PutScancodes(codes) = step else {
            panic!("{step:?}");
        };
        assert_eq!(codes, &["2a", "1e", "9e", "aa", "2a", "1e", "9e", "aa"]);
    }
    let long = parse(&"x".repeat(1000)).expect("parses");
    for step in scancode::vbox_steps(&long, scancode::MAX_CODES_PER_CALL) {
        let VboxStep::PutScancodes(codes) = step else {
            panic!("{step:?}");
        };
        assert!(codes.len() <= scancode::MAX_CODES_PER_CALL);
    }
}

#[test]
fn one_vbox_call_never_holds_more_keys_than_a_bios_keeps() {
    // A PC BIOS buffers 15 keystrokes for a boot loader that has not read
    // them yet; VirtualBox delivers one call's codes as fast as the guest
    // reads them, so more than 15 presses in one call can overflow it.
    let line =
        parse("install url=http://10.0.2.2:8080/Preseed.cfg<enter><tab><down>").expect("parses");
    for step in scancode::vbox_steps(&line, scancode::MAX_CODES_PER_CALL) {
        let VboxStep::PutScancodes(codes) = step else {
            panic!("{step:?}");
        };
        let presses = codes
            .iter()
            .filter_map(|c| u8::from_str_radix(c, 16).ok())
            .filter(|&c| c < 0x80 && c != 0x2a && c != 0x36)
            .count();
        assert!(presses <= 15, "{presses} keys in one call: {codes:?}");
    }
}
