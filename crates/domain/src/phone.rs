//! Phone numbers to E.164, with the campaign's default country for national numbers.
//!
//! `phonenumber` is the reference, but it matches every metadata pattern under one global
//! mutex (its `regex_cache` LRU), about 15 us a number and no faster on two threads. Call lists
//! are mostly North American numbers in a handful of layouts, so those take a fast path: the
//! digits are extracted by hand and checked against the *same* metadata patterns, compiled once
//! into our own `regex::Regex` values, with the same decision logic as `phonenumber::is_valid`.
//! The fast path only ever answers "valid, and this is its E.164"; anything else (other
//! countries, extensions, letters, invalid numbers) goes through `phonenumber` unchanged, so
//! error messages and edge cases are the library's. A differential test checks that both paths
//! agree.

use phonenumber::Mode;
use phonenumber::country::Id;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::Regex;
use std::sync::OnceLock;

/// Normalises numbers as written in call lists (`(415) 555-0123`, `+44 20 7946 0018`,
/// `0044 20...`) to E.164 (`+14155550123`), refusing numbers that are not valid.
#[derive(Debug, Clone, Copy)]
pub struct Normalizer {
    country: Id,
    /// Whether national numbers of `country` are North American (+1).
    nanp: bool,
}

impl Normalizer {
    /// A normaliser for numbers of `country` written without a country code.
    pub fn new(country: Id) -> Self {
        let nanp = DATABASE
            .by_id(country.as_ref())
            .is_some_and(|meta| meta.country_code() == 1);
        Self { country, nanp }
    }

    /// The number in E.164, or why it is refused.
    pub fn normalize(&self, raw: &str) -> Result<String, String> {
        let text = raw.trim();
        if let Some(e164) = self.fast(text) {
            return Ok(e164);
        }
        self.slow(text)
    }

    /// The reference path: `phonenumber` parsing and validation.
    pub fn slow(&self, text: &str) -> Result<String, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty phone number".into());
        }
        let number = phonenumber::parse(Some(self.country), text)
            .map_err(|err| format!("`{text}` is not a phone number ({err})"))?;
        if !phonenumber::is_valid(&number) {
            return Err(format!(
                "`{text}` is not a valid number (for {:?} when written without a country code)",
                self.country
            ));
        }
        Ok(number.format().mode(Mode::E164).to_string())
    }

    /// The North American fast path: `Some` only for a valid number.
    fn fast(&self, text: &str) -> Option<String> {
        let (plus, rest) = match text.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut digits = [0u8; 11];
        let mut n = 0;
        for byte in rest.bytes() {
            match byte {
                b'0'..=b'9' => {
                    if n == digits.len() {
                        return None;
                    }
                    digits[n] = byte;
                    n += 1;
                }
                b' ' | b'-' | b'.' | b'(' | b')' => {}
                _ => return None,
            }
        }
        let national = match (plus, n) {
            // +1 NXX NXX XXXX
            (true, 11) if digits[0] == b'1' => &digits[1..11],
            // A national number of a +1 country, with or without the national prefix 1.
            (false, 10) if self.nanp => &digits[..10],
            (false, 11) if self.nanp && digits[0] == b'1' => &digits[1..11],
            _ => return None,
        };
        let national = std::str::from_utf8(national).ok()?;
        if !Nanp::get().is_valid(national) {
            return None;
        }
        let mut e164 = String::with_capacity(12);
        e164.push_str("+1");
        e164.push_str(national);
        Some(e164)
    }
}

/// One metadata descriptor compiled into our own regex.
struct Desc {
    lengths: Vec<u16>,
    pattern: Regex,
}

impl Desc {
    fn new(descriptor: &Descriptor) -> Option<Self> {
        Some(Self {
            lengths: descriptor.possible_length().to_vec(),
            pattern: compile(descriptor.national_number().as_str())?,
        })
    }

    /// `Descriptor::is_match`, without the global lock: a match starting at the first digit.
    fn is_match(&self, value: &str) -> bool {
        if !self.lengths.is_empty() && !self.lengths.contains(&(value.len() as u16)) {
            return false;
        }
        starts_with_match(&self.pattern, value)
    }
}

/// Compiles a metadata pattern the way `phonenumber` does (whitespace in it is layout),
/// anchored at the start: `phonenumber` accepts a value when its leftmost match starts at the
/// first character, which is exactly when `^(?:pattern)` matches (and that test can stop at the
/// first match state instead of locating the match).
fn compile(source: &str) -> Option<Regex> {
    regex::RegexBuilder::new(&format!("^(?:{source})"))
        .ignore_whitespace(true)
        .build()
        .ok()
}

fn starts_with_match(pattern: &Regex, value: &str) -> bool {
    pattern.is_match(value)
}

/// A region's patterns, in the order `phonenumber`'s `number_type` tries them.
struct Region {
    leading_digits: Option<Regex>,
    general: Desc,
    types: Vec<Desc>,
}

impl Region {
    fn new(meta: &Metadata) -> Option<Self> {
        let d = meta.descriptors();
        let types = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ]
        .into_iter()
        .flatten()
        .map(Desc::new)
        .collect::<Option<Vec<_>>>()?;
        Some(Self {
            leading_digits: match meta.leading_digits() {
                Some(re) => Some(compile(re.as_str())?),
                None => None,
            },
            general: Desc::new(d.general())?,
            types,
        })
    }

    /// `number_type(meta, value) != Unknown`.
    fn has_type(&self, value: &str) -> bool {
        self.general.is_match(value) && self.types.iter().any(|t| t.is_match(value))
    }
}

/// The +1 regions, in the database's order.
struct Nanp {
    regions: Vec<Region>,
}

impl Nanp {
    fn get() -> &'static Nanp {
        static NANP: OnceLock<Nanp> = OnceLock::new();
        NANP.get_or_init(|| {
            let regions = DATABASE
                .region(&1u16)
                .unwrap_or_default()
                .into_iter()
                .map(|id| DATABASE.by_id(id).and_then(Region::new))
                .collect::<Option<Vec<_>>>()
                // If the metadata ever holds something we cannot compile, every number takes
                // the reference path instead.
                .unwrap_or_default();
            Nanp { regions }
        })
    }

    /// `phonenumber::is_valid` for a +1 national number: the region is the first whose
    /// leading digits match at the start, or (without leading digits) whose types match.
    fn is_valid(&self, national: &str) -> bool {
        for region in &self.regions {
            match &region.leading_digits {
                Some(re) if starts_with_match(re, national) => return region.has_type(national),
                Some(_) => {}
                // Chosen because it has a type: valid.
                None if region.has_type(national) => return true,
                None => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_and_international_formats() {
        let us = Normalizer::new(Id::US);
        for written in [
            "(202) 555-0123",
            "202-555-0123",
            "202.555.0123",
            "+1 202 555 0123",
            "1-202-555-0123",
            "+12025550123",
        ] {
            assert_eq!(us.normalize(written).unwrap(), "+12025550123", "{written}");
        }
        assert_eq!(us.normalize("+44 20 7946 0018").unwrap(), "+442079460018");
        let gb = Normalizer::new(Id::GB);
        assert_eq!(gb.normalize("020 7946 0018").unwrap(), "+442079460018");
        assert_eq!(gb.normalize("07911 123456").unwrap(), "+447911123456");
        assert_eq!(gb.normalize("+1 (202) 555-0123").unwrap(), "+12025550123");
    }

    #[test]
    fn bad_numbers_are_refused_with_a_reason() {
        let us = Normalizer::new(Id::US);
        assert!(us.normalize("").unwrap_err().contains("empty"));
        assert!(us.normalize("hello").is_err());
        assert!(us.normalize("555-01").is_err());
        // 0 is not a valid first digit of a US area code.
        assert!(us.normalize("(012) 555-0123").is_err());
    }

    /// The fast path and `phonenumber` agree on every number we throw at them.
    #[test]
    fn fast_path_matches_the_reference() {
        assert!(
            !Nanp::get().regions.is_empty(),
            "NANP metadata did not compile"
        );
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut fast_hits = 0;
        for country in [Id::US, Id::CA, Id::GB, Id::JM] {
            let normalizer = Normalizer::new(country);
            for i in 0..20_000u64 {
                let digits = format!("{:010}", next() % 10_000_000_000);
                let (a, b, c) = (&digits[..3], &digits[3..6], &digits[6..]);
                let written = match i % 6 {
                    0 => format!("({a}) {b}-{c}"),
                    1 => format!("1-{a}-{b}-{c}"),
                    2 => format!("+1 {a} {b} {c}"),
                    3 => format!("{a}.{b}.{c}"),
                    4 => format!("1{digits}"),
                    _ => digits.clone(),
                };
                let fast = normalizer.fast(&written);
                let slow = normalizer.slow(&written);
                if let Some(fast) = &fast {
                    fast_hits += 1;
                    assert_eq!(slow.as_ref(), Ok(fast), "{country:?} {written}");
                }
                // Whatever the path, the public answer is the reference's.
                assert_eq!(
                    normalizer.normalize(&written),
                    slow,
                    "{country:?} {written}"
                );
            }
        }
        assert!(
            fast_hits > 10_000,
            "the fast path is hardly used: {fast_hits}"
        );
    }
}
