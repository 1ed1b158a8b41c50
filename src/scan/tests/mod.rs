use super::*;
use serde_json::Value;
use std::time::Instant;

/// `scan` against serde_json on generated and mutated documents.
mod differential;

fn ok(body: &[u8]) -> Fields {
    match scan(body) {
        Ok(fields) => fields,
        Err(e) => panic!("{}: {e}", body.escape_ascii()),
    }
}

fn text(body: &[u8], span: Option<Span>) -> &str {
    std::str::from_utf8(span.expect("span").text(body)).unwrap()
}

fn invalid_at(body: &[u8]) -> (usize, &'static str) {
    assert!(
        serde_json::from_slice::<Value>(body).is_err(),
        "serde_json accepts {:?}",
        body.escape_ascii().to_string()
    );
    match scan(body) {
        Err(ScanError::Invalid { offset, what }) => (offset, what),
        other => panic!("{:?}: {other:?}", body.escape_ascii().to_string()),
    }
}

#[test]
fn finds_every_tracked_field() {
    let body = br#" {"model":"gpt-4o","stream":true,"max_tokens":100,"max_completion_tokens":null,
        "mock_response":"hi\n","mock_testing_rate_limit_error":false,
        "mock_testing_fallbacks" : false ,"num_retries":3,"timeout":1.5e1,
        "stream_options":{"include_usage":true},
        "messages":[{"role":"user","content":"x","model":"nested"}],"prompt":["a"],
        "input":"x","other":{"model":"no","stream":false}} "#;
    let f = ok(body);
    let cases: [(&str, &str, Kind); 13] = [
        ("model", r#""gpt-4o""#, Kind::String { escaped: false }),
        ("stream", "true", Kind::True),
        ("max_tokens", "100", Kind::Number),
        ("max_completion_tokens", "null", Kind::Null),
        ("mock_response", r#""hi\n""#, Kind::String { escaped: true }),
        ("mock_testing_rate_limit_error", "false", Kind::False),
        ("mock_testing_fallbacks", "false", Kind::False),
        ("num_retries", "3", Kind::Number),
        ("timeout", "1.5e1", Kind::Number),
        ("stream_options", r#"{"include_usage":true}"#, Kind::Object),
        (
            "messages",
            r#"[{"role":"user","content":"x","model":"nested"}]"#,
            Kind::Array,
        ),
        ("prompt", r#"["a"]"#, Kind::Array),
        ("input", r#""x""#, Kind::String { escaped: false }),
    ];
    for (name, want, kind) in cases {
        let span = f.get(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(text(body, Some(span)), want, "{name}");
        assert_eq!(span.kind, kind, "{name}");
    }
    assert_eq!(f.model, f.get("model"));
    assert_eq!(f.get("other"), None);
    assert!(f.stream());
    assert_eq!(f.num_retries.unwrap().as_u64(body), Some(3));
    assert_eq!(f.timeout.unwrap().as_f64(body), Some(15.0));
    assert_eq!(f.mock_response.unwrap().as_str(body).unwrap(), "hi\n");
    assert_eq!(f.mock_testing_fallbacks.unwrap().as_bool(), Some(false));
}

#[test]
fn only_top_level_keys_match() {
    let body = br#"{"metadata":{"model":"x","stream":true},"list":[{"model":1}],"model ":2}"#;
    let f = ok(body);
    assert_eq!(f.model, None);
    assert_eq!(f.stream, None);
    assert!(!f.stream());
    let f = ok(br#"{"a":{"b":{"c":[[{"model":1}]]}}, "stream": "true"}"#);
    assert_eq!(f.model, None);
    assert!(!f.stream(), "a string is not true");
}

#[test]
fn escaped_keys_are_decoded() {
    let body = br#"{"mod\u0065l":"a","\u0073tream":true,"model\u0000":1,"mo\"del":2}"#;
    let f = ok(body);
    assert_eq!(text(body, f.model), r#""a""#);
    assert!(f.stream());
    let f = ok(br#"{"\u006d\u006F\u0064\u0065\u006c":1,"\/model":2,"mod\u00e9l":3}"#);
    assert_eq!(f.model.map(|s| s.kind), Some(Kind::Number));
    // Longer than any tracked key once decoded.
    let f = ok(br#"{"mock_testing_rate_limit_error\u0041\u0041\u0041\u0041":1}"#);
    assert_eq!(f.mock_testing_rate_limit_error, None);
}

#[test]
fn duplicates() {
    let dup = |b: &[u8]| scan(b).unwrap_err();
    assert_eq!(
        dup(br#"{"model":"a","model":"b"}"#),
        ScanError::DuplicateKey("model")
    );
    assert_eq!(
        dup(br#"{"mod\u0065l":"a","x":{},"model":"b"}"#),
        ScanError::DuplicateKey("model")
    );
    assert_eq!(
        dup(br#"{"input":1,"stream":true,"stream":false,"input":2}"#),
        ScanError::DuplicateKey("stream")
    );
    // Untracked duplicates and nested repeats are fine.
    ok(br#"{"x":1,"x":2,"model":"m","m":{"model":1,"model":2}}"#);
    // Invalid JSON wins over a duplicate.
    assert!(matches!(
        scan(br#"{"model":1,"model":2,]"#),
        Err(ScanError::Invalid { .. })
    ));
}

#[test]
fn not_object() {
    for body in [
        &b"[]"[..],
        b" [1,{\"model\":2}] ",
        b"\"s\"",
        b"1",
        b"-0.5e3",
        b"null",
        b"true",
        b"false",
    ] {
        assert_eq!(scan(body).unwrap_err(), ScanError::NotObject);
    }
    assert_eq!(invalid_at(b"[] x"), (3, "trailing characters"));
}

#[test]
fn empty_objects_and_whitespace() {
    let f = ok(b" \t\r\n{ \t\r\n} \t\r\n");
    assert_eq!(f.model, None);
    let body = b"{\n  \"model\" :\t\"m\" ,\r\n \"messages\":[ ]\n}\n";
    let f = ok(body);
    assert_eq!(text(body, f.model), "\"m\"");
    assert_eq!(text(body, f.messages), "[ ]");
}

#[test]
fn invalid_documents() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
    let cases: &[(&[u8], usize, &str)] = &[
        (b"", 0, "unexpected end of input"),
        (b" \n\t", 3, "unexpected end of input"),
        (b"\xEF\xBB\xBF{}", 0, "expected value"),
        (b"\x0c{}", 0, "expected value"),
        (b"{", 1, "unexpected end of input"),
        (b"{\"a\"", 4, "unexpected end of input"),
        (b"{\"a\":", 5, "unexpected end of input"),
        (b"{\"a\":1", 6, "unexpected end of input"),
        (b"{\"a\" 1}", 5, "expected ':'"),
        (b"{\"a\":1,}", 7, "trailing comma"),
        (b"{\"a\":1 , }", 9, "trailing comma"),
        (b"{\"a\":[1,]}", 8, "trailing comma"),
        (b"{\"a\":{\"b\":1,}}", 12, "trailing comma"),
        (b"[1,]", 3, "trailing comma"),
        (b"[1,,2]", 3, "expected value"),
        (b"{,}", 1, "key must be a string"),
        (b"{a:1}", 1, "key must be a string"),
        (b"{'a':1}", 1, "key must be a string"),
        (b"{\"a\":{1:2}}", 6, "key must be a string"),
        (b"{\"a\":1 \"b\":2}", 7, "expected ',' or '}'"),
        (b"{\"a\":1]", 6, "expected ',' or '}'"),
        (b"{\"a\":[1}", 7, "expected ',' or ']'"),
        (b"[1 2]", 3, "expected ',' or ']'"),
        (b"{\"a\":01}", 6, "invalid number"),
        (b"{\"a\":-01}", 7, "invalid number"),
        (b"-", 1, "unexpected end of input"),
        (b"[-]", 2, "invalid number"),
        (b"[-a]", 2, "invalid number"),
        (b"[1.]", 3, "invalid number"),
        (b"[1.e5]", 3, "invalid number"),
        (b"[.5]", 1, "expected value"),
        (b"[1e]", 3, "invalid number"),
        (b"[1e+]", 4, "invalid number"),
        (b"[+1]", 1, "expected value"),
        (b"[0x10]", 2, "expected ',' or ']'"),
        (b"[1e400]", 1, "number out of range"),
        (b"{\"a\":-2e308}", 5, "number out of range"),
        (b"[1e99999999999999999999999]", 1, "number out of range"),
        (b"[NaN]", 1, "expected value"),
        (b"[Infinity]", 1, "expected value"),
        (b"[tru]", 4, "invalid literal"),
        (b"[nul", 4, "unexpected end of input"),
        (b"[True]", 1, "expected value"),
        (b"[truex]", 5, "expected ',' or ']'"),
        (b"{/*c*/}", 1, "key must be a string"),
        (b"{\"a\":\"\x01\"}", 6, "control character in string"),
        (b"{\"a\":\"tab\there\"}", 9, "control character in string"),
        (b"{\"a\":\"\\x\"}", 7, "invalid escape"),
        (b"{\"a\":\"\\U0041\"}", 7, "invalid escape"),
        (b"{\"a\":\"\\u12G4\"}", 10, "invalid \\u escape"),
        (b"{\"a\":\"\\u12", 10, "unexpected end of input"),
        (b"\"\\ud800\"", 1, "lone surrogate in \\u escape"),
        (b"\"\\udc00\"", 1, "lone surrogate in \\u escape"),
        (b"\"\\ud800\\u0041\"", 1, "lone surrogate in \\u escape"),
        (b"\"\\ud800\\ud800\"", 1, "lone surrogate in \\u escape"),
        (b"\"\\ud800\\n\"", 1, "lone surrogate in \\u escape"),
        (b"{\"\\ud800x\":1}", 2, "lone surrogate in \\u escape"),
        (b"\"\xff\"", 1, "invalid UTF-8"),
        (b"{\"a\":\"ok \xc3\"}", 9, "invalid UTF-8"),
        (b"{\"a\":\"\xed\xa0\x80\"}", 6, "invalid UTF-8"),
        (b"{\"a\":\"\xf4\x90\x80\x80\"}", 6, "invalid UTF-8"),
        (b"{\"\xc0\xaf\":1}", 2, "invalid UTF-8"),
        (b"[\xff]", 1, "expected value"),
        (b"{\"a\":\"abc", 9, "unexpected end of input"),
        (b"{\"a\":\"abc\\", 10, "unexpected end of input"),
        (b"{} x", 3, "trailing characters"),
        (b"{}{}", 2, "trailing characters"),
        (b"{\"a\":1}}", 7, "trailing characters"),
        (b"{}\x00", 2, "trailing characters"),
        (&deep(128), 127, "nesting too deep"),
    ];
    for &(body, offset, what) in cases {
        let got = invalid_at(body);
        assert_eq!(got, (offset, what), "{:?}", body.escape_ascii().to_string());
        let msg = scan(body).unwrap_err().to_string();
        assert_eq!(msg, format!("invalid JSON at byte {offset}: {what}"));
    }
}

#[test]
fn nesting_limit_matches_serde_json() {
    for n in 120..=130 {
        let arrays = format!("{}{}", "[".repeat(n), "]".repeat(n));
        let in_object = format!(
            "{{\"messages\":{}1{}}}",
            "[".repeat(n - 1),
            "]".repeat(n - 1)
        );
        for body in [arrays, in_object] {
            let serde_ok = serde_json::from_str::<Value>(&body).is_ok();
            assert_eq!(serde_ok, n <= 127, "{n}");
            assert_eq!(
                !matches!(scan(body.as_bytes()), Err(ScanError::Invalid { .. })),
                serde_ok,
                "{n}"
            );
        }
    }
}

#[test]
fn string_values() {
    let body = concat!(
        r#"{"model":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\u0000z","input":"plain \u00e9","#,
        r#""prompt":"h\u00e9llo w\u00f6rld","messages":"café"}"#
    )
    .as_bytes();
    let f = ok(body);
    let model = f.model.unwrap().as_str(body).unwrap();
    assert_eq!(model, "a\"b\\c/d\u{8}\u{c}\n\r\t\u{e9}\u{1F600}\u{0}z");
    assert!(matches!(model, Cow::Owned(_)));
    assert_eq!(f.prompt.unwrap().as_str(body).unwrap(), "héllo wörld");
    let m = f.messages.unwrap();
    assert_eq!(m.kind, Kind::String { escaped: false });
    assert!(matches!(m.as_str(body), Some(Cow::Borrowed("café"))));
    let f = ok(br#"{"model":1}"#);
    assert_eq!(f.model.unwrap().as_str(br#"{"model":1}"#), None);
}

#[test]
fn numbers_and_bools() {
    let num = |t: &str| -> Span {
        let body = format!("{{\"num_retries\":{t}}}");
        let span = ok(body.as_bytes()).num_retries.unwrap();
        assert_eq!(span.text(body.as_bytes()), t.as_bytes());
        Span {
            start: span.start - 15,
            end: span.end - 15,
            kind: span.kind,
        }
    };
    for (t, want) in [
        ("3", Some(3)),
        ("0", Some(0)),
        ("18446744073709551615", Some(u64::MAX)),
        ("18446744073709551616", None),
        ("-1", None),
        ("-0", None),
        ("1.0", None),
        ("1e2", None),
        ("10E0", None),
    ] {
        assert_eq!(num(t).as_u64(t.as_bytes()), want, "{t}");
    }
    for (t, want) in [
        ("1.5", 1.5),
        ("-2", -2.0),
        ("1e-400", 0.0),
        ("12.5E+1", 125.0),
        ("1e308", 1e308),
    ] {
        assert_eq!(num(t).as_f64(t.as_bytes()), Some(want), "{t}");
    }
    let body = br#"{"num_retries":"3","stream":false,"input":null}"#;
    let f = ok(body);
    assert_eq!(f.num_retries.unwrap().as_u64(body), None);
    assert_eq!(f.num_retries.unwrap().as_f64(body), None);
    assert_eq!(f.stream.unwrap().as_bool(), Some(false));
    assert_eq!(f.input.unwrap().as_bool(), None);
    assert!(!f.stream());
}

#[test]
fn display() {
    assert_eq!(
        ScanError::NotObject.to_string(),
        "request body must be a JSON object"
    );
    assert_eq!(
        ScanError::DuplicateKey("model").to_string(),
        "duplicate key \"model\" in request body"
    );
    assert_eq!(
        scan(b"{\"model\":\"x\" \"stream\":true}")
            .unwrap_err()
            .to_string(),
        "invalid JSON at byte 13: expected ',' or '}'"
    );
}

#[test]
fn leading_object_stops_at_its_closing_brace() {
    let mut keys = Vec::new();
    let text = br#"{"a":1,"b\u0022":{"c":[2,"}"]}} ,"rest": not json"#;
    let len = leading_object(text, |k, escaped, span| {
        keys.push((k.to_vec(), escaped, span.kind));
    })
    .unwrap();
    assert_eq!(&text[..len], br#"{"a":1,"b\u0022":{"c":[2,"}"]}}"#);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1], (br#"b\u0022"#.to_vec(), true, Kind::Object));
    assert!(decode_key(&keys[1].0, true, |k| (k == b"b\"").then_some(())).is_some());
    // Cut short, not an object, or invalid inside: an error, never a length.
    assert!(leading_object(br#"{"a":[1,2"#, |_, _, _| {}).is_err());
    assert_eq!(
        leading_object(b" {}", |_, _, _| {}),
        Err(ScanError::NotObject)
    );
    assert!(leading_object(br#"{"a":tru}"#, |_, _, _| {}).is_err());
    assert_eq!(leading_object(b"{}x", |_, _, _| {}), Ok(2));
}
