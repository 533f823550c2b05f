//! The Go-template subset Packer's JSON templates use (interface stub; the
//! engine lands on the `interp` branch).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

#[derive(Debug, Clone)]
pub struct Interp {
    source: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InterpError {
    pub offset: usize,
    pub message: String,
}

pub struct Context<'a> {
    pub user_vars: &'a BTreeMap<String, String>,
    pub env: Option<&'a dyn Fn(&str) -> Option<String>>,
    pub build_name: Option<&'a str>,
    pub build_type: Option<&'a str>,
    pub template_dir: &'a Path,
    pub pwd: &'a Path,
    pub init_time: SystemTime,
    pub data: &'a BTreeMap<String, String>,
    pub build_values: Option<&'a BTreeMap<String, String>>,
    pub packer_version: &'a str,
}

pub fn parse(source: &str) -> Result<Interp, InterpError> {
    Ok(Interp {
        source: source.to_owned(),
    })
}

impl Interp {
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn is_literal(&self) -> bool {
        !self.source.contains("{{")
    }
    pub fn render(&self, _ctx: &Context<'_>) -> Result<String, InterpError> {
        Ok(self.source.clone())
    }
    pub fn functions(&self) -> Vec<(String, usize)> {
        Vec::new()
    }
    pub fn data_fields(&self) -> Vec<(String, usize)> {
        Vec::new()
    }
}

pub const FUNCTION_NAMES: &[&str] = &["user", "env", "timestamp", "isotime", "uuid", "pwd", "template_dir", "build_name", "build_type", "packer_version", "lower", "upper", "split", "replace", "replace_all", "clean_resource_name", "build"];

pub fn is_function(name: &str) -> bool {
    FUNCTION_NAMES.contains(&name)
}
