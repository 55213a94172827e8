//! Image quality control on every stored image (issue #8, docs/quality.md): workers claim
//! images from the index's queue, read the header and one frame, score them with the pure
//! scorers of `huren-quality`, and store the result; stable studies are aggregated into a grade
//! (甲/乙/丙/废片) that recognition reads through its QC port.
//!
//! Ingest never waits for any of this: the job row is written with the instance, and scoring
//! happens after the acknowledgment.

pub use crate::model::QualityBy;
use crate::model::{QcImageOutcome, QcJob, QcStudyOutcome};
use crate::ports::StoreError;
use crate::time::unix_now;
use crate::{AdminError, Archive};
use huren_access::{AuditAction, AuditEvent, Outcome};
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
    bytes: Vec<u8>,
    encapsulated: bool,
    transfer_syntax: &str,
    pm: &huren_dicom::render::PixelModule,
) -> Result<Option<q::Pixels>, String> {
    let (bytes, native) =
        huren_dicom::decode::native_frame(transfer_syntax, pm, bytes, encapsulated)
            .map_err(|e| e.to_string())?;
    let (bits_allocated, samples) = (native.bits_allocated, native.samples_per_pixel);
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

impl Archive {
    /// Score distributions by institution, modality or month (trends) for studies performed on
    /// `[from, until]`. A period of whole months — from the first of a month to the last day of
    /// a month, or to today or later — is read from the roll-up (migration 0040), a few
    /// thousand rows for a region's year; another is counted from the studies. Either way the
    /// counts and the mean are exact, and the percentiles are read from the scores' histogram
    /// in 5-point bins, interpolated within the bin.
    pub async fn quality_statistics(
        &self,
        grant: &huren_access::QualityGrant,
        from: time::Date,
        until: time::Date,
        by: QualityBy,
    ) -> Result<Vec<QualityRow>, StoreError> {
        let span = qc_span(from, until, self.today());
        let cells = self.index.qc_cells(&span, grant.institution(), by).await?;
        let mut groups: BTreeMap<String, (QualityRow, [u64; 21], f64, u64)> = BTreeMap::new();
        for c in cells {
            let key = match by {
                QualityBy::Institution => c.institution.clone(),
                QualityBy::Modality => c.modalities.clone(),
                QualityBy::Month => match c.month.get(..6) {
                    Some(m) => format!("{}-{}", &m[..4], &m[4..]),
                    None => String::new(),
                },
                QualityBy::Cell => format!("{} {} {}", c.month, c.institution, c.modalities),
            };
            let (row, hist, sum, scored) = groups.entry(key.clone()).or_insert_with(|| {
                (
                    QualityRow {
                        key,
                        ..Default::default()
                    },
                    [0; 21],
                    0.0,
                    0,
                )
            });
            row.studies += c.studies;
            row.a += c.a;
            row.b += c.b;
            row.c += c.c;
            row.reject += c.reject;
            row.uncalibrated += c.uncalibrated;
            row.incomplete += c.incomplete;
            *sum += c.score_sum;
            *scored += c.scored;
            for (h, n) in hist.iter_mut().zip(c.histogram) {
                *h += n;
            }
        }
        Ok(groups
            .into_values()
            .map(|(mut row, hist, sum, scored)| {
                let tenth = |x: f64| (x * 10.0).round() / 10.0;
                row.mean = (scored > 0).then(|| tenth(sum / scored as f64));
                row.p10 = percentile(&hist, 10.0).map(tenth);
                row.median = percentile(&hist, 50.0).map(tenth);
                row.p90 = percentile(&hist, 90.0).map(tenth);
                row
            })
            .collect())
    }
}

/// Whole months when the period is (from the 1st to a month's last day, or to `today` or
/// later: no study is dated later), else days.
fn qc_span(from: time::Date, until: time::Date, today: time::Date) -> crate::model::QcSpan {
    let month = |d: time::Date| format!("{:04}{:02}", d.year(), u8::from(d.month()));
    let month_end = until.next_day().is_none_or(|n| n.day() == 1) || until >= today;
    if from.day() == 1 && month_end {
        crate::model::QcSpan::Months {
            from: month(from),
            until: month(until),
        }
    } else {
        crate::model::QcSpan::Days {
            from: crate::time::da(from),
            until: crate::time::da(until),
        }
    }
}

/// The `p`th percentile (the nearest rank, as before) from scores counted in 5-point bins
/// (bin 20 holds 100): the rank's place among its bin's scores, spread evenly over the bin.
fn percentile(hist: &[u64; 21], p: f64) -> Option<f64> {
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = ((p / 100.0) * (n - 1) as f64).round() as u64;
    let mut before = 0;
    for (k, &count) in hist.iter().enumerate() {
        if rank < before + count {
            if k == 20 {
                return Some(100.0);
            }
            let within = (rank - before) as f64 + 0.5;
            return Some(5.0 * k as f64 + 5.0 * within / count as f64);
        }
        before += count;
    }
    Some(100.0)
}

/// A grade as the QC centre reads it: the code and both labels side by side (one code set
/// across API, CLI and CSV: A, B, C, reject; 甲, 乙, 丙, 废片).
/// All three null when there is no grade.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GradeLabel {
    pub grade: Option<&'static str>,
    pub grade_zh: Option<&'static str>,
    pub grade_en: Option<&'static str>,
}

fn label(g: Option<q::Grade>) -> GradeLabel {
    GradeLabel {
        grade: g.map(q::Grade::code),
        grade_zh: g.map(q::Grade::label_zh),
        grade_en: g.map(q::Grade::label_en),
    }
}

/// A study in the QC centre's list (no patient data: the hospital finds it in its own PACS by
/// its UID).
#[derive(Debug, Clone, serde::Serialize)]
pub struct QcStudyItem {
    pub study_instance_uid: String,
    pub institution: String,
    pub modalities: String,
    /// StudyDate as sent (YYYYMMDD), when there is one.
    pub study_date: Option<String>,
    /// The day the list files it under (YYYY-MM-DD): the study date, else the day its first
    /// image arrived (region zone); `dated_by` says which.
    pub day: String,
    pub dated_by: &'static str,
    pub status: crate::model::QcStatus,
    pub score: Option<f64>,
    #[serde(flatten)]
    pub grade: GradeLabel,
    pub calibrated: bool,
    pub complete: Option<bool>,
    /// Images stored, scored so far, graded (scored and not left out), left out.
    pub stored: i64,
    pub scored: i64,
    pub images: i64,
    pub excluded: i64,
    /// What kept its series below 甲 (or why it could not be assessed).
    pub reasons: Vec<q::Reason>,
    /// The QC centre's reviews of it so far.
    pub reviews: i64,
}

/// One page of the QC centre's list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QcStudyPage {
    pub total: i64,
    pub offset: i64,
    pub limit: i64,
    pub studies: Vec<QcStudyItem>,
}

/// One scorer's judgment of an image, or a series' median, with what it measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QcMeasure {
    pub scorer: String,
    pub assessable: bool,
    pub score: Option<f64>,
    #[serde(flatten)]
    pub grade: GradeLabel,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub bands_zh: &'static str,
    pub bands_en: &'static str,
    /// Calibrated scorers grade; the others are shown.
    pub calibrated: bool,
    pub reasons: Vec<q::Reason>,
}

fn measure(s: &q::Score) -> QcMeasure {
    let (unit, bands_zh, bands_en) = q::scorer_info(&s.scorer).unwrap_or(("", "", ""));
    QcMeasure {
        scorer: s.scorer.clone(),
        assessable: s.score.is_some(),
        score: s.score,
        grade: label(s.grade),
        value: s.value,
        unit,
        bands_zh,
        bands_en,
        calibrated: q::is_calibrated(&s.scorer) || s.scorer == "series_completeness",
        reasons: s.reasons.clone(),
    }
}

/// One image of a study in the QC view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QcImageView {
    pub sop_instance_uid: String,
    pub instance_number: Option<i64>,
    /// `scored`, `excluded` (left out, with the reason's code) or `pending`.
    pub status: &'static str,
    pub excluded: Option<String>,
    pub assessable: Option<bool>,
    pub score: Option<f64>,
    #[serde(flatten)]
    pub grade: GradeLabel,
    pub scores: Vec<QcMeasure>,
}

/// One series of a study in the QC view: its aggregate (per scorer, the median over its images)
/// and its images.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QcSeriesView {
    pub series_instance_uid: String,
    pub assessable: Option<bool>,
    pub score: Option<f64>,
    #[serde(flatten)]
    pub grade: GradeLabel,
    pub complete: Option<bool>,
    pub reasons: Vec<q::Reason>,
    /// Scorer → the median score over the images it could judge, with its unit and bands.
    pub scorers: Vec<QcMeasure>,
    pub images: Vec<QcImageView>,
}

/// A study's whole QC record: study, series and images, every scorer's value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QcStudyView {
    #[serde(flatten)]
    pub study: QcStudyItem,
    pub series: Vec<QcSeriesView>,
}

impl Archive {
    fn qc_item(&self, r: crate::model::QcListRow) -> QcStudyItem {
        use crate::model::QcStatus;
        let status = if r.grade.is_some() {
            QcStatus::Graded
        } else if r.not_assessable {
            QcStatus::NotAssessable
        } else if r.aggregated_at.is_none() {
            QcStatus::Pending
        } else {
            QcStatus::NothingToScore
        };
        let detail = r
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<q::StudyResult>(d).ok());
        let reasons = detail
            .map(|d| d.series.into_iter().flat_map(|x| x.reasons).collect())
            .unwrap_or_default();
        let dated = r
            .study_date
            .as_deref()
            .and_then(crate::time::parse_da)
            .map(iso);
        let (day, dated_by) = match dated {
            Some(d) => (d, "study_date"),
            None => {
                use time_tz::OffsetDateTimeExt;
                let day = ::time::OffsetDateTime::from_unix_timestamp(r.arrived_at)
                    .map(|t| iso(t.to_timezone(self.config.zone).date()))
                    .unwrap_or_default();
                (day, "arrival")
            }
        };
        QcStudyItem {
            study_instance_uid: r.study_uid,
            institution: r.institution,
            modalities: r.modalities,
            study_date: r.study_date,
            day,
            dated_by,
            status,
            score: r.score,
            grade: label(r.grade.as_deref().and_then(q::Grade::parse)),
            calibrated: r.calibrated,
            complete: r.complete,
            stored: r.stored,
            scored: r.scored,
            images: r.images,
            excluded: r.excluded,
            reasons,
            reviews: r.reviews,
        }
    }

    /// The QC centre's list of studies performed on `[from, until]` (by arrival day when a
    /// study has no StudyDate): filtered by institution, modality, grade and status, in the
    /// order asked, a page at a time. Institution admins and technicians see their own
    /// institution's only, whatever they ask.
    #[allow(clippy::too_many_arguments)]
    pub async fn quality_studies(
        &self,
        grant: &huren_access::QualityGrant,
        from: time::Date,
        until: time::Date,
        institution: Option<&str>,
        modality: Option<&str>,
        grade: Option<q::Grade>,
        status: Option<crate::model::QcStatus>,
        order: crate::model::QcOrder,
        limit: i64,
        offset: i64,
    ) -> Result<QcStudyPage, crate::AdminError> {
        let institution = match (grant.institution(), institution) {
            (Some(own), _) => Some(own),
            (None, Some(code)) => Some(
                self.index
                    .institution_as_of(code, self.today())
                    .await?
                    .ok_or_else(|| {
                        crate::AdminError::refused(
                            crate::refusal::Rule::InstitutionNotFound,
                            format!("no institution {code}"),
                        )
                    })?
                    .id,
            ),
            (None, None) => None,
        };
        let midnight = |d: time::Date| {
            crate::time::instant(&crate::time::da(d), None, self.config.zone).unwrap_or(0)
        };
        let filter = crate::model::QcStudyFilter {
            from: crate::time::da(from),
            until: crate::time::da(until),
            arrived_from: midnight(from),
            arrived_until: until.next_day().map_or(i64::MAX, midnight),
            institution,
            modality: modality.map(str::to_owned),
            grade: grade.map(|g| g.code().to_owned()),
            status,
            order,
            limit,
            offset,
            months: match qc_span(from, until, self.today()) {
                crate::model::QcSpan::Months { from, until } => Some((from, until)),
                crate::model::QcSpan::Days { .. } => None,
            },
        };
        let (total, rows) = self.index.qc_list_studies(&filter).await?;
        Ok(QcStudyPage {
            total,
            offset,
            limit,
            studies: rows.into_iter().map(|r| self.qc_item(r)).collect(),
        })
    }

    /// One study's QC record by StudyInstanceUID: its grade, each series' aggregate and every
    /// image's scores with their measured values, units and bands. Each institution's study of
    /// that UID when several sent one; only the reader's own institution's for institution
    /// admins and technicians (others are not found).
    pub async fn quality_study(
        &self,
        grant: &huren_access::QualityGrant,
        study_uid: &str,
    ) -> Result<Vec<QcStudyView>, StoreError> {
        let found = self
            .index
            .qc_study_images_by_uid(study_uid, grant.institution())
            .await?;
        Ok(found
            .into_iter()
            .map(|(row, images)| {
                let detail = row
                    .detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<q::StudyResult>(d).ok());
                let mut series: Vec<QcSeriesView> = Vec::new();
                for img in images {
                    let view = image_view(&img);
                    match series
                        .iter_mut()
                        .find(|s| s.series_instance_uid == img.series_uid)
                    {
                        Some(s) => s.images.push(view),
                        None => {
                            let aggregate = detail.as_ref().and_then(|d| {
                                d.series.iter().find(|s| s.series_uid == img.series_uid)
                            });
                            series.push(series_view(&img.series_uid, aggregate, view));
                        }
                    }
                }
                QcStudyView {
                    study: self.qc_item(row),
                    series,
                }
            })
            .collect())
    }
}

fn image_view(img: &crate::model::QcImageRow) -> QcImageView {
    let result = img
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str::<q::ImageResult>(r).ok())
        // Under today's rules, as the aggregation reads it.
        .map(|r| q::image_result(r.scores));
    let status = match (&img.excluded, &result) {
        (Some(_), _) => "excluded",
        (None, Some(_)) => "scored",
        (None, None) => "pending",
    };
    QcImageView {
        sop_instance_uid: img.sop_instance_uid.clone(),
        instance_number: img.instance_number,
        status,
        excluded: img.excluded.clone(),
        assessable: result.as_ref().map(|r| r.assessable),
        score: result.as_ref().and_then(|r| r.score),
        grade: label(result.as_ref().and_then(|r| r.grade)),
        scores: result
            .map(|r| r.scores.iter().map(measure).collect())
            .unwrap_or_default(),
    }
}

fn series_view(uid: &str, aggregate: Option<&q::SeriesResult>, first: QcImageView) -> QcSeriesView {
    QcSeriesView {
        series_instance_uid: uid.to_owned(),
        assessable: aggregate.map(|a| a.assessable),
        score: aggregate.and_then(|a| a.score),
        grade: label(aggregate.and_then(|a| a.grade)),
        complete: aggregate.and_then(|a| a.complete),
        reasons: aggregate.map(|a| a.reasons.clone()).unwrap_or_default(),
        scorers: aggregate
            .map(|a| {
                a.scorers
                    .iter()
                    .map(|(name, median)| {
                        measure(&q::Score {
                            scorer: name.clone(),
                            score: Some(*median),
                            grade: Some(q::grade_of(*median)),
                            value: None,
                            reasons: Vec::new(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        images: vec![first],
    }
}

use huren_types::day::iso;

impl Archive {
    /// The QC centre marks a study reviewed with a comment for the hospital (appended; audited).
    /// The study is named by its UID and the institution that performed it.
    pub async fn quality_review(
        &self,
        grant: &huren_access::QcReviewGrant,
        study_uid: &str,
        institution: &str,
        comment: &str,
    ) -> Result<i64, crate::AdminError> {
        let comment = comment.trim();
        if comment.is_empty() || comment.chars().count() > 1000 {
            return Err(crate::AdminError::Invalid(
                "a comment (1–1000 characters) is required".into(),
            ));
        }
        let user = grant.user();
        let actor = huren_access::Principal::User(user.clone()).label();
        let now = ::time::OffsetDateTime::now_utc().unix_timestamp();
        let id = self
            .index
            .qc_add_review(study_uid, institution, user.user_id, &actor, comment, now)
            .await?
            .ok_or_else(|| {
                crate::AdminError::refused(
                    crate::refusal::Rule::StudyNotFound,
                    format!("no study {study_uid} of {institution}"),
                )
            })?;
        self.index
            .record_audit(huren_access::AuditEvent {
                action: huren_access::AuditAction::QualityReviewed,
                outcome: huren_access::Outcome::Success,
                actor,
                institution: Some(institution.to_owned()),
                patient: None,
                study_uid: Some(study_uid.to_owned()),
                object: Some(format!("qc-review:{id}")),
                source_address: None,
                detail: serde_json::json!({ "comment": comment }),
            })
            .await?;
        Ok(id)
    }

    /// A study's QC reviews, oldest first, for whoever may read its quality (the hospital
    /// reads the QC centre's comments on its own studies).
    pub async fn quality_reviews(
        &self,
        grant: &huren_access::QualityGrant,
        study_uid: &str,
        institution: &str,
    ) -> Result<Vec<crate::model::QcReview>, StoreError> {
        if let Some(own) = grant.institution() {
            let ours = self
                .index
                .institution_as_of(institution, self.today())
                .await?
                .is_some_and(|i| i.id == own);
            if !ours {
                return Ok(Vec::new());
            }
        }
        self.index.qc_reviews(study_uid, institution).await
    }
}

impl Archive {
    /// The image the QC centre looks at beside an image's scores: its middle frame (the one
    /// scored) rendered as JPEG to fit `size` pixels a side, in the object's own window. Only
    /// pixels leave: no header, no name or number travels with a JPEG. Found only in a study
    /// the grant reaches (an institution's own for admins and technicians); `None` otherwise.
    /// Looking is recorded once per reader and study per read-audit window, with the purpose
    /// `quality_control` (the image is the patient's, even without their name).
    pub async fn quality_image(
        &self,
        grant: &huren_access::QualityGrant,
        study_uid: &str,
        sop_uid: &str,
        size: u32,
    ) -> Result<Option<Vec<u8>>, AdminError> {
        let Some(job) = self
            .index
            .qc_image_source(study_uid, sop_uid, grant.institution())
            .await?
        else {
            return Ok(None);
        };
        let none = || {
            AdminError::refused(
                crate::refusal::Rule::NoImage,
                "this instance has no image to show",
            )
        };
        let doc = job
            .document
            .as_deref()
            .and_then(|raw| huren_dicom::json::inflate(raw).ok())
            .ok_or_else(none)?;
        let pm = huren_dicom::render::PixelModule::from_json(&doc).ok_or_else(none)?;
        let layout: PixelLayout =
            serde_json::from_str(&job.pixel_layout).unwrap_or(PixelLayout::None);
        let (ranges, encapsulated) = middle_frame(&layout).ok_or_else(none)?;
        let mut bytes = Vec::new();
        for r in ranges {
            bytes.extend_from_slice(&self.blobs.read_range(&job.blob_key, r).await?);
        }
        let ts = job.transfer_syntax.clone();
        let jpeg =
            tokio::task::spawn_blocking(move || render_frame(bytes, encapsulated, &ts, pm, size))
                .await
                .map_err(|e| AdminError::failed("the rendering task", e))??;
        let reader = grant.principal().label();
        if self.access_log.first_in_window(
            &reader,
            &format!("qc-image:{study_uid}"),
            self.config.read_audit_window,
        ) {
            let ev = AuditEvent {
                action: AuditAction::PatientDataAccessed,
                outcome: Outcome::Success,
                actor: reader,
                institution: match grant.principal() {
                    huren_access::Principal::User(u) => Some(u.institution_code.to_string()),
                    _ => None,
                },
                patient: None,
                study_uid: Some(study_uid.to_owned()),
                object: Some(format!("study:{study_uid}")),
                source_address: None,
                detail: serde_json::json!({ "purpose": "quality_control", "rendered": true }),
            };
            if let Err(e) = self.index.record_audit(ev).await {
                tracing::error!(error = %e, "a QC image view was not audited");
            }
        }
        Ok(Some(jpeg))
    }
}

/// A frame's stored bytes rendered as JPEG (made native first, `huren_dicom::decode`).
fn render_frame(
    bytes: Vec<u8>,
    encapsulated: bool,
    transfer_syntax: &str,
    pm: huren_dicom::render::PixelModule,
    size: u32,
) -> Result<Vec<u8>, AdminError> {
    let refused = |e: &dyn std::fmt::Display| AdminError::Invalid(e.to_string());
    let (bytes, pm) = huren_dicom::decode::native_frame(transfer_syntax, &pm, bytes, encapsulated)
        .map_err(|e| refused(&e))?;
    let opts = huren_dicom::render::RenderOptions {
        window: None,
        viewport: Some((size, size)),
        quality: 85,
        png: false,
    };
    huren_dicom::render::render(&pm, &bytes, &opts).map_err(|e| refused(&e))
}

#[cfg(test)]
mod statistics_tests {
    use super::{percentile, qc_span};
    use crate::model::QcSpan;
    use time::macros::date;

    #[test]
    fn whole_months_are_read_from_the_rollup() {
        let today = date!(2026 - 12 - 07);
        let months = |a: &str, b: &str| QcSpan::Months {
            from: a.into(),
            until: b.into(),
        };
        assert_eq!(
            qc_span(date!(2026 - 01 - 01), today, today),
            months("202601", "202612")
        );
        assert_eq!(
            qc_span(date!(2025 - 01 - 01), date!(2025 - 12 - 31), today),
            months("202501", "202512")
        );
        assert_eq!(
            qc_span(date!(2024 - 02 - 01), date!(2024 - 02 - 29), today),
            months("202402", "202402")
        );
        assert_eq!(
            qc_span(date!(2025 - 01 - 17), date!(2025 - 12 - 31), today),
            QcSpan::Days {
                from: "20250117".into(),
                until: "20251231".into()
            }
        );
        assert!(matches!(
            qc_span(date!(2025 - 01 - 01), date!(2025 - 12 - 14), today),
            QcSpan::Days { .. }
        ));
    }

    #[test]
    fn percentiles_are_read_within_their_bin() {
        let mut h = [0u64; 21];
        assert_eq!(percentile(&h, 50.0), None);
        h[17] = 1; // one score in 85–89.9: its middle
        assert_eq!(percentile(&h, 50.0), Some(87.5));
        h[20] = 3; // three of 100
        assert_eq!(percentile(&h, 90.0), Some(100.0));
        assert_eq!(percentile(&h, 10.0), Some(87.5));
        let mut h = [0u64; 21];
        h[12] = 10; // ten in 60–64.9: the 10th percentile near the bin's start, the 90th near its end
        assert_eq!(percentile(&h, 10.0), Some(60.0 + 5.0 * 1.5 / 10.0));
        assert_eq!(percentile(&h, 90.0), Some(60.0 + 5.0 * 8.5 / 10.0));
    }
}
