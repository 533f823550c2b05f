//! Locals (`locals { name = … }` and `local "name" { expression, sensitive }`)
//! and data sources, evaluated together in dependency order; a cycle is
//! reported with its path.

use hcl::edit::Span as _;
use hcl::edit::expr::Expression;
use hcl::edit::structure::Structure;
use hcl::{Map, Value};

use super::data::{self, DataBlock};
use super::eval::{FailedValue, Scope, data_references, eval, references};
use super::{Files, Parsed, span_of};
use crate::template::diagnostic::{Diagnostics, did_you_mean};
use crate::template::json::Span;

pub struct Locals {
    pub values: Map<String, Value>,
    pub secrets: Vec<String>,
    /// Name and value as `inspect` shows them (sensitive ones masked).
    pub shown: Vec<(String, String)>,
}

struct Local<'a> {
    name: String,
    expr: &'a Expression,
    base: usize,
    span: Span,
    sensitive: bool,
}

fn collect<'a>(parsed: &'a [Parsed], files: &Files, diags: &mut Diagnostics) -> Vec<Local<'a>> {
    let mut out: Vec<Local<'a>> = Vec::new();
    let mut push = |l: Local<'a>, diags: &mut Diagnostics| {
        if out.iter().any(|x| x.name == l.name) {
            diags
                .error(
                    format!("local.{}", l.name),
                    "is defined twice",
                    files.location(l.span),
                )
                .hint = Some("a local is defined once across all the template's files".into());
        } else {
            out.push(l);
        }
    };
    for p in parsed {
        for s in p.body.iter() {
            let Structure::Block(b) = s else { continue };
            match b.ident.as_str() {
                "locals" => {
                    for item in b.body.iter() {
                        match item {
                            Structure::Attribute(a) => push(
                                Local {
                                    name: a.key.as_str().to_owned(),
                                    expr: &a.value,
                                    base: p.base,
                                    span: span_of(p.base, a.key.span()),
                                    sensitive: false,
                                },
                                diags,
                            ),
                            Structure::Block(inner) => {
                                diags.error(
                                    "locals",
                                    format!("unexpected block `{}`", inner.ident.as_str()),
                                    files.location(span_of(p.base, inner.ident.span())),
                                );
                            }
                        }
                    }
                }
                "local" => {
                    let span = span_of(p.base, b.ident.span());
                    let ([label], Some(expr)) =
                        (b.labels.as_slice(), b.body.get_attribute("expression"))
                    else {
                        diags
                            .error(
                                "local",
                                "a local block has one label, its name, and an `expression`",
                                files.location(span),
                            )
                            .hint = Some("write local \"name\" { expression = … }".into());
                        continue;
                    };
                    let sensitive = b.body.get_attribute("sensitive").is_some_and(|a| {
                        matches!(eval(&a.value, &Scope::default()), Ok(Value::Bool(true)))
                    });
                    push(
                        Local {
                            name: label.as_str().to_owned(),
                            expr: &expr.value,
                            base: p.base,
                            span: span_of(p.base, label.span()),
                            sensitive,
                        },
                        diags,
                    );
                }
                _ => {}
            }
        }
    }
    out
}

/// One value of the graph: a local or a data source.
enum Node<'a, 'b> {
    Local(&'b Local<'a>),
    Data(&'b DataBlock<'a>),
}

impl Node<'_, '_> {
    fn path(&self) -> String {
        match self {
            Node::Local(l) => format!("local.{}", l.name),
            Node::Data(d) => d.path(),
        }
    }

    fn span(&self) -> Span {
        match self {
            Node::Local(l) => l.span,
            Node::Data(d) => d.span,
        }
    }

    fn expressions(&self) -> Vec<&Expression> {
        match self {
            Node::Local(l) => vec![l.expr],
            Node::Data(d) => d.expressions().collect(),
        }
    }

    fn base(&self) -> usize {
        match self {
            Node::Local(l) => l.base,
            Node::Data(d) => d.base,
        }
    }
}

/// What the locals and data sources evaluate to.
pub struct Evaluated {
    pub locals: Locals,
    /// The `data` object: `data.TYPE.NAME`.
    pub data: Value,
    /// The locals and data sources without a value (they failed): what
    /// refers to them fails in consequence.
    pub failed: Vec<FailedValue>,
}

/// Evaluates the locals and the data sources in one dependency order, as
/// Packer does: a local may use a data source's result and a data source
/// a local. A cycle is an error that names its chain, each link with its
/// place.
pub fn evaluate(
    parsed: &[Parsed],
    scope: &Scope,
    missing_vars: &[String],
    run_programs: bool,
    files: &Files,
    diags: &mut Diagnostics,
) -> Evaluated {
    let locals = collect(parsed, files, diags);
    let data_blocks = data::collect(parsed, files, diags);
    let nodes: Vec<Node<'_, '_>> = locals
        .iter()
        .map(Node::Local)
        .chain(data_blocks.iter().map(Node::Data))
        .collect();
    let names: Vec<&str> = locals.iter().map(|l| l.name.as_str()).collect();
    let (deps, broken): (Vec<Vec<usize>>, Vec<bool>) = nodes
        .iter()
        .map(|n| dependencies(n, &nodes, &names, files, diags))
        .unzip();

    let (order, cycles) = depth_first(&deps);
    let mut in_cycle = vec![false; nodes.len()];
    for cycle in &cycles {
        let chain: Vec<String> = cycle
            .iter()
            .map(|&i| {
                let at = files.location(nodes[i].span()).map_or(String::new(), |l| {
                    let (line, col) = l.file.line_col(l.span.start);
                    format!(" ({}:{line}:{col})", l.file.path().display())
                });
                format!("{}{at}", nodes[i].path())
            })
            .collect();
        let first = &nodes[cycle[0]];
        diags
            .error(
                first.path(),
                format!(
                    "locals and data sources refer to each other in a cycle: {}",
                    chain.join(" -> ")
                ),
                files.location(first.span()),
            )
            .hint = Some("break the cycle: one of these must not depend on the others".into());
        for &i in cycle {
            in_cycle[i] = true;
        }
    }

    let mut values = Map::new();
    let mut data: Map<String, Value> = Map::new();
    let mut secrets = Vec::new();
    let mut shown = Vec::new();
    let mut node_scope = scope.clone();
    // Nodes without a value yet: built from a missing variable, or from
    // another such node.
    let mut unknown = vec![false; nodes.len()];
    for i in order {
        if in_cycle[i] {
            continue;
        }
        let node = &nodes[i];
        let exprs = node.expressions();
        let unknown_input = exprs.iter().any(|e| {
            references(e, "var")
                .iter()
                .any(|v| missing_vars.contains(v))
        }) || deps[i].iter().any(|&d| unknown[d]);
        if broken[i] {
            unknown[i] = true;
            continue;
        }
        node_scope.set("local", Value::Object(values.clone()));
        node_scope.set("data", Value::Object(data.clone()));
        match node {
            Node::Data(d) => {
                if unknown_input {
                    unknown[i] = true;
                    continue;
                }
                let mut own = Diagnostics::new();
                let value = data::evaluate(d, &node_scope, run_programs, files, &mut own);
                diags.extend(own);
                let Some(v) = value else {
                    unknown[i] = true;
                    continue;
                };
                {
                    let by_type = data
                        .entry(d.ty.to_owned())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(m) = by_type {
                        m.insert(d.name.to_owned(), v);
                    }
                }
            }
            Node::Local(l) => {
                // A local built from a missing variable has no value yet:
                // inspect says so rather than showing a value made from null.
                if unknown_input {
                    unknown[i] = true;
                    shown.push((l.name.clone(), "<unknown>".to_owned()));
                    values.insert(l.name.clone(), Value::Null);
                    continue;
                }
                match eval(l.expr, &node_scope) {
                    Ok(v) => {
                        let unknown_value = super::unknown::contains_unknown(&v);
                        if l.sensitive
                            && !unknown_value
                            && let Some(s) = super::functions::as_string(&v)
                        {
                            secrets.push(s);
                        }
                        shown.push((
                            l.name.clone(),
                            if l.sensitive {
                                "<sensitive>".to_owned()
                            } else if unknown_value {
                                // As Packer's inspect shows a value that is
                                // not wholly known.
                                "<unknown>".to_owned()
                            } else {
                                super::variables::display(&v)
                            },
                        ));
                        values.insert(l.name.clone(), v);
                    }
                    Err(e) => {
                        unknown[i] = true;
                        let span = span_of(l.base, l.expr.span());
                        diags
                            .error(format!("local.{}", l.name), e.clone(), files.location(span))
                            .hint = super::body::hint_for(&e);
                    }
                }
            }
        }
    }
    // Show locals in the order written.
    shown.sort_by_key(|(n, _)| names.iter().position(|x| x == n));
    Evaluated {
        locals: Locals {
            values,
            secrets,
            shown,
        },
        data: Value::Object(data),
        failed: nodes
            .iter()
            .zip(&unknown)
            .filter(|(_, u)| **u)
            .map(|(n, _)| match n {
                Node::Local(l) => FailedValue::Local(l.name.clone()),
                Node::Data(d) => FailedValue::Data(d.ty.to_owned(), d.name.to_owned()),
            })
            .collect(),
    }
}

/// The nodes `n` refers to, and whether it refers to a local or data
/// source that does not exist (reported here; `n` is then not evaluated,
/// its own error would only repeat this one).
fn dependencies(
    n: &Node<'_, '_>,
    nodes: &[Node<'_, '_>],
    names: &[&str],
    files: &Files,
    diags: &mut Diagnostics,
) -> (Vec<usize>, bool) {
    let mut d = Vec::new();
    let mut broken = false;
    for expr in n.expressions() {
        let at = files.location(span_of(n.base(), expr.span()));
        for r in references(expr, "local") {
            match nodes
                .iter()
                .position(|m| matches!(m, Node::Local(l) if l.name == r))
            {
                Some(i) => d.push(i),
                None => {
                    broken = true;
                    diags
                        .error(
                            n.path(),
                            format!("refers to `local.{r}`, which is not defined"),
                            at.clone(),
                        )
                        .hint = did_you_mean(&r, names.iter().copied())
                        .map(|s| format!("did you mean `local.{s}`?"));
                }
            }
        }
        for (ty, name) in data_references(expr) {
            match nodes
                .iter()
                .position(|m| matches!(m, Node::Data(b) if b.ty == ty && b.name == name))
            {
                Some(i) => d.push(i),
                None => {
                    broken = true;
                    let same_type: Vec<&str> = nodes
                        .iter()
                        .filter_map(|m| match m {
                            Node::Data(b) if b.ty == ty => Some(b.name),
                            _ => None,
                        })
                        .collect();
                    diags
                        .error(
                            n.path(),
                            format!("refers to `data.{ty}.{name}`, which is not defined"),
                            at.clone(),
                        )
                        .hint = did_you_mean(&name, same_type.iter().copied())
                        .map(|s| format!("did you mean `data.{ty}.{s}`?"))
                        .or_else(|| {
                            Some(format!("declare it with data \"{ty}\" \"{name}\" {{ … }}"))
                        });
                }
            }
        }
    }
    (d, broken)
}

/// A depth-first order (dependencies first) and the cycles met on the way,
/// each as the chain of nodes that closes on its first.
fn depth_first(deps: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        OnStack,
        Done,
    }
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        state: &mut [State],
        stack: &mut Vec<usize>,
        order: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        state[i] = State::OnStack;
        stack.push(i);
        for &d in &deps[i] {
            match state[d] {
                State::New => visit(d, deps, state, stack, order, cycles),
                State::OnStack => {
                    let from = stack.iter().position(|&x| x == d).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(d);
                    cycles.push(cycle);
                }
                State::Done => {}
            }
        }
        stack.pop();
        state[i] = State::Done;
        order.push(i);
    }
    let mut order = Vec::new();
    let mut cycles = Vec::new();
    let mut state = vec![State::New; deps.len()];
    for i in 0..deps.len() {
        if state[i] == State::New {
            visit(
                i,
                deps,
                &mut state,
                &mut Vec::new(),
                &mut order,
                &mut cycles,
            );
        }
    }
    (order, cycles)
}
