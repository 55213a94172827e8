//! Tests of the migrations' triggers against a real SQLite file.

use crate::sqlite::SqliteIndex;
use huren_archive::model::*;
use huren_archive::ports::*;

#[cfg(test)]
mod person_revision_tests {
    //! Migration 0036's triggers: each change a judged timeline is made of bumps the revision
    //! of every person it concerns, and the QC queue's bookkeeping does not.
    use super::*;

    pub(super) async fn exec(index: &SqliteIndex, sql: &str) {
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&index.pool)
            .await
        {
            panic!("{sql}: {e}");
        }
    }

    async fn revision(index: &SqliteIndex, person: &str) -> i64 {
        match index.person_revision(person).await {
            Ok(Some(r)) => r,
            other => panic!("{person}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_change_to_a_persons_results_bumps_their_revision() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = SqliteIndex::open(&dir.path().join("index.sqlite"))
            .await
            .expect("index");
        exec(
            &index,
            "INSERT INTO institution (id, code, created_at) VALUES (1, 'county', 0), (2, 'town', 0);
             INSERT INTO person (id, public_id, created_at) VALUES (1, 'a', 0), (2, 'b', 0), (3, 'c', 0);
             INSERT INTO patient (id, issuer, patient_id, updated_at, person_id)
                  VALUES (1, 'county', 'A1', 0, 1), (2, 'county', 'B1', 0, 2), (3, 'town', 'C1', 0, 3)",
        )
        .await;
        assert_eq!(revision(&index, "a").await, 0);
        assert_eq!(index.person_revision("nobody").await.ok(), Some(None));

        // Each step: (what changes, the revision a, b and c should have after it).
        let steps: [(&str, [i64; 3]); 11] = [
            (
                "INSERT INTO study (id, patient_id, study_uid, institution_id, last_instance_at, stable_after_secs)
                      VALUES (1, 1, '1.2.3', 1, 0, 60)",
                [1, 0, 0],
            ),
            // An instance stored: its study's counts change.
            ("UPDATE study SET num_instances = num_instances + 1 WHERE id = 1", [2, 0, 0]),
            // The same UID at another institution, for person c: both persons' results read
            // encodings and grades by UID.
            (
                "INSERT INTO study (id, patient_id, study_uid, institution_id, last_instance_at, stable_after_secs)
                      VALUES (2, 3, '1.2.3', 2, 0, 60)",
                [3, 0, 1],
            ),
            ("INSERT INTO qc_study (study_id, dirty, changed_at) VALUES (1, 1, 0)", [4, 0, 2]),
            // The queue's bookkeeping alone: no change.
            ("UPDATE qc_study SET dirty = 0, changed_at = 5 WHERE study_id = 1", [4, 0, 2]),
            ("UPDATE qc_study SET grade = 'A', aggregated_at = 9 WHERE study_id = 1", [5, 0, 3]),
            (
                "INSERT INTO lab_result (id, patient_id, performing_institution_id, code, created_at)
                      VALUES (1, 2, 1, '2345-7', 0)",
                [5, 1, 3],
            ),
            ("UPDATE lab_result SET superseded_by = 1 WHERE id = 1", [5, 2, 3]),
            (
                "INSERT INTO report (id, patient_id, performing_institution_id, created_at)
                      VALUES (1, 1, 1, 0)",
                [6, 2, 3],
            ),
            // B's record merged into A: both persons change.
            ("UPDATE patient SET person_id = 1 WHERE id = 2", [7, 3, 3]),
            ("DELETE FROM report WHERE id = 1", [8, 3, 3]),
        ];
        for (sql, want) in steps {
            exec(&index, sql).await;
            let got = [
                revision(&index, "a").await,
                revision(&index, "b").await,
                revision(&index, "c").await,
            ];
            assert_eq!(got, want, "after {sql}");
        }
    }
}

#[cfg(test)]
mod qc_rollup_tests {
    //! Migration 0040's triggers: after studies are graded, regraded, moved to another month,
    //! modality or institution, and removed, the roll-up answers what counting the studies
    //! answers.
    use super::person_revision_tests::exec;
    use super::*;

    async fn both(index: &SqliteIndex) -> (Vec<QcCell>, Vec<QcCell>) {
        let months = QcSpan::Months {
            from: "202501".into(),
            until: "202512".into(),
        };
        let days = QcSpan::Days {
            from: "20250101".into(),
            until: "20251231".into(),
        };
        let sorted = |mut v: Vec<QcCell>| {
            v.sort_by(|a, b| {
                (&a.month, &a.institution, &a.modalities).cmp(&(
                    &b.month,
                    &b.institution,
                    &b.modalities,
                ))
            });
            v
        };
        let by = huren_archive::quality::QualityBy::Cell;
        let a = index.qc_cells(&months, None, by).await.expect("months");
        let b = index.qc_cells(&days, None, by).await.expect("days");
        (sorted(a), sorted(b))
    }

    #[tokio::test]
    async fn the_rollup_counts_what_the_studies_count() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = SqliteIndex::open(&dir.path().join("index.sqlite"))
            .await
            .expect("index");
        exec(
            &index,
            "INSERT INTO institution (id, code, created_at) VALUES (1, 'county', 0), (2, 'town', 0);
             INSERT INTO patient (id, issuer, patient_id, updated_at) VALUES (1, 'county', 'A1', 0);
             INSERT INTO study (id, patient_id, study_uid, institution_id, study_date, modalities, last_instance_at, stable_after_secs)
                  VALUES (1, 1, '1.1', 1, '20250103', 'CT', 0, 60), (2, 1, '1.2', 1, '20250117', 'CT', 0, 60),
                         (3, 1, '1.3', 2, '20250205', 'DX', 0, 60), (4, 1, '1.4', 1, '20250211', 'CT', 0, 60),
                         (5, 1, '1.5', 1, '', 'CT', 0, 60);
             INSERT INTO qc_study (study_id, dirty, changed_at) VALUES (1, 1, 0), (2, 1, 0), (3, 1, 0), (4, 1, 0), (5, 1, 0)",
        )
        .await;
        let (rolled, counted) = both(&index).await;
        assert!(rolled.is_empty() && counted.is_empty());
        let steps = [
            // Graded as aggregation writes it.
            "UPDATE qc_study SET dirty = 0, aggregated_at = 10, score = 91.5, grade = 'A', calibrated = 1, complete = 1 WHERE study_id = 1",
            "UPDATE qc_study SET dirty = 0, aggregated_at = 10, score = 64.0, grade = 'C', calibrated = 0, complete = 0 WHERE study_id = 2",
            "UPDATE qc_study SET dirty = 0, aggregated_at = 10, score = 100, grade = 'A', calibrated = 1 WHERE study_id = 3",
            "UPDATE qc_study SET dirty = 0, aggregated_at = 10, score = NULL, grade = NULL WHERE study_id = 4",
            // No study date: not counted anywhere.
            "UPDATE qc_study SET dirty = 0, aggregated_at = 10, score = 50, grade = 'reject' WHERE study_id = 5",
            // Regraded after a late series.
            "UPDATE qc_study SET aggregated_at = 20, score = 58.2, grade = 'reject' WHERE study_id = 1",
            // The study gains a modality, changes month, changes institution.
            "UPDATE study SET modalities = 'CT\\SR' WHERE id = 2",
            "UPDATE study SET study_date = '20250301' WHERE id = 4",
            "UPDATE study SET institution_id = 1 WHERE id = 3",
            // Back to waiting (dirty, no grade yet), then removed.
            "UPDATE qc_study SET aggregated_at = NULL, score = NULL, grade = NULL WHERE study_id = 2",
            "DELETE FROM qc_study WHERE study_id = 3",
        ];
        for step in steps {
            exec(&index, step).await;
            let (rolled, counted) = both(&index).await;
            assert_eq!(rolled, counted, "after {step}");
        }
        let (rolled, _) = both(&index).await;
        let studies: u64 = rolled.iter().map(|c| c.studies).sum();
        assert_eq!(studies, 2, "{rolled:?}");
        assert!(rolled.iter().any(|c| c.reject == 1 && c.histogram[11] == 1));
    }
}
