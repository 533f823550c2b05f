//! Builds the tree from the lexer's items: `if`/`with`/`else`/`end` blocks,
//! pipelines, commands and operands. Function names and arities are checked
//! here, so a bad template fails at parse time with the offset of the name.

use super::ast::{Call, Node, Operand, Pipeline};
use super::error::{InterpError, InterpErrorKind as K};
use super::functions::{self, Func};
use super::lexer::{Item, Tok, Token};

/// How deep blocks and parentheses may nest, together.
pub(crate) const MAX_DEPTH: usize = 64;

pub(crate) fn parse(items: Vec<Item>) -> Result<Vec<Node>, InterpError> {
    let mut parser = Parser {
        items: items.into_iter(),
        depth: 0,
    };
    let (nodes, end) = parser.parse_list()?;
    match end {
        ListEnd::Eof => Ok(nodes),
        ListEnd::End { start } => Err(InterpError::new(start, K::UnexpectedBlockKeyword("end"))),
        ListEnd::Else { start, .. } => {
            Err(InterpError::new(start, K::UnexpectedBlockKeyword("else")))
        }
    }
}

/// Why a list of nodes stopped.
enum ListEnd {
    Eof,
    End {
        start: usize,
    },
    /// `{{else}}` or `{{else if …}}`: the tokens after `else`.
    Else {
        start: usize,
        rest: Vec<Token>,
    },
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    depth: usize,
}

impl Parser {
    fn parse_list(&mut self) -> Result<(Vec<Node>, ListEnd), InterpError> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (start, tokens) = match item {
                Item::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Item::Action { start, tokens } => (start, tokens),
            };
            let keyword = match tokens.first().map(|t| &t.tok) {
                Some(Tok::Ident(name)) => name.as_str(),
                Some(_) => "",
                None => return Err(InterpError::new(start, K::MissingValue("action"))),
            };
            match keyword {
                "if" | "with" => {
                    let node = self.parse_block(start, &tokens)?;
                    nodes.push(node);
                }
                "else" => {
                    let rest = tokens.into_iter().skip(1).collect();
                    return Ok((nodes, ListEnd::Else { start, rest }));
                }
                "end" => {
                    if let Some(extra) = tokens.get(1) {
                        return Err(unexpected(extra, "after `end`"));
                    }
                    return Ok((nodes, ListEnd::End { start }));
                }
                "range" | "define" | "template" | "block" | "break" | "continue" => {
                    return Err(InterpError::new(
                        start,
                        K::UnsupportedSyntax(unsupported(keyword)),
                    ));
                }
                _ => {
                    let pipeline = ExprParser::new(&tokens, start, &mut self.depth).action()?;
                    nodes.push(Node::Action(pipeline));
                }
            }
        }
        Ok((nodes, ListEnd::Eof))
    }

    /// Parses `if`/`with` (the first of `tokens`) through its `{{end}}`.
    fn parse_block(&mut self, start: usize, tokens: &[Token]) -> Result<Node, InterpError> {
        let is_if = matches!(tokens.first().map(|t| &t.tok), Some(Tok::Ident(k)) if k == "if");
        let keyword = if is_if { "if" } else { "with" };
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(InterpError::new(start, K::NestingTooDeep(MAX_DEPTH)));
        }
        let rest = tokens.get(1..).unwrap_or_default();
        if rest.is_empty() {
            return Err(InterpError::new(start, K::MissingValue(keyword)));
        }
        let pipeline = ExprParser::new(rest, start, &mut self.depth).action()?;
        let (then, end) = self.parse_list()?;
        let otherwise = match end {
            ListEnd::Eof => return Err(InterpError::new(start, K::UnclosedBlock(keyword))),
            ListEnd::End { .. } => Vec::new(),
            ListEnd::Else {
                start: else_start,
                rest,
            } if rest.is_empty() => match self.parse_list()? {
                (otherwise, ListEnd::End { .. }) => otherwise,
                (_, ListEnd::Eof) => {
                    return Err(InterpError::new(start, K::UnclosedBlock(keyword)));
                }
                (_, ListEnd::Else { start, .. }) => {
                    let _ = else_start;
                    return Err(InterpError::new(start, K::UnexpectedBlockKeyword("else")));
                }
            },
            // `{{else if …}}` / `{{else with …}}` open a nested block that
            // shares this block's `{{end}}`.
            ListEnd::Else { start, rest } => match rest.first().map(|t| &t.tok) {
                Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                    vec![self.parse_block(start, &rest)?]
                }
                _ => {
                    let first = rest.first().map_or(start, |t| t.start);
                    return Err(InterpError::new(
                        first,
                        K::UnexpectedToken {
                            found: rest.first().map_or(String::new(), |t| t.tok.describe()),
                            context: "after `else` (expected `if`, `with` or `}}`)",
                        },
                    ));
                }
            },
        };
        self.depth -= 1;
        Ok(if is_if {
            Node::If {
                cond: pipeline,
                then,
                otherwise,
            }
        } else {
            Node::With {
                value: pipeline,
                then,
                otherwise,
            }
        })
    }
}

fn unsupported(keyword: &str) -> &'static str {
    match keyword {
        "range" => "{{range}}",
        "define" => "{{define}}",
        "template" => "{{template}}",
        "block" => "{{block}}",
        "break" => "{{break}}",
        _ => "{{continue}}",
    }
}

fn unexpected(token: &Token, context: &'static str) -> InterpError {
    InterpError::new(
        token.start,
        K::UnexpectedToken {
            found: token.tok.describe(),
            context,
        },
    )
}

/// Parses one action's tokens into a pipeline.
struct ExprParser<'t, 'd> {
    tokens: &'t [Token],
    pos: usize,
    /// Where errors about a missing token point: the end of the last token.
    end_offset: usize,
    depth: &'d mut usize,
}

impl<'t, 'd> ExprParser<'t, 'd> {
    fn new(tokens: &'t [Token], action_start: usize, depth: &'d mut usize) -> Self {
        let end_offset = tokens.last().map_or(action_start, |t| t.end);
        ExprParser {
            tokens,
            pos: 0,
            end_offset,
            depth,
        }
    }

    fn peek(&self) -> Option<&'t Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&'t Token> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    /// The whole action is one pipeline.
    fn action(mut self) -> Result<Pipeline, InterpError> {
        let pipeline = self.pipeline()?;
        match self.peek() {
            None => Ok(pipeline),
            Some(t) => Err(unexpected(t, "in action")),
        }
    }

    fn pipeline(&mut self) -> Result<Pipeline, InterpError> {
        let offset = self.peek().map_or(self.end_offset, |t| t.start);
        let mut commands = vec![self.command(false)?];
        while matches!(self.peek().map(|t| &t.tok), Some(Tok::Pipe)) {
            self.next();
            commands.push(self.command(true)?);
        }
        let end = self
            .pos
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map_or(offset, |t| t.end);
        Ok(Pipeline {
            offset,
            end,
            commands,
        })
    }

    fn at_operand(&self) -> bool {
        !matches!(
            self.peek().map(|t| &t.tok),
            None | Some(Tok::Pipe | Tok::RParen)
        )
    }

    /// A function call with its arguments, or a single operand.
    fn command(&mut self, piped: bool) -> Result<Operand, InterpError> {
        let first_pos = self.pos;
        let Some(first) = self.peek() else {
            return Err(InterpError::new(
                self.end_offset,
                K::MissingValue("command"),
            ));
        };
        if let Tok::Ident(name) = &first.tok
            && let Some(func) = self.function(first, name)?
        {
            self.next();
            let mut args = Vec::new();
            while self.at_operand() {
                args.push(self.operand()?);
            }
            return finish_call(func, first.start, args, piped);
        }
        let operand = self.operand()?;
        if piped || self.at_operand() {
            let shown = self.tokens[first_pos..self.pos.min(self.tokens.len())]
                .iter()
                .map(|t| t.tok.describe())
                .collect::<Vec<_>>()
                .join(" ");
            return Err(InterpError::new(first.start, K::ArgsToNonFunction(shown)));
        }
        Ok(operand)
    }

    /// Resolves an identifier to a function; `None` for `true`/`false`.
    fn function(&self, token: &Token, name: &str) -> Result<Option<Func>, InterpError> {
        match name {
            "true" | "false" => Ok(None),
            "nil" => Err(InterpError::new(token.start, K::UnsupportedSyntax("nil"))),
            "if" | "else" | "end" | "with" | "range" | "define" | "template" | "block"
            | "break" | "continue" => Err(unexpected(token, "inside an expression")),
            _ => functions::lookup(name)
                .map(Some)
                .map_err(|kind| InterpError::new(token.start, kind)),
        }
    }

    fn operand(&mut self) -> Result<Operand, InterpError> {
        let Some(token) = self.next() else {
            return Err(InterpError::new(
                self.end_offset,
                K::MissingValue("command"),
            ));
        };
        Ok(match &token.tok {
            Tok::Ident(name) => match self.function(token, name)? {
                Some(func) => finish_call(func, token.start, Vec::new(), false)?,
                None => Operand::Bool(name == "true"),
            },
            Tok::Field(names) => Operand::Field(names.clone()),
            Tok::Dot => Operand::Dot(token.start),
            Tok::Str(s) => Operand::Str(s.clone()),
            Tok::Int(i) => Operand::Int(*i),
            Tok::LParen => self.parenthesised(token)?,
            Tok::Pipe | Tok::RParen => return Err(unexpected(token, "where a value was expected")),
        })
    }

    fn parenthesised(&mut self, open: &Token) -> Result<Operand, InterpError> {
        *self.depth += 1;
        if *self.depth > MAX_DEPTH {
            return Err(InterpError::new(open.start, K::NestingTooDeep(MAX_DEPTH)));
        }
        let pipeline = self.pipeline()?;
        *self.depth -= 1;
        let close = match self.next() {
            Some(t) if t.tok == Tok::RParen => t,
            Some(t) => return Err(unexpected(t, "in parenthesised pipeline (expected `)`)")),
            None => {
                return Err(InterpError::new(
                    open.start,
                    K::UnexpectedToken {
                        found: "end of action".into(),
                        context: "(unclosed `(`)",
                    },
                ));
            }
        };
        // `(…).Field` reads a field of the result.
        let mut fields = Vec::new();
        if let Some(Token {
            tok: Tok::Field(names),
            start,
            ..
        }) = self.peek()
            && *start == close.end
        {
            fields = names.clone();
            self.next();
        }
        Ok(Operand::Paren {
            pipeline: Box::new(pipeline),
            fields,
        })
    }
}

fn finish_call(
    func: Func,
    offset: usize,
    args: Vec<Operand>,
    piped: bool,
) -> Result<Operand, InterpError> {
    func.check_arity(args.len() + usize::from(piped))
        .map_err(|kind| InterpError::new(offset, kind))?;
    Ok(Operand::Call(Call {
        func,
        offset,
        args,
        piped,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic loudly
mod tests {
    use super::super::lexer::lex;
    use super::*;

    fn parse_src(src: &str) -> Result<Vec<Node>, InterpError> {
        parse(lex(src)?)
    }

    fn err(src: &str) -> (usize, String) {
        let e = parse_src(src).unwrap_err();
        (e.offset, e.to_string())
    }

    #[test]
    fn pipelines_pass_the_value_last() {
        let nodes = parse_src("{{ timestamp | clean_resource_name }}").unwrap();
        let [Node::Action(p)] = nodes.as_slice() else {
            panic!("{nodes:?}")
        };
        assert_eq!(p.commands.len(), 2);
        let Operand::Call(second) = &p.commands[1] else {
            panic!()
        };
        assert_eq!(
            (second.func, second.offset, second.piped),
            (Func::CleanResourceName, 15, true)
        );
    }

    #[test]
    fn arity_counts_the_piped_value() {
        assert!(parse_src("{{ \"x\" | replace \"a\" \"b\" 1 }}").is_ok());
        assert_eq!(
            err("{{ lower }}"),
            (3, "`lower` takes 1 argument, but is given 0".into())
        );
        assert_eq!(err("{{ upper | lower }}").0, 3);
    }

    #[test]
    fn functions_are_checked_at_parse_time() {
        assert_eq!(
            err("ab {{ lowr `X` }}"),
            (6, "unknown function `lowr` (did you mean `lower`?)".into())
        );
        assert_eq!(err("{{ lower (vault `a` `b`) }}").0, 10);
        assert_eq!(err("{{ user `a` | lowr }}").0, 14);
    }

    #[test]
    fn non_functions_cannot_take_arguments() {
        assert_eq!(
            err("{{ .Name `x` }}"),
            (
                3,
                "`.Name` is not a function and cannot take arguments".into()
            )
        );
        assert_eq!(err("{{ `x` | .Name }}").0, 9);
        assert_eq!(err("{{ \"a\" \"b\" }}").0, 3);
    }

    #[test]
    fn blocks_nest_and_close() {
        let nodes = parse_src("{{if .A}}a{{else if .B}}b{{else}}c{{end}}").unwrap();
        let [Node::If { otherwise, .. }] = nodes.as_slice() else {
            panic!("{nodes:?}")
        };
        assert!(matches!(otherwise.as_slice(), [Node::If { .. }]));
        assert!(parse_src("{{with .A}}{{.}}{{end}}").is_ok());
        assert_eq!(
            err("x{{if .A}}a"),
            (1, "`{{if}}` is missing its `{{end}}`".into())
        );
        assert_eq!(
            err("{{end}}"),
            (
                0,
                "`{{end}}` without a matching `{{if}}` or `{{with}}`".into()
            )
        );
        assert_eq!(err("{{if .A}}{{else}}{{else}}{{end}}").0, 17);
        assert_eq!(err("{{if}}{{end}}"), (0, "missing value for if".into()));
        assert!(parse_src("{{if .A}}{{else 3}}{{end}}").is_err());
        assert!(parse_src("{{if .A}}{{end 3}}").is_err());
        assert_eq!(
            err("{{range .A}}{{end}}"),
            (0, "`{{range}}` is not supported by kiln".into())
        );
    }

    #[test]
    fn parentheses_and_limits() {
        assert!(parse_src("{{ lower (upper (user `a`)) }}").is_ok());
        assert!(parse_src("{{ (user `a`).Field }}").is_ok());
        assert_eq!(err("{{ lower (upper `a` }}").0, 9);
        assert_eq!(err("{{ ) }}").0, 3);
        assert_eq!(err("{{ }}"), (0, "missing value for action".into()));
        assert_eq!(err("{{ lower `a` | }}").0, 14);
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(100), ")".repeat(100));
        assert_eq!(err(&deep).1, "nesting is too deep (more than 64 levels)");
        let deep_blocks = "{{if 1}}".repeat(100);
        assert!(parse_src(&deep_blocks).is_err());
        assert_eq!(err("{{ nil }}").1, "`nil` is not supported by kiln");
        assert!(parse_src("{{ lower if }}").is_err());
    }
}
