//! An error and its causes as one line, for a log field or a message shown to people (which,
//! unlike anyhow's `{:#}`, would otherwise print only the outermost level).

use std::error::Error;

/// `error` and its causes, outermost first, joined with ": " (`a: b: c`). A cause whose text the
/// line already shows (a wrapper that prints its source, as some libraries' errors do) is left
/// out rather than repeated.
pub fn chain(error: &dyn Error) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("append to `jobs` failed")]
    struct Append(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("the projector stopped: {0}")]
    struct Printing(#[source] Append);

    #[test]
    fn every_cause_is_shown_once() {
        let append = || Append(std::io::Error::other("disk full"));
        assert_eq!(chain(&append()), "append to `jobs` failed: disk full");
        assert_eq!(chain(&Printing(append())), "the projector stopped: append to `jobs` failed: disk full");
    }
}
