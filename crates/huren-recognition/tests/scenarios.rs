//! Table-driven scenarios: each rule at its boundaries. A base case (a county hospital's chest CT,
//! graded 甲, reported 2025-03-01, asked about at the city hospital) is recognizable; each row
//! changes one fact and names the verdict and reasons it must give. The decisions of every row
//! are also compared with a committed snapshot (tests/snapshots/scenarios.json), so a change in
//! wording or order is seen in review; `UPDATE_SNAPSHOTS=1` rewrites it.

use huren_recognition::*;
use huren_types::{InstitutionLevel, Ownership};
use time::macros::date;

fn institution(code: &str, level: InstitutionLevel, ownership: Ownership) -> Institution {
    Institution {
        code: code.into(),
        organization: code.into(),
        name: format!("{code}医院"),
        level,
        ownership,
        areas: vec![
            "province:重庆".into(),
            "region:川渝".into(),
            "city:重庆".into(),
        ],
    }
}

fn ct_item() -> Item {
    Item {
        code: "IMG-CT-CHEST-PLAIN".into(),
        name_zh: "胸部CT平扫".into(),
        name_en: Some("CT chest plain".into()),
        validity_days: 7,
        scope_label: Some("川渝HR".into()),
        covers: vec!["region:川渝".into()],
        equivalent: vec![],
        min_qc: Some(QcGrade::B),
    }
}

fn base() -> Facts {
    Facts {
        result_item: Some(ct_item()),
        ordered_item: None,
        evidence: images(Qc::Graded(QcGrade::A), true, false),
        report_date: Some(date!(2025 - 03 - 01)),
        study_date: Some(date!(2025 - 02 - 28)),
        performer: institution("county", InstitutionLevel::Secondary, Ownership::Public),
        qualifications: vec![],
        receiver: institution("city", InstitutionLevel::Tertiary, Ownership::Public),
        today: date!(2025 - 03 - 05),
        policy: Policy::default(),
    }
}

fn qualification(
    valid_from: time::Date,
    valid_until: time::Date,
    by: EvaluatedBy,
) -> Qualification {
    Qualification {
        institution: "town".into(),
        item: "*".into(),
        scope_label: "渝HR".into(),
        covers: vec!["province:重庆".into()],
        evaluated_by: by,
        valid_from,
        valid_until,
        record: "QC-2024-017".into(),
    }
}

fn town(f: &mut Facts) {
    f.performer = institution("town", InstitutionLevel::Primary, Ownership::Public);
}

/// Images graded `qc`, complete or not, lossy or not.
fn images(qc: Qc, complete: bool, lossy: bool) -> Evidence {
    Evidence::Imaging {
        qc,
        complete: Some(complete),
        lossy,
    }
}

fn lab(status: LabStatus) -> impl Fn(&mut Facts) {
    move |f: &mut Facts| {
        f.evidence = Evidence::Lab { status };
        f.result_item = Some(Item {
            code: "LAB-K".into(),
            name_zh: "钾".into(),
            name_en: Some("Potassium".into()),
            validity_days: 7,
            scope_label: Some("川渝HR".into()),
            covers: vec!["region:川渝".into()],
            equivalent: vec![],
            min_qc: None,
        });
    }
}

type Change = Box<dyn Fn(&mut Facts)>;

fn rows() -> Vec<(&'static str, Change, Verdict, Vec<&'static str>)> {
    use Verdict::*;
    vec![
        ("base case", Box::new(|_| {}), Recognizable, vec![]),
        // Validity: reported 2025-03-01 with 7 days → recognizable through 03-08, not on 03-09.
        (
            "validity, last day",
            Box::new(|f| f.today = date!(2025 - 03 - 08)),
            Recognizable,
            vec![],
        ),
        (
            "validity, the day after",
            Box::new(|f| f.today = date!(2025 - 03 - 09)),
            NotRecognizable,
            vec!["expired"],
        ),
        (
            "no report: the study date counts",
            Box::new(|f| {
                f.report_date = None;
                f.today = date!(2025 - 03 - 08)
            }),
            NotRecognizable,
            vec!["expired"],
        ),
        (
            "no report, study date's last day",
            Box::new(|f| {
                f.report_date = None;
                f.today = date!(2025 - 03 - 07)
            }),
            Recognizable,
            vec![],
        ),
        (
            "no date at all",
            Box::new(|f| {
                f.report_date = None;
                f.study_date = None
            }),
            NotRecognizable,
            vec!["no_date"],
        ),
        // Outside: another campus of the same hospital is not outside.
        (
            "same institution, other campus",
            Box::new(|f| f.performer.organization = "city".into()),
            NotRecognizable,
            vec!["same_institution"],
        ),
        // Catalog and equivalence.
        (
            "not in the catalog",
            Box::new(|f| f.result_item = None),
            NotRecognizable,
            vec!["item_not_in_catalog"],
        ),
        (
            "ordered the same item",
            Box::new(|f| f.ordered_item = Some(ct_item())),
            Recognizable,
            vec![],
        ),
        (
            "ordered another item",
            Box::new(|f| {
                let mut o = ct_item();
                o.code = "IMG-CT-ABD".into();
                o.name_zh = "腹部CT平扫".into();
                o.name_en = Some("CT abdomen plain".into());
                f.ordered_item = Some(o)
            }),
            NotRecognizable,
            vec!["item_differs"],
        ),
        (
            "ordered an item this one is equivalent to",
            Box::new(|f| {
                let mut o = ct_item();
                o.code = "IMG-CT-CHEST-LDCT".into();
                o.equivalent = vec!["IMG-CT-CHEST-PLAIN".into()];
                f.ordered_item = Some(o)
            }),
            Recognizable,
            vec![],
        ),
        // Qualification, judged at the result's date.
        (
            "performer below level, no record",
            Box::new(town),
            NotRecognizable,
            vec!["below_level_without_qualification"],
        ),
        (
            "performer below level, city evaluation in force",
            Box::new(|f| {
                town(f);
                f.qualifications = vec![qualification(
                    date!(2024 - 06 - 01),
                    date!(2025 - 05 - 31),
                    EvaluatedBy::City,
                )]
            }),
            Recognizable,
            vec![],
        ),
        (
            "performer below level, county evaluation only",
            Box::new(|f| {
                town(f);
                f.qualifications = vec![qualification(
                    date!(2024 - 06 - 01),
                    date!(2025 - 05 - 31),
                    EvaluatedBy::County,
                )]
            }),
            NotRecognizable,
            vec!["qualification_evaluator_too_low"],
        ),
        (
            "qualification lapsed before the exam",
            Box::new(|f| {
                town(f);
                f.qualifications = vec![qualification(
                    date!(2023 - 06 - 01),
                    date!(2024 - 05 - 31),
                    EvaluatedBy::City,
                )]
            }),
            NotRecognizable,
            vec!["qualification_not_in_force"],
        ),
        (
            "qualification lapsed after the exam (judged at the result's date)",
            Box::new(|f| {
                town(f);
                f.qualifications = vec![qualification(
                    date!(2024 - 03 - 01),
                    date!(2025 - 03 - 02),
                    EvaluatedBy::City,
                )];
                f.today = date!(2025 - 03 - 06)
            }),
            Recognizable,
            vec![],
        ),
        (
            "qualification starting the day after the report",
            Box::new(|f| {
                town(f);
                f.qualifications = vec![qualification(
                    date!(2025 - 03 - 02),
                    date!(2026 - 03 - 01),
                    EvaluatedBy::City,
                )]
            }),
            NotRecognizable,
            vec!["qualification_not_in_force"],
        ),
        (
            "private, no record",
            Box::new(|f| f.performer.ownership = Ownership::Private),
            NotRecognizable,
            vec!["private_without_qualification"],
        ),
        (
            "private, with a record",
            Box::new(|f| {
                f.performer.ownership = Ownership::Private;
                let mut q = qualification(
                    date!(2024 - 01 - 01),
                    date!(2025 - 12 - 31),
                    EvaluatedBy::Province,
                );
                q.institution = "county".into();
                f.qualifications = vec![q]
            }),
            Recognizable,
            vec![],
        ),
        // Scope.
        (
            "scope does not cover the receiver",
            Box::new(|f| f.receiver.areas = vec!["province:湖北".into()]),
            NotRecognizable,
            vec!["scope_excludes_receiver"],
        ),
        (
            "record's scope narrower than the receiver",
            Box::new(|f| {
                town(f);
                f.qualifications = vec![qualification(
                    date!(2024 - 06 - 01),
                    date!(2025 - 05 - 31),
                    EvaluatedBy::City,
                )];
                f.receiver.areas = vec!["region:川渝".into(), "province:四川".into()]
            }),
            NotRecognizable,
            vec!["scope_excludes_receiver"],
        ),
        (
            "national scope",
            Box::new(|f| {
                if let Some(i) = f.result_item.as_mut() {
                    i.covers = vec!["national".into()];
                    i.scope_label = Some("全国HR".into())
                }
                f.receiver.areas = vec!["province:湖北".into()]
            }),
            Recognizable,
            vec![],
        ),
        // Quality.
        (
            "QC at the item's minimum",
            Box::new(|f| f.evidence = images(Qc::Graded(QcGrade::B), true, false)),
            Recognizable,
            vec![],
        ),
        (
            "QC below the item's minimum",
            Box::new(|f| f.evidence = images(Qc::Graded(QcGrade::C), true, false)),
            NotRecognizable,
            vec!["qc_below_minimum"],
        ),
        (
            "QC reject",
            Box::new(|f| f.evidence = images(Qc::Graded(QcGrade::Reject), true, false)),
            NotRecognizable,
            vec!["qc_below_minimum"],
        ),
        (
            "QC absent",
            Box::new(|f| f.evidence = images(Qc::Absent, true, false)),
            ReferenceOnly,
            vec!["qc_absent"],
        ),
        (
            "QC uncalibrated",
            Box::new(|f| f.evidence = images(Qc::Uncalibrated, true, false)),
            ReferenceOnly,
            vec!["qc_uncalibrated"],
        ),
        (
            "QC absent, policy recognizes",
            Box::new(|f| {
                f.evidence = images(Qc::Absent, true, false);
                f.policy.without_qc = Verdict::Recognizable
            }),
            Recognizable,
            vec![],
        ),
        (
            "incomplete series",
            Box::new(|f| f.evidence = images(Qc::Graded(QcGrade::A), false, false)),
            ReferenceOnly,
            vec!["series_incomplete"],
        ),
        (
            "lossy images",
            Box::new(|f| f.evidence = images(Qc::Graded(QcGrade::A), true, true)),
            NotRecognizable,
            vec!["lossy_images"],
        ),
        (
            "lossy images, policy allows",
            Box::new(|f| {
                f.evidence = images(Qc::Graded(QcGrade::A), true, true);
                f.policy.allow_lossy = true
            }),
            Recognizable,
            vec![],
        ),
        // Lab status.
        (
            "lab, final",
            Box::new(lab(LabStatus::Final)),
            Recognizable,
            vec![],
        ),
        (
            "lab, corrected",
            Box::new(lab(LabStatus::Corrected)),
            Recognizable,
            vec![],
        ),
        (
            "lab, preliminary",
            Box::new(lab(LabStatus::Preliminary)),
            ReferenceOnly,
            vec!["preliminary"],
        ),
        (
            "lab, withdrawn",
            Box::new(lab(LabStatus::Withdrawn)),
            NotRecognizable,
            vec!["withdrawn"],
        ),
        // Several reasons: all are listed, the worst decides.
        (
            "expired and QC absent",
            Box::new(|f| {
                f.today = date!(2025 - 04 - 01);
                f.evidence = images(Qc::Absent, true, false)
            }),
            NotRecognizable,
            vec!["expired", "qc_absent"],
        ),
    ]
}

#[test]
fn every_rule_at_its_boundaries() {
    let mut snapshot = Vec::new();
    for (name, change, verdict, codes) in rows() {
        let mut f = base();
        change(&mut f);
        let d = decide(&f);
        let got: Vec<&str> = d.reasons.iter().map(|r| r.code).collect();
        assert_eq!(
            (d.verdict, got),
            (verdict, codes),
            "{name}: {}",
            d.explanation_en
        );
        // Recognizable decisions carry their HR label; others none.
        assert_eq!(
            d.scope_label.is_some(),
            verdict == Verdict::Recognizable,
            "{name}"
        );
        assert!(!d.explanation_zh.is_empty() && !d.explanation_en.is_empty());
        snapshot.push(serde_json::json!({ "scenario": name, "decision": d }));
    }
    let text = serde_json::to_string_pretty(&snapshot).expect("json") + "\n";
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/scenarios.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).expect("write snapshot");
    }
    let want = std::fs::read_to_string(&path).expect("snapshot (UPDATE_SNAPSHOTS=1 writes it)");
    assert!(
        want == text,
        "decisions differ from tests/snapshots/scenarios.json (UPDATE_SNAPSHOTS=1 after review)"
    );
}

#[test]
fn a_qualification_record_names_itself_and_its_label() {
    let mut f = base();
    town(&mut f);
    f.qualifications = vec![qualification(
        date!(2024 - 06 - 01),
        date!(2025 - 05 - 31),
        EvaluatedBy::City,
    )];
    let d = decide(&f);
    assert_eq!(d.scope_label.as_deref(), Some("渝HR"));
    assert_eq!(d.qualification.as_deref(), Some("QC-2024-017"));
    assert_eq!(d.valid_through, Some(date!(2025 - 03 - 08)));
    assert_eq!(
        d.explanation_zh,
        "可互认（渝HR）：town医院胸部CT平扫，有效至2025-03-08"
    );
}

#[test]
fn reasons_and_record_sentences() {
    // Without a region's policy, the reasons are the platform's.
    let platform = RegionPolicy::default();
    assert_eq!(REEXAM_REASONS.len(), 8);
    assert!(
        platform
            .reason("06")
            .is_some_and(|r| r.needs_note && r.counts)
    );
    assert!(platform.reason("98").is_some_and(|r| !r.counts));
    assert!(platform.reason("99").is_some_and(|r| !r.counts));
    assert!(platform.reason("07").is_none());
    assert_eq!(
        record_sentence(
            true,
            "县人民医院",
            "胸部CT平扫",
            Some(date!(2025 - 03 - 01)),
            Some("川渝HR"),
            None,
            None
        ),
        "认可县人民医院2025-03-01胸部CT平扫结果（川渝HR互认），不再重复检查。"
    );
    assert_eq!(
        record_sentence(
            false,
            "县人民医院",
            "钾",
            Some(date!(2025 - 03 - 01)),
            None,
            platform.reason("06"),
            Some("术前复核")
        ),
        "县人民医院2025-03-01钾结果未予互认，重新检查。原因：其他确需复查的情形（术前复核）。已告知患者复查原因、必要性及可能影响。"
    );
}
