//! Renders a parsed template against a `Context`: walks the nodes, evaluates
//! pipelines (the piped value goes last), reads fields of the data, and
//! short-circuits `and`/`or` as Go does.

use super::Context;
use super::ast::{Call, Node, Operand, Pipeline};
use super::builtins;
use super::error::{DidYouMean, InterpError, InterpErrorKind as K, did_you_mean};
use super::functions::{self, Args, Func};
use super::value::{MAX_LEN, Value};

/// How build-time fields (`{{ .HTTPIP }}`) are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fields {
    /// Read from the context's data.
    Read,
    /// An action that starts with a field is written back as it is, for the
    /// place the text is used to fill in (a user variable's value, as
    /// Packer keeps `{{ .HTTPIP }}` in variables for the boot command).
    Keep,
}

pub(crate) fn render(
    nodes: &[Node],
    source: &str,
    ctx: &Context<'_>,
    fields: Fields,
) -> Result<String, InterpError> {
    let mut renderer = Renderer {
        ctx,
        source,
        fields,
        out: String::new(),
    };
    let dot = Value::Map(ctx.data);
    renderer.nodes(nodes, &dot)?;
    Ok(renderer.out)
}

struct Renderer<'c, 'a> {
    ctx: &'c Context<'a>,
    source: &'c str,
    fields: Fields,
    out: String,
}

impl<'a> Renderer<'_, 'a> {
    fn nodes(&mut self, nodes: &[Node], dot: &Value<'a>) -> Result<(), InterpError> {
        for node in nodes {
            match node {
                Node::Text(text) => self.emit(text, 0)?,
                Node::Action(pipeline)
                    if self.fields == Fields::Keep && starts_with_field(pipeline) =>
                {
                    let inner = self.source.get(pipeline.offset..pipeline.end).unwrap_or("");
                    self.emit(&format!("{{{{ {inner} }}}}"), pipeline.offset)?;
                }
                Node::Action(pipeline) => {
                    let value = self.pipeline(pipeline, dot)?;
                    self.emit(&value.to_go_string(), pipeline.offset)?;
                }
                Node::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    if self.pipeline(cond, dot)?.is_true() {
                        self.nodes(then, dot)?;
                    } else {
                        self.nodes(otherwise, dot)?;
                    }
                }
                Node::With {
                    value,
                    then,
                    otherwise,
                } => {
                    let value = self.pipeline(value, dot)?;
                    if value.is_true() {
                        self.nodes(then, &value)?;
                    } else {
                        self.nodes(otherwise, dot)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self, text: &str, offset: usize) -> Result<(), InterpError> {
        if self.out.len() + text.len() > MAX_LEN {
            return Err(InterpError::new(offset, K::TooLarge(MAX_LEN)));
        }
        self.out.push_str(text);
        Ok(())
    }

    fn pipeline(&self, pipeline: &Pipeline, dot: &Value<'a>) -> Result<Value<'a>, InterpError> {
        let mut piped = None;
        for command in &pipeline.commands {
            piped = Some(match command {
                Operand::Call(call) => self.call(call, dot, piped.take())?,
                other => self.operand(other, dot)?,
            });
        }
        // The parser never builds an empty pipeline.
        piped.ok_or_else(|| InterpError::new(pipeline.offset, K::MissingValue("command")))
    }

    fn operand(&self, operand: &Operand, dot: &Value<'a>) -> Result<Value<'a>, InterpError> {
        match operand {
            Operand::Call(call) => self.call(call, dot, None),
            Operand::Field(names) => fields(dot.clone(), names),
            Operand::Dot(_) => Ok(dot.clone()),
            Operand::Str(s) => Ok(Value::Str(s.clone())),
            Operand::Int(i) => Ok(Value::Int(*i)),
            Operand::Bool(b) => Ok(Value::Bool(*b)),
            Operand::Paren {
                pipeline,
                fields: names,
            } => {
                let value = self.pipeline(pipeline, dot)?;
                fields(value, names)
            }
        }
    }

    fn call(
        &self,
        call: &Call,
        dot: &Value<'a>,
        piped: Option<Value<'a>>,
    ) -> Result<Value<'a>, InterpError> {
        if matches!(call.func, Func::And | Func::Or) {
            return self.and_or(call, dot, piped);
        }
        let mut values = Vec::with_capacity(call.args.len() + 1);
        for arg in &call.args {
            values.push(self.operand(arg, dot)?);
        }
        values.extend(piped);
        let args = Args {
            func: call.func,
            values: &values,
        };
        if call.func == Func::User {
            return self.user(call, &args);
        }
        let result = match builtins::call(call.func, &args) {
            Some(result) => result,
            None => functions::call_packer(call.func, &args, self.ctx),
        };
        result.map_err(|kind| InterpError::new(call.offset, kind))
    }

    /// `user`: a value that kept build-time fields is rendered here, where
    /// it is used, with this place's fields (Packer renders such a string
    /// twice).
    fn user(&self, call: &Call, args: &Args<'_, 'a>) -> Result<Value<'a>, InterpError> {
        let at = |kind| InterpError::new(call.offset, kind);
        let value = functions::call_packer(call.func, args, self.ctx).map_err(at)?;
        let Value::Str(text) = &value else {
            return Ok(value);
        };
        let Some(nested) = super::build_time_value(text) else {
            return Ok(value);
        };
        let name = match args.values.first() {
            Some(Value::Str(n)) => n.clone(),
            _ => String::new(),
        };
        render(&nested.nodes, &nested.source, self.ctx, self.fields)
            .map(Value::Str)
            .map_err(|e| {
                at(K::InVariable {
                    name,
                    inner: Box::new(e.kind),
                })
            })
    }

    /// `and` returns the first false argument or the last; `or` the first true
    /// one or the last. Later arguments are not evaluated.
    fn and_or(
        &self,
        call: &Call,
        dot: &Value<'a>,
        piped: Option<Value<'a>>,
    ) -> Result<Value<'a>, InterpError> {
        let stop_when = call.func == Func::Or;
        let mut last = None;
        for arg in &call.args {
            let value = self.operand(arg, dot)?;
            if value.is_true() == stop_when {
                return Ok(value);
            }
            last = Some(value);
        }
        if let Some(value) = piped {
            return Ok(value);
        }
        last.ok_or_else(|| {
            InterpError::new(
                call.offset,
                K::WrongArgCount {
                    function: call.func.name().to_string(),
                    expected: "at least 1 argument".into(),
                    found: 0,
                },
            )
        })
    }
}

/// Whether an action's pipeline starts by reading a field of the data.
pub(crate) fn starts_with_field(pipeline: &Pipeline) -> bool {
    matches!(pipeline.commands.first(), Some(Operand::Field(_)))
}

/// Reads `.A.B…` starting from `value`.
fn fields<'a>(mut value: Value<'a>, names: &[(String, usize)]) -> Result<Value<'a>, InterpError> {
    for (name, offset) in names {
        value = match &value {
            Value::Map(map) => match map.get(name) {
                Some(v) => Value::Str(v.clone()),
                None => {
                    return Err(InterpError::new(
                        *offset,
                        K::UnknownField {
                            name: name.clone(),
                            suggestion: DidYouMean(
                                did_you_mean(name, map.keys().map(String::as_str))
                                    .0
                                    .map(|n| format!(".{n}")),
                            ),
                        },
                    ));
                }
            },
            other => {
                return Err(InterpError::new(
                    *offset,
                    K::FieldOfNonMap {
                        name: name.clone(),
                        found: other.describe(),
                    },
                ));
            }
        };
    }
    Ok(value)
}
