//! OpenAPI schemas of the domain's values that are written as text with a serde of their own:
//! durations, a day's calling hours and the abandon window.

use crate::hours::DayHours;
use crate::spec::{AbandonWindow, Dur};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

fn text(description: &str, pattern: Option<&str>, examples: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(pattern)
        .examples(examples.iter().copied())
        .into()
}

impl PartialSchema for Dur {
    fn schema() -> RefOr<Schema> {
        text(
            "A duration: a number with a unit (`ms`, `s`, `m`, `h`, `d`), parts may follow each \
             other (`1m30s`).",
            None,
            &["25s", "1500ms", "2h"],
        )
    }
}

impl ToSchema for Dur {
    fn name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
}

impl PartialSchema for DayHours {
    fn schema() -> RefOr<Schema> {
        text(
            "A day's calling hours in the callee's local time, `HH:MM-HH:MM`, or `closed`.",
            None,
            &["09:00-20:00", "closed"],
        )
    }
}

impl ToSchema for DayHours {}

impl PartialSchema for AbandonWindow {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "The regulator's window of the abandon rate: `24h` (UK) or `30d` (US).",
            ))
            .enum_values(Some(["24h", "30d"]))
            .into()
    }
}

impl ToSchema for AbandonWindow {}
