//! YAML text to a generic tree (`serde_json::Value`), with serde-saphyr.

use super::read::Ctx;
use serde_json::Value;
use serde_saphyr::{DuplicateKeyPolicy, Error, Options};

/// Parse `text` into a tree. A syntax error is one error with its line and column.
///
/// A repeated key is allowed with a warning and the last value wins, as with PyYAML,
/// which LiteLLM uses: a file LiteLLM accepts must load here too.
///
/// Only `true`/`false` (any case) are booleans in the tree (YAML 1.2), so that a value
/// such as `n`, `y` or `on` in a name or header stays a string; where a boolean is
/// expected, the typed reads accept `yes`/`no`/`on`/`off` too, as PyYAML does.
pub(crate) fn parse(ctx: &mut Ctx, text: &str) -> Option<Value> {
    match parse_with(text, DuplicateKeyPolicy::Error) {
        Ok(v) => Some(v),
        Err(Error::DuplicateMappingKey { key, location }) => {
            let key = key
                .map(|k| format!(" {}", Value::from(k)))
                .unwrap_or_default();
            ctx.warn(
                "",
                format!(
                    "duplicate key{key} at line {}, column {}: the last value is used",
                    location.line(),
                    location.column()
                ),
            );
            match parse_with(text, DuplicateKeyPolicy::LastWins) {
                Ok(v) => Some(v),
                Err(e) => {
                    ctx.error("", format!("invalid YAML: {e}"));
                    None
                }
            }
        }
        Err(e) => {
            ctx.error("", format!("invalid YAML: {e}"));
            None
        }
    }
}

fn parse_with(text: &str, duplicate_keys: DuplicateKeyPolicy) -> Result<Value, Error> {
    let mut options = Options::default();
    options.with_snippet = false;
    options.strict_booleans = true;
    options.duplicate_keys = duplicate_keys;
    serde_saphyr::from_str_with_options(text, options)
}
