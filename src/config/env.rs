//! Environment variables: the `environment_variables` section and `os.environ/NAME`
//! references, resolved over the whole tree before anything is typed.

use super::read::{describe, join_index, join_key, Ctx};
use serde_json::Value;
use std::collections::BTreeMap;

/// The form of a reference to an environment variable, as LiteLLM writes it.
pub(crate) const PREFIX: &str = "os.environ/";

/// Environment lookups: the file's `environment_variables` first, then the process.
///
/// LiteLLM copies `environment_variables` into `os.environ` at startup, so they win
/// over whatever the process was started with.
pub(crate) struct Env<'a> {
    /// `environment_variables` from the file, as strings.
    overrides: BTreeMap<String, String>,
    /// The process environment (a map in tests).
    process: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    /// Lookups that go to `process` only, until [`Env::load_overrides`] is called.
    pub fn new(process: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env {
            overrides: BTreeMap::new(),
            process,
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<String> {
        match self.overrides.get(name) {
            Some(v) => Some(v.clone()),
            None => (self.process)(name),
        }
    }

    /// The value of `name` when set and not empty: for defaults taken from the environment.
    pub fn get_non_empty(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Read `environment_variables` (a map `NAME: value`). Its own `os.environ/`
    /// references resolve against the process environment. Numbers and booleans are
    /// written out as strings; a null value sets nothing.
    pub fn load_overrides(&mut self, ctx: &mut Ctx, section: Option<&Value>) {
        let map = match section {
            None | Some(Value::Null) => return,
            Some(Value::Object(map)) => map,
            Some(other) => {
                ctx.error(
                    "environment_variables",
                    format!("expected a map, got {}", describe(other)),
                );
                return;
            }
        };
        let mut overrides = BTreeMap::new();
        for (name, value) in map {
            let path = join_key("environment_variables", name);
            let mut value = value.clone();
            resolve(ctx, self, &path, &mut value);
            let text = match value {
                Value::Null => continue,
                Value::String(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => {
                    ctx.error(
                        &path,
                        format!(
                            "expected a string, number or boolean, got {}",
                            describe(&other)
                        ),
                    );
                    continue;
                }
            };
            overrides.insert(name.clone(), text);
        }
        self.overrides = overrides;
    }
}

/// Replace every string `os.environ/NAME` inside `v` (found at `path`) by the variable's
/// value: `true`/`false` (any case, surrounding spaces ignored) become booleans, other
/// values stay strings, and an unset variable becomes null with a warning.
pub(crate) fn resolve(ctx: &mut Ctx, env: &Env<'_>, path: &str, v: &mut Value) {
    match v {
        Value::String(s) => {
            let Some(name) = s.strip_prefix(PREFIX) else {
                return;
            };
            *v = match env.get(name) {
                Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::String(value),
                },
                None => {
                    ctx.warn(path, format!("{s} is not set"));
                    Value::Null
                }
            };
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve(ctx, env, &join_index(path, i), item);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                resolve(ctx, env, &join_key(path, key), item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
