//! A minimal, always-escaping XML writer: enough for an OVF descriptor,
//! with no way to emit unescaped text by accident.

/// Builds an indented XML document in memory.
pub(crate) struct XmlWriter {
    out: String,
    open: Vec<&'static str>,
}

impl XmlWriter {
    pub(crate) fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            open: Vec::new(),
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
    }

    fn tag_head(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            push_escaped(&mut self.out, value, true);
            self.out.push('"');
        }
    }

    /// `<name attrs…>` on its own line; closed by [`Self::end`].
    pub(crate) fn start(&mut self, name: &'static str, attrs: &[(&str, &str)]) {
        self.tag_head(name, attrs);
        self.out.push_str(">\n");
        self.open.push(name);
    }

    /// `<name attrs…/>`
    pub(crate) fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.tag_head(name, attrs);
        self.out.push_str("/>\n");
    }

    /// `<name attrs…>text</name>`
    pub(crate) fn text(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.tag_head(name, attrs);
        self.out.push('>');
        push_escaped(&mut self.out, text, false);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// Closes the innermost element opened with [`Self::start`].
    pub(crate) fn end(&mut self) {
        if let Some(name) = self.open.pop() {
            self.indent();
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push_str(">\n");
        }
    }

    /// The document, with every open element closed.
    pub(crate) fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out
    }
}

/// Escapes markup characters; in attributes also quotes and the
/// whitespace a parser would otherwise normalise away. Characters XML 1.0
/// cannot carry at all (most C0 controls) become U+FFFD rather than
/// producing a document no reader accepts.
fn push_escaped(out: &mut String, s: &str, attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push('\u{FFFD}');
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let mut w = XmlWriter::new();
        w.start("a", &[("k", "x\"<&>\n\ty")]);
        w.text("b", &[], "1 < 2 & \"3\" > 0\u{1}");
        w.empty("c", &[]);
        let doc = w.finish();
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <a k=\"x&quot;&lt;&amp;&gt;&#10;&#9;y\">\n  \
             <b>1 &lt; 2 &amp; \"3\" &gt; 0\u{FFFD}</b>\n  <c/>\n</a>\n"
        );
    }
}
