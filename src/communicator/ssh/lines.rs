//! Splitting a byte stream into lines as it arrives, so guest output is
//! shown live rather than when the command ends.

/// Buffers bytes until a newline; the partial tail is kept for the next push.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feed `data`, calling `emit` for every complete line (without its
    /// `\n` or `\r\n`; invalid UTF-8 is replaced, not fatal).
    pub(crate) fn push(&mut self, data: &[u8], mut emit: impl FnMut(&str)) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(offset) = self.pending[start..].iter().position(|&b| b == b'\n') {
            emit(&decode(&self.pending[start..start + offset]));
            start += offset + 1;
        }
        self.pending.drain(..start);
    }

    /// The stream ended: emit what is left as a last line, if anything.
    pub(crate) fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.pending.is_empty() {
            emit(&decode(&self.pending));
            self.pending.clear();
        }
    }
}

fn decode(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut s = LineSplitter::default();
        for c in chunks {
            s.push(c, |l| out.push(l.to_owned()));
        }
        s.finish(|l| out.push(l.to_owned()));
        out
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        assert_eq!(split(&[b"he", b"llo\nwor", b"ld\n"]), ["hello", "world"]);
    }

    #[test]
    fn partial_last_line_is_flushed_at_the_end() {
        assert_eq!(split(&[b"a\nb"]), ["a", "b"]);
    }

    #[test]
    fn crlf_and_empty_lines() {
        assert_eq!(split(&[b"a\r\n\r\nb\n"]), ["a", "", "b"]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split(&[b"\xff\n"]), ["\u{fffd}"]);
    }
}
