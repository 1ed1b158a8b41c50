//! Cheap parsing of request bodies: only `model`, `stream` and
//! `stream_options.include_usage` are read; everything else is skipped.

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use std::borrow::Cow;

/// The part of a request body the fake looks at; everything else is skipped.
#[derive(Deserialize)]
pub(crate) struct Fields<'a> {
    /// Echoed back in the response.
    #[serde(borrow, default)]
    pub(crate) model: Option<Model<'a>>,
    /// `true` asks for server-sent events.
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    /// Holds `include_usage`.
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
}

/// `stream_options` of a streamed request.
#[derive(Deserialize)]
pub(crate) struct StreamOptions {
    /// `true` asks for a last chunk carrying `usage`.
    #[serde(default)]
    pub(crate) include_usage: Option<bool>,
}

/// A string borrowed from the request body when it has no escapes.
pub(crate) struct Model<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Model<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Model<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Model<'de>, E> {
                Ok(Model(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Model<'de>, E> {
                Ok(Model(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl Model<'_> {
    /// The model name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_borrows_when_unescaped() {
        let f: Fields<'_> =
            serde_json::from_slice(br#"{"messages":[{"a":1}],"model":"m1","stream":true}"#)
                .unwrap();
        assert!(matches!(f.model, Some(Model(Cow::Borrowed("m1")))));
        let f: Fields<'_> = serde_json::from_slice(br#"{"model":"a\"b","stream":null}"#).unwrap();
        assert_eq!(f.model.unwrap().0, "a\"b");
        assert_eq!(f.stream, None);
    }
}
