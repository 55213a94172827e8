//! Image quality control on every stored image (issue #8, docs/quality.md): workers claim
//! images from the index's queue, read the header and one frame, score them with the pure
//! scorers of `huren-quality`, and store the result; stable studies are aggregated into a grade
//! (甲/乙/丙/废片) that recognition reads through its QC port.
//!
//! Ingest never waits for any of this: the job row is written with the instance, and scoring
//! happens after the acknowledgment.

use crate::Archive;
use crate::model::{QcImageOutcome, QcJob, QcStudyOutcome};
use crate::ports::StoreError;
use crate::time::unix_now;
use huren_dicom::pixel::PixelLayout;
use huren_quality as q;
use std::collections::BTreeMap;

/// Where the middle frame's bytes lie in the object (the frame the scorers read), and whether
/// they are encapsulated. `None` for layouts the scorers do not read yet (deflated, unmapped
/// fragments, packed bits, no pixels): pixel scorers then say "not assessable".
fn middle_frame(layout: &PixelLayout) -> Option<(Vec<std::ops::Range<u64>>, bool)> {
    let ranges = layout.frame_ranges(layout.frame_count() / 2)?;
    Some((ranges, matches!(layout, PixelLayout::Encapsulated { .. })))
}

/// The frame's bytes (its ranges read in order) as modality values: decoded when
/// encapsulated, brought to little-endian from Explicit VR Big Endian (retired, PS3.5 A.3).
/// `None` when the frame is not grey-scale.
fn frame_pixels(
    mut bytes: Vec<u8>,
    encapsulated: bool,
    transfer_syntax: &str,
    pm: &huren_dicom::render::PixelModule,
) -> Result<Option<q::Pixels>, String> {
    let (bits_allocated, samples) = if encapsulated {
        let d = huren_dicom::decode::decode_frame(transfer_syntax, pm, bytes)
            .map_err(|e| e.to_string())?;
        bytes = d.bytes;
        (d.bits_allocated, d.samples_per_pixel)
    } else {
        let big_endian = huren_dicom::ts::lookup(transfer_syntax).is_some_and(|t| t.big_endian);
        if big_endian && pm.bits_allocated == 16 {
            bytes.chunks_exact_mut(2).for_each(<[u8]>::reverse);
        }
        (pm.bits_allocated, pm.samples_per_pixel)
    };
    if samples != 1 {
        return Ok(None);
    }
    Ok(q::Pixels::from_native(
        &bytes,
        pm.rows as usize,
        pm.columns as usize,
        bits_allocated,
        pm.bits_stored,
        pm.pixel_representation == 1,
        pm.rescale_slope,
        pm.rescale_intercept,
    ))
}

/// What scoring one file gave (`huren quality score`): why it is not scored, or its result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScoredFile {
    pub excluded: Option<String>,
    pub result: Option<q::ImageResult>,
}

/// Scores a Part 10 file as the workers score a stored image (header, middle frame), for
/// operators checking an image and for the validation suite (docs/quality.md).
pub fn score_file(path: &std::path::Path) -> Result<ScoredFile, String> {
    let scanned = huren_dicom::scan_part10(path, huren_dicom::charset::Assumed::Declared)
        .map_err(|e| e.to_string())?;
    let serde_json::Value::Object(doc) = &scanned.json else {
        return Err("no header".into());
    };
    let header = q::Header::from_json(doc);
    if let Some(why) = q::excluded(&header, scanned.pixel.frame_count() > 0) {
        return Ok(ScoredFile {
            excluded: Some(why.code),
            result: None,
        });
    }
    let pm = huren_dicom::render::PixelModule::from_json(&scanned.json)
        .ok_or_else(|| "no image pixel module".to_owned())?;
    let pixels = match middle_frame(&scanned.pixel) {
        Some((ranges, encapsulated)) => {
            let file = std::fs::read(path).map_err(|e| e.to_string())?;
            let mut bytes = Vec::new();
            for r in ranges {
                bytes.extend_from_slice(
                    file.get(r.start as usize..r.end as usize)
                        .ok_or_else(|| "the file is shorter than its pixel data".to_owned())?,
                );
            }
            frame_pixels(bytes, encapsulated, &scanned.meta.transfer_syntax_uid, &pm)?
        }
        None => None,
    };
    Ok(ScoredFile {
        excluded: None,
        result: Some(q::score_image(&header, pixels.as_ref())),
    })
}

/// How long a claimed job is a worker's before another may take it over.
const LEASE_SECS: i64 = 120;

fn grade_str(g: Option<q::Grade>) -> Option<String> {
    g.map(|g| g.code().to_owned())
}

impl Archive {
    /// Claims up to `n` images for `worker` and scores them; returns how many were claimed.
    /// A failure to score one image requeues it (three attempts), it never stops the others.
    pub async fn qc_run(&self, worker: &str, n: i64) -> Result<usize, StoreError> {
        let now = unix_now();
        let jobs = self
            .index
            .qc_claim(worker, n, now, now + LEASE_SECS)
            .await?;
        // The batch's results are stored in one transaction: one commit per batch.
        let mut done = Vec::with_capacity(jobs.len());
        for job in &jobs {
            match self.qc_score(job).await {
                Ok(o) => done.push(o),
                Err(e) => {
                    tracing::warn!(instance = job.instance_id, attempt = job.attempts, error = %e, "quality scoring failed");
                    self.index.qc_fail(job.instance_id, &e, unix_now()).await?;
                }
            }
        }
        if !done.is_empty() {
            self.index.qc_finish(&done, unix_now()).await?;
        }
        Ok(jobs.len())
    }

    async fn qc_score(&self, job: &QcJob) -> Result<QcImageOutcome, String> {
        let raw = job
            .document
            .as_deref()
            .ok_or_else(|| "the header was not kept".to_owned())?;
        let unreadable = || "the stored header is unreadable".to_owned();
        let doc = huren_dicom::json::inflate(raw).map_err(|_| unreadable())?;
        let header = q::Header::from_json(doc.as_object().ok_or_else(unreadable)?);
        let layout: PixelLayout =
            serde_json::from_str(&job.pixel_layout).unwrap_or(PixelLayout::None);
        let outcome = |excluded: Option<String>, r: Option<q::ImageResult>| {
            // The whole result (scores, slice position): aggregation needs both.
            let scores = r
                .as_ref()
                .map(|r| serde_json::to_string(r).unwrap_or_else(|_| "{}".into()))
                .unwrap_or_else(|| "{}".into());
            QcImageOutcome {
                instance_id: job.instance_id,
                study_id: job.study_id,
                series_id: job.series_id,
                excluded,
                score: r.as_ref().and_then(|r| r.score),
                grade: grade_str(r.as_ref().and_then(|r| r.grade)),
                calibrated: r.as_ref().is_some_and(|r| r.calibrated),
                scores,
            }
        };
        if let Some(why) = q::excluded(&header, layout.frame_count() > 0) {
            return Ok(outcome(Some(why.code), None));
        }
        // The middle frame's bytes, read by range (a large object is never read whole).
        let pm = huren_dicom::render::PixelModule::from_json(&doc);
        let frame = match (&pm, middle_frame(&layout)) {
            (Some(_), Some((ranges, encapsulated))) => {
                let mut bytes = Vec::new();
                for r in ranges {
                    let part = self
                        .blobs
                        .read_range(&job.blob_key, r)
                        .await
                        .map_err(|e| e.to_string())?;
                    bytes.extend_from_slice(&part);
                }
                Some((bytes, encapsulated))
            }
            _ => None,
        };
        let ts = job.transfer_syntax.clone();
        // Decoding and scoring are CPU work: off the async threads, in one task.
        let result = tokio::task::spawn_blocking(move || {
            let pixels = match (frame, pm) {
                (Some((bytes, encapsulated)), Some(pm)) => {
                    frame_pixels(bytes, encapsulated, &ts, &pm)?
                }
                _ => None,
            };
            Ok::<_, String>(q::score_image(&header, pixels.as_ref()))
        })
        .await
        .map_err(|e| format!("scoring task: {e}"))??;
        Ok(outcome(None, Some(result)))
    }

    /// Aggregates up to `n` studies that are stable and fully scored; returns how many.
    pub async fn qc_aggregate(&self, n: i64) -> Result<usize, StoreError> {
        let ready = self.index.qc_ready_studies(n).await?;
        for (study_id, seen) in &ready {
            let images = self.index.qc_study_images(*study_id).await?;
            let mut by_series: BTreeMap<String, Vec<q::ImageResult>> = BTreeMap::new();
            let mut excluded = 0i64;
            for (series_uid, why, scores) in &images {
                if why.is_some() {
                    excluded += 1;
                    continue;
                }
                let Ok(stored) = serde_json::from_str::<q::ImageResult>(scores) else {
                    excluded += 1;
                    continue;
                };
                // The image's overall result again from its scores, under today's calibration.
                let mut r = q::image_result(stored.scores);
                r.position = stored.position;
                r.images_in_acquisition = stored.images_in_acquisition;
                by_series.entry(series_uid.clone()).or_default().push(r);
            }
            let study = q::aggregate_study(
                by_series
                    .iter()
                    .map(|(uid, imgs)| q::aggregate_series(uid, imgs))
                    .collect(),
            );
            let o = QcStudyOutcome {
                study_id: *study_id,
                score: study.score,
                grade: grade_str(study.grade),
                calibrated: study.calibrated,
                not_assessable: study.not_assessable,
                complete: study.complete,
                images: images.len() as i64 - excluded,
                excluded,
                detail: serde_json::to_string(&study).unwrap_or_else(|_| "{}".into()),
            };
            self.index.qc_store_study(&o, *seen, unix_now()).await?;
        }
        Ok(ready.len())
    }

    /// Jobs waiting and the age in seconds of the oldest.
    pub async fn qc_backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        let (n, oldest) = self.index.qc_backlog().await?;
        Ok((n, oldest.map(|t| unix_now() - t)))
    }

    /// The QC port of recognition: each study's grade and completeness by (StudyInstanceUID,
    /// performing institution); studies not aggregated yet are absent. With `as_of`, the grade
    /// each had then.
    pub(crate) async fn qc_grades(
        &self,
        study_uids: &[String],
        as_of: Option<i64>,
    ) -> Result<
        std::collections::HashMap<(String, String), (huren_recognition::Qc, Option<bool>)>,
        StoreError,
    > {
        use huren_recognition::{Qc, QcGrade};
        Ok(self
            .index
            .qc_grades(study_uids, as_of)
            .await?
            .into_iter()
            .map(|(uid, inst, grade, calibrated, complete, not_assessable)| {
                let qc = match (grade.as_deref(), calibrated) {
                    (None, _) if not_assessable => Qc::NotAssessable,
                    (None, _) => Qc::Absent,
                    (Some(_), false) => Qc::Uncalibrated,
                    (Some(g), true) => Qc::Graded(QcGrade::parse(g).unwrap_or(QcGrade::Reject)),
                };
                ((uid, inst), (qc, complete))
            })
            .collect())
    }
}

/// What quality feedback is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityBy {
    Institution,
    Modality,
    Month,
}

impl QualityBy {
    pub fn parse(s: &str) -> Option<QualityBy> {
        Some(match s {
            "institution" => QualityBy::Institution,
            "modality" => QualityBy::Modality,
            "month" => QualityBy::Month,
            _ => return None,
        })
    }
}

/// One group's distribution of study scores and grades.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QualityRow {
    pub key: String,
    pub studies: u64,
    /// Studies by grade: A (甲), B (乙), C (丙), reject (废片).
    pub a: u64,
    pub b: u64,
    pub c: u64,
    pub reject: u64,
    /// Graded by scorers not calibrated yet (their grades are not used by recognition).
    pub uncalibrated: u64,
    /// Studies with a series missing slices or unevenly spaced.
    pub incomplete: u64,
    pub mean: Option<f64>,
    pub p10: Option<f64>,
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

/// A low-scoring study for the QC centre: what it is and why, with no patient data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LowStudy {
    pub study_instance_uid: String,
    pub institution: String,
    pub modalities: String,
    pub study_date: Option<String>,
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub images: i64,
    pub reasons: Vec<q::Reason>,
}

impl Archive {
    /// Score distributions by institution, modality or month (trends) for studies performed on
    /// `[from, until]`.
    pub async fn quality_statistics(
        &self,
        grant: &huren_access::QualityGrant,
        from: time::Date,
        until: time::Date,
        by: QualityBy,
    ) -> Result<Vec<QualityRow>, StoreError> {
        let studies = self
            .index
            .qc_graded_studies(
                &crate::time::da(from),
                &crate::time::da(until),
                grant.institution(),
            )
            .await?;
        let mut groups: BTreeMap<String, (QualityRow, Vec<f64>)> = BTreeMap::new();
        for s in &studies {
            let key = match by {
                QualityBy::Institution => s.institution.clone(),
                QualityBy::Modality => s.modalities.clone(),
                QualityBy::Month => s
                    .study_date
                    .as_deref()
                    .and_then(|d| d.get(..6))
                    .map(|m| format!("{}-{}", &m[..4], &m[4..]))
                    .unwrap_or_default(),
            };
            let (row, scores) = groups.entry(key.clone()).or_insert_with(|| {
                (
                    QualityRow {
                        key,
                        ..Default::default()
                    },
                    Vec::new(),
                )
            });
            row.studies += 1;
            match s.grade.as_deref() {
                Some("A") => row.a += 1,
                Some("B") => row.b += 1,
                Some("C") => row.c += 1,
                Some(_) => row.reject += 1,
                None => {}
            }
            row.uncalibrated += u64::from(s.grade.is_some() && !s.calibrated);
            row.incomplete += u64::from(s.complete == Some(false));
            scores.extend(s.score);
        }
        Ok(groups
            .into_values()
            .map(|(mut row, mut scores)| {
                scores.sort_by(f64::total_cmp);
                let at = |p: f64| {
                    (!scores.is_empty()).then(|| {
                        let k = ((p / 100.0) * (scores.len() - 1) as f64).round() as usize;
                        (scores[k] * 10.0).round() / 10.0
                    })
                };
                row.mean = (!scores.is_empty()).then(|| {
                    (scores.iter().sum::<f64>() / scores.len() as f64 * 10.0).round() / 10.0
                });
                row.p10 = at(10.0);
                row.median = at(50.0);
                row.p90 = at(90.0);
                row
            })
            .collect())
    }

    /// The lowest-scoring studies performed on `[from, until]`, optionally of one modality,
    /// with the reasons that kept them low.
    pub async fn quality_lowest(
        &self,
        grant: &huren_access::QualityGrant,
        from: time::Date,
        until: time::Date,
        modality: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LowStudy>, StoreError> {
        let mut studies: Vec<_> = self
            .index
            .qc_graded_studies(
                &crate::time::da(from),
                &crate::time::da(until),
                grant.institution(),
            )
            .await?
            .into_iter()
            .filter(|s| s.score.is_some())
            .filter(|s| modality.is_none_or(|m| s.modalities.split('\\').any(|x| x == m)))
            .collect();
        studies.sort_by(|a, b| {
            a.score
                .unwrap_or(f64::MAX)
                .total_cmp(&b.score.unwrap_or(f64::MAX))
        });
        Ok(studies
            .into_iter()
            .take(limit)
            .map(|s| {
                let reasons = s
                    .detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<q::StudyResult>(d).ok())
                    .map(|r| r.series.into_iter().flat_map(|x| x.reasons).collect())
                    .unwrap_or_default();
                LowStudy {
                    study_instance_uid: s.study_uid,
                    institution: s.institution,
                    modalities: s.modalities,
                    study_date: s.study_date,
                    score: s.score,
                    grade: s.grade,
                    images: s.images,
                    reasons,
                }
            })
            .collect())
    }
}
