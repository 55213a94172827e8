//! Properties over generated facts: never recognizable outside the validity window, and the
//! same facts always give the same decision.

use huren_recognition::*;
use huren_types::{InstitutionLevel, Ownership};
use proptest::prelude::*;
use time::{Date, Duration};

fn institution(code: &str, level: InstitutionLevel, ownership: Ownership) -> Institution {
    Institution {
        code: code.into(),
        organization: code.into(),
        name: code.into(),
        level,
        ownership,
        areas: vec!["region:川渝".into()],
        place: None,
    }
}

prop_compose! {
    fn facts()(
        validity in 0u32..120,
        report_offset in 0i64..2000,
        age in -5i64..200,
        has_report in any::<bool>(),
        level in prop::sample::select(vec![InstitutionLevel::Tertiary, InstitutionLevel::Secondary, InstitutionLevel::Primary, InstitutionLevel::Other]),
        private in any::<bool>(),
        grade in prop::sample::select(vec![Some(QcGrade::A), Some(QcGrade::B), Some(QcGrade::C), Some(QcGrade::Reject), None]),
        lossy in any::<bool>(),
        complete in prop::option::of(any::<bool>()),
        record in prop::option::of((0i64..2000, 0i64..800)),
    ) -> Facts {
        let epoch = Date::from_calendar_date(2020, time::Month::January, 1).expect("date");
        let day = epoch + Duration::days(report_offset);
        let qualifications = record.map(|(from, len)| Qualification {
            institution: "a".into(), item: "*".into(), scope_label: "川渝HR".into(),
            covers: vec!["region:川渝".into()], evaluated_by: EvaluatedBy::City,
            valid_from: epoch + Duration::days(from), valid_until: epoch + Duration::days(from + len),
            record: "R1".into(),
        }).into_iter().collect();
        Facts {
            result_item: Some(Item {
                code: "I".into(), name_zh: "项目".into(), name_en: None, validity_days: validity,
                scope_label: Some("川渝HR".into()), covers: vec!["region:川渝".into()], equivalent: vec![],
                min_qc: Some(QcGrade::B),
            }),
            ordered_item: None,
            evidence: Evidence::Imaging { qc: grade.map_or(Qc::Absent, Qc::Graded), complete, lossy },
            report_date: has_report.then_some(day),
            study_date: Some(day - Duration::days(1)),
            performer: institution("a", level, if private { Ownership::Private } else { Ownership::Public }),
            qualifications,
            receiver: institution("b", InstitutionLevel::Tertiary, Ownership::Public),
            today: day + Duration::days(age),
            policy: Policy::default(),
            area_names: Default::default(),
        }
    }
}

proptest! {
    #[test]
    fn never_recognizable_outside_validity(f in facts()) {
        let d = decide(&f);
        let reference = f.report_date.or(f.study_date).expect("a date");
        let last = reference + Duration::days(i64::from(f.result_item.as_ref().expect("item").validity_days));
        if f.today > last {
            prop_assert_ne!(d.verdict, Verdict::Recognizable);
            prop_assert!(d.reasons.iter().any(|r| r.code == "expired"));
        }
        prop_assert_eq!(d.valid_through, Some(last));
    }

    #[test]
    fn decisions_are_deterministic(f in facts()) {
        prop_assert_eq!(decide(&f), decide(&f.clone()));
    }

    #[test]
    fn the_verdict_is_the_worst_reason(f in facts()) {
        let d = decide(&f);
        let worst = d.reasons.iter().map(|r| r.verdict).min().unwrap_or(Verdict::Recognizable);
        prop_assert_eq!(d.verdict, worst);
    }
}
