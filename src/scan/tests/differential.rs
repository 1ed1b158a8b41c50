//! Differential tests: `scan` must accept exactly what serde_json accepts and find
//! the same top-level keys, on generated, mutated and numeric inputs.

use super::*;

/// Compares `scan` with serde_json on one input; returns whether serde_json accepted it.
fn differential(input: &[u8]) -> bool {
    let ours = scan(input);
    let theirs = serde_json::from_slice::<Value>(input);
    let show = || input.escape_ascii().to_string();
    match (ours, theirs) {
        (Err(ScanError::Invalid { offset, .. }), Err(_)) => {
            assert!(offset <= input.len(), "{}", show());
            false
        }
        (Err(e @ ScanError::Invalid { .. }), Ok(_)) => panic!("rejected valid {}: {e}", show()),
        (ours, Err(e)) => panic!("accepted invalid {} ({e}): {ours:?}", show()),
        (Err(ScanError::NotObject), Ok(v)) => {
            assert!(!v.is_object(), "{}", show());
            true
        }
        (Err(ScanError::DuplicateKey(k)), Ok(v)) => {
            assert!(v.get(k).is_some(), "{}", show());
            true
        }
        (Ok(fields), Ok(v)) => {
            let obj = v.as_object().unwrap_or_else(|| panic!("{}", show()));
            for name in TRACKED_KEYS {
                let (span, value) = match (fields.get(name), obj.get(name)) {
                    (None, None) => continue,
                    (Some(s), Some(v)) => (s, v),
                    (s, v) => panic!("{name}: {s:?} vs {v:?} in {}", show()),
                };
                let parsed: Value = serde_json::from_slice(span.text(input)).unwrap();
                assert_eq!(&parsed, value, "{name} in {}", show());
                assert_eq!(span.as_str(input).as_deref(), value.as_str(), "{}", show());
                assert_eq!(span.as_bool(), value.as_bool());
                assert_eq!(span.as_u64(input), value.as_u64(), "{}", show());
                let kind_ok = match span.kind {
                    Kind::String { escaped } => {
                        value.is_string() && escaped == span.text(input).contains(&b'\\')
                    }
                    Kind::Number => {
                        let (a, b) = (span.as_f64(input).unwrap(), value.as_f64().unwrap());
                        (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
                    }
                    Kind::True | Kind::False => value.is_boolean(),
                    Kind::Null => value.is_null(),
                    Kind::Object => value.is_object(),
                    Kind::Array => value.is_array(),
                };
                assert!(kind_ok, "{name}: {:?} vs {value} in {}", span.kind, show());
            }
            true
        }
    }
}

/// Random JSON text generator; records the top-level keys it writes (decoded).
struct Gen {
    rng: fastrand::Rng,
    out: Vec<u8>,
}

const PIECES: &[&str] = &[
    "a",
    "Z",
    " ",
    "model",
    "\\\"",
    "\\\\",
    "\\/",
    "\\b",
    "\\f",
    "\\n",
    "\\r",
    "\\t",
    "\\u00e9",
    "\\u0041",
    "\\uD83D\\uDE00",
    "\\ud7ff",
    "\\ue000",
    "\\uFFFF",
    "é",
    "中文",
    "😀",
    "\x7f",
    "{}[],:",
];

impl Gen {
    fn ws(&mut self) {
        while self.rng.u8(..) < 40 {
            let c = *self.rng.choice(b" \n\r\t").unwrap();
            self.out.push(c);
        }
    }

    fn string(&mut self) {
        self.out.push(b'"');
        for _ in 0..self.rng.usize(..6) {
            let piece = self.rng.choice(PIECES).unwrap();
            self.out.extend_from_slice(piece.as_bytes());
        }
        if self.rng.u8(..) < 8 {
            // A long ASCII run to exercise the chunked scan.
            let n = self.rng.usize(..80);
            self.out.extend((0..n).map(|i| b'a' + (i % 26) as u8));
        }
        self.out.push(b'"');
    }

    fn number(&mut self) {
        if self.rng.bool() {
            self.out.push(b'-');
        }
        let int_len = if self.rng.u8(..) < 40 {
            0
        } else {
            self.rng.usize(1..25)
        };
        if int_len == 0 {
            self.out.push(b'0');
        } else {
            self.out.push(b'0' + self.rng.u8(1..10));
            for _ in 1..int_len {
                self.out.push(b'0' + self.rng.u8(..10));
            }
        }
        if self.rng.bool() {
            self.out.push(b'.');
            for _ in 0..self.rng.usize(1..8) {
                self.out.push(b'0' + self.rng.u8(..10));
            }
        }
        if self.rng.u8(..) < 80 {
            self.out.push(*self.rng.choice(b"eE").unwrap());
            if self.rng.bool() {
                self.out.push(*self.rng.choice(b"+-").unwrap());
            }
            let exp = if self.rng.u8(..) < 40 {
                self.rng.u32(280..330)
            } else {
                self.rng.u32(..40)
            };
            self.out.extend_from_slice(exp.to_string().as_bytes());
        }
    }

    fn key(&mut self, top: bool) -> Option<&'static str> {
        if self.rng.u8(..) < if top { 170 } else { 60 } {
            let name = *self.rng.choice(&TRACKED_KEYS).unwrap();
            self.out.push(b'"');
            let esc = if self.rng.u8(..) < 30 {
                self.rng.usize(..name.len())
            } else {
                usize::MAX
            };
            for (i, c) in name.bytes().enumerate() {
                if i == esc {
                    self.out
                        .extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
                } else {
                    self.out.push(c);
                }
            }
            self.out.push(b'"');
            Some(name)
        } else {
            let start = self.out.len();
            self.string();
            let key: String = serde_json::from_slice(&self.out[start..]).unwrap();
            TRACKED_KEYS.into_iter().find(|k| *k == key)
        }
    }

    /// Writes a value; for a top-level object returns the tracked keys written, in order.
    fn value(&mut self, depth: u32, top: bool) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let pick = if top && self.rng.u8(..) < 230 {
            9
        } else if depth > 4 {
            self.rng.u8(..6)
        } else {
            self.rng.u8(..10)
        };
        match pick {
            0 | 1 => self.string(),
            2 | 3 => self.number(),
            4 => self.out.extend_from_slice(b"true"),
            5 => self.out.extend_from_slice(b"false"),
            6 => self.out.extend_from_slice(b"null"),
            7 | 8 => {
                self.out.push(b'[');
                for i in 0..self.rng.usize(..5) {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.ws();
                    self.value(depth + 1, false);
                    self.ws();
                }
                self.out.push(b']');
            }
            _ => {
                self.out.push(b'{');
                for i in 0..self.rng.usize(..if top { 8 } else { 4 }) {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.ws();
                    let key = self.key(top);
                    keys.extend(key);
                    self.ws();
                    self.out.push(b':');
                    self.ws();
                    self.value(depth + 1, false);
                    self.ws();
                }
                self.out.push(b'}');
            }
        }
        keys
    }
}

const INTERESTING: &[u8] =
    b"\"\\{}[],:0123456789-+.eEu \n\x00\x1f\x7f\x80\xbf\xc3\xed\xf0\xfftrnal/";

fn mutate(rng: &mut fastrand::Rng, doc: &[u8]) -> Vec<u8> {
    let mut m = doc.to_vec();
    for _ in 0..rng.usize(1..4) {
        let at = rng.usize(..=m.len());
        let byte = *rng.choice(INTERESTING).unwrap();
        match rng.u8(..6) {
            0 if at < m.len() => m[at] = byte,
            1 => m.insert(at, byte),
            2 if at < m.len() => {
                let end = rng.usize(at..=m.len().min(at + 4));
                m.drain(at..end);
            }
            3 => m.truncate(at),
            4 => {
                let end = rng.usize(at..=m.len().min(at + 12));
                let copy = m[at..end].to_vec();
                let to = rng.usize(..=m.len());
                m.splice(to..to, copy);
            }
            _ => {
                let frag = *rng.choice(PIECES).unwrap();
                m.splice(at..at, frag.bytes());
            }
        }
    }
    m
}

#[test]
fn differential_against_serde_json() {
    let started = Instant::now();
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(0x5eed_1234),
        out: Vec::new(),
    };
    let mut rng = fastrand::Rng::with_seed(7);
    let (mut valid, mut total) = (0, 0);
    for _ in 0..3000 {
        g.out.clear();
        g.ws();
        let keys = g.value(0, true);
        g.ws();
        let doc = g.out.clone();
        let top_object = doc.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{');
        // The generator only writes valid JSON, except for out-of-range numbers.
        let serde_ok = differential(&doc);
        if serde_ok && top_object {
            let mut seen = Vec::new();
            let dup = keys.iter().find(|k| {
                let again = seen.contains(k);
                seen.push(*k);
                again
            });
            match (scan(&doc), dup) {
                (Ok(_), None) => {}
                (Err(ScanError::DuplicateKey(k)), Some(d)) => assert_eq!(k, *d),
                (got, want) => panic!("{got:?} vs dup {want:?}"),
            }
        }
        valid += usize::from(serde_ok);
        total += 1;
        for _ in 0..4 {
            let m = mutate(&mut rng, &doc);
            valid += usize::from(differential(&m));
            total += 1;
        }
    }
    // Token soup: short random strings over a JSON-ish alphabet, bare and inside a string.
    for _ in 0..6000 {
        let mut soup = Vec::new();
        for _ in 0..rng.usize(1..8) {
            if rng.bool() {
                soup.push(*rng.choice(INTERESTING).unwrap());
            } else {
                soup.extend_from_slice(rng.choice(PIECES).unwrap().as_bytes());
            }
        }
        for wrapped in [
            soup.clone(),
            [&b"{\"model\":\""[..], &soup, b"\"}"].concat(),
            [&b"{\"input\":["[..], &soup, b"]}"].concat(),
        ] {
            valid += usize::from(differential(&wrapped));
            total += 1;
        }
    }
    println!("{valid} of {total} inputs valid, {:?}", started.elapsed());
    assert!(
        valid > total / 10 && valid < total * 9 / 10,
        "{valid} of {total}"
    );
}

#[test]
fn differential_numbers() {
    let mut rng = fastrand::Rng::with_seed(99);
    for _ in 0..20000 {
        let len = rng.usize(1..9);
        let n: Vec<u8> = (0..len)
            .map(|_| *rng.choice(b"0123456789-+.eE").unwrap())
            .collect();
        differential(&[&b"{\"timeout\":"[..], &n, b"}"].concat());
    }
    for m in [
        "1",
        "9",
        "1.79",
        "1.8",
        "17",
        "0.0001",
        "0",
        "123456789012345678901234",
    ] {
        for e in 280..330 {
            for sign in ["", "-"] {
                differential(format!("{{\"timeout\":{sign}{m}e{e}}}").as_bytes());
            }
        }
    }
}

/// `cargo test --release -- --ignored --nocapture throughput`
#[test]
#[ignore]
fn throughput() {
    let mut body = String::from(r#"{"model":"gpt-4o-mini","stream":true,"messages":["#);
    let mut i = 0;
    while body.len() < 100_000 {
        if i > 0 {
            body.push(',');
        }
        let role = ["system", "user", "assistant"][i % 3];
        let content = "Explain, step by step, how a \\\"load balancer\\\" spreads requests \
            across backends.\\nConsider latency, retries and rate limits; give examples. "
            .repeat(8);
        let extra = if i % 5 == 0 {
            " — naïve café 日本語 😀"
        } else {
            ""
        };
        body.push_str(&format!(
            r#"{{"role":"{role}","content":"{content}{extra}","name":"u{i}"}}"#
        ));
        i += 1;
    }
    body.push_str(r#"],"max_tokens":512,"temperature":0.7}"#);
    let body = body.as_bytes();
    assert!(scan(body).unwrap().stream());
    // Best of several batches: the machine may be shared.
    let rounds = 200;
    let mb = (body.len() * rounds) as f64 / 1e6;
    let time = |f: &dyn Fn() -> bool| {
        let mut best = f64::MAX;
        for _ in 0..15 {
            let t = Instant::now();
            for _ in 0..rounds {
                assert!(std::hint::black_box(f()));
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        mb / best
    };
    let ours = time(&|| scan(std::hint::black_box(body)).is_ok());
    let serde = time(&|| serde_json::from_slice::<Value>(std::hint::black_box(body)).is_ok());
    let utf8 = time(&|| std::str::from_utf8(std::hint::black_box(body)).is_ok());
    println!(
        "{} byte body: scan {ours:.0} MB/s, serde_json Value {serde:.0} MB/s, from_utf8 {utf8:.0} MB/s",
        body.len()
    );
}
