//! Evaluating one HCL expression to a value with hcl-rs's evaluator, in a
//! scope of Packer's variables (`var`, `local`, `path`, `packer`, `source`,
//! `build`) and functions. `try` and `can` are evaluated here, before
//! hcl-rs sees the expression, because they must catch their arguments'
//! errors instead of failing with them.

use hcl::eval::{Context, Evaluate};
use hcl::expr::{Expression, TraversalOperator};
use hcl::{Map, Value};

use super::functions;

/// The variables an expression may refer to.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub vars: Map<String, Value>,
    /// `env()` is only allowed in variable defaults.
    pub allow_env: bool,
    /// Locals and data sources that have no value because their own
    /// evaluation failed (already reported): an expression that uses one
    /// fails only in consequence, and says nothing more.
    pub failed: Vec<FailedValue>,
}

/// A local (`local.NAME`) or a data source (`data.TYPE.NAME`) without a value.
#[derive(Debug, Clone, PartialEq)]
pub enum FailedValue {
    Local(String),
    Data(String, String),
}

impl Scope {
    /// True when `expr` uses a local or data source that failed.
    pub fn uses_failed(&self, expr: &hcl::edit::expr::Expression) -> bool {
        !self.failed.is_empty()
            && (references(expr, "local")
                .into_iter()
                .any(|n| self.failed.contains(&FailedValue::Local(n)))
                || data_references(expr)
                    .into_iter()
                    .any(|(t, n)| self.failed.contains(&FailedValue::Data(t, n))))
    }

    pub fn set(&mut self, name: &str, value: Value) {
        self.vars.insert(name.to_owned(), value);
    }

    fn context(&self) -> Context<'static> {
        let mut ctx = Context::new();
        functions::declare_all(&mut ctx, self.allow_env);
        for (k, v) in &self.vars {
            ctx.declare_var(k.as_str(), v.clone());
        }
        ctx
    }
}

/// Evaluates an expression parsed by hcl-edit.
pub fn eval(expr: &hcl::edit::expr::Expression, scope: &Scope) -> Result<Value, String> {
    let expr: Expression = expr.clone().into();
    eval_expr(&expr, scope)
}

/// Evaluates an expression; one that mentions an unknown value (plain
/// `validate`, data sources not run) is evaluated with HCL's unknown rules.
pub fn eval_expr(expr: &Expression, scope: &Scope) -> Result<Value, String> {
    if super::unknown::mentions_unknown(expr, scope) {
        // An error about a value that holds an unknown may quote it.
        return super::unknown::eval(expr, scope).map_err(|e| super::unknown::scrub(&e));
    }
    eval_known(expr, scope)
}

/// Evaluates an expression whose variables hold no unknown, with hcl-rs.
pub fn eval_known(expr: &Expression, scope: &Scope) -> Result<Value, String> {
    let ctx = scope.context();
    let expr = resolve_try_can(expr, &ctx)?;
    expr.evaluate(&ctx).map_err(|e| describe(&e))
}

/// hcl-rs's message without the expression it appends (the caret shows it).
fn describe(e: &hcl::eval::Error) -> String {
    message(e.kind())
}

fn message(kind: &hcl::eval::ErrorKind) -> String {
    use hcl::eval::ErrorKind as K;
    match kind {
        K::UndefinedVar(name) => format!(
            "unknown variable `{name}`; Packer's are {}",
            REFERENCE_ROOTS.join(", ")
        ),
        K::UndefinedFunc(name) if name.name.as_str() == "env" => {
            "`env` can only be used in a variable's default value, as in Packer".to_owned()
        }
        K::UndefinedFunc(name) => {
            let hint = crate::template::diagnostic::did_you_mean(
                name.name.as_str(),
                functions::IMPLEMENTED.iter().copied(),
            )
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
            format!("call to unknown function `{name}`{hint}")
        }
        K::FuncCall(name, msg) => format!("{name}(): {msg}"),
        K::NoSuchKey(key) => format!("this object has no attribute `{key}`"),
        other => other.to_string(),
    }
}

/// Replaces each `try(...)` and `can(...)` call by its value.
fn resolve_try_can(expr: &Expression, ctx: &Context<'_>) -> Result<Expression, String> {
    let recur = |e: &Expression| resolve_try_can(e, ctx);
    Ok(match expr {
        Expression::FuncCall(call) if call.name.namespace.is_empty() => {
            let name = call.name.name.as_str();
            let args: Vec<Expression> = match call.args.iter().map(recur).collect() {
                Ok(a) => a,
                Err(e) if name == "can" => {
                    let _ = e;
                    return Ok(Expression::Bool(false));
                }
                Err(e) => return Err(e),
            };
            match name {
                "try" => {
                    if args.is_empty() {
                        return Err("try(): at least one argument is required".into());
                    }
                    let mut last = String::new();
                    for a in &args {
                        match a.evaluate(ctx) {
                            Ok(v) => return Ok(value_expr(v)),
                            Err(e) => last = describe(&e),
                        }
                    }
                    return Err(format!(
                        "try(): no expression succeeded; the last one failed with: {last}"
                    ));
                }
                "can" => {
                    if args.len() != 1 {
                        return Err("can(): exactly one argument is required".into());
                    }
                    return Ok(Expression::Bool(args[0].evaluate(ctx).is_ok()));
                }
                // Its second argument is a type, not a value: like try and
                // can, it is resolved before hcl-rs evaluates the rest.
                "convert" => {
                    let [value, ty] = args.as_slice() else {
                        return Err(format!(
                            "convert(): takes 2 arguments (a value and a type), given {}",
                            args.len()
                        ));
                    };
                    let ty = super::types::parse(&hcl::edit::expr::Expression::from(ty.clone()))
                        .map_err(|e| format!("convert(): {e}"))?;
                    let value = value.evaluate(ctx).map_err(|e| describe(&e))?;
                    let converted = super::types::convert(value, &ty).map_err(|e| {
                        format!("convert(): Invalid value for \"value\" parameter: {e}")
                    })?;
                    return Ok(value_expr(converted));
                }
                _ => {
                    let mut c = (**call).clone();
                    c.args = args;
                    Expression::FuncCall(Box::new(c))
                }
            }
        }
        Expression::Array(items) => {
            Expression::Array(items.iter().map(recur).collect::<Result<_, _>>()?)
        }
        Expression::Object(o) => {
            let mut out = hcl::Object::new();
            for (k, v) in o {
                out.insert(k.clone(), recur(v)?);
            }
            Expression::Object(out)
        }
        Expression::Parenthesis(e) => Expression::Parenthesis(Box::new(recur(e)?)),
        Expression::Conditional(c) => {
            let mut c = (**c).clone();
            c.cond_expr = recur(&c.cond_expr)?;
            c.true_expr = recur(&c.true_expr)?;
            c.false_expr = recur(&c.false_expr)?;
            Expression::Conditional(Box::new(c))
        }
        Expression::Traversal(t) => {
            let mut t = (**t).clone();
            t.expr = recur(&t.expr)?;
            for op in &mut t.operators {
                if let TraversalOperator::Index(i) = op {
                    *i = recur(i)?;
                }
            }
            Expression::Traversal(Box::new(t))
        }
        Expression::Operation(op) => {
            let mut op = (**op).clone();
            match &mut op {
                hcl::expr::Operation::Unary(u) => u.expr = recur(&u.expr)?,
                hcl::expr::Operation::Binary(b) => {
                    b.lhs_expr = recur(&b.lhs_expr)?;
                    b.rhs_expr = recur(&b.rhs_expr)?;
                }
            }
            Expression::Operation(Box::new(op))
        }
        Expression::TemplateExpr(t) => {
            let Ok(template) = hcl::Template::from_expr(t) else {
                // hcl-rs reports the template's own syntax error.
                return Ok(expr.clone());
            };
            match template.elements() {
                // HCL: a string that is one interpolation is that value,
                // not its text (`"${var.list}"` is the list, null is null).
                [hcl::template::Element::Interpolation(i)] => recur(&i.expr)?,
                elements if interpolations_use_resolved_functions(elements) => {
                    // `"a-${try(x, "")}"`: the pieces resolved here, as
                    // hcl-rs would not let try see its argument's error.
                    let mut out = String::new();
                    for e in elements {
                        match e {
                            hcl::template::Element::Literal(l) => out.push_str(l),
                            hcl::template::Element::Interpolation(i) => {
                                let v = recur(&i.expr)?.evaluate(ctx).map_err(|e| describe(&e))?;
                                match functions::as_string(&v) {
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
                            hcl::template::Element::Directive(_) => return Ok(expr.clone()),
                        }
                    }
                    Expression::String(out)
                }
                elements => {
                    for e in elements {
                        if let hcl::template::Element::Interpolation(i) = e
                            && let Ok(Value::Null) = recur(&i.expr)
                                .and_then(|x| x.evaluate(ctx).map_err(|e| describe(&e)))
                        {
                            return Err(format!(
                                "`${{{}}}` is null, and a null value cannot be part of a string",
                                i.expr
                            ));
                        }
                    }
                    expr.clone()
                }
            }
        }
        // A `for` whose body uses try, can or convert: evaluated here, one
        // element at a time with its names bound, so those see the
        // element's errors (hcl-rs would bind the names only inside).
        Expression::ForExpr(f) if uses_resolved_functions(f) => value_expr(eval_for(f, ctx)?),
        other => other.clone(),
    })
}

/// Whether a template of literals and plain interpolations (no
/// directives, no `~` strip markers) calls try, can or convert.
fn interpolations_use_resolved_functions(elements: &[hcl::template::Element]) -> bool {
    use hcl::template::{Element, Strip};
    let plain = elements.iter().all(|e| match e {
        Element::Literal(_) => true,
        Element::Interpolation(i) => i.strip == Strip::None,
        Element::Directive(_) => false,
    });
    plain
        && elements.iter().any(|e| match e {
            Element::Interpolation(i) => {
                let text = hcl::format::to_string(&i.expr).unwrap_or_default();
                ["try(", "can(", "convert("]
                    .iter()
                    .any(|f| text.contains(f))
            }
            _ => false,
        })
}

/// Whether a `for` expression's body, key or condition calls a function
/// that must be resolved before hcl-rs evaluates it.
fn uses_resolved_functions(f: &hcl::expr::ForExpr) -> bool {
    let mut parts = vec![&f.value_expr];
    parts.extend(f.key_expr.as_ref());
    parts.extend(f.cond_expr.as_ref());
    parts.iter().any(|e| {
        let text = hcl::format::to_string(*e).unwrap_or_default();
        ["try(", "can(", "convert("]
            .iter()
            .any(|f| text.contains(f))
    })
}

/// The (key, value) pairs a `for` expression walks: a list's indexes or an
/// object's keys, each with its element.
pub(super) fn for_elements(collection: Value) -> Result<Vec<(Value, Value)>, String> {
    match collection {
        Value::Array(items) => Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Value::from(i as u64), v))
            .collect()),
        Value::Object(map) => Ok(map
            .into_iter()
            .map(|(k, v)| (Value::String(k), v))
            .collect()),
        other => Err(format!(
            "a `for` expression iterates over a list, set, map or object, not {other}"
        )),
    }
}

/// A `for` expression evaluated element by element, as HCL defines it.
fn eval_for(f: &hcl::expr::ForExpr, ctx: &Context<'_>) -> Result<Value, String> {
    let collection = resolve_try_can(&f.collection_expr, ctx)?
        .evaluate(ctx)
        .map_err(|e| describe(&e))?;
    let elements = for_elements(collection)?;
    let mut list = Vec::new();
    let mut object: Map<String, Value> = Map::new();
    for (key, value) in elements {
        let mut c = ctx.clone();
        if let Some(k) = &f.key_var {
            c.declare_var(k.clone(), key);
        }
        c.declare_var(f.value_var.clone(), value);
        let eval_in = |e: &Expression| {
            resolve_try_can(e, &c)?
                .evaluate(&c)
                .map_err(|e| describe(&e))
        };
        if let Some(cond) = &f.cond_expr {
            match eval_in(cond)? {
                Value::Bool(true) => {}
                Value::Bool(false) => continue,
                other => return Err(format!("a `for` condition must be a bool, not {other}")),
            }
        }
        let v = eval_in(&f.value_expr)?;
        match &f.key_expr {
            None => list.push(v),
            Some(k) => {
                let Some(k) = functions::as_string(&eval_in(k)?) else {
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

/// A value as the literal expression that evaluates to it.
pub fn value_expr(v: Value) -> Expression {
    match v {
        Value::Null => Expression::Null,
        Value::Bool(b) => Expression::Bool(b),
        Value::Number(n) => Expression::Number(n),
        Value::String(s) => Expression::String(s),
        Value::Array(a) => Expression::Array(a.into_iter().map(value_expr).collect()),
        Value::Object(o) => {
            let mut out = hcl::Object::new();
            for (k, v) in o {
                out.insert(hcl::ObjectKey::from(k), value_expr(v));
            }
            Expression::Object(out)
        }
    }
}

/// The names an expression may start a reference from, as in Packer.
pub const REFERENCE_ROOTS: &[&str] = &["var", "local", "path", "packer", "source", "build", "data"];

/// The `local.NAME` (or `var.NAME`, …) names an expression refers to.
pub fn references(expr: &hcl::edit::expr::Expression, root: &str) -> Vec<String> {
    use hcl::edit::visit::{Visit, visit_traversal};
    struct Refs<'a> {
        root: &'a str,
        found: Vec<String>,
    }
    impl Visit for Refs<'_> {
        fn visit_traversal(&mut self, node: &hcl::edit::expr::Traversal) {
            if let hcl::edit::expr::Expression::Variable(v) = &node.expr
                && v.as_str() == self.root
                && let Some(first) = node.operators.first()
                && let hcl::edit::expr::TraversalOperator::GetAttr(name) = first.value()
            {
                self.found.push(name.as_str().to_owned());
            }
            visit_traversal(self, node);
        }
    }
    let mut r = Refs {
        root,
        found: Vec::new(),
    };
    r.visit_expr(expr);
    r.found
}

/// The `data.TYPE.NAME` sources an expression refers to.
pub fn data_references(expr: &hcl::edit::expr::Expression) -> Vec<(String, String)> {
    use hcl::edit::expr::{Expression, TraversalOperator};
    use hcl::edit::visit::{Visit, visit_traversal};
    struct Refs(Vec<(String, String)>);
    impl Visit for Refs {
        fn visit_traversal(&mut self, node: &hcl::edit::expr::Traversal) {
            if let Expression::Variable(v) = &node.expr
                && v.as_str() == "data"
                && let [ty, name, ..] = node.operators.as_slice()
                && let (TraversalOperator::GetAttr(ty), TraversalOperator::GetAttr(name)) =
                    (ty.value(), name.value())
            {
                self.0
                    .push((ty.as_str().to_owned(), name.as_str().to_owned()));
            }
            visit_traversal(self, node);
        }
    }
    let mut r = Refs(Vec::new());
    r.visit_expr(expr);
    r.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Result<Value, String> {
        let expr: hcl::edit::expr::Expression = src.parse().expect("parses");
        let mut scope = Scope::default();
        let mut var = Map::new();
        var.insert("n".to_owned(), Value::from(2));
        scope.set("var", Value::Object(var));
        eval(&expr, &scope)
    }

    #[test]
    fn evaluates_operators_templates_and_functions() {
        assert_eq!(run("var.n * 3 + 1"), Ok(Value::from(7)));
        assert_eq!(run(r#""n=${var.n}""#), Ok(Value::from("n=2")));
        assert_eq!(run(r#"upper("a")"#), Ok(Value::from("A")));
        assert_eq!(
            run("[for x in [1, 2] : x * var.n]"),
            Ok(Value::from(vec![2, 4]))
        );
    }

    #[test]
    fn try_and_can_catch_errors_inside_for_bodies() {
        assert_eq!(
            run(r#"[for x in ["1", "a", "3"] : try(tonumber(x), -1)]"#),
            Ok(Value::from(vec![1, -1, 3]))
        );
        assert_eq!(
            run(r#"[for x in ["1", "a"] : x if can(tonumber(x))]"#),
            Ok(Value::from(vec!["1"]))
        );
        assert_eq!(
            run(r#"{for k, v in {a = "1", b = "x"} : k => try(tonumber(v), 0)}"#),
            Ok(Value::Object(Map::from_iter([
                ("a".to_owned(), Value::from(1)),
                ("b".to_owned(), Value::from(0)),
            ])))
        );
        assert_eq!(
            run(r#"{for x in ["a", "b", "a"] : x => try(x, "") ...}"#),
            Ok(Value::Object(Map::from_iter([
                ("a".to_owned(), Value::from(vec!["a", "a"])),
                ("b".to_owned(), Value::from(vec!["b"])),
            ])))
        );
        assert_eq!(
            run(r#"[for x in [1, 2] : convert(x * var.n, string)]"#),
            Ok(Value::from(vec!["2", "4"]))
        );
        let err = run(r#"[for x in ["a"] : tonumber(x) if can(x)]"#).expect_err("not a number");
        assert!(err.contains("tonumber"), "{err}");
    }

    #[test]
    fn try_and_can_catch_errors_inside_string_templates() {
        assert_eq!(
            run(r#""n=${try(tonumber("x"), var.n)}, ok=${can(var.nope)}""#),
            Ok(Value::from("n=2, ok=false"))
        );
        assert_eq!(
            run(r#""a${convert(var.n, string)}b""#),
            Ok(Value::from("a2b"))
        );
        let err = run(r#""x${try(null, null)}""#).expect_err("null");
        assert!(
            err.contains("null value cannot be part of a string"),
            "{err}"
        );
    }

    #[test]
    fn convert_takes_a_type_and_says_what_does_not_fit() {
        assert_eq!(run("convert(var.n, string)"), Ok(Value::from("2")));
        assert_eq!(
            run(r#"convert(["1", 2], list(number))"#),
            Ok(Value::from(vec![1, 2]))
        );
        assert_eq!(
            run(r#"convert({a = "x"}, map(string))"#),
            Ok(Value::Object(Map::from_iter([(
                "a".to_owned(),
                Value::from("x")
            )])))
        );
        let err = run(r#"convert("x", number)"#).expect_err("not a number");
        assert!(err.starts_with("convert(): Invalid value"), "{err}");
        let err = run("convert(1, nosuchtype)").expect_err("not a type");
        assert!(err.starts_with("convert(): "), "{err}");
        let err = run("convert(1)").expect_err("one argument");
        assert!(err.contains("takes 2 arguments"), "{err}");
    }

    #[test]
    fn try_and_can_work_in_templates_and_for_bodies_when_their_argument_does() {
        assert_eq!(
            run(r#""${try(var.n, 0)}-%{for x in [1] }${can(x)}%{endfor}""#),
            Ok(Value::from("2-true"))
        );
        assert_eq!(
            run("[for x in [1, 2] : try(x * var.n, 0)]"),
            Ok(Value::from(vec![2, 4]))
        );
    }

    #[test]
    fn a_lone_interpolation_is_its_value_and_null_cannot_be_interpolated() {
        assert_eq!(run(r#""${[var.n]}""#), Ok(Value::from(vec![2])));
        assert_eq!(run(r#""${null}""#), Ok(Value::Null));
        let e = run(r#""a-${null}""#).expect_err("null in a string");
        assert!(e.contains("is null"), "{e}");
    }

    #[test]
    fn try_and_can_catch_errors() {
        assert_eq!(
            run("try(var.missing, \"fallback\")"),
            Ok(Value::from("fallback"))
        );
        assert_eq!(run("can(var.missing)"), Ok(Value::Bool(false)));
        assert_eq!(run("can(var.n)"), Ok(Value::Bool(true)));
        let e = run("try(var.a, var.b)").expect_err("both fail");
        assert!(e.contains("no expression succeeded"), "{e}");
    }

    #[test]
    fn unknown_functions_are_named_with_a_suggestion() {
        let e = run(r#"uper("a")"#).expect_err("unknown");
        assert!(
            e.contains("`uper`") && e.contains("did you mean `upper`"),
            "{e}"
        );
        let e = run(r#"env("HOME")"#).expect_err("env outside defaults");
        assert!(e.contains("variable's default"), "{e}");
    }

    #[test]
    fn finds_references() {
        let expr: hcl::edit::expr::Expression =
            r#""${local.a}-${local.b.c}" == var.x"#.parse().expect("parses");
        assert_eq!(references(&expr, "local"), vec!["a", "b"]);
    }
}
