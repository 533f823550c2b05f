//! Where the build writes: `output_directory`.

use std::path::PathBuf;

use crate::config::decode::Fields;

/// `output_directory`, defaulting to `output-<build name>` as in Packer.
pub fn output_directory(f: &mut Fields<'_>) -> PathBuf {
    let default = format!("output-{}", f.context().build_name().unwrap_or("build"));
    PathBuf::from(
        f.string("output_directory")
            .filter(|s| !s.is_empty())
            .unwrap_or(default),
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::qemu_with;
    use std::path::PathBuf;

    #[test]
    fn output_directory_defaults_to_output_and_the_build_name() {
        let (q, diags) = qemu_with("");
        let expected = PathBuf::from("output-qemu");
        assert_eq!(q.expect("decodes").output_directory, expected, "{diags}");
        let (q, _) = qemu_with(r#""output_directory": "out""#);
        assert_eq!(q.expect("decodes").output_directory, PathBuf::from("out"));
    }
}
