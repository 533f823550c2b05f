//! The Go-template subset Packer's JSON templates use: `{{ user `x` }}`,
//! pipelines, trim markers, comments, `if`/`with`, Go's builtins and Packer's
//! functions. Parse once with [`parse`], render many times with a [`Context`].
//! Pure: no I/O beyond the env lookup the context may provide.

mod ast;
mod builtins;
mod error;
mod eval;
mod functions;
mod go_quote;
pub(crate) mod go_time;
mod lexer;
mod parser;
mod printf;
#[cfg(test)]
mod tests;
mod value;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use error::{DidYouMean, InterpError, InterpErrorKind};

use ast::{Node, Operand};

/// Parses a template string. Unknown functions and wrong argument counts are
/// reported here, with the offset of the function name.
pub fn parse(source: &str) -> Result<Interp, InterpError> {
    let items = lexer::lex(source)?;
    let nodes = parser::parse(items)?;
    Ok(Interp {
        source: source.to_string(),
        nodes,
    })
}

/// A parsed template string, ready to render.
#[derive(Debug, Clone)]
pub struct Interp {
    source: String,
    nodes: Vec<Node>,
}

impl Interp {
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the string has no actions (comments aside): rendering it
    /// needs no context and gives the text as written, trim markers applied.
    pub fn is_literal(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }

    pub fn render(&self, ctx: &Context<'_>) -> Result<String, InterpError> {
        eval::render(&self.nodes, &self.source, ctx, eval::Fields::Read)
    }

    /// Renders, but writes every action that starts with a build-time field
    /// (`{{ .HTTPIP }}`, `{{ .Provider | lower }}`) back as it is: a user
    /// variable's value keeps them for the place it is used.
    pub fn render_keeping_fields(&self, ctx: &Context<'_>) -> Result<String, InterpError> {
        eval::render(&self.nodes, &self.source, ctx, eval::Fields::Keep)
    }

    /// Every `{{user `name`}}` with a literal name, with the offset of `user`.
    pub fn user_variables(&self) -> Vec<(String, usize)> {
        let mut found = Vec::new();
        ast::walk_operands(&self.nodes, &mut |op| {
            if let Operand::Call(call) = op
                && call.func == functions::Func::User
                && let Some(Operand::Str(name)) = call.args.first()
            {
                found.push((name.clone(), call.offset));
            }
        });
        found.sort_by_key(|(_, offset)| *offset);
        found
    }

    /// Every function called, with the byte offset of its name, in source order.
    pub fn functions(&self) -> Vec<(String, usize)> {
        let mut found = Vec::new();
        ast::walk_operands(&self.nodes, &mut |op| {
            if let Operand::Call(call) = op {
                found.push((call.func.name().to_string(), call.offset));
            }
        });
        found.sort_by_key(|(_, offset)| *offset);
        found
    }

    /// Every data field read (`.HTTPIP` gives "HTTPIP"), with the offset of
    /// its `.`, in source order. For `.A.B` only `A` is a data field.
    pub fn data_fields(&self) -> Vec<(String, usize)> {
        let mut found = Vec::new();
        ast::walk_operands(&self.nodes, &mut |op| {
            if let Operand::Field(names) = op
                && let Some((name, offset)) = names.first()
            {
                found.push((name.clone(), *offset));
            }
        });
        found.sort_by_key(|(_, offset)| *offset);
        found
    }
}

/// A rendered user variable's value that still holds build-time fields:
/// only text and actions starting with a field (what
/// [`Interp::render_keeping_fields`] leaves), and no `user` call. `None`
/// for any other text, which is used as it is.
pub fn build_time_value(text: &str) -> Option<Interp> {
    if !text.contains("{{") {
        return None;
    }
    let parsed = parse(text).ok()?;
    let only_fields = parsed.nodes.iter().all(|n| match n {
        Node::Text(_) => true,
        Node::Action(p) => eval::starts_with_field(p),
        _ => false,
    });
    let calls_user = parsed.functions().iter().any(|(f, _)| f == "user");
    (only_fields && !calls_user && !parsed.data_fields().is_empty()).then_some(parsed)
}

/// Looks up an environment variable (`None` when unset).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Everything a render may read.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Declared user variables with their values; `user` of any other name is an error.
    pub user_vars: &'a BTreeMap<String, String>,
    /// Environment lookup; `None` where `env` is not allowed (outside variable defaults).
    pub env: Option<EnvLookup<'a>>,
    pub build_name: Option<&'a str>,
    pub build_type: Option<&'a str>,
    pub template_dir: &'a Path,
    pub pwd: &'a Path,
    /// The run's start: `timestamp` and `isotime` give this one instant all run long.
    pub init_time: SystemTime,
    /// The fields `.HTTPIP`, `.Name`, … of this place in the template.
    pub data: &'a BTreeMap<String, String>,
    /// Values for `{{ build `ID` }}`, where a build has them.
    pub build_values: Option<&'a BTreeMap<String, String>>,
    pub packer_version: &'a str,
}

static NO_STRINGS: BTreeMap<String, String> = BTreeMap::new();

/// Go's reference time, Mon Jan 2 15:04:05 UTC 2006.
pub const GO_REFERENCE_TIME: Duration = Duration::from_secs(1_136_214_245);

impl Context<'static> {
    /// A context with nothing in it, for tests and for strings that need none:
    /// no variables, no data, env not allowed, no build, paths `.`, init time
    /// Go's reference time (so `isotime` output is predictable), and kiln's
    /// Packer compatibility version. Override fields with struct-update syntax.
    pub fn minimal() -> Context<'static> {
        Context {
            user_vars: &NO_STRINGS,
            env: None,
            build_name: None,
            build_type: None,
            template_dir: Path::new("."),
            pwd: Path::new("."),
            init_time: UNIX_EPOCH + GO_REFERENCE_TIME,
            data: &NO_STRINGS,
            build_values: None,
            packer_version: crate::PACKER_COMPAT_VERSION,
        }
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("user_vars", &self.user_vars)
            .field("env", &self.env.map(|_| "<lookup>"))
            .field("build_name", &self.build_name)
            .field("build_type", &self.build_type)
            .field("template_dir", &self.template_dir)
            .field("pwd", &self.pwd)
            .field("init_time", &self.init_time)
            .field("data", &self.data)
            .field("build_values", &self.build_values)
            .field("packer_version", &self.packer_version)
            .finish()
    }
}
