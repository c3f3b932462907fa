//! OpenAPI schemas of the parsed value types (feature `openapi`, server only): each says
//! what it looks like on the wire, so the generated document matches what serde writes.

use crate::{
    AdminId, ApiTokenId, CountryCode, Email, FileId, GrantId, OrderId, ProductId, Timestamp,
};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

macro_rules! schema {
    ($name:ty, $build:expr) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let build: fn() -> ObjectBuilder = $build;
                build().into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

fn integer(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .description(Some(description))
}

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

schema!(Email, || string("An email address, stored lower-cased.")
    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email))));
schema!(Timestamp, || integer("Milliseconds since 1970-01-01 UTC."));
schema!(OrderId, || ObjectBuilder::new()
    .schema_type(Type::Integer)
    .minimum(Some(1_000_000))
    .maximum(Some(9_999_999))
    .description(Some("The order's public 7-digit ID.")));
schema!(ProductId, || string(
    "A product's slug: lower-case letters, digits and dashes."
)
.pattern(Some("^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")));
schema!(CountryCode, || string("ISO 3166-1 alpha-2 country code.")
    .pattern(Some("^[A-Z]{2}$")));
schema!(AdminId, || integer("A staff account's id."));
schema!(ApiTokenId, || integer("An API token's id."));
schema!(FileId, || integer("A product file's id."));
schema!(GrantId, || integer(
    "A grant's id (one buyer's right to one product)."
));
