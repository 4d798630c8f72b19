//! How text is cut into chunks. The planner sizes fan-out with these functions and the
//! `split_lines` tool cuts with them at run time, so the two always agree.

/// Non-empty lines of `text`, grouped `per_chunk` at a time (trailing whitespace trimmed).
pub fn chunk_lines(text: &str, per_chunk: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    lines.chunks(per_chunk.max(1)).map(|c| c.join("\n")).collect()
}

/// `texts` grouped `per_chunk` at a time.
pub fn chunk_texts(texts: &[String], per_chunk: usize) -> Vec<Vec<String>> {
    texts.chunks(per_chunk.max(1)).map(<[String]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_grouped_and_blank_lines_dropped() {
        assert_eq!(chunk_lines("a\n\nb\nc  \n", 2), vec!["a\nb".to_string(), "c".to_string()]);
        assert!(chunk_lines("\n \n", 3).is_empty());
        assert_eq!(chunk_lines("x", 0), vec!["x".to_string()]);
    }
}
