//! The agents' call script: the campaign file's `script`, a text with `{{name}}` placeholders
//! filled from the contact on the line.
//!
//! A placeholder names a built-in field ([`BUILTINS`]) or one of the campaign's
//! `script_columns` (columns its lists carry, as written in the CSV header). Anything else is
//! refused when the campaign file is loaded, with the field named, so a typo never reaches an
//! agent's screen as a blank. Values are plain text: the desktop inserts them as text, never
//! as HTML, so rendering escapes nothing.

/// Placeholders every script may use, whatever the list: the number dialled (E.164), the
/// contact's name (a `name` column, else `first_name` and `last_name`), the agent's display
/// name and username, the campaign's name and the contact's first time zone.
pub const BUILTINS: &[&str] = &[
    "phone",
    "name",
    "agent_name",
    "agent_username",
    "campaign",
    "time_zone",
];

/// The longest script accepted (characters).
pub const MAX_SCRIPT_CHARS: usize = 20_000;

/// One piece of a parsed script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text shown as written.
    Text(&'a str),
    /// A placeholder's name (trimmed of the spaces inside its braces).
    Field(&'a str),
}

/// Splits a script into text and placeholders; an unclosed `{{` or an empty or malformed
/// name is refused with the reason.
pub fn parse(script: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = script;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(format!(
                "a placeholder opened with `{{{{` at character {} is never closed with `}}}}`",
                script.len() - rest.len() + open
            ));
        };
        let name = after[..close].trim();
        if name.is_empty()
            || name.len() > 100
            || name.contains(['{', '}', '\n', '\r'])
            || name.chars().any(char::is_control)
        {
            return Err(format!(
                "`{{{{{}}}}}` is not a placeholder: write `{{{{column}}}}` with a column name \
                 of 1 to 100 characters",
                &after[..close]
            ));
        }
        pieces.push(Piece::Field(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// Checks a script against the fields it may name: every problem, in order.
pub fn problems(script: &str, columns: &[String]) -> Vec<String> {
    if script.chars().count() > MAX_SCRIPT_CHARS {
        return vec![format!(
            "the script is over {MAX_SCRIPT_CHARS} characters long"
        )];
    }
    let pieces = match parse(script) {
        Ok(pieces) => pieces,
        Err(reason) => return vec![reason],
    };
    let mut out = Vec::new();
    for piece in pieces {
        if let Piece::Field(name) = piece
            && !BUILTINS.contains(&name)
            && !columns.iter().any(|c| c.trim() == name)
        {
            let why = format!(
                "unknown placeholder `{{{{{name}}}}}`: a script names the built-in fields ({}) \
                 or a list column declared in script_columns",
                BUILTINS.join(", ")
            );
            if !out.contains(&why) {
                out.push(why);
            }
        }
    }
    out
}

/// Renders a script: each placeholder becomes `value(name)`, or nothing when the contact has
/// no such field. Call it on a script that passed [`problems`]; a malformed one is returned
/// as written.
pub fn render(script: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let Ok(pieces) = parse(script) else {
        return script.to_owned();
    };
    let mut out = String::with_capacity(script.len());
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Field(name) => out.push_str(&value(name).unwrap_or_default()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn placeholders_are_filled_and_text_is_kept() {
        let script =
            "Hello {{ first_name }}, this is {{agent_name}} about {{phone}}.\n{{missing}}!";
        let out = render(script, |name| match name {
            "first_name" => Some("Ann <b>".into()),
            "agent_name" => Some("Bob".into()),
            "phone" => Some("+13125550101".into()),
            _ => None,
        });
        // Values stay as given (the page inserts text, never HTML); a missing one is empty.
        assert_eq!(out, "Hello Ann <b>, this is Bob about +13125550101.\n!");
    }

    #[test]
    fn unknown_and_malformed_placeholders_are_refused() {
        assert!(
            problems(
                "Hi {{first_name}} from {{agent_name}}",
                &cols(&["first_name"])
            )
            .is_empty()
        );
        let unknown = problems("Hi {{frist_name}} {{frist_name}}", &cols(&["first_name"]));
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert!(unknown[0].contains("`{{frist_name}}`"), "{unknown:?}");
        let open = problems("Hi {{first_name", &[]);
        assert!(open[0].contains("never closed"), "{open:?}");
        let empty = problems("Hi {{ }}", &[]);
        assert!(empty[0].contains("not a placeholder"), "{empty:?}");
        let long = "x".repeat(MAX_SCRIPT_CHARS + 1);
        assert!(problems(&long, &[])[0].contains("over"));
    }

    #[test]
    fn single_braces_are_text() {
        assert_eq!(parse("a {b} c").unwrap(), vec![Piece::Text("a {b} c")]);
        assert_eq!(render("{{phone}}}", |_| Some("1".into())), "1}");
    }
}
