//! Typed reads from the generic YAML tree: every read knows its path in the file and
//! records a [`ConfigError`] instead of stopping, so one load reports every problem.

use super::types::{ConfigError, ConfigWarning};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Collects errors and warnings while a config is read.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    /// Problems that stop the load.
    pub errors: Vec<ConfigError>,
    /// Things the user should know about but that do not stop the load.
    pub warnings: Vec<ConfigWarning>,
}

impl Ctx {
    /// Record an error at `path`.
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Record a warning at `path`.
    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            path: path.to_string(),
            message: message.into(),
        });
    }
}

/// `parent.key`, or `parent["key"]` when the key would be ambiguous in a dotted path.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::from(key)),
    }
}

/// `parent[index]`.
pub(crate) fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// A short description of a value for messages: strings quoted, containers by kind.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 60 => {
            let cut: String = s.chars().take(57).collect();
            format!("{}...", Value::from(cut))
        }
        Value::String(s) => Value::from(s.as_str()).to_string(),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a map".to_string(),
    }
}

/// A string; numbers are accepted and written out (`model_name: 4` is the group "4").
pub(crate) fn string(ctx: &mut Ctx, path: &str, v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        other => {
            ctx.error(path, format!("expected a string, got {}", describe(other)));
            None
        }
    }
}

/// A boolean; the strings `true`/`yes`/`on` and `false`/`no`/`off` (any case) count too
/// (YAML 1.1, as PyYAML reads them).
pub(crate) fn boolean(ctx: &mut Ctx, path: &str, v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            _ => {
                ctx.error(path, format!("expected true or false, got {}", describe(v)));
                None
            }
        },
        other => {
            ctx.error(
                path,
                format!("expected true or false, got {}", describe(other)),
            );
            None
        }
    }
}

/// Any finite number, also written as a string (`"1.5"`).
pub(crate) fn number(ctx: &mut Ctx, path: &str, v: &Value) -> Option<f64> {
    let parsed = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(x) if x.is_finite() => Some(x),
        _ => {
            ctx.error(path, format!("expected a number, got {}", describe(v)));
            None
        }
    }
}

/// A number that must be `>= 0`.
pub(crate) fn non_negative(ctx: &mut Ctx, path: &str, v: &Value) -> Option<f64> {
    let x = number(ctx, path, v)?;
    if x < 0.0 {
        ctx.error(path, format!("must not be negative, got {}", describe(v)));
        return None;
    }
    Some(x)
}

/// A whole number `>= 0`, also written as a string (`"100"`); `100.0` is accepted.
pub(crate) fn unsigned(ctx: &mut Ctx, path: &str, v: &Value) -> Option<u64> {
    if let Value::Number(n) = v {
        if let Some(u) = n.as_u64() {
            return Some(u);
        }
    }
    if let Value::String(s) = v {
        if let Ok(u) = s.trim().parse::<u64>() {
            return Some(u);
        }
    }
    let x = number(ctx, path, v)?;
    if x < 0.0 {
        ctx.error(path, format!("must not be negative, got {}", describe(v)));
    } else if x.fract() != 0.0 {
        ctx.error(
            path,
            format!("expected a whole number, got {}", describe(v)),
        );
    } else if x < u64::MAX as f64 {
        return Some(x as u64);
    } else {
        ctx.error(path, format!("too large, got {}", describe(v)));
    }
    None
}

/// A whole number `>= 0` that fits in a `u32`.
pub(crate) fn unsigned32(ctx: &mut Ctx, path: &str, v: &Value) -> Option<u32> {
    let u = unsigned(ctx, path, v)?;
    match u32::try_from(u) {
        Ok(x) => Some(x),
        Err(_) => {
            ctx.error(path, format!("too large (at most {}), got {u}", u32::MAX));
            None
        }
    }
}

/// A TCP port, 1 to 65535.
pub(crate) fn port(ctx: &mut Ctx, path: &str, v: &Value) -> Option<u16> {
    let u = unsigned(ctx, path, v)?;
    match u16::try_from(u) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            ctx.error(path, format!("expected a port (1-65535), got {u}"));
            None
        }
    }
}

/// A duration in seconds (`30`, `0.5`, `"30"`), `>= 0`.
pub(crate) fn seconds(ctx: &mut Ctx, path: &str, v: &Value) -> Option<Duration> {
    let x = number(ctx, path, v)?;
    if x < 0.0 {
        ctx.error(path, format!("must not be negative, got {}", describe(v)));
        return None;
    }
    match Duration::try_from_secs_f64(x) {
        Ok(d) => Some(d),
        Err(_) => {
            ctx.error(path, format!("too large, got {}", describe(v)));
            None
        }
    }
}

/// A list of strings; a single string is taken as a one-element list.
pub(crate) fn string_list(ctx: &mut Ctx, path: &str, v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match string(ctx, &join_index(path, i), item) {
                    Some(s) => out.push(s),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
        Value::String(s) => Some(vec![s.clone()]),
        other => {
            ctx.error(
                path,
                format!("expected a list of strings, got {}", describe(other)),
            );
            None
        }
    }
}

/// The keys of one map in the tree, read one by one; what is left over can be warned about.
pub(crate) struct Section<'a> {
    /// The map being read.
    pub map: &'a Map<String, Value>,
    /// Its path in the file.
    pub path: String,
    /// Keys already read.
    used: BTreeSet<&'a str>,
}

impl<'a> Section<'a> {
    /// Start reading `map`, found at `path`.
    pub fn new(map: &'a Map<String, Value>, path: impl Into<String>) -> Self {
        Section {
            map,
            path: path.into(),
            used: BTreeSet::new(),
        }
    }

    /// Read `v` as a map at `path`: absent or null gives None, a non-map is an error.
    pub fn of(ctx: &mut Ctx, path: &str, v: Option<&'a Value>) -> Option<Self> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(Section::new(m, path)),
            Some(other) => {
                ctx.error(path, format!("expected a map, got {}", describe(other)));
                None
            }
        }
    }

    /// The path of `key` inside this map.
    pub fn path_of(&self, key: &str) -> String {
        join_key(&self.path, key)
    }

    /// The value of `key`, marking it read; null counts as absent.
    pub fn get(&mut self, key: &'a str) -> Option<&'a Value> {
        self.used.insert(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Keys not read yet, in map order.
    pub fn rest(&self) -> impl Iterator<Item = (&'a String, &'a Value)> + '_ {
        self.map
            .iter()
            .filter(|(k, _)| !self.used.contains(k.as_str()))
    }

    /// Read `key` with `read` if present.
    pub fn read<T>(
        &mut self,
        ctx: &mut Ctx,
        key: &'a str,
        read: fn(&mut Ctx, &str, &Value) -> Option<T>,
    ) -> Option<T> {
        let v = self.get(key)?;
        read(ctx, &self.path_of(key), v)
    }

    /// Read a required `key` with `read`; absent or null is the error `missing`.
    pub fn require<T>(
        &mut self,
        ctx: &mut Ctx,
        key: &'a str,
        read: fn(&mut Ctx, &str, &Value) -> Option<T>,
    ) -> Option<T> {
        if self.get(key).is_none() {
            ctx.error(&self.path_of(key), "missing");
            return None;
        }
        self.read(ctx, key, read)
    }

    /// `key` as a nested map section (absent or null: None).
    pub fn section(&mut self, ctx: &mut Ctx, key: &'a str) -> Option<Section<'a>> {
        let v = self.get(key);
        Section::of(ctx, &self.path_of(key), v)
    }

    /// Warn about every key not read, with `message`.
    pub fn warn_rest(&self, ctx: &mut Ctx, message: &str) {
        for (k, _) in self.rest() {
            ctx.warn(&self.path_of(k), message);
        }
    }
}
