//! HL7 v2 ORU^R01 → the lab model: each OBR with the OBX (and v2.5 SPM) segments after it is
//! one [`NewOrder`]; a group whose observations are all text (TX/FT) is an imaging report
//! (category RAD, with the DICOM Study Instance UID from an OBX of code 113014 or IHE's ZDS-1),
//! any other a lab order whose OBX segments are its results (SN written out, NM checked as a
//! number, units to UCUM when known). Times (HL7 TS) are read in the region's zone. Errors are
//! HL7 table 0357 refusals naming the segment and field.

use crate::model::{NewLabResult, NewOrder, ReportCategory};
use huren_hl7::{AckCode, Message, Refusal, Segment};

/// Components of field `n`'s first repetition, unescaped (empty when absent).
pub fn comps(s: &Segment, n: usize) -> Vec<String> {
    s.fields
        .get(n.wrapping_sub(1))
        .and_then(|f| f.first())
        .map(|c| {
            c.iter()
                .map(|sub| sub.first().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

pub fn non_empty(v: Option<&String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_owned())
}

/// OBX-5 as text: SN (structured numeric) is written out (`<0.01`, `1:320`); coded values keep
/// `code^text`; everything else its first component.
fn value_text(value_type: Option<&str>, c: &[String]) -> Option<String> {
    let v = match value_type {
        Some("SN") => c.concat(),
        Some("CE") | Some("CWE") | Some("CNE") => c
            .iter()
            .take(2)
            .filter(|x| !x.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("^"),
        _ => c.first().cloned().unwrap_or_default(),
    };
    (!v.trim().is_empty()).then_some(v)
}

/// HL7 TS (YYYYMMDDHHMMSS…) → unix seconds in the region's zone.
fn instant(ts: &str, zone: &'static time_tz::Tz) -> Option<i64> {
    let digits: String = ts.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() < 8 {
        return None;
    }
    let tm = (digits.len() >= 12).then(|| &digits[8..digits.len().min(14)]);
    huren_types::day::instant(&digits[..8], tm, zone)
}

/// The orders and results of one ORU message, in message order.
pub fn orders(m: &Message, zone: &'static time_tz::Tz) -> Result<Vec<NewOrder>, Refusal> {
    // Each OBR with the OBX (and v2.5 SPM) segments after it. A group whose observations
    // are all text (TX/FT) is an imaging report; any other group is a lab order.
    struct Group<'m> {
        obr: &'m Segment,
        obx: Vec<(usize, &'m Segment)>,
        spm: Option<&'m Segment>,
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut obx_seq = 0;
    for s in &m.segments {
        match s.id.as_str() {
            "OBR" => groups.push(Group {
                obr: s,
                obx: Vec::new(),
                spm: None,
            }),
            "OBX" => {
                obx_seq += 1;
                if let Some(g) = groups.last_mut() {
                    g.obx.push((obx_seq, s));
                }
            }
            "SPM" => {
                if let Some(g) = groups.last_mut() {
                    g.spm.get_or_insert(s);
                }
            }
            _ => {}
        }
    }
    // DICOM "Study Instance UID" (DCM 113014) as an observation, or IHE's ZDS-1.
    let is_uid = |o: &Segment| comps(o, 3).first().map(String::as_str) == Some("113014");
    let zds_uid = m.get("ZDS", 1, 1).map(str::to_owned);
    let mut orders = Vec::new();
    for g in &groups {
        let obr = g.obr;
        let order = comps(obr, 4);
        let is_text = |o: &Segment| matches!(o.get(2, 1), Some("TX") | Some("FT"));
        let texts: Vec<&Segment> = g
            .obx
            .iter()
            .map(|(_, o)| *o)
            .filter(|o| is_text(o) && !is_uid(o))
            .collect();
        let all_text = g.obx.iter().all(|(_, o)| is_text(o) || is_uid(o));
        // OBR-7 observation (collection) time, OBR-22 results reported, OBR-25 status.
        let collected = obr.get(7, 1).map(str::to_owned);
        let reported_at = obr.get(22, 1).map(str::to_owned);
        // Specimen: SPM-4 (v2.5+) else OBR-15 (v2.3/2.4 specimen source), as code^text.
        let specimen = match g.spm {
            Some(spm) => value_text(Some("CWE"), &comps(spm, 4)),
            None => value_text(Some("CWE"), &comps(obr, 15)),
        };
        let mut o = NewOrder {
            category: ReportCategory::Lab,
            study_uid: None,
            accession_number: None,
            placer_order: obr.get(2, 1).map(str::to_owned),
            filler_order: obr.get(3, 1).map(str::to_owned),
            identifier: None,
            procedure_code: non_empty(order.first()),
            procedure_code_system: non_empty(order.get(2)),
            procedure_text: non_empty(order.get(1)),
            text: None,
            status: obr.get(25, 1).map(str::to_owned),
            specimen: specimen.clone(),
            effective_instant: collected.as_deref().and_then(|t| instant(t, zone)),
            effective_at: collected.clone(),
            reported_instant: reported_at.as_deref().and_then(|t| instant(t, zone)),
            reported_at: reported_at.clone(),
            results: Vec::new(),
        };
        if !texts.is_empty() && all_text {
            let text = texts
                .iter()
                .flat_map(|o| {
                    o.fields
                        .get(4)
                        .map(|reps| {
                            reps.iter()
                                .map(|c| {
                                    c.first()
                                        .and_then(|x| x.first())
                                        .cloned()
                                        .unwrap_or_default()
                                })
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("\n");
            let reported_at = reported_at
                .or_else(|| collected.clone())
                .or_else(|| texts.first().and_then(|o| o.get(14, 1)).map(str::to_owned));
            o.category = ReportCategory::Imaging;
            o.study_uid = g
                .obx
                .iter()
                .find(|(_, o)| is_uid(o))
                .and_then(|(_, o)| o.get(5, 1))
                .map(str::to_owned)
                .or_else(|| zds_uid.clone());
            o.accession_number = o.filler_order.clone();
            o.text = Some(text);
            o.status = o
                .status
                .or_else(|| texts.first().and_then(|x| x.get(11, 1)).map(str::to_owned));
            o.reported_instant = reported_at.as_deref().and_then(|t| instant(t, zone));
            o.reported_at = reported_at;
            if o.effective_at.is_none() {
                o.effective_at = o.reported_at.clone();
                o.effective_instant = o.reported_instant;
            }
            orders.push(o);
            continue;
        }
        for (seq, s) in g.obx.iter().filter(|(_, o)| !is_uid(o)) {
            let id = comps(s, 3);
            let value_type = s.get(2, 1).map(str::to_owned);
            let value = value_text(value_type.as_deref(), &comps(s, 5));
            let numeric = match value_type.as_deref() {
                Some("NM") => match value.as_deref().map(str::trim) {
                    Some(v) => match v.parse::<f64>() {
                        Ok(n) if n.is_finite() => Some((n, None)),
                        _ => {
                            return Err(Refusal::new(
                                AckCode::AE,
                                102,
                                format!("OBX-5 {v:?} is not a number (OBX-2 NM)"),
                            )
                            .at("OBX", *seq, 5));
                        }
                    },
                    None => None,
                },
                Some("SN") => value.as_deref().and_then(crate::units::number),
                _ => None,
            };
            let unit = non_empty(comps(s, 6).first());
            let observed_at = s
                .get(14, 1)
                .map(str::to_owned)
                .or_else(|| collected.clone());
            o.results.push(NewLabResult {
                performing_lab: non_empty(comps(s, 23).first()),
                placer_order: o.placer_order.clone(),
                filler_order: o.filler_order.clone(),
                order_code: o.procedure_code.clone(),
                order_text: o.procedure_text.clone(),
                set_id: s.get(1, 1).and_then(|v| v.parse().ok()),
                identifier: None,
                value_type,
                code: id.first().cloned().unwrap_or_default(),
                code_text: non_empty(id.get(1)),
                code_system: non_empty(id.get(2)),
                value,
                value_num: numeric.map(|n| n.0),
                comparator: numeric.and_then(|n| n.1).map(str::to_owned),
                unit_ucum: unit.as_deref().and_then(crate::units::ucum),
                unit,
                reference_range: s.get(7, 1).map(str::to_owned),
                abnormal_flag: s.get(8, 1).map(str::to_owned),
                status: s.get(11, 1).map(str::to_owned),
                specimen: specimen.clone(),
                observed_instant: observed_at.as_deref().and_then(|t| instant(t, zone)),
                observed_at,
                reported_instant: o.reported_instant,
                reported_at: o.reported_at.clone(),
            });
        }
        orders.push(o);
    }
    if orders
        .iter()
        .all(|o| o.results.is_empty() && o.text.is_none())
    {
        return Err(Refusal::new(AckCode::AE, 100, "no OBX segment"));
    }
    Ok(orders)
}
