//! The header names an upstream's answers use, kept by each connection. An
//! upstream answers with the same names in the same order every time, so each
//! line's name is found by comparing it with the name that followed the previous
//! line's last time, instead of being parsed again; and a name that is not one of
//! HTTP's standard ones (`x-request-id`, `openai-processing-ms`, ...) is shared
//! with the connection's list instead of being copied into a new allocation for
//! every answer. An OpenAI answer carries about a dozen such names.

use http::header::{HeaderName, InvalidHeaderName};

/// Names kept per connection; an answer with more distinct names than this has
/// the rest parsed each time (so a misbehaving upstream cannot grow the list).
const MAX_NAMES: usize = 32;

/// The names seen on one connection, in the order they were first seen.
#[derive(Default)]
pub struct Names {
    seen: Vec<HeaderName>,
    /// Where the next line's name is looked for first.
    next: usize,
}

impl Names {
    /// Starts reading an answer's header lines.
    pub fn start(&mut self) {
        self.next = 0;
    }

    /// The name of the next header line, `raw` as the upstream spelled it:
    /// the same name [`HeaderName::from_bytes`] gives, or its error.
    pub fn name(&mut self, raw: &[u8]) -> Result<HeaderName, InvalidHeaderName> {
        // From where the last answer's next name was, round to just before it
        // (`next` is at most the list's length).
        let len = self.seen.len();
        let mut i = self.next;
        for _ in 0..len {
            if i == len {
                i = 0;
            }
            if same(raw, &self.seen[i]) {
                self.next = i + 1;
                return Ok(self.seen[i].clone());
            }
            i += 1;
        }
        let name = HeaderName::from_bytes(raw)?;
        if self.seen.len() < MAX_NAMES {
            self.seen.push(name.clone());
            self.next = self.seen.len();
        }
        Ok(name)
    }
}

/// Whether `raw` spells `name`. Names are kept lowercase; an upstream may write
/// them in any case, and differing from a valid name in the case of letters only,
/// `raw` is that name. Inlined: a function of its own would lie outside the
/// stretch of code `hot-text.ld` gathers (see `build.rs`).
#[inline(always)]
fn same(raw: &[u8], name: &HeaderName) -> bool {
    let n = name.as_str().as_bytes();
    raw == n || raw.eq_ignore_ascii_case(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a name's text lives: the same place for two names sharing one buffer.
    fn at(n: &HeaderName) -> *const u8 {
        n.as_str().as_ptr()
    }

    #[test]
    fn names_are_those_from_bytes_gives_in_any_case_and_any_order() {
        let mut names = Names::default();
        let heads: [&[&str]; 4] = [
            &["Content-Type", "X-Request-Id", "openai-version", "Date"],
            // Same names: another order, other cases, one new, one gone.
            &[
                "date",
                "OpenAI-Version",
                "x-new",
                "X-REQUEST-ID",
                "content-type",
            ],
            &["Content-Type", "X-Request-Id", "openai-version", "Date"],
            // A name only one letter away from one seen is another name.
            &["x-request-ix", "x-request-id-"],
        ];
        for head in heads {
            names.start();
            for raw in head {
                let name = names.name(raw.as_bytes()).unwrap();
                assert_eq!(
                    name,
                    HeaderName::from_bytes(raw.as_bytes()).unwrap(),
                    "{raw}"
                );
                assert_eq!(name.as_str(), raw.to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn a_custom_name_seen_before_shares_its_text() {
        let mut names = Names::default();
        names.start();
        let first = names.name(b"X-Request-Id").unwrap();
        names.start();
        let again = names.name(b"x-request-id").unwrap();
        assert_eq!(at(&first), at(&again));
        // Without the list, each parse copies the name into a new buffer.
        let a = HeaderName::from_bytes(b"x-request-id").unwrap();
        let b = HeaderName::from_bytes(b"x-request-id").unwrap();
        assert_ne!(at(&a), at(&b));
    }

    #[test]
    fn invalid_names_are_rejected_whatever_was_seen() {
        let mut names = Names::default();
        names.start();
        names.name(b"x-a").unwrap();
        names.start();
        for bad in [&b"x a"[..], b"", b"x-a\n", b"x\xffa", b"x:a"] {
            assert!(names.name(bad).is_err(), "{bad:?}");
        }
        // The valid name is still found after the failures.
        assert_eq!(names.name(b"X-A").unwrap(), "x-a");
    }

    #[test]
    fn past_the_limit_names_are_parsed_each_time() {
        let mut names = Names::default();
        names.start();
        let raws: Vec<String> = (0..MAX_NAMES + 8).map(|i| format!("x-h{i}")).collect();
        for raw in &raws {
            assert_eq!(names.name(raw.as_bytes()).unwrap(), raw.as_str());
        }
        assert_eq!(names.seen.len(), MAX_NAMES);
        names.start();
        for raw in raws.iter().rev() {
            assert_eq!(names.name(raw.as_bytes()).unwrap(), raw.as_str());
        }
    }
}
