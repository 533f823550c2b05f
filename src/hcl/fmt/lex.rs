//! Splits HCL native syntax into the tokens `hclwrite`'s formatter works
//! on: everything but the spaces between tokens, so that formatting is
//! only a matter of choosing those spaces again. Literal text (inside
//! quotes and heredocs) and comments are whole tokens and are never
//! touched. The text must already have parsed: on anything odd the lexer
//! makes an `Other` token rather than failing.

/// What a token is, as far as the formatting rules need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Newline,
    /// `# …` and `// …` (with their newline), or `/* … */`.
    Comment,
    Ident,
    Number,
    OQuote,
    CQuote,
    /// Text inside quotes.
    QuotedLit,
    /// `<<EOF` or `<<-EOF`, with its newline.
    OHeredoc,
    /// Text inside a heredoc.
    StringLit,
    /// The heredoc's closing marker, with the spaces before it.
    CHeredoc,
    /// `${` or `${~`.
    TemplateInterp,
    /// `%{` or `%{~`.
    TemplateControl,
    /// The `}` or `~}` that ends an interpolation or a directive.
    TemplateSeqEnd,
    OBrace,
    CBrace,
    OBrack,
    CBrack,
    OParen,
    CParen,
    Equal,
    Dot,
    Comma,
    Ellipsis,
    DoubleColon,
    Minus,
    Plus,
    Star,
    Slash,
    Percent,
    Question,
    Colon,
    Bang,
    /// `==`, `!=`, `<`, `<=`, `>`, `>=`.
    Comparison,
    /// `&&`, `||`.
    Logical,
    FatArrow,
    Other,
}

impl Kind {
    /// +1 for what opens a nesting level, -1 for what closes one.
    pub fn bracket_change(self) -> i32 {
        match self {
            Kind::OBrace
            | Kind::OBrack
            | Kind::OParen
            | Kind::TemplateInterp
            | Kind::TemplateControl => 1,
            Kind::CBrace | Kind::CBrack | Kind::CParen | Kind::TemplateSeqEnd => -1,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: Kind,
    pub text: &'a str,
    /// Spaces written before the token; the lexer records the input's,
    /// the formatter replaces them.
    pub spaces_before: usize,
}

impl Token<'_> {
    /// Ends a line: a newline, or a line comment (which holds its newline).
    pub fn ends_line(&self) -> bool {
        self.kind == Kind::Newline || (self.kind == Kind::Comment && self.text.ends_with('\n'))
    }

    /// Width on screen, spaces before included.
    pub fn columns(&self) -> usize {
        self.spaces_before + self.text.chars().count()
    }
}

/// Where the lexer is: in expressions (counting `{` so the one that closes
/// an interpolation is known), in quotes, or in a heredoc's body.
enum Mode {
    Expr { braces: usize },
    Quoted,
    Heredoc { marker: String, at_line_start: bool },
}

pub fn tokens(src: &str) -> Vec<Token<'_>> {
    Lexer {
        src,
        pos: 0,
        out: Vec::new(),
        modes: vec![Mode::Expr { braces: 0 }],
        pending_spaces: 0,
    }
    .run()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token<'a>>,
    modes: Vec<Mode>,
    pending_spaces: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn push(&mut self, kind: Kind, len: usize) {
        let text = &self.src[self.pos..self.pos + len];
        self.out.push(Token {
            kind,
            text,
            spaces_before: std::mem::take(&mut self.pending_spaces),
        });
        self.pos += len;
    }

    fn run(mut self) -> Vec<Token<'a>> {
        while self.pos < self.src.len() {
            match self.modes.last() {
                Some(Mode::Quoted) => self.quoted(),
                Some(Mode::Heredoc { .. }) => self.heredoc(),
                _ => self.expr(),
            }
        }
        self.out
    }

    fn expr(&mut self) {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else { return };
        if c == ' ' || c == '\t' {
            self.pending_spaces += 1;
            self.pos += 1;
            return;
        }
        if rest.starts_with("\r\n") {
            return self.push(Kind::Newline, 2);
        }
        if c == '\n' {
            return self.push(Kind::Newline, 1);
        }
        if c == '#' || rest.starts_with("//") {
            let len = rest.find('\n').map_or(rest.len(), |i| i + 1);
            return self.push(Kind::Comment, len);
        }
        if let Some(body) = rest.strip_prefix("/*") {
            let len = body.find("*/").map_or(rest.len(), |i| i + 4);
            return self.push(Kind::Comment, len);
        }
        if let Some(len) = heredoc_opener(rest) {
            let name_start = if rest[2..].starts_with('-') { 3 } else { 2 };
            let marker = rest[name_start..]
                .trim_end_matches(['\n', '\r'])
                .split(['\n', '\r'])
                .next()
                .unwrap_or("")
                .to_owned();
            self.push(Kind::OHeredoc, len);
            self.modes.push(Mode::Heredoc {
                marker,
                at_line_start: true,
            });
            return;
        }
        if c == '"' {
            self.push(Kind::OQuote, 1);
            self.modes.push(Mode::Quoted);
            return;
        }
        if rest.starts_with("~}")
            && self.modes.len() > 1
            && let Some(Mode::Expr { braces: 0 }) = self.modes.last()
        {
            self.modes.pop();
            return self.push(Kind::TemplateSeqEnd, 2);
        }
        if c == '{' {
            if let Some(Mode::Expr { braces }) = self.modes.last_mut() {
                *braces += 1;
            }
            return self.push(Kind::OBrace, 1);
        }
        if c == '}' {
            let nested = self.modes.len() > 1;
            if let Some(Mode::Expr { braces }) = self.modes.last_mut() {
                if *braces == 0 && nested {
                    self.push(Kind::TemplateSeqEnd, 1);
                    self.modes.pop();
                    return;
                }
                *braces = braces.saturating_sub(1);
            }
            return self.push(Kind::CBrace, 1);
        }
        if c.is_alphabetic() || c == '_' {
            let len = rest
                .char_indices()
                .find(|&(_, ch)| !(ch.is_alphanumeric() || ch == '_' || ch == '-'))
                .map_or(rest.len(), |(i, _)| i);
            return self.push(Kind::Ident, len);
        }
        if c.is_ascii_digit() {
            return self.push(Kind::Number, number_len(rest));
        }
        for (op, kind) in OPERATORS {
            if rest.starts_with(op) {
                return self.push(*kind, op.len());
            }
        }
        self.push(Kind::Other, c.len_utf8());
    }

    /// Text inside quotes up to the closing quote or the next `${`/`%{`.
    fn quoted(&mut self) {
        let rest = self.rest();
        if rest.starts_with('"') {
            self.modes.pop();
            return self.push(Kind::CQuote, 1);
        }
        if let Some(len) = template_opener(rest) {
            let kind = if rest.starts_with('$') {
                Kind::TemplateInterp
            } else {
                Kind::TemplateControl
            };
            self.push(kind, len);
            self.modes.push(Mode::Expr { braces: 0 });
            return;
        }
        let mut end = 0;
        let bytes = rest.as_bytes();
        while end < bytes.len() {
            match bytes[end] {
                b'"' | b'\n' => break,
                b'\\' => end += 2,
                b'$' | b'%' if bytes.get(end + 1) == Some(&bytes[end]) => end += 2,
                b'$' | b'%' if bytes.get(end + 1) == Some(&b'{') => break,
                _ => end += 1,
            }
        }
        let end = char_boundary(rest, end.min(rest.len()));
        if end == 0 {
            // A newline in quotes does not parse; keep going all the same.
            self.modes.pop();
            return self.expr();
        }
        self.push(Kind::QuotedLit, end);
    }

    /// A heredoc's body: literal text, interpolations, and at the start of
    /// a line possibly the closing marker.
    fn heredoc(&mut self) {
        let rest = self.rest();
        let Some(Mode::Heredoc {
            marker,
            at_line_start,
        }) = self.modes.last_mut()
        else {
            return;
        };
        if *at_line_start {
            let trimmed = rest.trim_start_matches([' ', '\t']);
            let indent = rest.len() - trimmed.len();
            if let Some(after) = trimmed.strip_prefix(marker.as_str())
                && (after.is_empty() || after.starts_with(['\n', '\r']))
                && !marker.is_empty()
            {
                let len = indent + marker.len();
                self.modes.pop();
                return self.push(Kind::CHeredoc, len);
            }
            *at_line_start = false;
        }
        if let Some(len) = template_opener(rest) {
            let kind = if rest.starts_with('$') {
                Kind::TemplateInterp
            } else {
                Kind::TemplateControl
            };
            self.push(kind, len);
            self.modes.push(Mode::Expr { braces: 0 });
            return;
        }
        let bytes = rest.as_bytes();
        let mut end = 0;
        let mut line_ended = false;
        while end < bytes.len() {
            match bytes[end] {
                b'\n' => {
                    end += 1;
                    line_ended = true;
                    break;
                }
                b'$' | b'%' if bytes.get(end + 1) == Some(&bytes[end]) => end += 2,
                b'$' | b'%' if bytes.get(end + 1) == Some(&b'{') => break,
                _ => end += 1,
            }
        }
        let end = char_boundary(rest, end.min(rest.len()));
        if let Some(Mode::Heredoc { at_line_start, .. }) = self.modes.last_mut() {
            *at_line_start = line_ended;
        }
        self.push(Kind::StringLit, char_boundary(rest, end.max(1)));
    }
}

/// The first char boundary at or after `i`.
fn char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// `${`, `${~`, `%{`, `%{~` (but not the escapes `$${`, `%%{`).
fn template_opener(s: &str) -> Option<usize> {
    if s.starts_with("${~") || s.starts_with("%{~") {
        Some(3)
    } else if s.starts_with("${") || s.starts_with("%{") {
        Some(2)
    } else {
        None
    }
}

/// The length of `<<EOF\n` / `<<-EOF\n` at the start of `s`.
fn heredoc_opener(s: &str) -> Option<usize> {
    let after = s.strip_prefix("<<")?;
    let after = after.strip_prefix('-').unwrap_or(after);
    let name_len = after
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .map_or(after.len(), |(i, _)| i);
    if name_len == 0 || !after[..name_len].starts_with(|c: char| c.is_alphabetic() || c == '_') {
        return None;
    }
    let tail = &after[name_len..];
    let newline = if tail.starts_with("\r\n") {
        2
    } else if tail.starts_with('\n') {
        1
    } else {
        return None;
    };
    Some(s.len() - tail.len() + newline)
}

fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

/// Longest first, so `==` is not read as two `=`.
const OPERATORS: &[(&str, Kind)] = &[
    ("...", Kind::Ellipsis),
    ("==", Kind::Comparison),
    ("!=", Kind::Comparison),
    ("<=", Kind::Comparison),
    (">=", Kind::Comparison),
    ("&&", Kind::Logical),
    ("||", Kind::Logical),
    ("=>", Kind::FatArrow),
    ("::", Kind::DoubleColon),
    ("<", Kind::Comparison),
    (">", Kind::Comparison),
    ("=", Kind::Equal),
    ("[", Kind::OBrack),
    ("]", Kind::CBrack),
    ("(", Kind::OParen),
    (")", Kind::CParen),
    (".", Kind::Dot),
    (",", Kind::Comma),
    ("-", Kind::Minus),
    ("+", Kind::Plus),
    ("*", Kind::Star),
    ("/", Kind::Slash),
    ("%", Kind::Percent),
    ("?", Kind::Question),
    (":", Kind::Colon),
    ("!", Kind::Bang),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Kind, &str)> {
        tokens(src).into_iter().map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn the_tokens_put_back_together_give_the_input_without_spaces() {
        let src = "a  = \"x${ b.c }y\" # note\n<<-EOF\n  ${x} %{ if y }z%{ endif }\n  EOF\n";
        let joined: String = tokens(src)
            .iter()
            .map(|t| format!("{}{}", " ".repeat(t.spaces_before), t.text))
            .collect();
        assert_eq!(joined, src);
    }

    #[test]
    fn an_interpolation_ends_at_its_own_brace() {
        assert_eq!(
            kinds("\"${ {a=1} }\""),
            vec![
                (Kind::OQuote, "\""),
                (Kind::TemplateInterp, "${"),
                (Kind::OBrace, "{"),
                (Kind::Ident, "a"),
                (Kind::Equal, "="),
                (Kind::Number, "1"),
                (Kind::CBrace, "}"),
                (Kind::TemplateSeqEnd, "}"),
                (Kind::CQuote, "\""),
            ]
        );
    }

    #[test]
    fn a_heredoc_is_literal_up_to_its_marker() {
        let k = kinds("x = <<EOF\n  a = b\nEOFX\nEOF\n");
        assert_eq!(
            k[2..],
            [
                (Kind::OHeredoc, "<<EOF\n"),
                (Kind::StringLit, "  a = b\n"),
                (Kind::StringLit, "EOFX\n"),
                (Kind::CHeredoc, "EOF"),
                (Kind::Newline, "\n"),
            ]
        );
    }

    #[test]
    fn escapes_stay_in_the_literal() {
        assert_eq!(
            kinds(r#""a$${b}\"c""#),
            vec![
                (Kind::OQuote, "\""),
                (Kind::QuotedLit, r#"a$${b}\"c"#),
                (Kind::CQuote, "\""),
            ]
        );
    }
}
