//! The host side of the SSH forward: `host_port_min`/`max`,
//! `skip_nat_mapping`.

use crate::config::decode::Fields;

/// The host side of the SSH forward (`host_port_min`/`max`,
/// `skip_nat_mapping`), with Packer's old `ssh_host_port_*` spellings.
#[derive(Debug, Clone, Copy)]
pub struct HostPortConfig {
    pub min: u16,
    pub max: u16,
    pub skip_nat_mapping: bool,
}

impl HostPortConfig {
    pub fn decode(f: &mut Fields<'_>) -> Self {
        let old_min = f.renamed_u64_in("ssh_host_port_min", "host_port_min", 1, 65535);
        let old_max = f.renamed_u64_in("ssh_host_port_max", "host_port_max", 1, 65535);
        let min = f
            .u64_in("host_port_min", 1, 65535)
            .or(old_min)
            .unwrap_or(2222) as u16;
        let max = f
            .u64_in("host_port_max", 1, 65535)
            .or(old_max)
            .unwrap_or(4444) as u16;
        let skip_nat_mapping = f.bool("skip_nat_mapping").unwrap_or(false);
        if min > max {
            let span = f.span_of("host_port_min").unwrap_or_default();
            f.error_at(
                span,
                format!("host_port_min ({min}) is greater than host_port_max ({max})"),
            );
        }
        Self {
            min,
            max,
            skip_nat_mapping,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::qemu_with;

    #[test]
    fn packers_old_spellings_still_set_the_range() {
        let (q, diags) = qemu_with(r#""ssh_host_port_min": 3000, "ssh_host_port_max": 3010"#);
        let q = q.expect("decodes");
        assert_eq!((q.host_port_min, q.host_port_max), (3000, 3010), "{diags}");
    }

    #[test]
    fn a_reversed_range_is_an_error() {
        let (_, diags) = qemu_with(r#""host_port_min": 5000, "host_port_max": 4000"#);
        assert!(
            diags.contains("host_port_min (5000) is greater than host_port_max (4000)"),
            "{diags}"
        );
    }
}
