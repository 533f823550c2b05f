//! The formatting rules of HashiCorp's `hclwrite.Format`, which
//! `packer fmt` applies: only the spaces before each token change. Three
//! passes over the lines: indent by bracket nesting (two spaces a level),
//! one space or none between tokens, then `=` and trailing comments
//! aligned across consecutive lines that have them.

use super::lex::{Kind, Token};

/// One line split in hclwrite's three cells: what precedes the `=`, the
/// `=` and a value that ends on this line, and a trailing comment.
struct Line {
    lead: std::ops::Range<usize>,
    assign: Option<std::ops::Range<usize>>,
    comment: Option<usize>,
}

pub fn format(tokens: &mut [Token<'_>]) {
    let lines = split_lines(tokens);
    indent(tokens, &lines);
    space(tokens, &lines);
    align(tokens, &lines);
}

fn split_lines(tokens: &[Token<'_>]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        if t.ends_line() {
            lines.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < tokens.len() {
        lines.push(start..tokens.len());
    }
    lines
        .into_iter()
        .map(|range| {
            let mut lead = range.clone();
            let mut comment = None;
            if lead.len() > 1 && tokens[lead.end - 1].kind == Kind::Comment {
                comment = Some(lead.end - 1);
                lead.end -= 1;
            }
            let mut assign = None;
            if let Some(eq) = lead
                .clone()
                .skip(1)
                .find(|&i| tokens[i].kind == Kind::Equal)
                && bracket_sum(&tokens[eq..lead.end]) == 0
            {
                assign = Some(eq..lead.end);
                lead.end = eq;
            }
            Line {
                lead,
                assign,
                comment,
            }
        })
        .collect()
}

/// Brackets opened minus closed.
fn bracket_sum(tokens: &[Token<'_>]) -> i32 {
    tokens.iter().map(|t| t.kind.bracket_change()).sum()
}

/// Brackets opened minus closed, not looking into a heredoc.
fn net_brackets(tokens: &[Token<'_>]) -> i32 {
    let mut net = 0;
    for t in tokens {
        net += t.kind.bracket_change();
        if t.kind == Kind::OHeredoc {
            break;
        }
    }
    net
}

/// A line that opens more brackets than it closes indents the lines after
/// it; the stack remembers how many each level opened, so lopsided lines
/// (`foo({`) come back out in one step.
fn indent(tokens: &mut [Token<'_>], lines: &[Line]) {
    let mut levels: Vec<i32> = Vec::new();
    for line in lines {
        let Some(first) = line.lead.clone().next() else {
            continue;
        };
        if tokens[first].kind == Kind::Newline {
            tokens[first].spaces_before = 0;
            continue;
        }
        let net = net_brackets(&tokens[line.lead.clone()])
            + line.assign.clone().map_or(0, |a| bracket_sum(&tokens[a]));
        if net > 0 {
            tokens[first].spaces_before = 2 * levels.len();
            levels.push(net);
            continue;
        }
        let mut closed = -net;
        while closed > 0 {
            let Some(top) = levels.last_mut() else { break };
            if closed >= *top {
                closed -= *top;
                levels.pop();
            } else {
                *top -= closed;
                closed = 0;
            }
        }
        tokens[first].spaces_before = 2 * levels.len();
    }
}

fn space(tokens: &mut [Token<'_>], lines: &[Line]) {
    for line in lines {
        space_cell(tokens, line.lead.clone());
        if let Some(assign) = &line.assign {
            tokens[assign.start].spaces_before = 1;
            space_cell(tokens, assign.clone());
        }
    }
}

fn space_cell(tokens: &mut [Token<'_>], cell: std::ops::Range<usize>) {
    for i in cell.start..cell.end.saturating_sub(1) {
        let before = (i > cell.start).then(|| tokens[i - 1].clone());
        let spaced = space_after(&tokens[i], before.as_ref(), &tokens[i + 1]);
        tokens[i + 1].spaces_before = usize::from(spaced);
    }
}

/// hclwrite's `spaceAfterToken`, rule for rule and in its order.
fn space_after(subject: &Token<'_>, before: Option<&Token<'_>>, after: &Token<'_>) -> bool {
    use Kind as K;
    let s = subject.kind;
    let a = after.kind;
    let b = before.map(|t| t.kind);
    if a == K::Newline {
        return false;
    }
    if s == K::Ident && a == K::OParen {
        return false;
    }
    if (s == K::Ident && a == K::DoubleColon) || (s == K::DoubleColon && a == K::Ident) {
        return false;
    }
    if s == K::Dot || a == K::Dot {
        return false;
    }
    if a == K::Comma || a == K::Ellipsis {
        return false;
    }
    if s == K::Comma {
        return true;
    }
    if matches!(s, K::QuotedLit | K::StringLit | K::OQuote | K::OHeredoc)
        || matches!(a, K::QuotedLit | K::StringLit | K::CQuote | K::CHeredoc)
    {
        return false;
    }
    if s == K::Ident && subject.text == "in" && b == Some(K::Ident) {
        return true;
    }
    if a == K::OBrack && (s == K::Ident || s == K::Number || s.bracket_change() < 0) {
        return false;
    }
    if s == K::Bang {
        return false;
    }
    if s == K::Minus {
        // Negation or subtraction: negation when what comes before cannot
        // end an expression.
        return match b {
            None => false,
            Some(
                K::OParen
                | K::OBrace
                | K::OBrack
                | K::Equal
                | K::Colon
                | K::Comma
                | K::Question
                | K::Plus
                | K::Star
                | K::Slash
                | K::Percent
                | K::Minus
                | K::Comparison
                | K::Logical
                | K::Bang,
            ) => false,
            Some(_) => true,
        };
    }
    if s == K::OBrace || a == K::CBrace {
        return !(s == K::OBrace && a == K::CBrace);
    }
    if matches!(s, K::TemplateInterp | K::TemplateControl) && a == K::OBrace {
        return true;
    }
    if s == K::CBrace && a == K::TemplateSeqEnd {
        return true;
    }
    if s == K::TemplateSeqEnd && matches!(a, K::TemplateInterp | K::TemplateControl) {
        return false;
    }
    if s.bracket_change() > 0 || a.bracket_change() < 0 {
        return false;
    }
    true
}

fn columns(tokens: &[Token<'_>], range: std::ops::Range<usize>) -> usize {
    tokens[range].iter().map(Token::columns).sum()
}

/// Lines in a row that have an `=` get it in one column, one space after
/// the longest name; then lines in a row with a trailing comment get it
/// in one column too.
fn align(tokens: &mut [Token<'_>], lines: &[Line]) {
    let mut chain: Vec<&Line> = Vec::new();
    let flush_assign = |tokens: &mut [Token<'_>], chain: &mut Vec<&Line>| {
        let widest = chain
            .iter()
            .map(|l| columns(tokens, l.lead.clone()))
            .max()
            .unwrap_or(0);
        for l in chain.drain(..) {
            let width = columns(tokens, l.lead.clone());
            if let Some(assign) = &l.assign {
                tokens[assign.start].spaces_before = widest - width + 1;
            }
        }
    };
    for line in lines {
        if line.assign.is_some() {
            chain.push(line);
        } else {
            flush_assign(tokens, &mut chain);
        }
    }
    flush_assign(tokens, &mut chain);

    let width_before_comment = |tokens: &[Token<'_>], l: &Line| {
        columns(tokens, l.lead.clone()) + l.assign.clone().map_or(0, |a| columns(tokens, a))
    };
    let flush_comments = |tokens: &mut [Token<'_>], chain: &mut Vec<&Line>| {
        let widest = chain
            .iter()
            .map(|l| width_before_comment(tokens, l))
            .max()
            .unwrap_or(0);
        for l in chain.drain(..) {
            let width = width_before_comment(tokens, l);
            if let Some(c) = l.comment {
                tokens[c].spaces_before = widest - width + 1;
            }
        }
    };
    for line in lines {
        if line.comment.is_some() {
            chain.push(line);
        } else {
            flush_comments(tokens, &mut chain);
        }
    }
    flush_comments(tokens, &mut chain);
}
