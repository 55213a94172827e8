//! In-process tests of the storage adapter at its boundary: each feature port of
//! `huren_archive::ports` as `SqliteIndex` implements it, against a real SQLite file in a
//! temporary directory, and — port by port, as `PgIndex` gains them — against a scratch database
//! on the PostgreSQL cluster `HUREN_TEST_PG_URL` names (`pg_schema::ScratchDb`).

mod accounts;
mod audit;
mod consent;
mod durable_gate;
mod institutions;
mod pg_schema;
mod query_plan;

use huren_archive::model::NewInstitution;
use huren_types::{InstitutionCode, InstitutionLevel, Ownership};

pub fn institution(code: &str, system: Option<&str>) -> NewInstitution {
    NewInstitution {
        code: InstitutionCode::parse(code).expect("code"),
        name: format!("{code} 医院"),
        level: InstitutionLevel::Secondary,
        ownership: Ownership::Public,
        identifier_system: system.map(str::to_owned),
        region: None,
        city: None,
        organization: None,
        division: None,
        valid_from: time::macros::date!(2024 - 01 - 01),
    }
}
