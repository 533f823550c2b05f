//! Unknown values, as Packer gives plain `validate`: a data source that is
//! not run yields its outputs as values whose type may be known but whose
//! content is not, and everything computed from one is unknown too. hcl-rs
//! has no unknown value, so one is a marked string that user text cannot
//! contain (it starts with a NUL), and the expressions that mention one are
//! evaluated here, node by node, instead of by hcl-rs. Nothing outside the
//! HCL front end ever sees the mark: a block's body gets Packer's stand-ins
//! (`<unknown>`, 0, false, empty) and the places they fill, so the checks of
//! those fields are skipped.

use hcl::expr::{
    BinaryOperator, Expression, ObjectKey, Operation, TraversalOperator, UnaryOperator,
};
use hcl::template::{Directive, Element};
use hcl::{Map, Value};

use super::eval::{Scope, eval_known, value_expr};
use crate::template::json::{Node, Span, Value as JsonValue};

const MARK: &str = "\u{0}kiln-unknown:";

/// What is known of an unknown value: its type, when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Number,
    Bool,
    List,
    Map,
    /// Any type (cty's DynamicPseudoType).
    Dynamic,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Number => "number",
            Kind::Bool => "bool",
            Kind::List => "list",
            Kind::Map => "map",
            Kind::Dynamic => "dynamic",
        }
    }
}

/// An unknown value of kind `kind`.
pub fn unknown(kind: Kind) -> Value {
    Value::String(format!("{MARK}{}\u{0}", kind.tag()))
}

/// The kind of `v` when it is itself unknown (not merely holding one).
pub fn kind_of(v: &Value) -> Option<Kind> {
    let Value::String(s) = v else { return None };
    let tag = s.strip_prefix(MARK)?.strip_suffix('\u{0}')?;
    Some(match tag {
        "string" => Kind::String,
        "number" => Kind::Number,
        "bool" => Kind::Bool,
        "list" => Kind::List,
        "map" => Kind::Map,
        _ => Kind::Dynamic,
    })
}

pub fn is_unknown(v: &Value) -> bool {
    kind_of(v).is_some()
}

/// Whether `v` is unknown or holds an unknown anywhere inside (cty's
/// "not wholly known").
pub fn contains_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s.starts_with(MARK),
        Value::Array(items) => items.iter().any(contains_unknown),
        Value::Object(m) => m.values().any(contains_unknown),
        _ => false,
    }
}

/// `text` with every unknown's mark written as `<unknown>`, as Packer
/// prints a value that is not known: an error message may quote a value.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        out.push_str("<unknown>");
        let after = &rest[at + MARK.len()..];
        rest = after.find('\u{0}').map_or("", |end| &after[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// Whether `expr` refers to a variable of `scope` that holds an unknown:
/// only those expressions need evaluating here.
pub fn mentions_unknown(expr: &Expression, scope: &Scope) -> bool {
    let mut names = Vec::new();
    roots(expr, &mut names);
    names
        .iter()
        .any(|n| scope.vars.get(n.as_str()).is_some_and(contains_unknown))
}

/// The variable names an expression starts traversals from (a name a
/// `for` binds counts too: a false alarm only costs the slower path).
fn roots(expr: &Expression, out: &mut Vec<String>) {
    match expr {
        Expression::Variable(v) => out.push(v.as_str().to_owned()),
        Expression::Array(items) => items.iter().for_each(|e| roots(e, out)),
        Expression::Object(o) => {
            for (k, v) in o {
                if let ObjectKey::Expression(k) = k {
                    roots(k, out);
                }
                roots(v, out);
            }
        }
        Expression::Traversal(t) => {
            roots(&t.expr, out);
            for op in &t.operators {
                if let TraversalOperator::Index(i) = op {
                    roots(i, out);
                }
            }
        }
        Expression::FuncCall(c) => c.args.iter().for_each(|e| roots(e, out)),
        Expression::Parenthesis(e) => roots(e, out),
        Expression::Conditional(c) => {
            roots(&c.cond_expr, out);
            roots(&c.true_expr, out);
            roots(&c.false_expr, out);
        }
        Expression::Operation(op) => match &**op {
            Operation::Unary(u) => roots(&u.expr, out),
            Operation::Binary(b) => {
                roots(&b.lhs_expr, out);
                roots(&b.rhs_expr, out);
            }
        },
        Expression::ForExpr(f) => {
            roots(&f.collection_expr, out);
            roots(&f.value_expr, out);
            if let Some(k) = &f.key_expr {
                roots(k, out);
            }
            if let Some(c) = &f.cond_expr {
                roots(c, out);
            }
        }
        Expression::TemplateExpr(t) => {
            if let Ok(template) = hcl::Template::from_expr(t) {
                template_roots(template.elements(), out);
            }
        }
        _ => {}
    }
}

fn template_roots(elements: &[Element], out: &mut Vec<String>) {
    for e in elements {
        match e {
            Element::Literal(_) => {}
            Element::Interpolation(i) => roots(&i.expr, out),
            Element::Directive(d) => match &**d {
                Directive::If(d) => {
                    roots(&d.cond_expr, out);
                    template_roots(d.true_template.elements(), out);
                    if let Some(f) = &d.false_template {
                        template_roots(f.elements(), out);
                    }
                }
                Directive::For(d) => {
                    roots(&d.collection_expr, out);
                    template_roots(d.template.elements(), out);
                }
            },
        }
    }
}

/// Evaluates an expression that mentions an unknown, with HCL's rules:
/// an operation, a function call or a template with an unknown operand is
/// unknown (of the result's type when it is known); a conditional whose
/// condition is unknown is unknown; `can` of an unknown is an unknown
/// bool and `try` of one is unknown; the known parts are still evaluated,
/// so their errors are still reported.
pub fn eval(expr: &Expression, scope: &Scope) -> Result<Value, String> {
    if !mentions_unknown(expr, scope) {
        return eval_known(expr, scope);
    }
    match expr {
        Expression::Variable(v) => Ok(scope.vars.get(v.as_str()).cloned().unwrap_or(Value::Null)),
        Expression::Parenthesis(e) => eval(e, scope),
        Expression::Array(items) => Ok(Value::Array(
            items
                .iter()
                .map(|e| eval(e, scope))
                .collect::<Result<_, _>>()?,
        )),
        Expression::Object(o) => {
            let mut out = Map::new();
            let mut key_unknown = false;
            for (k, v) in o {
                let key = match k {
                    ObjectKey::Identifier(i) => i.as_str().to_owned(),
                    ObjectKey::Expression(e) => {
                        let k = eval(e, scope)?;
                        if contains_unknown(&k) {
                            key_unknown = true;
                            continue;
                        }
                        super::functions::as_string(&k)
                            .ok_or_else(|| format!("an object key must be a string, not {k}"))?
                    }
                    _ => return eval_known(expr, scope),
                };
                out.insert(key, eval(v, scope)?);
            }
            Ok(if key_unknown {
                unknown(Kind::Map)
            } else {
                Value::Object(out)
            })
        }
        Expression::Traversal(t) => traversal(&t.expr, &t.operators, scope),
        Expression::FuncCall(call) if call.name.namespace.is_empty() => {
            func_call(call.name.name.as_str(), &call.args, expr, scope)
        }
        Expression::Operation(op) => operation(op, scope),
        Expression::Conditional(c) => {
            let cond = eval(&c.cond_expr, scope)?;
            match cond {
                Value::Bool(true) => eval(&c.true_expr, scope),
                Value::Bool(false) => eval(&c.false_expr, scope),
                v if is_unknown(&v) => {
                    // Both results are still evaluated: their errors stand.
                    let t = eval(&c.true_expr, scope)?;
                    let f = eval(&c.false_expr, scope)?;
                    let (kt, kf) = (kind_of_value(&t), kind_of_value(&f));
                    Ok(unknown(if kt == kf { kt } else { Kind::Dynamic }))
                }
                other => Err(format!("a condition must be a bool, not {other}")),
            }
        }
        Expression::ForExpr(f) => for_expr(f, scope),
        Expression::TemplateExpr(t) => template(t, expr, scope),
        _ => eval_known(expr, scope),
    }
}

/// The kind a value has, known or not.
fn kind_of_value(v: &Value) -> Kind {
    if let Some(k) = kind_of(v) {
        return k;
    }
    match v {
        Value::String(_) => Kind::String,
        Value::Number(_) => Kind::Number,
        Value::Bool(_) => Kind::Bool,
        Value::Array(_) => Kind::List,
        Value::Object(_) => Kind::Map,
        Value::Null => Kind::Dynamic,
    }
}

/// A traversal applied one step at a time, so that a step into an
/// unknown stops at an unknown (Packer gives `data.http.x.body` of an
/// unknown data source as an unknown string).
fn traversal(
    base: &Expression,
    operators: &[TraversalOperator],
    scope: &Scope,
) -> Result<Value, String> {
    let mut current = eval(base, scope)?;
    let mut ops = Vec::with_capacity(operators.len());
    let mut index_unknown = false;
    for op in operators {
        ops.push(match op {
            TraversalOperator::Index(i) => {
                let v = eval(i, scope)?;
                index_unknown |= contains_unknown(&v);
                TraversalOperator::Index(value_expr(v))
            }
            other => other.clone(),
        });
    }
    if index_unknown {
        return Ok(unknown(Kind::Dynamic));
    }
    for (n, op) in ops.iter().enumerate() {
        if is_unknown(&current) {
            return Ok(unknown(Kind::Dynamic));
        }
        let step = match op {
            TraversalOperator::AttrSplat | TraversalOperator::FullSplat => {
                if contains_unknown(&current) {
                    return Ok(unknown(Kind::List));
                }
                ops[n..].to_vec()
            }
            one => vec![one.clone()],
        };
        let splat = step.len() > 1;
        let e = Expression::Traversal(Box::new(hcl::expr::Traversal::new(
            value_expr(current),
            step,
        )));
        current = eval_known(&e, &Scope::default())?;
        if splat {
            break;
        }
    }
    Ok(current)
}

/// The type a function returns whatever its arguments, where it is one.
fn return_kind(name: &str) -> Kind {
    const STRING: &[&str] = &[
        "abspath",
        "base64decode",
        "base64encode",
        "basename",
        "bcrypt",
        "chomp",
        "dirname",
        "format",
        "formatdate",
        "indent",
        "join",
        "jsonencode",
        "lower",
        "md5",
        "pathexpand",
        "regex_replace",
        "replace",
        "sha1",
        "sha256",
        "sha512",
        "substr",
        "timeadd",
        "title",
        "tostring",
        "trim",
        "trimprefix",
        "trimspace",
        "trimsuffix",
        "upper",
        "urlencode",
        "uuidv5",
        "yamlencode",
    ];
    const NUMBER: &[&str] = &[
        "abs", "ceil", "floor", "length", "log", "max", "min", "parseint", "pow", "signum",
        "tonumber",
    ];
    const BOOL: &[&str] = &[
        "alltrue",
        "anytrue",
        "contains",
        "endswith",
        "startswith",
        "tobool",
    ];
    const LIST: &[&str] = &[
        "chunklist",
        "compact",
        "concat",
        "distinct",
        "flatten",
        "keys",
        "regexall",
        "reverse",
        "setproduct",
        "slice",
        "sort",
        "split",
        "tolist",
        "toset",
        "values",
    ];
    if STRING.contains(&name) {
        Kind::String
    } else if NUMBER.contains(&name) {
        Kind::Number
    } else if BOOL.contains(&name) {
        Kind::Bool
    } else if LIST.contains(&name) {
        Kind::List
    } else if ["tomap", "merge", "zipmap"].contains(&name) {
        Kind::Map
    } else {
        Kind::Dynamic
    }
}

fn func_call(
    name: &str,
    args: &[Expression],
    whole: &Expression,
    scope: &Scope,
) -> Result<Value, String> {
    match name {
        // HCL's tryfunc: an argument that is not wholly known makes the
        // answer unknown, since its final value might still fail.
        "can" => {
            let [arg] = args else {
                return Err("can(): exactly one argument is required".into());
            };
            Ok(match eval(arg, scope) {
                Err(_) => Value::Bool(false),
                Ok(v) if contains_unknown(&v) => unknown(Kind::Bool),
                Ok(_) => Value::Bool(true),
            })
        }
        "try" => {
            if args.is_empty() {
                return Err("try(): at least one argument is required".into());
            }
            let mut last = String::new();
            for a in args {
                match eval(a, scope) {
                    Ok(v) if contains_unknown(&v) => return Ok(unknown(Kind::Dynamic)),
                    Ok(v) => return Ok(v),
                    Err(e) => last = e,
                }
            }
            Err(format!(
                "try(): no expression succeeded; the last one failed with: {last}"
            ))
        }
        "convert" => {
            let [value, ty] = args else {
                return Err(format!(
                    "convert(): takes 2 arguments (a value and a type), given {}",
                    args.len()
                ));
            };
            let ty_parsed = super::types::parse(&hcl::edit::expr::Expression::from(ty.clone()))
                .map_err(|e| format!("convert(): {e}"))?;
            let v = eval(value, scope)?;
            if contains_unknown(&v) {
                return Ok(unknown(kind_of_type(&ty_parsed)));
            }
            let call = hcl::expr::FuncCall::builder("convert")
                .arg(value_expr(v))
                .arg(ty.clone())
                .build();
            eval_known(&Expression::FuncCall(Box::new(call)), scope)
        }
        _ => {
            let values: Vec<Value> = args
                .iter()
                .map(|a| eval(a, scope))
                .collect::<Result<_, _>>()?;
            // The length of a known collection is known even when its
            // elements are not.
            if name == "length"
                && let [v @ (Value::Array(_) | Value::Object(_))] = values.as_slice()
            {
                let n = match v {
                    Value::Array(a) => a.len(),
                    Value::Object(o) => o.len(),
                    _ => 0,
                };
                return Ok(Value::from(n as u64));
            }
            let Expression::FuncCall(call) = whole else {
                return eval_known(whole, scope);
            };
            let mut call = (**call).clone();
            let known = values.iter().all(|v| !contains_unknown(v));
            let declared =
                super::functions::IMPLEMENTED.contains(&name) && (name != "env" || scope.allow_env);
            if !known && declared {
                return Ok(unknown(return_kind(name)));
            }
            // hcl-rs says why an unknown function cannot be called.
            call.args = if known {
                values.into_iter().map(value_expr).collect()
            } else {
                Vec::new()
            };
            eval_known(&Expression::FuncCall(Box::new(call)), scope)
        }
    }
}

fn kind_of_type(ty: &super::types::Type) -> Kind {
    use super::types::Type;
    match ty {
        Type::String => Kind::String,
        Type::Number => Kind::Number,
        Type::Bool => Kind::Bool,
        Type::List(_) | Type::Set(_) | Type::Tuple(_) => Kind::List,
        Type::Map(_) | Type::Object(_) => Kind::Map,
        _ => Kind::Dynamic,
    }
}

fn operation(op: &Operation, scope: &Scope) -> Result<Value, String> {
    match op {
        Operation::Unary(u) => {
            let v = eval(&u.expr, scope)?;
            if contains_unknown(&v) {
                return Ok(unknown(match u.operator {
                    UnaryOperator::Neg => Kind::Number,
                    UnaryOperator::Not => Kind::Bool,
                }));
            }
            let mut u = u.clone();
            u.expr = value_expr(v);
            eval_known(&Expression::Operation(Box::new(Operation::Unary(u))), scope)
        }
        Operation::Binary(b) => {
            let lhs = eval(&b.lhs_expr, scope)?;
            let rhs = eval(&b.rhs_expr, scope)?;
            if contains_unknown(&lhs) || contains_unknown(&rhs) {
                use BinaryOperator as B;
                return Ok(unknown(match b.operator {
                    B::Plus | B::Minus | B::Mul | B::Div | B::Mod => Kind::Number,
                    _ => Kind::Bool,
                }));
            }
            let mut b = b.clone();
            b.lhs_expr = value_expr(lhs);
            b.rhs_expr = value_expr(rhs);
            eval_known(
                &Expression::Operation(Box::new(Operation::Binary(b))),
                scope,
            )
        }
    }
}

/// A `for` expression: an unknown collection, key or condition makes the
/// whole result unknown; unknown values stay unknown elements.
fn for_expr(f: &hcl::expr::ForExpr, scope: &Scope) -> Result<Value, String> {
    let whole = if f.key_expr.is_some() {
        Kind::Map
    } else {
        Kind::List
    };
    let collection = eval(&f.collection_expr, scope)?;
    if is_unknown(&collection) {
        return Ok(unknown(whole));
    }
    let elements = super::eval::for_elements(collection)?;
    let mut list = Vec::new();
    let mut object: Map<String, Value> = Map::new();
    for (key, value) in elements {
        let mut s = scope.clone();
        if let Some(k) = &f.key_var {
            s.set(k.as_str(), key);
        }
        s.set(f.value_var.as_str(), value);
        if let Some(cond) = &f.cond_expr {
            match eval(cond, &s)? {
                Value::Bool(true) => {}
                Value::Bool(false) => continue,
                v if is_unknown(&v) => return Ok(unknown(whole)),
                other => return Err(format!("a `for` condition must be a bool, not {other}")),
            }
        }
        let v = eval(&f.value_expr, &s)?;
        match &f.key_expr {
            None => list.push(v),
            Some(k) => {
                let k = eval(k, &s)?;
                if contains_unknown(&k) {
                    return Ok(unknown(whole));
                }
                let Some(k) = super::functions::as_string(&k) else {
                    return Err("a `for` key must be a string".into());
                };
                if f.grouping {
                    if let Value::Array(group) =
                        object.entry(k).or_insert_with(|| Value::Array(Vec::new()))
                    {
                        group.push(v);
                    }
                } else if object.insert(k.clone(), v).is_some() {
                    return Err(format!(
                        "duplicate key `{k}` in a `for` expression; use `...` after the value to group"
                    ));
                }
            }
        }
    }
    Ok(if f.key_expr.is_some() {
        Value::Object(object)
    } else {
        Value::Array(list)
    })
}

/// A string template: one with an unknown part is an unknown string (its
/// text is never made from the unknown's mark); a lone interpolation is
/// its value, as in HCL.
fn template(
    t: &hcl::expr::TemplateExpr,
    whole: &Expression,
    scope: &Scope,
) -> Result<Value, String> {
    let Ok(template) = hcl::Template::from_expr(t) else {
        return eval_known(whole, scope);
    };
    let elements = template.elements();
    if let [Element::Interpolation(i)] = elements {
        return eval(&i.expr, scope);
    }
    let mut out = String::new();
    let mut any_unknown = false;
    for e in elements {
        match e {
            Element::Literal(l) => out.push_str(l),
            Element::Interpolation(i) => {
                let v = eval(&i.expr, scope)?;
                if contains_unknown(&v) {
                    any_unknown = true;
                    continue;
                }
                match super::functions::as_string(&v) {
                    Some(text) => out.push_str(&text),
                    None if v.is_null() => {
                        return Err(format!(
                            "`${{{}}}` is null, and a null value cannot be part of a string",
                            i.expr
                        ));
                    }
                    None => {
                        return Err(format!(
                            "`${{{}}}` is a list or an object, which cannot be part of a string",
                            i.expr
                        ));
                    }
                }
            }
            // A directive's body may use names it binds itself; with an
            // unknown somewhere in the template, the text is unknown.
            Element::Directive(_) => any_unknown = true,
        }
    }
    let strips = elements
        .iter()
        .any(|e| matches!(e, Element::Interpolation(i) if i.strip != hcl::template::Strip::None));
    if any_unknown || strips {
        return Ok(unknown(Kind::String));
    }
    Ok(Value::String(out))
}

/// Packer's stand-in for an unknown in a plugin's configuration
/// (hcl2shim.WriteUnknownPlaceholderValues): `<unknown>`, 0, false, or an
/// empty collection.
fn stand_in(kind: Kind) -> JsonValue {
    match kind {
        Kind::String | Kind::Dynamic => JsonValue::String("<unknown>".into()),
        Kind::Number => JsonValue::Number("0".into()),
        Kind::Bool => JsonValue::Bool(false),
        Kind::List => JsonValue::Array(Vec::new()),
        Kind::Map => JsonValue::Object(Vec::new()),
    }
}

/// Replaces every unknown in a body by its stand-in and returns the spans
/// it filled: the checks of what is there are skipped.
pub fn replace_in_node(node: &mut Node, filled: &mut Vec<Span>) {
    match &mut node.value {
        JsonValue::String(s) if s.starts_with(MARK) => {
            let kind = kind_of(&Value::String(std::mem::take(s))).unwrap_or(Kind::Dynamic);
            node.value = stand_in(kind);
            filled.push(node.span);
        }
        JsonValue::Array(items) => items.iter_mut().for_each(|n| replace_in_node(n, filled)),
        JsonValue::Object(members) => members
            .iter_mut()
            .for_each(|m| replace_in_node(&mut m.value, filled)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates `src` with `data.http.x` unknown (as plain `validate`
    /// gives it) and `var.n` = 2, `var.list` = ["a", "b"].
    fn run(src: &str) -> Result<Value, String> {
        let expr: hcl::edit::expr::Expression = src.parse().expect("parses");
        let mut scope = Scope::default();
        let mut var = Map::new();
        var.insert("n".to_owned(), Value::from(2));
        var.insert("list".to_owned(), Value::from(vec!["a", "b"]));
        scope.set("var", Value::Object(var));
        let mut http = Map::new();
        http.insert("body".to_owned(), unknown(Kind::String));
        http.insert("url".to_owned(), unknown(Kind::String));
        http.insert("request_headers".to_owned(), unknown(Kind::Map));
        let mut by_name = Map::new();
        by_name.insert("x".to_owned(), Value::Object(http));
        let mut data = Map::new();
        data.insert("http".to_owned(), Value::Object(by_name));
        scope.set("data", Value::Object(data));
        super::super::eval::eval(&expr, &scope)
    }

    fn kind(src: &str) -> Option<Kind> {
        let v = run(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        kind_of(&v)
    }

    #[test]
    fn an_unknown_attribute_keeps_its_type() {
        assert_eq!(kind("data.http.x.body"), Some(Kind::String));
        assert_eq!(kind("data.http.x.request_headers"), Some(Kind::Map));
        assert_eq!(
            kind(r#"data.http.x.request_headers["Accept"]"#),
            Some(Kind::Dynamic)
        );
        // The known parts of the same object are still checked.
        let e = run("data.http.x.nope").expect_err("no such attribute");
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn operators_on_unknowns_give_unknowns_of_their_result_type() {
        assert_eq!(kind("length(data.http.x.body) + 1"), Some(Kind::Number));
        assert_eq!(kind("data.http.x.body == \"a\""), Some(Kind::Bool));
        assert_eq!(kind("!(data.http.x.body == \"a\")"), Some(Kind::Bool));
        assert_eq!(kind("-length(data.http.x.body)"), Some(Kind::Number));
        // A known operand's own error is still an error.
        let e = run(r#"data.http.x.body == "a" && nosuch.b"#).expect_err("unknown variable");
        assert!(e.contains("nosuch"), "{e}");
    }

    #[test]
    fn functions_of_unknowns_give_unknowns_and_length_of_a_known_list_is_known() {
        assert_eq!(kind("upper(data.http.x.body)"), Some(Kind::String));
        assert_eq!(kind(r#"split("\n", data.http.x.body)"#), Some(Kind::List));
        assert_eq!(
            kind(r#"contains(["a"], data.http.x.body)"#),
            Some(Kind::Bool)
        );
        assert_eq!(run("length([data.http.x.body, 1])"), Ok(Value::from(2u64)));
        assert_eq!(
            kind("convert(data.http.x.body, number)"),
            Some(Kind::Number)
        );
        // Functions of known values next to the unknown work as before.
        assert_eq!(
            run(r#"[upper("a"), data.http.x.body][0]"#),
            Ok(Value::from("A"))
        );
        let e = run(r#"uper(data.http.x.body)"#).expect_err("no such function");
        assert!(e.contains("uper"), "{e}");
    }

    #[test]
    fn can_and_try_of_an_unknown_are_unknown() {
        assert_eq!(kind("can(data.http.x.body)"), Some(Kind::Bool));
        assert_eq!(kind(r#"try(data.http.x.body, "x")"#), Some(Kind::Dynamic));
        assert_eq!(
            run(r#"try(var.nope, data.http.x.body)"#).map(|v| is_unknown(&v)),
            Ok(true)
        );
        assert_eq!(
            run("can(nosuch.x + data.http.x.body)"),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run(r#"try(nosuch.x, upper("b"), data.http.x.body)"#),
            Ok(Value::from("B"))
        );
    }

    #[test]
    fn conditionals_with_an_unknown_condition_are_unknown() {
        assert_eq!(
            kind(r#"data.http.x.body == "" ? "a" : "b""#),
            Some(Kind::String)
        );
        assert_eq!(
            kind(r#"data.http.x.body == "" ? "a" : 1"#),
            Some(Kind::Dynamic)
        );
        assert_eq!(
            run(r#"var.n == 2 ? "two" : data.http.x.body"#),
            Ok(Value::from("two"))
        );
        // Both results are evaluated: an error in either is reported.
        let e = run(r#"data.http.x.body == "" ? "a" : nosuch.b"#).expect_err("unknown variable");
        assert!(e.contains("nosuch"), "{e}");
        let e = run(r#"1 ? data.http.x.body : "b""#).expect_err("not a bool");
        assert!(e.contains("bool"), "{e}");
    }

    #[test]
    fn for_expressions_keep_unknown_elements_and_unknown_collections() {
        let v = run(r#"[for s in var.list : "${s}-${data.http.x.body}"]"#).expect("evaluates");
        let Value::Array(items) = &v else {
            panic!("a list: {v:?}")
        };
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(is_unknown), "{v:?}");
        assert_eq!(
            kind(r#"[for s in split(",", data.http.x.body) : s]"#),
            Some(Kind::List)
        );
        assert_eq!(
            kind(r#"{for s in var.list : s => s if s == data.http.x.body}"#),
            Some(Kind::Map)
        );
        assert_eq!(
            run(r#"[for s in var.list : upper(s) if s != "b" || data.http.x.body == ""]"#)
                .map(|v| is_unknown(&v)),
            Ok(true)
        );
        assert_eq!(
            run(r#"[for s in var.list : upper(s)][length(data.http.x.body) - length(data.http.x.body)]"#)
                .map(|v| is_unknown(&v)),
            Ok(true)
        );
    }

    #[test]
    fn splats_over_unknowns_are_unknown() {
        assert_eq!(kind("data.http.x.body[*]"), Some(Kind::Dynamic));
        assert_eq!(kind("[data.http.x.body][*].a"), Some(Kind::List));
        assert_eq!(
            run(r#"[{a = 1}, {a = data.http.x.body}][0].a"#),
            Ok(Value::from(1))
        );
    }

    #[test]
    fn a_template_with_an_unknown_part_is_an_unknown_string_never_its_mark() {
        assert_eq!(kind(r#""sha256:${data.http.x.body}""#), Some(Kind::String));
        assert_eq!(kind(r#""${data.http.x.body}""#), Some(Kind::String));
        assert_eq!(
            kind(r#""%{ if data.http.x.body == "" }a%{ endif }""#),
            Some(Kind::String)
        );
        assert_eq!(
            kind(r#""%{ for s in var.list }${s}${data.http.x.body}%{ endfor }""#),
            Some(Kind::String)
        );
        // The known parts are still checked.
        let e = run(r#""${null}-${data.http.x.body}""#).expect_err("null in a string");
        assert!(e.contains("null"), "{e}");
        let e = run(r#""${var.list}-${data.http.x.body}""#).expect_err("a list in a string");
        assert!(e.contains("list"), "{e}");
    }

    #[test]
    fn an_unknown_in_an_object_leaves_the_rest_known() {
        let v = run(r#"{ a = upper("x"), b = data.http.x.body }"#).expect("evaluates");
        let Value::Object(m) = &v else {
            panic!("an object: {v:?}")
        };
        assert_eq!(m.get("a"), Some(&Value::from("X")));
        assert!(m.get("b").is_some_and(is_unknown));
        assert_eq!(kind(r#"{ (data.http.x.body) = 1 }"#), Some(Kind::Map));
    }

    #[test]
    fn errors_never_quote_an_unknowns_mark() {
        for src in [
            r#"[data.http.x.body, 1]["x"]"#,
            r#"{a = data.http.x.body}.b"#,
            r#"[data.http.x.body][5]"#,
        ] {
            let e = run(src).expect_err(src);
            assert!(!e.contains('\u{0}'), "{src}: {e:?}");
        }
        let Value::String(mark) = unknown(Kind::String) else {
            unreachable!()
        };
        assert_eq!(
            scrub(&format!("a {mark} b {mark}")),
            "a <unknown> b <unknown>"
        );
    }

    #[test]
    fn stand_ins_are_packers_and_say_where_they_are() {
        use crate::template::json::Member;
        let node = |value, at| Node {
            value,
            span: Span::new(at, at + 1),
        };
        let mut body = node(
            JsonValue::Object(vec![
                Member {
                    key: "iso_url".into(),
                    key_span: Span::new(0, 1),
                    value: node(
                        JsonValue::String(match unknown(Kind::String) {
                            Value::String(s) => s,
                            _ => unreachable!(),
                        }),
                        10,
                    ),
                },
                Member {
                    key: "memory".into(),
                    key_span: Span::new(0, 1),
                    value: node(
                        JsonValue::String(match unknown(Kind::Number) {
                            Value::String(s) => s,
                            _ => unreachable!(),
                        }),
                        20,
                    ),
                },
                Member {
                    key: "name".into(),
                    key_span: Span::new(0, 1),
                    value: node(JsonValue::String("known".into()), 30),
                },
            ]),
            0,
        );
        let mut filled = Vec::new();
        replace_in_node(&mut body, &mut filled);
        let JsonValue::Object(members) = &body.value else {
            unreachable!()
        };
        let values: Vec<&JsonValue> = members.iter().map(|m| &m.value.value).collect();
        assert_eq!(
            values,
            [
                &JsonValue::String("<unknown>".into()),
                &JsonValue::Number("0".into()),
                &JsonValue::String("known".into())
            ]
        );
        assert_eq!(filled, [Span::new(10, 11), Span::new(20, 21)]);
    }
}
