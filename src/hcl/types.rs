//! Variable type constraints (`string`, `list(number)`, `object({…})`, …)
//! and the conversions HCL makes to satisfy them ("2" for a number, a
//! number for a string).

use hcl::edit::expr::{Expression, TraversalOperator};
use hcl::{Map, Value};

use super::functions::{as_string, num};

#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Any,
    String,
    Number,
    Bool,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    /// Attribute name → (type, optional, default when optional).
    Object(Vec<(String, Type, Option<Value>)>),
    Tuple(Vec<Type>),
}

impl Type {
    /// A primitive type takes a `-var` or `PKR_VAR_` value as the raw
    /// string; others parse it as an HCL expression.
    pub fn is_primitive(&self) -> bool {
        matches!(self, Type::String | Type::Number | Type::Bool)
    }

    pub fn name(&self) -> String {
        match self {
            Type::Any => "any".into(),
            Type::String => "string".into(),
            Type::Number => "number".into(),
            Type::Bool => "bool".into(),
            Type::List(t) => format!("list({})", t.name()),
            Type::Set(t) => format!("set({})", t.name()),
            Type::Map(t) => format!("map({})", t.name()),
            Type::Object(attrs) => format!(
                "object({{{}}})",
                attrs
                    .iter()
                    .map(|(k, t, _)| format!("{k}={}", t.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Type::Tuple(items) => format!(
                "tuple([{}])",
                items.iter().map(Type::name).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// Reads a `type = …` expression.
pub fn parse(expr: &Expression) -> Result<Type, String> {
    parse_inner(expr, false).map(|(t, _, _)| t)
}

fn parse_inner(expr: &Expression, in_object: bool) -> Result<(Type, bool, Option<Value>), String> {
    let bad = || {
        format!(
            "`{}` is not a type; write string, number, bool, any, list(T), set(T), map(T), object({{name = T}}) or tuple([T, …])",
            expr.to_string().trim()
        )
    };
    match expr {
        Expression::Variable(v) => Ok((
            match v.as_str() {
                "string" => Type::String,
                "number" => Type::Number,
                "bool" => Type::Bool,
                "any" => Type::Any,
                "list" | "set" | "map" => {
                    return Err(format!(
                        "`{}` needs its element type: {}(string), for example",
                        v.as_str(),
                        v.as_str()
                    ));
                }
                _ => return Err(bad()),
            },
            false,
            None,
        )),
        Expression::FuncCall(call) => {
            let args: Vec<&Expression> = call.args.iter().collect();
            let one = |args: &[&Expression]| -> Result<Type, String> {
                match args {
                    [a] => parse_inner(a, false).map(|(t, _, _)| t),
                    _ => Err(format!("{}() takes one type", call.name.name.as_str())),
                }
            };
            let t = match call.name.name.as_str() {
                "list" => Type::List(Box::new(one(&args)?)),
                "set" => Type::Set(Box::new(one(&args)?)),
                "map" => Type::Map(Box::new(one(&args)?)),
                "optional" if in_object => {
                    let (t, _, _) = parse_inner(args.first().ok_or_else(bad)?, false)?;
                    let default = match args.get(1) {
                        Some(d) => Some(
                            super::eval::eval(d, &super::eval::Scope::default())
                                .map_err(|e| format!("optional default: {e}"))?,
                        ),
                        None => None,
                    };
                    return Ok((t, true, default));
                }
                "optional" => {
                    return Err(
                        "optional(…) is only allowed for an attribute of object({…})".into(),
                    );
                }
                "object" => {
                    let [Expression::Object(o)] = args.as_slice() else {
                        return Err("object() takes one object of attribute types: object({ name = string })".into());
                    };
                    let mut attrs = Vec::new();
                    for (k, v) in o.iter() {
                        let key = match k {
                            hcl::edit::expr::ObjectKey::Ident(i) => i.as_str().to_owned(),
                            hcl::edit::expr::ObjectKey::Expression(Expression::String(s)) => {
                                s.as_str().to_owned()
                            }
                            _ => return Err(bad()),
                        };
                        let (t, optional, default) = parse_inner(v.expr(), true)?;
                        attrs.push((key, t, optional.then_some(default.unwrap_or(Value::Null))));
                    }
                    Type::Object(attrs)
                }
                "tuple" => {
                    let [Expression::Array(items)] = args.as_slice() else {
                        return Err("tuple() takes a list of types: tuple([string, number])".into());
                    };
                    Type::Tuple(
                        items
                            .iter()
                            .map(|i| parse_inner(i, false).map(|(t, _, _)| t))
                            .collect::<Result<_, _>>()?,
                    )
                }
                _ => return Err(bad()),
            };
            Ok((t, false, None))
        }
        Expression::Parenthesis(p) => parse_inner(p.inner(), in_object),
        Expression::Traversal(t)
            if t.operators
                .iter()
                .any(|o| matches!(o.value(), TraversalOperator::GetAttr(_))) =>
        {
            Err(bad())
        }
        _ => Err(bad()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Converts a value to the type, as HCL's type conversion does; the error
/// says what was expected and where inside the value.
pub fn convert(v: Value, t: &Type) -> Result<Value, String> {
    convert_at(v, t, "")
}

fn convert_at(v: Value, t: &Type, at: &str) -> Result<Value, String> {
    let wrong = |v: &Value| {
        let place = if at.is_empty() {
            String::new()
        } else {
            format!(" at {at}")
        };
        Err(format!("{} required{place}, found {}", t.name(), kind(v)))
    };
    if matches!(v, Value::Null) {
        return Ok(v);
    }
    match t {
        Type::Any => Ok(v),
        Type::String => match &v {
            Value::String(_) => Ok(v),
            Value::Number(_) | Value::Bool(_) => {
                Ok(Value::String(as_string(&v).unwrap_or_default()))
            }
            _ => wrong(&v),
        },
        Type::Number => match &v {
            Value::Number(_) => Ok(v),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) => Ok(num(f)),
                Err(_) => {
                    let place = if at.is_empty() {
                        String::new()
                    } else {
                        format!(" at {at}")
                    };
                    Err(format!(
                        "a number is required{place}, found the string {s:?}"
                    ))
                }
            },
            _ => wrong(&v),
        },
        Type::Bool => match &v {
            Value::Bool(_) => Ok(v),
            Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            _ => wrong(&v),
        },
        Type::List(inner) | Type::Set(inner) => match v {
            Value::Array(items) => {
                let mut out: Vec<Value> = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    let c = convert_at(item, inner, &format!("{at}[{i}]"))?;
                    if matches!(t, Type::Set(_)) && out.contains(&c) {
                        continue;
                    }
                    out.push(c);
                }
                Ok(Value::Array(out))
            }
            other => wrong(&other),
        },
        Type::Map(inner) => match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, item) in m {
                    let c = convert_at(item, inner, &format!("{at}[{k:?}]"))?;
                    out.insert(k, c);
                }
                Ok(Value::Object(out))
            }
            other => wrong(&other),
        },
        Type::Object(attrs) => match v {
            Value::Object(mut m) => {
                let mut out = Map::new();
                for (name, at_type, optional) in attrs {
                    let path = format!("{at}.{name}");
                    match (m.shift_remove(name), optional) {
                        (Some(item), _) => {
                            out.insert(name.clone(), convert_at(item, at_type, &path)?);
                        }
                        (None, Some(default)) => {
                            out.insert(name.clone(), default.clone());
                        }
                        (None, None) => {
                            return Err(format!(
                                "attribute `{}` is required",
                                path.trim_start_matches('.')
                            ));
                        }
                    }
                }
                Ok(Value::Object(out))
            }
            other => wrong(&other),
        },
        Type::Tuple(types) => match v {
            Value::Array(items) if items.len() == types.len() => Ok(Value::Array(
                items
                    .into_iter()
                    .zip(types)
                    .enumerate()
                    .map(|(i, (item, t))| convert_at(item, t, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Array(items) => Err(format!(
                "{} required, found a list of {} elements",
                t.name(),
                items.len()
            )),
            other => wrong(&other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(src: &str) -> Result<Type, String> {
        parse(&src.parse().expect("parses"))
    }

    #[test]
    fn parses_type_constraints() {
        assert_eq!(ty("string"), Ok(Type::String));
        assert_eq!(ty("list(number)"), Ok(Type::List(Box::new(Type::Number))));
        assert_eq!(
            ty("object({ a = string, b = optional(number, 3) })").map(|t| t.name()),
            Ok("object({a=string, b=number})".to_owned())
        );
        assert!(ty("list").is_err());
        assert!(ty("strnig").is_err());
        assert!(ty("optional(string)").is_err());
    }

    #[test]
    fn converts_as_hcl_does() {
        assert_eq!(convert(Value::from("2"), &Type::Number), Ok(Value::from(2)));
        assert_eq!(convert(Value::from(2), &Type::String), Ok(Value::from("2")));
        assert!(convert(Value::from("x"), &Type::Number).is_err());
        let t = ty("object({ a = string, b = optional(number, 3) })").expect("type");
        let mut m = Map::new();
        m.insert("a".to_owned(), Value::from("x"));
        let out = convert(Value::Object(m), &t).expect("converts");
        assert_eq!(
            out.as_object().and_then(|o| o.get("b")),
            Some(&Value::from(3))
        );
        let e = convert(
            Value::from(vec!["a", "b"]),
            &ty("list(number)").expect("type"),
        )
        .expect_err("strings");
        assert!(e.contains("[0]"), "{e}");
    }
}
