//! A template or variable file's text, with byte offsets mapped to the
//! line and column a user's editor shows.

use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            path: path.into(),
            text,
            line_starts,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }

    /// The text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        self.text
            .get(self.line_bounds(line))
            .unwrap_or("")
            .trim_end_matches('\r')
    }

    /// The byte range of a 1-based line, without its newline (empty past
    /// the end).
    pub fn line_bounds(&self, line: usize) -> std::ops::Range<usize> {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return self.text.len()..self.text.len();
        };
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&next| next - 1);
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_offsets_to_lines_and_character_columns() {
        let src = SourceFile::new("t.json", "{\n  \"é\": 1,\r\n  \"b\": 2\n}".to_owned());
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(2), (2, 1));
        // "é" is two bytes but one column.
        let b = src.text().find("1,").expect("present");
        assert_eq!(src.line_col(b), (2, 8));
        assert_eq!(src.line_text(2), "  \"é\": 1,");
        assert_eq!(src.line_text(4), "}");
        assert_eq!(src.line_text(9), "");
        assert_eq!(src.line_col(10_000), (4, 2));
    }
}
