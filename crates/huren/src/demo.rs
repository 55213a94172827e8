//! Demo data: institutions of a fictional Chongqing-area region at several levels, a DIMSE
//! peer on loopback, and synthetic patients with Chinese names who have CT, DX and MR studies
//! at more than one institution. Seeded once per data directory.

use anyhow::Context;
use huren_access::{AdminGrant, IngestGrant, grant_ingest};
use huren_archive::model::{NewAe, NewInstitution, NewMembership, TokenScope};
use huren_archive::{Archive, Expected, IngestRequest, IngestStatus, SenderSettings};
use huren_dicom::synth::{self, SynthImage, SynthPatient};
use huren_types::{AeTitle, InstitutionCode, InstitutionLevel, Ownership};

struct Site {
    code: &'static str,
    name: &'static str,
    level: InstitutionLevel,
    ownership: Ownership,
    city: &'static str,
    /// GB/T 2260 division code.
    division: &'static str,
}

const SITES: &[Site] = &[
    Site {
        code: "cq-city-1",
        name: "重庆市第一人民医院(演示)",
        level: InstitutionLevel::Tertiary,
        ownership: Ownership::Public,
        city: "重庆",
        division: "500103",
    },
    Site {
        code: "cq-county-1",
        name: "演示县人民医院",
        level: InstitutionLevel::Secondary,
        ownership: Ownership::Public,
        city: "重庆",
        division: "500229",
    },
    Site {
        code: "cq-town-1",
        name: "演示镇卫生院",
        level: InstitutionLevel::Primary,
        ownership: Ownership::Public,
        city: "重庆",
        division: "500229",
    },
    Site {
        code: "cq-private-1",
        name: "演示民营影像中心",
        level: InstitutionLevel::Other,
        ownership: Ownership::Private,
        city: "重庆",
        division: "500106",
    },
];

const NAMES: &[(&str, &str, &str)] = &[
    ("Zhang^Wei", "张^伟", "M"),
    ("Wang^Fang", "王^芳", "F"),
    ("Li^Na", "李^娜", "F"),
    ("Liu^Yang", "刘^洋", "M"),
    ("Chen^Jing", "陈^静", "F"),
    ("Yang^Lei", "杨^磊", "M"),
    ("Zhao^Min", "赵^敏", "F"),
    ("Huang^Qiang", "黄^强", "M"),
    ("Zhou^Shen", "周^珅", "M"),
    ("Wu^Bing", "吴^昞", "M"),
];

/// An ingest grant for a local program sending as `institution`, through a token minted for
/// it (so audit names a real principal, as for any sender).
pub async fn sender_grant(
    archive: &Archive,
    admin: &AdminGrant,
    institution: &str,
) -> anyhow::Result<IngestGrant> {
    let token = archive
        .create_token(
            admin,
            TokenScope::Institution(
                InstitutionCode::parse(institution)?,
                huren_access::SystemReads::Institution,
            ),
            None,
        )
        .await?;
    let principal = archive
        .principal_for_token(&huren_access::hash_token(&token.secret))
        .await?
        .context("token just created")?;
    Ok(grant_ingest(&principal)?)
}

/// The demo's two tokens, made once and kept in the demo data directory so every start prints
/// the same: a regional viewer's (`read:region`, `demo-viewer-token`) and the city hospital's
/// HIS token for the first-visit walkthrough (`demo-city-his-token`). A demo convenience: real
/// deployments hand tokens to systems, never leave them in files.
pub async fn tokens(
    archive: &Archive,
    admin: &AdminGrant,
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, String)> {
    use huren_access::SystemReads;
    let viewer = data_dir.join("demo-viewer-token");
    let his = data_dir.join("demo-city-his-token");
    Ok((
        kept_token(archive, admin, &viewer, SystemReads::Region).await?,
        kept_token(archive, admin, &his, SystemReads::Institution).await?,
    ))
}

/// A token of the city hospital made once and kept in `file`.
async fn kept_token(
    archive: &Archive,
    admin: &AdminGrant,
    file: &std::path::Path,
    reads: huren_access::SystemReads,
) -> anyhow::Result<String> {
    if let Ok(t) = std::fs::read_to_string(file)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_owned());
    }
    let token = archive
        .create_token(
            admin,
            TokenScope::Institution(InstitutionCode::parse(SITES[0].code)?, reads),
            None,
        )
        .await?;
    std::fs::write(file, &token.secret)?;
    Ok(token.secret)
}

/// A made-up resident identity number (GB 11643 structure, 重庆 area code) agreeing with the
/// demo person's birth date and sex.
fn resident_id(person: u64, birth: &str, sex: &str) -> String {
    let seq = 100 + person * 2 + u64::from(sex == "M");
    let first17 = format!("500101{birth}{seq:03}");
    let mut digits = [0u8; 17];
    digits.copy_from_slice(first17.as_bytes());
    format!("{first17}{}", huren_mpi::id::check_character(&digits))
}

pub async fn seed(archive: &Archive, grant: &AdminGrant) -> anyhow::Result<()> {
    if archive.counts().await?.institutions > 0 {
        tracing::info!("data directory already has institutions; demo seeding skipped");
        return Ok(());
    }
    let today = archive.today();
    let since = time::Date::from_calendar_date(2020, time::Month::January, 1)?;
    for s in SITES {
        archive
            .add_institution(
                grant,
                NewInstitution {
                    code: InstitutionCode::parse(s.code)?,
                    name: s.name.into(),
                    level: s.level,
                    ownership: s.ownership,
                    identifier_system: Some(format!("urn:oid:2.16.156.10011.1.9.{}", s.code)),
                    region: Some("川渝".into()),
                    city: Some(s.city.into()),
                    organization: None,
                    division: Some(s.division.into()),
                    valid_from: since,
                },
            )
            .await?;
    }
    archive
        .add_membership(
            grant,
            NewMembership {
                institution_code: InstitutionCode::parse("cq-town-1")?,
                consortium_code: "demo-ygt".into(),
                consortium_name: "演示县医共体".into(),
                consortium_kind: "医共体".into(),
                valid_from: since,
                valid_to: None,
            },
        )
        .await?;
    archive
        .add_send_for(grant, "cq-county-1", "cq-town-1", Some("演示镇卫生院"))
        .await?;
    archive
        .add_ae(
            grant,
            NewAe {
                institution_code: InstitutionCode::parse("cq-county-1")?,
                ae_title: AeTitle::parse("COUNTY_PACS")?,
                network: "127.0.0.0/8".parse()?,
                port: None,
                assumed_charset: None,
                stable_after_secs: None,
                default_performer_code: None,
                require_tls: false,
            },
        )
        .await?;

    // A demo catalog in huren's CSV formats: item names and validity days from published
    // regional lists (docs/catalog.md); codes and prices are made up for the demo.
    let catalog = |e: huren_archive::catalog::CatalogError| anyhow::anyhow!("demo catalog: {e:?}");
    archive
        .import_catalog(
            grant,
            "demo-川渝-2024",
            since,
            include_str!("../demo/catalog/items.csv"),
        )
        .await
        .map_err(catalog)?;
    archive
        .import_prices(grant, include_str!("../demo/catalog/prices.csv"))
        .await
        .map_err(catalog)?;
    archive
        .import_code_mappings(grant, include_str!("../demo/catalog/mappings.csv"))
        .await
        .map_err(catalog)?;
    archive
        .import_study_rules(grant, include_str!("../demo/catalog/study-rules.csv"))
        .await
        .map_err(catalog)?;
    // What the HR labels cover, so the demo's recognition decisions have a scope.
    archive
        .import_scopes(grant, include_str!("../demo/catalog/scopes.csv"))
        .await
        .map_err(catalog)?;

    let mut stored = 0;
    for (pi, (alpha, ideo, sex)) in NAMES.iter().enumerate() {
        let pi = pi as u64;
        for (si, (site, modality, slices)) in [
            ("cq-county-1", "CT", 24u16),
            ("cq-city-1", "DX", 1),
            ("cq-town-1", "MR", 12),
        ]
        .iter()
        .enumerate()
        {
            if (pi + si as u64) % 3 == 2 && *modality == "MR" {
                continue;
            }
            let sender_site = if *site == "cq-town-1" {
                "cq-county-1"
            } else {
                site
            };
            let ingest = sender_grant(archive, grant, sender_site).await?;
            let birth = format!("19{:02}0{}1{}", 50 + pi * 4, 1 + pi % 9, pi % 10);
            let patient = SynthPatient {
                id: format!(
                    "{}{:06}",
                    &site[3..].to_uppercase().replace('-', ""),
                    1000 + pi
                ),
                issuer: None,
                // The town clinic's system records no identity number: its records join the
                // person by name, birth date and sex (the score rules).
                other_id: (*site != "cq-town-1")
                    .then(|| (resident_id(pi, &birth, sex), "身份证".to_owned())),
                name: format!("{alpha}={ideo}"),
                birth_date: birth.clone(),
                sex: (*sex).into(),
            };
            let study_date = dicom_date(today, (pi * 7 + si as u64 * 3) as i64);
            let institution_name = SITES
                .iter()
                .find(|s| s.code == *site)
                .map(|s| s.name)
                .unwrap_or("");
            let description = match *modality {
                "CT" => "胸部CT平扫 CT chest plain",
                "DX" => "胸部正位 DR chest PA",
                _ => "腰椎MR平扫 MR lumbar spine plain",
            };
            stored += store_study(
                archive,
                &ingest,
                &StudySpec {
                    patient: &patient,
                    modality,
                    key: [pi, si as u64],
                    study_date: &study_date,
                    accession: &format!("A{pi}{si}"),
                    institution_name,
                    description,
                    slices: *slices,
                },
            )
            .await?;
        }
    }
    stored += first_visit_patient(archive, grant, today).await?;
    tracing::info!(instances = stored, "demo data seeded");
    println!(
        "demo data: {} institutions, {} people (patient records at several institutions), {stored} instances",
        SITES.len(),
        NAMES.len()
    );
    Ok(())
}

/// `days` before `today` as a DICOM DA.
fn dicom_date(today: time::Date, days: i64) -> String {
    let day = today
        .checked_sub(time::Duration::days(days))
        .unwrap_or(today);
    huren_types::day::da(day)
}

/// One synthetic study to store.
struct StudySpec<'a> {
    patient: &'a SynthPatient,
    modality: &'a str,
    /// Makes its UIDs.
    key: [u64; 2],
    study_date: &'a str,
    accession: &'a str,
    institution_name: &'a str,
    description: &'a str,
    slices: u16,
}

/// Stores a synthetic study as `ingest`'s sender; the number of instances stored.
async fn store_study(
    archive: &Archive,
    ingest: &IngestGrant,
    spec: &StudySpec<'_>,
) -> anyhow::Result<usize> {
    let [a, b] = spec.key;
    let study_uid = synth::uid(&[a, b]);
    let series_uid = synth::uid(&[a, b, 1]);
    let (rows, columns) = if spec.modality == "DX" {
        (512, 512)
    } else {
        (256, 256)
    };
    for n in 0..spec.slices {
        let sop_uid = synth::uid(&[a, b, 1, u64::from(n) + 1]);
        let bytes = synth::image(&SynthImage {
            patient: spec.patient,
            modality: spec.modality,
            study_uid: &study_uid,
            series_uid: &series_uid,
            sop_uid: &sop_uid,
            study_date: spec.study_date,
            study_time: "093000",
            accession: spec.accession,
            institution_name: spec.institution_name,
            study_description: spec.description,
            series_number: 1,
            instance_number: i32::from(n) + 1,
            rows,
            columns,
            slice_position: f64::from(n) * 5.0,
        });
        let mut spool = archive.spool().await?;
        spool.write(&bytes).await?;
        let spooled = spool.finish().await?;
        let status = archive
            .ingest(
                ingest,
                IngestRequest {
                    spooled,
                    expected: Expected::default(),
                    source: None,
                    settings: SenderSettings::default(),
                },
            )
            .await;
        if let IngestStatus::Refused { refusal, .. } = status {
            anyhow::bail!("demo object refused: {}", refusal.message());
        }
    }
    Ok(usize::from(spec.slices))
}

/// The first visit (issue #16, docs/recognition.md): 孙丽珍 had a chest CT at the county
/// hospital last week and has never been to the city hospital. The demo stores the CT; the
/// walkthrough printed at start registers her at the city hospital from her identity card,
/// opens the visit and asks for the reminder.
pub const FIRST_VISIT_NUMBER: u64 = 90;
const FIRST_VISIT_BIRTH: &str = "19620314";
/// The demo doctor of the city hospital the walkthrough acts for.
pub const DEMO_DOCTOR: &str = "demo.doctor";
/// A demo password, printed at start: real accounts get theirs from the person.
pub const DEMO_DOCTOR_PASSWORD: &str = "demo-doctor-2026";

fn first_visit_id() -> String {
    resident_id(FIRST_VISIT_NUMBER, FIRST_VISIT_BIRTH, "F")
}

async fn first_visit_patient(
    archive: &Archive,
    grant: &AdminGrant,
    today: time::Date,
) -> anyhow::Result<usize> {
    archive
        .add_user(
            grant,
            huren_archive::accounts::UserRequest {
                username: DEMO_DOCTOR,
                display_name: "周明",
                role: huren_access::Role::Doctor,
                institution_code: SITES[0].code,
                department: Some("呼吸内科"),
                password: DEMO_DOCTOR_PASSWORD,
            },
        )
        .await?;
    let patient = SynthPatient {
        id: "COUNTY009090".into(),
        issuer: None,
        other_id: Some((first_visit_id(), "身份证".into())),
        name: "Sun^Lizhen=孙^丽珍".into(),
        birth_date: FIRST_VISIT_BIRTH.into(),
        sex: "F".into(),
    };
    let study_date = dicom_date(today, 6);
    let ingest = sender_grant(archive, grant, "cq-county-1").await?;
    store_study(
        archive,
        &ingest,
        &StudySpec {
            patient: &patient,
            modality: "CT",
            key: [FIRST_VISIT_NUMBER, 0],
            study_date: &study_date,
            accession: "A-FV1",
            institution_name: SITES[1].name,
            description: "胸部CT平扫 CT chest plain",
            slices: 24,
        },
    )
    .await
}

/// The first visit as three calls the city's HIS makes, ready to paste.
pub fn first_visit_walkthrough(http: &str, token: &str) -> String {
    let system = format!("urn:oid:2.16.156.10011.1.9.{}", SITES[0].code);
    let id = first_visit_id();
    let patient = format!(
        r#"{{"resourceType":"Patient","identifier":[{{"system":"{system}","value":"MZ0001"}},{{"system":"urn:huren:id:cn-resident","value":"{id}"}}],"name":[{{"family":"孙","given":["丽珍"]}}],"gender":"female","birthDate":"1962-03-14"}}"#
    );
    format!(
        "first visit / 首诊 — 孙丽珍 has a chest CT at {county} and has never been to {city}:\n\
         \x20 1. the city's HIS registers her from her identity card:\n\
         \x20    curl -X PUT 'http://{http}/fhir/Patient?identifier={system}|MZ0001' -H 'Authorization: Bearer {token}' -H 'Content-Type: application/fhir+json' -d '{patient}'\n\
         \x20 2. opens the visit for {doctor}:\n\
         \x20    curl -X POST http://{http}/api/encounters -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"visit_number\":\"V0001\",\"patient_id\":\"MZ0001\",\"doctor\":\"{doctor}\"}}'\n\
         \x20 3. asks for the recognition reminder, for the doctor:\n\
         \x20    curl -X POST http://{http}/api/recognition/reminders -H 'Authorization: Bearer {token}' -H 'X-Huren-On-Behalf-Of: {doctor}' -H 'Content-Type: application/json' -d '{{\"patient_id\":\"MZ0001\"}}'\n\
         \x20 4. launches the doctor's workstation in one click (open the \"url\" it answers in a browser):\n\
         \x20    curl -X POST http://{http}/api/launch -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"doctor\":\"{doctor}\",\"patient_id\":\"MZ0001\"}}'\n\
         \x20 (or the doctor signs in at http://{http}/ as {doctor} / {password} and finds her by identity number {id})",
        county = SITES[1].name,
        city = SITES[0].name,
        doctor = DEMO_DOCTOR,
        password = DEMO_DOCTOR_PASSWORD,
    )
}
