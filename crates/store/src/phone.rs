//! Phone numbers to E.164, with the campaign's default country for national numbers.

use phonenumber::Mode;
use phonenumber::country::Id;

/// Normalises numbers as written in call lists (`(415) 555-0123`, `+44 20 7946 0018`,
/// `0044 20...`) to E.164 (`+14155550123`), refusing numbers that are not valid.
#[derive(Debug, Clone, Copy)]
pub struct Normalizer {
    country: Id,
}

impl Normalizer {
    /// A normaliser for numbers of `country` written without a country code.
    pub fn new(country: Id) -> Self {
        Self { country }
    }

    /// The number in E.164, or why it is refused.
    pub fn normalize(&self, raw: &str) -> Result<String, String> {
        let text = raw.trim();
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
}
