//! Times the store's part of HL7 ingest alone: `commit_oru` for ORU messages of 1 OBR + 20
//! OBX, one at a time and from N concurrent tasks (as N MLLP connections would), on a fresh
//! index in a temporary directory with the serving settings (WAL, synchronous=FULL).
//!
//! `cargo run --release -p huren-store --example oru_commit -- [messages] [tasks]`

use huren_access::{AuditAction, AuditEvent, Outcome};
use huren_archive::model::*;
use huren_archive::ports::*;
use huren_store::SqliteIndex;
use std::sync::Arc;
use std::time::Instant;

fn oru(sender: i64, task: usize, k: usize) -> NewOru {
    let results = (1..=20)
        .map(|i| NewLabResult {
            placer_order: Some(format!("P{k}")),
            filler_order: Some(format!("F{task}-{k}")),
            order_code: Some("PANEL".into()),
            set_id: Some(i),
            value_type: Some("NM".into()),
            code: format!("{}-0", 1000 + i),
            code_system: Some("LN".into()),
            value: Some(format!("{i}.5")),
            value_num: Some(i as f64 + 0.5),
            unit: Some("mmol/L".into()),
            unit_ucum: Some("mmol/L".into()),
            reference_range: Some("1-9".into()),
            abnormal_flag: Some("N".into()),
            status: Some("F".into()),
            observed_at: Some("20250301083000".into()),
            observed_instant: Some(1_740_789_000),
            ..Default::default()
        })
        .collect();
    NewOru {
        source: ResultSource::Hl7 {
            sender_id: sender,
            control_id: format!("B{task}-{k}"),
            message_type: "ORU^R01".into(),
            version: "2.5.1".into(),
            sha256: format!("{task:032}{k:032}"),
        },
        performing_institution_id: 1,
        patient_issuer: "urn:oid:1.2.3".into(),
        patient_id: format!("P{task}-{}", k % 200),
        patient_name: Some("王^五".into()),
        name_alphabetic: None,
        name_ideographic: Some("王^五".into()),
        name_key: Some("wang wu".into()),
        birth_date: Some("19700101".into()),
        sex: Some("M".into()),
        new_person_public_id: uuid::Uuid::now_v7().to_string(),
        identifiers: Vec::new(),
        orders: vec![NewOrder {
            category: ReportCategory::Lab,
            study_uid: None,
            accession_number: None,
            placer_order: Some(format!("P{k}")),
            filler_order: Some(format!("F{task}-{k}")),
            identifier: None,
            procedure_code: Some("PANEL".into()),
            procedure_code_system: Some("L".into()),
            procedure_text: Some("Panel".into()),
            text: None,
            status: Some("F".into()),
            specimen: None,
            effective_at: Some("20250301080000".into()),
            effective_instant: Some(1_740_787_200),
            reported_at: None,
            reported_instant: None,
            results,
        }],
        loose_results: Vec::new(),
    }
}

fn audit() -> AuditEvent {
    AuditEvent {
        action: AuditAction::ResultsStored,
        outcome: Outcome::Success,
        actor: "hl7:1".into(),
        institution: Some("bench".into()),
        patient: None,
        study_uid: None,
        object: None,
        source_address: None,
        detail: serde_json::json!({ "results": 20 }),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let messages: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let tasks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let dir = tempfile::tempdir()?;
    let index = Arc::new(SqliteIndex::open(&dir.path().join("index.sqlite")).await?);
    index
        .add_institution(NewInstitution {
            code: huren_types::InstitutionCode::parse("bench")?,
            name: "bench".into(),
            level: huren_types::InstitutionLevel::Secondary,
            ownership: huren_types::Ownership::Public,
            identifier_system: None,
            region: None,
            city: None,
            organization: None,
            division: None,
            valid_from: time::macros::date!(2020 - 01 - 01),
        })
        .await?;
    let sender = index
        .add_hl7_sender("bench", "127.0.0.1/32".parse()?, None, None)
        .await?;
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let index = index.clone();
        handles.push(tokio::spawn(async move {
            for k in 0..messages / tasks {
                index.commit_oru(oru(sender, task, k), audit()).await?;
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "{:.0} messages/s ({} messages of 20 results, {tasks} concurrent tasks)",
        (messages / tasks * tasks) as f64 / dt,
        messages / tasks * tasks
    );
    Ok(())
}
