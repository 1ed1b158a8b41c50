//! Checks across sections: aliases and fallbacks must name model groups that exist.
//! With no model group read at all (a broken `model_list`), they check nothing, so that
//! one mistake is not reported once per alias and fallback.

use super::read::{describe, join_index, join_key, Ctx};
use super::types::Alias;
use serde_json::Value;
use std::collections::BTreeSet;

/// The names a request may use: model groups and aliases.
pub(crate) struct Known<'a> {
    /// Every `model_name` in `model_list`.
    pub groups: &'a BTreeSet<String>,
    /// Every `model_group_alias` name.
    pub aliases: BTreeSet<String>,
}

impl Known<'_> {
    fn contains(&self, name: &str) -> bool {
        self.groups.contains(name) || self.aliases.contains(name)
    }
}

/// An alias must not shadow a group and must point at one.
pub(crate) fn check_aliases(
    ctx: &mut Ctx,
    path: &str,
    aliases: &[Alias],
    groups: &BTreeSet<String>,
) {
    if groups.is_empty() {
        return;
    }
    for alias in aliases {
        let alias_path = join_key(path, &alias.name);
        if groups.contains(&alias.name) {
            ctx.error(
                &alias_path,
                format!(
                    "alias {} is also a model group name in model_list",
                    Value::from(alias.name.as_str())
                ),
            );
        } else if !groups.contains(&alias.target) {
            ctx.error(
                &alias_path,
                format!(
                    "target {} is not a model group in model_list",
                    Value::from(alias.target.as_str())
                ),
            );
        }
    }
}

/// One `{source: targets}` fallback entry at `path` (the source key's path; `raw` is
/// the targets as written). An unknown source is only a warning: LiteLLM never uses
/// such an entry, and a stale one must not stop a config that LiteLLM accepts.
pub(crate) fn check_fallback(
    ctx: &mut Ctx,
    path: &str,
    source: &str,
    raw: &Value,
    targets: &[String],
    known: &Known<'_>,
) {
    if known.groups.is_empty() {
        return;
    }
    if source != "*" && !known.contains(source) {
        ctx.warn(
            path,
            format!(
                "{} is not a model group or alias, so this fallback is never used",
                Value::from(source)
            ),
        );
    }
    check_targets(ctx, path, raw, targets, known);
}

/// Every fallback target (`raw` as written at `path`) must be a group or an alias.
pub(crate) fn check_targets(
    ctx: &mut Ctx,
    path: &str,
    raw: &Value,
    targets: &[String],
    known: &Known<'_>,
) {
    for (i, target) in targets.iter().enumerate() {
        if known.groups.is_empty() || known.contains(target) {
            continue;
        }
        let target_path = match raw {
            Value::Array(_) => join_index(path, i),
            _ => path.to_string(),
        };
        ctx.error(
            &target_path,
            format!(
                "fallback {} is not a model group or alias",
                describe(&Value::from(target.as_str()))
            ),
        );
    }
}
