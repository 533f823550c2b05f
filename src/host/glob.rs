//! `*` wildcards over names: `-only`/`-except` patterns (as Packer matches
//! them) and the file entries of `cd_files` / `floppy_files`. Shared by
//! `config` and `media`, so neither imports the other for it.

/// Whether `name` matches `pattern`, where each `*` stands for any run of
/// characters (also none).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return remaining.ends_with(part);
        }
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_packer() {
        assert!(glob_match("qemu", "qemu"));
        assert!(glob_match("q*", "qemu"));
        assert!(glob_match("*-iso", "virtualbox-iso"));
        assert!(glob_match("v*box*iso", "virtualbox-iso"));
        assert!(!glob_match("q*", "virtualbox-iso"));
        assert!(!glob_match("qemu", "qemu2"));
    }
}
