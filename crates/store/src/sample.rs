//! Generated call lists with a realistic mix, for demos, tests and benchmarks.
//!
//! US numbers in several national formats over many area codes (so many time zones, including
//! prefixes that span two), a few international numbers, names and cities, a share of broken
//! rows (unparseable numbers, wrong column counts, unknown time zones) and of duplicates.

use std::io::{self, Write};

/// What to put in a generated list.
#[derive(Debug, Clone, Copy)]
pub struct ListShape {
    /// Data rows to write.
    pub rows: u64,
    /// Share of rows that are broken (0.02 = 2%).
    pub bad: f64,
    /// Share of rows repeating an earlier number (0.01 = 1%).
    pub duplicates: f64,
    /// Seed: the same seed writes the same file.
    pub seed: u64,
}

impl Default for ListShape {
    fn default() -> Self {
        Self {
            rows: 1000,
            bad: 0.02,
            duplicates: 0.01,
            seed: 1,
        }
    }
}

/// What [`write_csv`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Rows written.
    pub rows: u64,
    /// Broken rows among them.
    pub bad: u64,
    /// Rows repeating an earlier number.
    pub duplicates: u64,
}

/// Area codes across the US zones, with two that span zones (208 Idaho, 605 South Dakota).
const AREAS: &[&str] = &[
    "212", "646", "718", "202", "305", "404", "617", "215", "312", "214", "512", "713", "612",
    "314", "303", "801", "602", "505", "206", "213", "415", "503", "702", "808", "907", "208",
    "605",
];
const FIRST: &[&str] = &[
    "Ann", "Bob", "Carla", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Luis", "Mei", "Noor", "Olga", "Pablo",
];
const LAST: &[&str] = &[
    "Smith", "Garcia", "Nguyen", "O'Brien", "Kowalski", "Okafor", "Tanaka", "Dubois", "Silva",
    "Müller",
];
const CITIES: &[&str] = &[
    "Springfield",
    "Riverside",
    "Fairview",
    "Madison",
    "Georgetown",
    "Salem, OR",
    "Clinton",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic and dependency-free.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The `i`-th distinct US number: area, exchange 200-999, line 0000-9999.
fn us_number(i: u64) -> (&'static str, u64, u64) {
    let area = AREAS[(i % AREAS.len() as u64) as usize];
    let rest = i / AREAS.len() as u64;
    (area, 200 + (rest / 10_000) % 800, rest % 10_000)
}

fn format_us(
    out: &mut impl Write,
    (area, exchange, line): (&str, u64, u64),
    style: usize,
) -> io::Result<()> {
    match style {
        0 => write!(out, "({area}) {exchange}-{line:04}"),
        1 => write!(out, "{area}-{exchange}-{line:04}"),
        2 => write!(out, "{area}.{exchange}.{line:04}"),
        3 => write!(out, "+1 {area} {exchange} {line:04}"),
        4 => write!(out, "1-{area}-{exchange}-{line:04}"),
        _ => write!(out, "{area}{exchange}{line:04}"),
    }
}

/// Writes a CSV call list (`first_name,last_name,phone,city,account`) to `out`.
pub fn write_csv(mut out: impl Write, mix: &ListShape) -> io::Result<Written> {
    let mut rng = Rng(mix.seed.max(1));
    let mut written = Written::default();
    writeln!(out, "first_name,last_name,phone,city,account")?;
    let mut distinct = 0u64;
    for row in 0..mix.rows {
        let first = FIRST[rng.below(FIRST.len())];
        let last = LAST[rng.below(LAST.len())];
        let city = CITIES[rng.below(CITIES.len())];
        let quoted_last = if last.contains('\'') {
            format!("\"{last}\"")
        } else {
            last.to_owned()
        };
        let quoted_city = if city.contains(',') {
            format!("\"{city}\"")
        } else {
            city.to_owned()
        };
        written.rows += 1;
        if rng.chance(mix.bad) {
            written.bad += 1;
            match rng.below(3) {
                0 => writeln!(out, "{first},{quoted_last},n/a,{quoted_city},A{row}")?,
                1 => writeln!(out, "{first},{quoted_last},555-01,{quoted_city},A{row}")?,
                _ => writeln!(out, "{first},{quoted_last},{quoted_city}")?,
            }
            continue;
        }
        write!(out, "{first},{quoted_last},")?;
        if distinct > 0 && rng.chance(mix.duplicates) {
            written.duplicates += 1;
            let mut earlier = rng.next() % distinct;
            if earlier % 50 == 49 {
                earlier -= 1;
            }
            format_us(&mut out, us_number(earlier), 5)?;
        } else {
            let n = distinct;
            distinct += 1;
            if n % 50 == 49 {
                // A few international numbers, written in international format.
                write!(out, "+44 20 7{:03} {:04}", (n / 10_000) % 1000, n % 10_000)?;
            } else {
                format_us(&mut out, us_number(n), rng.below(6))?;
            }
        }
        writeln!(out, ",{quoted_city},A{row}")?;
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_file() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mix = ListShape {
            rows: 500,
            ..ListShape::default()
        };
        let wa = write_csv(&mut a, &mix).unwrap();
        write_csv(&mut b, &mix).unwrap();
        assert_eq!(a, b);
        assert_eq!(wa.rows, 500);
        assert!(wa.bad > 0 && wa.duplicates > 0, "{wa:?}");
    }
}
