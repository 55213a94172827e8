//! Table-driven scenarios: each rule at its boundaries. A base case (a county hospital's chest CT,
//! graded 甲, reported 2025-03-01, asked about at the city hospital) is recognizable; each row
//! changes one fact and names the verdict and reasons it must give. The decisions of every row
//! are also compared with a committed snapshot (insta: tests/snapshots/scenarios__scenarios.snap),
//! so a change in wording or order is seen in review.

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
        // GB/T 2260: 渝中区, its prefecture, 重庆市.
        areas: vec![
            "division:500103".into(),
            "division:500100".into(),
            "division:500000".into(),
        ],
        place: Some("重庆市渝中区".into()),
    }
}

fn ct_item() -> Item {
    Item {
        code: "IMG-CT-CHEST-PLAIN".into(),
        name_zh: "胸部CT平扫".into(),
        name_en: Some("CT chest plain".into()),
        validity_days: 7,
        scope_label: Some("川渝HR".into()),
        covers: chuanyu(),
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
        area_names: [("division:500000", "重庆市"), ("division:510000", "四川省")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

/// 川渝: 重庆市 and 四川省, whose prefectures and counties they cover.
fn chuanyu() -> Vec<String> {
    vec!["division:500000".into(), "division:510000".into()]
}

/// A receiver placed at a county of `province` (its lineage of division keys).
fn placed(f: &mut Facts, county: &str, place: &str) {
    let prefecture = format!("{}00", &county[..4]);
    let province = format!("{}0000", &county[..2]);
    f.receiver.areas = [county, prefecture.as_str(), province.as_str()]
        .iter()
        .map(|c| format!("division:{c}"))
        .collect();
    f.receiver.place = Some(place.into());
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
        covers: vec!["division:500000".into()],
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
            covers: chuanyu(),
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
            "not in the catalog: reference only",
            Box::new(|f| f.result_item = None),
            ReferenceOnly,
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
            Box::new(|f| placed(f, "420106", "湖北省武汉市武昌区")),
            NotRecognizable,
            vec!["scope_excludes_receiver"],
        ),
        (
            "a province's scope covers its counties",
            Box::new(|f| placed(f, "510107", "四川省成都市武侯区")),
            Recognizable,
            vec![],
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
                placed(f, "510107", "四川省成都市武侯区")
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
                placed(f, "420106", "湖北省武汉市武昌区")
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
        // Every decision names the records it consulted, starting with the performer.
        assert_eq!(
            d.consulted.first().map(|c| c.what),
            Some("performer"),
            "{name}"
        );
        snapshot.push(serde_json::json!({ "scenario": name, "decision": d }));
    }
    // Every decision with its reasons and its zh/en explanation, pinned: a change in wording
    // or order shows in review (`cargo insta review`, or read the .snap file).
    insta::assert_json_snapshot!("scenarios", snapshot);
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

#[test]
fn explanations_name_places_and_every_record_consulted() {
    let mut f = base();
    placed(&mut f, "420106", "湖北省武汉市武昌区");
    let d = decide(&f);
    assert_eq!(
        d.reasons[0].zh,
        "互认范围川渝HR（重庆市、四川省）不包括cityж医院（湖北省武汉市武昌区）".replace("ж", "")
    );
    let what: Vec<&str> = d.consulted.iter().map(|c| c.what).collect();
    assert_eq!(
        what,
        [
            "performer",
            "qualification",
            "scope",
            "validity",
            "qc",
            "series",
            "compression"
        ]
    );
    assert!(!d.consulted[2].met && d.consulted[3].met);
    // A lapsed record is named even when the hospital is qualified by default.
    let mut f = base();
    let mut q = qualification(
        date!(2023 - 01 - 01),
        date!(2023 - 12 - 31),
        EvaluatedBy::City,
    );
    q.institution = "county".into();
    f.qualifications = vec![q];
    let d = decide(&f);
    assert_eq!(d.verdict, Verdict::Recognizable);
    let q: Vec<&Consulted> = d
        .consulted
        .iter()
        .filter(|c| c.what == "qualification")
        .collect();
    assert_eq!(q.len(), 2);
    assert!(!q[0].met && q[0].zh.contains("QC-2024-017") && q[0].zh.contains("不在有效期内"));
    assert!(q[1].met && q[1].zh.contains("默认"));
}
