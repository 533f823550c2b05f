//! The parsed form of a template: text, actions and `if`/`with` blocks whose
//! pipelines call functions, read fields of the data or use literals.

use super::functions::Func;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    /// `{{ pipeline }}`: its value is printed.
    Action(Pipeline),
    If {
        cond: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    /// Like `if`, but `.` is the pipeline's value inside `then`.
    With {
        value: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// `a | b x | c`: each command after the first gets the previous value as its
/// last argument.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    /// Offset of the pipeline's first token.
    pub offset: usize,
    /// Offset just past its last token.
    pub end: usize,
    /// Never empty.
    pub commands: Vec<Operand>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Call(Call),
    /// `.A.B`: names with the offsets of their dots.
    Field(Vec<(String, usize)>),
    /// `.` with its offset.
    Dot(usize),
    Str(String),
    Int(i64),
    Bool(bool),
    /// `( pipeline )`, possibly followed by field names as in `(…).A`.
    Paren {
        pipeline: Box<Pipeline>,
        fields: Vec<(String, usize)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub func: Func,
    /// Offset of the function name.
    pub offset: usize,
    pub args: Vec<Operand>,
    /// Whether the previous command's value is appended as the last argument.
    pub piped: bool,
}

/// Visits every operand in `nodes`, depth first.
pub(crate) fn walk_operands<'n>(nodes: &'n [Node], visit: &mut dyn FnMut(&'n Operand)) {
    for node in nodes {
        match node {
            Node::Text(_) => {}
            Node::Action(p) => walk_pipeline(p, visit),
            Node::If {
                cond: p,
                then,
                otherwise,
            }
            | Node::With {
                value: p,
                then,
                otherwise,
            } => {
                walk_pipeline(p, visit);
                walk_operands(then, visit);
                walk_operands(otherwise, visit);
            }
        }
    }
}

fn walk_pipeline<'n>(p: &'n Pipeline, visit: &mut dyn FnMut(&'n Operand)) {
    for op in &p.commands {
        walk_operand(op, visit);
    }
}

fn walk_operand<'n>(op: &'n Operand, visit: &mut dyn FnMut(&'n Operand)) {
    visit(op);
    match op {
        Operand::Call(call) => {
            for arg in &call.args {
                walk_operand(arg, visit);
            }
        }
        Operand::Paren { pipeline, .. } => walk_pipeline(pipeline, visit),
        _ => {}
    }
}
