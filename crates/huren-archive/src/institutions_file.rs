//! The region's institutions from a file (issue #20, the operators' configuration page): one
//! line per institution as of a day. A new code is registered; a known one gets the
//! attributes that differ from what holds on that day, effective from it. Every line is
//! checked — its values, and against the index (a campus's organization must exist, here or
//! earlier in the file) — before anything is written; a file with any bad line changes
//! nothing. Each registration and change is then the same use case, and audit event, as the
//! CLI's and the admin API's.

use crate::Archive;
use crate::imports::CatalogError;
use crate::model::{AttributeChange, InstitutionAttribute, NewInstitution};
use huren_access::AdminGrant;
use huren_catalog::LineError;
use huren_types::{InstitutionCode, InstitutionLevel, Ownership};

pub const INSTITUTION_HEADER: &[&str] = &[
    "code",
    "name",
    "level",
    "ownership",
    "region",
    "city",
    "organization",
    "division",
    "valid_from",
];

/// What importing a file did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstitutionsImported {
    pub added: usize,
    pub changed: usize,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// One line, its values checked, and whether it gave an ownership (a new institution without
/// one is public; a known one keeps its own).
fn line(r: &[String]) -> Result<(NewInstitution, bool), String> {
    let code = InstitutionCode::parse(&r[0]).map_err(|e| e.to_string())?;
    if r[1].trim().is_empty() {
        return Err("name is required".into());
    }
    let level = InstitutionLevel::parse(&r[2]).map_err(|e| e.to_string())?;
    let ownership = match r[3].trim() {
        "" => Ownership::parse("public").map_err(|e| e.to_string())?,
        o => Ownership::parse(o).map_err(|e| e.to_string())?,
    };
    let division = match opt(&r[7]) {
        Some(d) => Some(
            InstitutionAttribute::Division
                .normalize(&d)
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let valid_from = huren_types::day::parse_iso(&r[8])
        .ok_or_else(|| format!("valid_from {:?} is not a date (YYYY-MM-DD)", r[8]))?;
    Ok((
        NewInstitution {
            code,
            name: r[1].trim().to_owned(),
            level,
            ownership,
            identifier_system: None,
            region: opt(&r[4]),
            city: opt(&r[5]),
            organization: opt(&r[6]),
            division,
            valid_from,
        },
        !r[3].trim().is_empty(),
    ))
}

impl Archive {
    /// Registers and updates institutions from a CSV file ([`INSTITUTION_HEADER`]); all lines
    /// checked first, nothing written when one is bad.
    pub async fn import_institutions(
        &self,
        grant: &AdminGrant,
        csv: &str,
    ) -> Result<InstitutionsImported, CatalogError> {
        // Every line read (a bad value does not hide a line the index refuses).
        let read = huren_catalog::parse_rows(csv, INSTITUTION_HEADER, |r| Ok(line(r)))
            .map_err(CatalogError::Lines)?;
        // Against the index: what each line would change, and whether its organization exists.
        let mut plan: Vec<(NewInstitution, Option<Vec<AttributeChange>>)> = Vec::new();
        let mut errors = Vec::new();
        // Codes compare case-insensitively (`H1` and `h1` are one institution).
        let mut seen: Vec<String> = Vec::new();
        let seen_has = |seen: &[String], c: &str| seen.iter().any(|s| s.eq_ignore_ascii_case(c));
        for (n, r) in read {
            let (inst, ownership_given) = match r {
                Ok(v) => v,
                Err(message) => {
                    errors.push(LineError { line: n, message });
                    continue;
                }
            };
            let code = inst.code.to_string();
            if seen_has(&seen, &code) {
                errors.push(LineError {
                    line: n,
                    message: format!("institution {code} is named twice"),
                });
                continue;
            }
            if let Some(org) = &inst.organization
                && !seen_has(&seen, org)
                && self
                    .index
                    .institution_as_of(org, self.today())
                    .await?
                    .is_none()
            {
                errors.push(LineError {
                    line: n,
                    message: format!("organization {org} is not a registered institution"),
                });
            }
            seen.push(code.clone());
            let now = self.index.institution_as_of(&code, inst.valid_from).await?;
            let changes = now.map(|v| {
                let wanted = [
                    (InstitutionAttribute::Name, Some(inst.name.clone()), v.name),
                    (
                        InstitutionAttribute::Level,
                        Some(inst.level.as_str().to_owned()),
                        v.level,
                    ),
                    (
                        InstitutionAttribute::Ownership,
                        ownership_given.then(|| inst.ownership.as_str().to_owned()),
                        v.ownership,
                    ),
                    (InstitutionAttribute::Region, inst.region.clone(), v.region),
                    (InstitutionAttribute::City, inst.city.clone(), v.city),
                    (
                        InstitutionAttribute::Organization,
                        inst.organization.clone(),
                        v.organization,
                    ),
                    (
                        InstitutionAttribute::Division,
                        inst.division.clone(),
                        v.division,
                    ),
                ];
                // An empty cell leaves an attribute as it is (attributes are not removed).
                wanted
                    .into_iter()
                    .filter_map(|(attribute, want, have)| match want {
                        Some(w) if Some(&w) != have.as_ref() => Some(AttributeChange {
                            attribute,
                            value: w,
                            valid_from: inst.valid_from,
                        }),
                        _ => None,
                    })
                    .collect()
            });
            plan.push((inst, changes));
        }
        if !errors.is_empty() {
            return Err(CatalogError::Lines(errors));
        }
        let mut done = InstitutionsImported::default();
        for (inst, changes) in plan {
            match changes {
                None => {
                    self.add_institution(grant, inst)
                        .await
                        .map_err(CatalogError::from)?;
                    done.added += 1;
                }
                Some(changes) => {
                    let code = inst.code.to_string();
                    done.changed += usize::from(!changes.is_empty());
                    for c in changes {
                        self.change_institution(grant, &code, c)
                            .await
                            .map_err(CatalogError::from)?;
                    }
                }
            }
        }
        Ok(done)
    }
}
